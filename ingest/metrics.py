"""Prometheus metrics of the ingest service."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

MESSAGES = Counter("ctt_ingest_messages_total", "MQTT messages committed", ["kind"])
RECORDS = Counter("ctt_ingest_records_total", "Records stored (before dedup)", ["kind"])
DEAD_LETTERS = Counter("ctt_ingest_dead_letters_total", "Messages or records sent to dead letters")
BATCH_SECONDS = Histogram(
    "ctt_ingest_batch_commit_seconds",
    "Time to write and commit one batch",
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
BATCH_MESSAGES = Histogram(
    "ctt_ingest_batch_messages", "Messages per batch", buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000)
)
LAG_SECONDS = Gauge("ctt_ingest_lag_seconds", "Receive-to-commit delay of the oldest message in the last batch")
FIX_AGE_SECONDS = Histogram(
    "ctt_ingest_fix_age_seconds",
    "Commit time minus fix time (backlog shows up here)",
    buckets=(1, 5, 15, 60, 300, 900, 3600, 14400, 86400),
)
DB_UP = Gauge("ctt_ingest_database_up", "1 while the last database write succeeded")
DB_ERRORS = Counter("ctt_ingest_database_errors_total", "Failed batch writes", ["kind"])
HELD_MESSAGES = Gauge(
    "ctt_ingest_held_messages", "Messages received and not yet acknowledged (at most Receive Maximum)"
)
MQTT_CONNECTED = Gauge("ctt_ingest_broker_connected", "1 while connected to the broker")
DEVICE_ACKS = Counter("ctt_ingest_device_acks_total", "Ack messages published to devices")
ALERTS = Counter("ctt_alerts_total", "Alert changes published", ["type", "event"])
GEOFENCE_SHIPMENTS = Gauge("ctt_geofence_shipments", "In-transit shipments the geofence engine watches")
GEOFENCE_REPLAYS = Counter("ctt_geofence_replays_total", "Trackers re-evaluated from departure (late or new)")
HOUSEKEEPING_ERRORS = Counter("ctt_ingest_housekeeping_errors_total",
                              "Sweeps or relay runs that failed other than by a database outage", ["job"])
GEOFENCE_ERRORS = Counter("ctt_geofence_errors_total", "Batches whose geofence evaluation failed (records kept)")
GEOFENCE_TRACKER_ERRORS = Counter(
    "ctt_geofence_tracker_errors_total",
    "Tracker evaluations that failed (records kept; the tracker is retried next batch from its saved state)",
)
SUSPECT_RECORDS = Counter(
    "ctt_ingest_suspect_records_total", "Late fixes whose seq and ts disagree with the device history", ["reason"]
)
BACKLOG_DRAINED = Gauge(
    "ctt_ingest_backlog_drained",
    "1 once ingest, connected to the broker, has collected a batch that was not full (signal_lost may be raised)",
)
LEADER = Gauge("ctt_ingest_leader", "1 while this worker holds the leader lock (runs the sweep and the relay)")
WORKERS_LAGGING = Gauge("ctt_ingest_workers_lagging",
                        "Other workers not yet drained (the leader holds signal_lost back meanwhile)")
GEOFENCE_SECONDS = Histogram(
    "ctt_geofence_seconds", "Geofence evaluation time per batch",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
)
