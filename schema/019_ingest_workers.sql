-- Several ingest workers share the device topics (MQTT 5 shared subscriptions, docs/scaling.md).
--
-- devices.version: bumped by every batch that touches the device, under the row lock the
-- batch takes first (ingest/store.py). A worker that cached a device's ack and engine state
-- at version v reuses them only if the version it now finds is v; otherwise another worker
-- wrote the device in between and the worker reloads both from the database.
ALTER TABLE devices ADD COLUMN version bigint NOT NULL DEFAULT 0;

-- Fixes stored while the engine failed on a tracker (records commit anyway) are evaluated by a
-- replay from the saved state. The worker that failed remembers it; this flag tells the others,
-- which reload a tracker's state when they find another worker wrote it (see devices.version).
ALTER TABLE geofence_state ADD COLUMN behind boolean NOT NULL DEFAULT false;

-- One row per worker identity (CTT_WORKER_ID). The elected worker (session advisory lock,
-- ingest/leadership.py) raises signal_lost only when every worker seen lately has drained
-- its broker backlog: a tracker's silence may be fixes still queued for another worker.
CREATE TABLE ingest_workers (
    worker_id     text PRIMARY KEY CHECK (worker_id ~ '^[A-Za-z0-9_.-]{1,64}$'),
    started_at    timestamptz NOT NULL DEFAULT now(),
    heartbeat_at  timestamptz NOT NULL DEFAULT now(),
    drained       boolean NOT NULL DEFAULT false,
    leader        boolean NOT NULL DEFAULT false
);

-- `ctt retention` may be scheduled on every machine: the first run of a day does the work.
CREATE TABLE retention_runs (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    keep_days    integer NOT NULL
);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ctt_ingest') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON ingest_workers TO ctt_ingest;  -- delete: --retire
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ctt_api') THEN
        GRANT SELECT ON ingest_workers TO ctt_api;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ctt_report') THEN
        GRANT SELECT ON ingest_workers, retention_runs TO ctt_report;
    END IF;
END $$;
