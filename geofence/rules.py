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
    # Itinerary milestones: inside an office zone this long confirms an arrival,
    # outside it this long a departure (fix time).
    office_enter_s: float = 30.0
    office_exit_s: float = 60.0
    # border_crossed: fixes in the new country this long confirm a crossing
    border_confirm_s: float = 60.0
    # border_bypass is excused this long after the last fix inside an itinerary office zone
    post_grace_s: float = 900.0
    # border_dwell: the limit where the zone sets none (the caller scales it by the risk profile)
    border_dwell_s: float = 10_800.0
    # route_reversal: chainage this far below the furthest reached opens it, back within this ends it
    reversal_m: float = 2_000.0
    reversal_end_m: float = 500.0
    # suspicious_gap: a fix-time gap this long is examined; the distance covered explains
    # it at normal speed; a detour of excursion_m each way and excursion_min_s there is suspicious
    gap_min_s: float = 600.0
    normal_speed_kmh: float = 60.0
    max_speed_kmh: float = 100.0
    excursion_m: float = 2_000.0
    excursion_min_s: float = 600.0
    # device_battery: the battery trend's window, and the margin before the deadline the
    # forecast must clear (hours), and how often the sweep forecasts (it fits every active
    # device's readings: about 1 s per 5,000 devices with a reading every 5 minutes)
    battery_trend_h: float = 24.0
    battery_margin_h: float = 2.0
    battery_sweep_s: float = 300.0
    # Switches for the benchmark's "rules off" run: itinerary and border rules, reversal, gaps.
    border_rules: bool = True
    reversal_rule: bool = True
    gap_rule: bool = True

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not isinstance(value, bool) and not value > 0:
                raise ValueError(f"rule {name}={value!r} must be > 0")
        if self.reversal_end_m >= self.reversal_m:
            raise ValueError(f"rule reversal_end_m={self.reversal_end_m!r} must be below "
                             f"reversal_m={self.reversal_m!r}")

    @property
    def suspicious_gap_s(self) -> float:
        """Unexplained seconds that make a gap suspicious: the minimum stay plus the detour there and back."""
        return self.excursion_min_s + 2 * self.excursion_m / (self.max_speed_kmh / 3.6)
