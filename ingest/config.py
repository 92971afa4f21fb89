"""Ingest settings: one object, read from ``CTT_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from ctt_common.settings import ServiceSettings
from geofence.rules import Rules
from protocol.topics import SHARE_GROUP


class IngestSettings(ServiceSettings):
    """Ingest's own fields; database, broker and log level come from the base."""

    broker_username: str = "ctt-ingest"
    # A worker's stable identity: its MQTT client id is `<broker_username>-<worker_id>` and
    # names its persistent session, so a restarted worker resumes its own session; it takes
    # its share of the device topics (a shared subscription of `share_group`). Unset: the
    # client id is the username and it subscribes to the topics themselves (one ingest, as v1).
    worker_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    # The MQTT 5 shared-subscription group all workers join ($share/<group>/ctt/v1/dev/+/pos ...).
    share_group: str = Field(default="ctt-ingest", pattern=rf"^{SHARE_GROUP}$")
    # How long the broker keeps a worker's session (and what it queued for it) while the worker
    # is away: a restart resumes it; a worker gone longer stops stranding its share of the fleet
    # (devices resend what stays unacknowledged). The single v1 ingest's session never expires.
    worker_session_expiry_s: int = Field(default=3600, ge=60, le=0xFFFFFFFE)
    # Workers write a heartbeat this often; the elected worker runs the once-only jobs.
    heartbeat_s: float = Field(default=5.0, gt=0)
    # A worker silent this long no longer holds back signal_lost (it is gone, not lagging).
    worker_expiry_s: float = Field(default=300.0, gt=0)
    # No default: `ctt ingest` takes the secret the set-up made ($CTT_STATE_DIR/secrets/broker-ctt-ingest).
    broker_password: str = ""
    # The CA certificate that signed the broker's: connect over TLS (e.g. port 8885 from another host);
    # unset: plaintext, for a broker on the same machine's loopback.
    broker_ca_file: Path | None = None
    keepalive_s: int = Field(default=30, ge=5)
    # Unacknowledged QoS 1 messages the broker may have in flight to us (MQTT 5
    # Receive Maximum). Also the bound on ingest memory while the database is down.
    receive_maximum: int = Field(default=5000, ge=1, le=65535)
    batch_max_messages: int = Field(default=2000, ge=1)
    batch_max_wait_ms: int = Field(default=100, ge=1)
    max_payload_bytes: int = Field(default=256 * 1024, ge=64)
    max_records_per_message: int = Field(default=1000, ge=1)
    # Fix times further ahead of the server clock are implausible.
    max_future_s: float = Field(default=300.0, ge=0)
    # Record times older than this (relative to the server clock) are refused: a
    # tracker's store-and-forward holds at most 30 days, plus a day's margin.
    # Without a bound one array of old fixes creates a TimescaleDB chunk per day.
    max_fix_age_s: float = Field(default=31 * 86_400.0, gt=0)
    # A dead letter keeps this many bytes of its payload, plus its length and SHA-256.
    dead_letter_max_bytes: int = Field(default=4096, ge=0)
    db_retry_max_s: float = Field(default=10.0, gt=0)
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=9108, ge=0, le=65535)  # 0: no metrics endpoint
    # Geofence engine (thresholds and their defaults: docs/alerts.md; see geofence/rules.py)
    geofence: bool = True
    sweep_interval_s: float = Field(default=30.0, gt=0)
    # How soon an officer's ack or resolve (made in the API) is published on the alert topic.
    workflow_poll_s: float = Field(default=1.0, gt=0)
    deviation_enter_s: float = Field(default=60.0, gt=0)
    deviation_exit_s: float = Field(default=60.0, gt=0)
    stop_max_diameter_m: float = Field(default=150.0, gt=0)
    stop_min_duration_s: float = Field(default=900.0, gt=0)
    spike_m: float = Field(default=100.0, gt=0)
    signal_lost_s: float = Field(default=900.0, gt=0)
    # device_battery (ingest/alerting/device_battery.py): hours of battery readings the trend
    # fits, and the margin before the deadline the forecast must clear.
    battery_trend_h: float = Field(default=24.0, gt=0, le=24 * 31)
    battery_margin_h: float = Field(default=2.0, gt=0)
    # How often the leader's sweep forecasts batteries (the fit reads a day of readings per device).
    battery_sweep_s: float = Field(default=300.0, gt=0)
    # Ingest has drained its backlog (and the sweep may raise signal_lost) once it has
    # been connected to the broker this long and then collected a batch that was not full.
    drain_settle_s: float = Field(default=2.0, ge=0)
    # A late fix whose seq is this far beyond the device's highest other stored seq is suspect.
    suspect_seq_jump: int = Field(default=100_000, ge=1)

    @property
    def client_id(self) -> str:
        """The MQTT client id: names this worker's persistent session on the broker."""
        return self.broker_username if self.worker_id is None else f"{self.broker_username}-{self.worker_id}"

    @property
    def worker_name(self) -> str:
        """This worker in ``ingest_workers`` and the logs."""
        return self.worker_id or "default"

    def rules(self) -> Rules:
        return Rules(
            deviation_enter_s=self.deviation_enter_s, deviation_exit_s=self.deviation_exit_s,
            stop_max_diameter_m=self.stop_max_diameter_m, stop_min_duration_s=self.stop_min_duration_s,
            spike_m=self.spike_m, signal_lost_s=self.signal_lost_s,
            battery_trend_h=self.battery_trend_h, battery_margin_h=self.battery_margin_h,
            battery_sweep_s=self.battery_sweep_s,
        )
