-- Signed records (docs/protocol.md, "Signed records"): one HMAC-SHA256 key per
-- device, issued at provisioning (`ctt devices provision --sign`), and whether the
-- device must sign. Ingest reads it; in production only the ingest role may
-- (the key is a shared secret: whoever reads it can forge the device's records).
CREATE TABLE device_keys (
    device_id    text PRIMARY KEY CHECK (device_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    key          bytea NOT NULL CHECK (length(key) = 32),
    must_sign    boolean NOT NULL,
    -- What the device is, as provisioning was told (e-seals must sign by default).
    kind         text CHECK (kind IN ('eseal', 'tracker')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON device_keys FROM PUBLIC;
GRANT SELECT ON device_keys TO ctt_ingest;  -- the API and reporting never read it

-- device_tamper: ingest refused a record of the device as unsigned, wrongly
-- signed or replayed while it served an in-transit shipment.
ALTER TABLE alerts DROP CONSTRAINT IF EXISTS alerts_type_check;
ALTER TABLE alerts ADD CONSTRAINT alerts_type_check CHECK (type IN (
    'route_deviation', 'unscheduled_stop', 'seal_breach', 'transit_overdue', 'signal_lost', 'device_tamper'));
