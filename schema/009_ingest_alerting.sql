-- Ingest's alerting: where the officers' workflow relay stopped, and suspect late records.

-- The relay publishes officers' acknowledgements and resolutions (alert_events,
-- numbered at commit) on the alert topic. Its cursor is the highest seq whose
-- event, and every one before it, the broker has acknowledged (PUBACK): a
-- restarted ingest resumes after it, so acts made while ingest was down are
-- published (at least once: a crash between PUBACK and saving repeats a few).
CREATE TABLE relay_cursors (
    name        text PRIMARY KEY,
    seq         bigint NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
-- Events that exist before this migration were relayed (or not) by the earlier code.
INSERT INTO relay_cursors (name, seq) SELECT 'workflow', coalesce(max(seq), 0) FROM alert_events;

-- A late record (older than the newest fix the engine evaluated for its
-- device) whose seq and ts disagree with the device's stored history: a seq far
-- beyond the device's counter, or a ts that cannot fit between its stored
-- neighbours. It is stored and evaluated like any other; this marks it for
-- the officers and auditors who judge the alerts it changed.
CREATE TABLE suspect_records (
    device_id    text NOT NULL,
    seq          bigint NOT NULL,
    ts           timestamptz NOT NULL,
    reason       text NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, seq, reason)
);
CREATE INDEX suspect_records_received ON suspect_records (received_at DESC);
