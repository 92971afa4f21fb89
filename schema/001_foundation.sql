-- Foundation schema: devices, the three record hypertables, latest positions,
-- dead letters. Chunk intervals and retention are explained in docs/storage.md.
CREATE EXTENSION IF NOT EXISTS timescaledb;

CREATE TABLE devices (
    device_id    text PRIMARY KEY CHECK (device_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    first_seen   timestamptz NOT NULL DEFAULT now(),
    last_seen    timestamptz NOT NULL DEFAULT now(),
    -- Highest seq such that every seq from 0 up to it is stored (fixes, seal
    -- events or dead letters); the value last sent on ctt/v1/dev/<id>/ack.
    acked_seq    bigint NOT NULL DEFAULT -1,
    state        text CHECK (state IN ('online', 'offline', 'lost')),
    state_ts     timestamptz,
    fw           text,
    bat          real,
    buffered     integer
);

CREATE TABLE fixes (
    device_id    text NOT NULL,
    seq          bigint NOT NULL,
    ts           timestamptz NOT NULL,
    lat          double precision NOT NULL,
    lon          double precision NOT NULL,
    spd          real,
    hdg          real,
    acc          real,
    bat          real,
    received_at  timestamptz NOT NULL
);
-- One day per chunk: ~58 M rows/day for 10k trucks at 15 s keeps a chunk and
-- its indexes within memory on a modest server.
SELECT create_hypertable('fixes', by_range('ts', INTERVAL '1 day'), create_default_indexes => false);
-- The dedup key (device, seq); TimescaleDB requires the partition column in
-- every unique index. It is also the track index: chunk exclusion picks the
-- days of a time range and, within a chunk, this index finds one device's rows
-- (ts is checked in the index). A second (device_id, ts) index would cost a
-- fifth of the insert rate for no faster track read.
CREATE UNIQUE INDEX fixes_device_seq ON fixes (device_id, seq, ts);

CREATE TABLE seal_events (
    device_id    text NOT NULL,
    seq          bigint NOT NULL,
    ts           timestamptz NOT NULL,
    seal_id      text NOT NULL,
    event        text NOT NULL CHECK (event IN ('armed', 'closed', 'opened', 'tampered', 'cut', 'low_battery')),
    lat          double precision,
    lon          double precision,
    bat          real,
    received_at  timestamptz NOT NULL
);
SELECT create_hypertable('seal_events', by_range('ts', INTERVAL '7 days'), create_default_indexes => false);
CREATE UNIQUE INDEX seal_events_device_seq ON seal_events (device_id, seq, ts);
CREATE INDEX seal_events_seal_ts ON seal_events (seal_id, ts DESC);

CREATE TABLE device_status (
    device_id    text NOT NULL,
    ts           timestamptz NOT NULL,
    state        text NOT NULL CHECK (state IN ('online', 'offline', 'lost')),
    fw           text,
    bat          real,
    buffered     integer,
    received_at  timestamptz NOT NULL
);
SELECT create_hypertable('device_status', by_range('ts', INTERVAL '7 days'), create_default_indexes => false);
-- Status has no seq; a retained status re-delivered on reconnect is the same row.
CREATE UNIQUE INDEX device_status_device_ts ON device_status (device_id, ts, state);

-- Kept current by ingest: one row per device, the fix with the newest ts.
CREATE TABLE latest_positions (LIKE fixes INCLUDING DEFAULTS INCLUDING CONSTRAINTS, PRIMARY KEY (device_id));

CREATE TABLE dead_letters (
    id           bigserial PRIMARY KEY,
    received_at  timestamptz NOT NULL,
    topic        text NOT NULL,
    device_id    text,
    seq          bigint,
    payload      bytea NOT NULL,
    reason       text NOT NULL,
    -- sha256(topic, 0x00, payload): a message redelivered after a crash is kept once.
    digest       bytea NOT NULL UNIQUE
);
CREATE INDEX dead_letters_received ON dead_letters (received_at DESC);
CREATE INDEX dead_letters_device_seq ON dead_letters (device_id, seq) WHERE seq IS NOT NULL;
