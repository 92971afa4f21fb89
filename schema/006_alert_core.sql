-- The one alert object, contested alerts, and alert events numbered in commit order.

-- Late data may dispute an alert an officer has already acknowledged or
-- resolved: it is never withdrawn silently, it is marked contested with the reason.
ALTER TABLE alerts ADD COLUMN contested_reason text;

-- What every consumer gets (MQTT alert topic, live stream, Web Push, GET /alerts):
-- protocol/alerts.py's Alert, field for field.
CREATE VIEW alert_view AS
SELECT a.id, a.type, a.shipment_id AS shipment, s.reference, a.device_id AS device, a.started_at, a.ended_at,
       a.crossed_at, a.lat, a.lon, a.severity, a.status, a.late, a.acknowledged_by, a.acknowledged_at,
       a.resolved_by, a.resolved_at, a.note, a.created_at, a.updated_at, a.detail ? 'withdrawn' AS withdrawn,
       a.contested_reason IS NOT NULL AS contested, a.contested_reason
FROM alerts a JOIN shipments s ON s.id = a.shipment_id;

CREATE OR REPLACE FUNCTION alert_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    kind text;
BEGIN
    IF TG_OP = 'INSERT' THEN
        kind := 'opened';
    ELSIF NEW.detail ? 'withdrawn' AND NOT OLD.detail ? 'withdrawn' THEN
        kind := 'withdrawn';
    ELSIF NEW.contested_reason IS NOT NULL AND OLD.contested_reason IS NULL THEN
        kind := 'contested';
    ELSIF NEW.status IS DISTINCT FROM OLD.status THEN
        kind := NEW.status;  -- acknowledged or resolved
    ELSIF NEW.ended_at IS NOT NULL AND OLD.ended_at IS NULL THEN
        kind := 'ended';
    ELSE
        kind := 'updated';
    END IF;
    INSERT INTO alert_events (alert_id, shipment_id, event) VALUES (NEW.id, NEW.shipment_id, kind);
    PERFORM pg_notify('ctt_alert_events', '');
    RETURN NULL;
END $$;

-- Readers (the live stream, ingest's relay to MQTT) resume after the last event
-- they saw. The id is taken at insert, not at commit: an event with a lower id
-- can become visible after one with a higher id, and "id > last" would skip it
-- for ever. seq is given at commit instead, under a transaction-level lock held
-- until the commit is visible: whoever sees seq N sees every seq below it.
-- Readers use seq; it is null until the inserting transaction commits.
ALTER TABLE alert_events ADD COLUMN seq bigint UNIQUE;
CREATE SEQUENCE alert_events_seq;
UPDATE alert_events SET seq = id;
SELECT setval('alert_events_seq', greatest((SELECT max(id) FROM alert_events), 1));

CREATE FUNCTION alert_event_number() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(7710002);
    UPDATE alert_events SET seq = nextval('alert_events_seq') WHERE id = NEW.id;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER alert_events_number AFTER INSERT ON alert_events
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION alert_event_number();
