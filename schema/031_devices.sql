-- Issue 14, devices: custody of trackers and e-seals (issued to a shipment at its office of
-- departure, returned at destination), the battery trend every reader computes the same way,
-- and what the devices listing reads (docs/devices.md).

-- One row per issue of a device to a shipment; returned_* stay null while it is out.
CREATE TABLE device_assignments (
    id               bigserial PRIMARY KEY,
    device_id        text NOT NULL CHECK (device_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    shipment_id      bigint NOT NULL REFERENCES shipments ON DELETE CASCADE,
    issued_at        timestamptz NOT NULL DEFAULT now(),
    issued_by        text NOT NULL,
    issued_office    text NOT NULL REFERENCES zones (office_code),
    returned_at      timestamptz,
    returned_by      text,
    returned_office  text REFERENCES zones (office_code),
    note             text CHECK (length(note) <= 2000),
    CHECK ((returned_at IS NULL) = (returned_by IS NULL) AND (returned_at IS NULL) = (returned_office IS NULL)),
    CHECK (returned_at IS NULL OR returned_at >= issued_at)
);
-- A device is out to one shipment at a time (a consolidated truck's tracker: to the first one).
CREATE UNIQUE INDEX device_assignments_out ON device_assignments (device_id) WHERE returned_at IS NULL;
CREATE INDEX device_assignments_device ON device_assignments (device_id, issued_at DESC);
CREATE INDEX device_assignments_shipment ON device_assignments (shipment_id);

-- Issue at registration: the shipment's tracker and seals go out at its office of departure,
-- by whoever registered it. A device still out to a finished shipment (never returned) is
-- evidently back at an office: that assignment is closed there, saying so. A device out to
-- another active shipment (one truck, several declarations) stays with that one.
CREATE FUNCTION device_issue(device text, shipment bigint) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    s record;
    held record;
BEGIN
    SELECT id, reference, office_of_departure, coalesce(created_by, current_user) AS issuer INTO s
    FROM shipments WHERE id = shipment;
    SELECT a.id, sh.status INTO held FROM device_assignments a JOIN shipments sh ON sh.id = a.shipment_id
    WHERE a.device_id = device AND a.returned_at IS NULL FOR UPDATE OF a;
    IF FOUND AND held.status IN ('registered', 'in_transit') THEN
        RETURN;
    ELSIF FOUND THEN
        UPDATE device_assignments SET returned_at = greatest(issued_at, now()), returned_by = s.issuer,
                                      returned_office = s.office_of_departure,
                                      note = format('not returned; issued again to shipment %s', s.reference)
        WHERE id = held.id;
    END IF;
    INSERT INTO device_assignments (device_id, shipment_id, issued_by, issued_office)
    VALUES (device, s.id, s.issuer, s.office_of_departure);
END $$;

CREATE FUNCTION device_issue_tracker() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM device_issue(NEW.tracker_id, NEW.id);
    RETURN NULL;
END $$;
CREATE TRIGGER shipments_issue_tracker AFTER INSERT ON shipments
    FOR EACH ROW EXECUTE FUNCTION device_issue_tracker();

-- Seals: at registration and when added later (an amended declaration).
CREATE FUNCTION device_issue_seal() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.active THEN
        PERFORM device_issue(NEW.seal_id, NEW.shipment_id);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER shipment_seals_issue AFTER INSERT ON shipment_seals
    FOR EACH ROW EXECUTE FUNCTION device_issue_seal();

-- The devices of shipments already active went out when they were registered.
INSERT INTO device_assignments (device_id, shipment_id, issued_at, issued_by, issued_office)
SELECT DISTINCT ON (d.device_id) d.device_id, s.id, s.created_at, coalesce(s.created_by, 'migration'),
       s.office_of_departure
FROM shipments s
CROSS JOIN LATERAL (SELECT s.tracker_id UNION ALL
                    SELECT ss.seal_id FROM shipment_seals ss WHERE ss.shipment_id = s.id AND ss.active) d(device_id)
WHERE s.status IN ('registered', 'in_transit') AND d.device_id ~ '^[A-Za-z0-9_-]{1,64}$'
ORDER BY d.device_id, s.id;

-- A device's battery readings since ``since``: bat (%) of its fixes, seal events and statuses.
CREATE FUNCTION battery_readings(device text, since timestamptz) RETURNS TABLE (ts timestamptz, bat real)
LANGUAGE sql STABLE AS $$
    SELECT f.ts, f.bat FROM fixes f WHERE f.device_id = device AND f.ts >= since AND f.bat IS NOT NULL
    UNION ALL
    SELECT e.ts, e.bat FROM seal_events e WHERE e.device_id = device AND e.ts >= since AND e.bat IS NOT NULL
    UNION ALL
    SELECT d.ts, d.bat FROM device_status d WHERE d.device_id = device AND d.ts >= since AND d.bat IS NOT NULL
$$;

-- Battery trend: least squares of bat (%) on time over the readings since ``since``.
-- drain_per_h is the fitted loss in % per hour (negative: charging), empty_at where the
-- fitted line reaches 0 % (null when not draining); both null with fewer than 3 readings or
-- readings spanning under 15 minutes. bat and at: the newest reading. Hours are counted from
-- ``since`` so that the fit works on small numbers; a drain that would last beyond ten years
-- is no drain (and no interval overflow).
CREATE FUNCTION battery_trend(device text, since timestamptz)
RETURNS TABLE (points integer, drain_per_h double precision, empty_at timestamptz, bat real, at timestamptz)
LANGUAGE sql STABLE AS $$
    WITH r AS MATERIALIZED (SELECT * FROM battery_readings(device, since)), fit AS (
        SELECT count(*)::integer AS n, max(r.ts) - min(r.ts) AS span,
               regr_slope(r.bat, extract(epoch FROM r.ts - since) / 3600) AS slope,
               regr_intercept(r.bat, extract(epoch FROM r.ts - since) / 3600) AS intercept
        FROM r
    ), usable AS (
        SELECT n, CASE WHEN n >= 3 AND span >= interval '15 minutes' THEN slope END AS slope, intercept FROM fit
    )
    SELECT u.n, -u.slope,
           CASE WHEN u.slope < 0 AND -u.intercept / u.slope < 87600 THEN since + make_interval(secs => -u.intercept / u.slope * 3600) END,
           newest.bat, newest.ts
    FROM usable u LEFT JOIN LATERAL (SELECT r.bat, r.ts FROM r ORDER BY r.ts DESC LIMIT 1) newest ON true
$$;

-- Credential status without the secret: whether a signing key was issued, and what for.
CREATE VIEW device_credentials AS
SELECT device_id, kind, must_sign, created_at, updated_at FROM device_keys;

-- The devices listing: every shipment a device served, as tracker (shipments_tracker
-- covers active ones only).
CREATE INDEX shipments_tracker_all ON shipments (tracker_id);

GRANT SELECT, INSERT, UPDATE ON device_assignments TO ctt_api;
GRANT USAGE ON SEQUENCE device_assignments_id_seq TO ctt_api;
GRANT SELECT ON seal_events, device_status, device_credentials TO ctt_api;
GRANT SELECT ON device_assignments, device_credentials TO ctt_ingest, ctt_report;
