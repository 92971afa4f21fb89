-- The engine's per-tracker state is derived data: the stored fixes and the checkpoints
-- (geofence_checkpoints, WAL-logged, one per 15 minutes of fix time) rebuild it. Rewritten
-- with every fix (a truck's state holds its last 15 minutes of fixes, ~3.7 kB), it was most
-- of the WAL ingest wrote: ~3.3 kB per fix, 110 MB/s at a million devices (docs/scaling.md).
-- Unlogged, it writes no WAL. After a crash of PostgreSQL, or on a promoted standby, the
-- table is empty: each tracker's next batch replays it from its nearest checkpoint and
-- reconciles the alerts of that window (ingest/alerting/replay.py), as for late data.
ALTER TABLE geofence_state SET UNLOGGED;
