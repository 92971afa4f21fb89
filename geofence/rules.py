"""Alert thresholds, with the defaults docs/alerts.md specifies. Times in seconds, distances in metres."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rules:
    # route_deviation: outside the corridor this long opens it, back inside this long ends it
    deviation_enter_s: float = 60.0
    deviation_exit_s: float = 60.0
    # unscheduled_stop: movingpandas TrajectoryStopDetector parameters
    stop_max_diameter_m: float = 150.0
    stop_min_duration_s: float = 900.0
    # A fix this far from both the fix before and the fix after, which are close
    # to each other, is a multipath jump: the stop detector skips it.
    spike_m: float = 100.0
    # signal_lost: no record from an in-transit tracker for this long (wall time)
    signal_lost_s: float = 900.0
    border_dwell_s: float = 10800.0

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not value > 0:
                raise ValueError(f"rule {name}={value!r} must be > 0")
