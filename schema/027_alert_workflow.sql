-- Issue 14, the shared core: alerts assigned to an officer or a unit, escalated when
-- nobody answers in time, and the new alert type device_battery (a battery that will not
-- last until the shipment's deadline). Cases (030), declarations (028), webhooks (029) and
-- device custody (031) build on it.

ALTER TABLE alerts DROP CONSTRAINT IF EXISTS alerts_type_check;
ALTER TABLE alerts ADD CONSTRAINT alerts_type_check CHECK (type IN (
    'route_deviation', 'unscheduled_stop', 'seal_breach', 'transit_overdue', 'signal_lost', 'device_tamper',
    'border_bypass', 'office_skipped', 'border_dwell', 'seal_mismatch', 'low_battery', 'suspicious_gap',
    'gps_jamming', 'route_reversal', 'device_battery'));

-- Units officers belong to (a token's "unit" claim names one): an alert may be assigned to a
-- unit rather than to one officer.
CREATE TABLE units (
    code        text PRIMARY KEY CHECK (code ~ '^[A-Z0-9][A-Z0-9_-]{0,31}$'),
    name        text NOT NULL,
    region      text NOT NULL REFERENCES regions (code),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Assignment (subject of an officer, or a unit code, or both) and escalation (when the
-- response time of its severity passed unanswered; level counts escalations).
ALTER TABLE alerts
    ADD COLUMN assignee          text,
    ADD COLUMN unit              text REFERENCES units (code),
    ADD COLUMN assigned_at       timestamptz,
    ADD COLUMN assigned_by       text,
    ADD COLUMN escalated_at      timestamptz,
    ADD COLUMN escalation_level  smallint NOT NULL DEFAULT 0;
CREATE INDEX alerts_assignee ON alerts (assignee) WHERE assignee IS NOT NULL;
CREATE INDEX alerts_unit ON alerts (unit) WHERE unit IS NOT NULL;
CREATE INDEX alerts_unanswered ON alerts (created_at) WHERE status = 'open';

-- Supervisors, like officers, hear of their region only.
ALTER TABLE push_subscriptions DROP CONSTRAINT IF EXISTS push_subscriptions_check;
ALTER TABLE push_subscriptions ADD CONSTRAINT push_subscriptions_region_scoped
    CHECK (role NOT IN ('officer', 'supervisor') OR region IS NOT NULL);

-- The one alert object gains its assignment and escalation (protocol/alerts.py).
CREATE OR REPLACE VIEW alert_view AS
SELECT a.id, a.type, a.shipment_id AS shipment, s.reference, a.device_id AS device, a.started_at, a.ended_at,
       a.crossed_at, a.lat, a.lon, a.severity, a.status, a.late, a.acknowledged_by, a.acknowledged_at,
       a.resolved_by, a.resolved_at, a.note, a.created_at, a.updated_at, a.detail ? 'withdrawn' AS withdrawn,
       a.contested_reason IS NOT NULL AS contested, a.contested_reason,
       a.country, a.incident, a.outcome, s.risk_level, s.vehicle, a.detail - 'withdrawn' AS detail,
       a.assignee, a.unit, a.assigned_at, a.escalated_at, a.escalation_level
FROM alerts a JOIN shipments s ON s.id = a.shipment_id;

-- Alert events gain 'assigned' and 'escalated' (after the status: an assignment made with an
-- acknowledgement is the acknowledgement).
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
    ELSIF NEW.escalation_level > OLD.escalation_level THEN
        kind := 'escalated';
    ELSIF NEW.assignee IS DISTINCT FROM OLD.assignee OR NEW.unit IS DISTINCT FROM OLD.unit THEN
        kind := 'assigned';
    ELSIF NEW.ended_at IS NOT NULL AND OLD.ended_at IS NULL THEN
        kind := 'ended';
    ELSE
        kind := 'updated';
    END IF;
    INSERT INTO alert_events (alert_id, shipment_id, event) VALUES (NEW.id, NEW.shipment_id, kind);
    PERFORM pg_notify('ctt_alert_events', '');
    RETURN NULL;
END $$;

GRANT SELECT ON units TO ctt_ingest, ctt_report;
GRANT SELECT, INSERT, UPDATE ON units TO ctt_api;
GRANT SELECT ON alert_view TO ctt_ingest, ctt_api, ctt_report;
