-- The API's live stream: alert changes as numbered events (so a client can
-- resume with Last-Event-ID), and a wake-up when positions change.

CREATE TABLE alert_events (
    id           bigserial PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    alert_id     bigint NOT NULL REFERENCES alerts ON DELETE CASCADE,
    shipment_id  bigint NOT NULL,
    -- opened, ended, updated, acknowledged, resolved, withdrawn
    event        text NOT NULL
);
CREATE INDEX alert_events_at ON alert_events (at);

CREATE FUNCTION alert_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    kind text;
BEGIN
    IF TG_OP = 'INSERT' THEN
        kind := 'opened';
    ELSIF NEW.detail ? 'withdrawn' AND NOT OLD.detail ? 'withdrawn' THEN
        kind := 'withdrawn';
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
CREATE TRIGGER alerts_events AFTER INSERT OR UPDATE ON alerts FOR EACH ROW EXECUTE FUNCTION alert_event();

-- Officers' streams filter by region: tell listeners when a shipment's regions change.
CREATE FUNCTION shipment_regions_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ctt_geofence', TG_TABLE_NAME);
    RETURN NULL;
END $$;
CREATE TRIGGER shipment_regions_changed AFTER INSERT OR UPDATE OR DELETE ON shipment_regions
    FOR EACH STATEMENT EXECUTE FUNCTION shipment_regions_changed();
