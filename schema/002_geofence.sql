-- Geofence: zones, routes, shipments (transit declarations), alerts, and the
-- engine's per-tracker state. Geometry is GeoJSON (RFC 7946, lon/lat) in jsonb:
-- the engine projects it itself, so PostGIS is not needed.

CREATE TABLE zones (
    id           bigserial PRIMARY KEY,
    name         text NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('office', 'stop')),
    -- Customs office code (e.g. UN/LOCODE-like 'KEMBA') for office zones.
    office_code  text UNIQUE,
    geometry     jsonb NOT NULL CHECK (geometry->>'type' = 'Polygon'),
    created_at   timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'office') = (office_code IS NOT NULL))
);

CREATE TABLE routes (
    id           bigserial PRIMARY KEY,
    name         text NOT NULL,
    geometry     jsonb NOT NULL CHECK (geometry->>'type' = 'LineString'),
    corridor_m   double precision NOT NULL DEFAULT 500 CHECK (corridor_m > 0),
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- Zones where a stop on this route is authorised (rest areas, border posts).
CREATE TABLE route_stop_zones (
    route_id     bigint NOT NULL REFERENCES routes ON DELETE CASCADE,
    zone_id      bigint NOT NULL REFERENCES zones ON DELETE CASCADE,
    PRIMARY KEY (route_id, zone_id)
);

CREATE TABLE shipments (
    id                     bigserial PRIMARY KEY,
    reference              text NOT NULL UNIQUE,
    route_id               bigint NOT NULL REFERENCES routes,
    tracker_id             text NOT NULL,
    containers             text[] NOT NULL DEFAULT '{}',
    office_of_departure    text NOT NULL REFERENCES zones (office_code),
    office_of_destination  text NOT NULL REFERENCES zones (office_code),
    deadline               timestamptz NOT NULL,
    status                 text NOT NULL DEFAULT 'registered'
                           CHECK (status IN ('registered', 'in_transit', 'arrived', 'closed')),
    departed_at            timestamptz,
    arrived_at             timestamptz,
    closed_at              timestamptz,
    created_at             timestamptz NOT NULL DEFAULT now(),
    -- Wall time of the last status change: signal_lost counts from it, not
    -- from departed_at, which a declaration may date in the past.
    status_changed_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (status = 'registered' OR departed_at IS NOT NULL)
);
CREATE FUNCTION shipment_status_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status IS DISTINCT FROM OLD.status THEN
        NEW.status_changed_at := now();
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER shipments_status_changed BEFORE UPDATE ON shipments
    FOR EACH ROW EXECUTE FUNCTION shipment_status_changed();
-- A tracker serves one active shipment at a time.
CREATE UNIQUE INDEX shipments_active_tracker ON shipments (tracker_id) WHERE status IN ('registered', 'in_transit');
CREATE INDEX shipments_status ON shipments (status);

-- E-seals of a shipment, by device id (an e-seal publishes on its own topics).
CREATE TABLE shipment_seals (
    shipment_id  bigint NOT NULL REFERENCES shipments ON DELETE CASCADE,
    seal_id      text NOT NULL,
    PRIMARY KEY (shipment_id, seal_id)
);
CREATE INDEX shipment_seals_seal ON shipment_seals (seal_id);

-- An alert is a condition in fix time: started_at is the first record of it,
-- ended_at the last (null while it lasts), crossed_at the record at which its
-- threshold was crossed. status is the officers' workflow, independent of it.
CREATE TABLE alerts (
    id           bigserial PRIMARY KEY,
    type         text NOT NULL CHECK (type IN ('route_deviation', 'unscheduled_stop', 'seal_breach',
                                               'transit_overdue', 'signal_lost')),
    shipment_id  bigint NOT NULL REFERENCES shipments,
    device_id    text NOT NULL,
    started_at   timestamptz NOT NULL,
    ended_at     timestamptz,
    crossed_at   timestamptz NOT NULL,
    lat          double precision,
    lon          double precision,
    severity     text NOT NULL CHECK (severity IN ('critical', 'high', 'medium', 'low')),
    status       text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'acknowledged', 'resolved')),
    -- Raised from store-and-forward backlog or from records that arrived out of order.
    late         boolean NOT NULL DEFAULT false,
    -- The record that raised a seal breach: a redelivered event raises nothing new.
    source_seq   bigint,
    detail       jsonb NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CHECK (ended_at IS NULL OR ended_at >= started_at)
);
-- One open condition of a kind per device and shipment: a duplicate cannot open twice.
CREATE UNIQUE INDEX alerts_one_open ON alerts (shipment_id, device_id, type) WHERE ended_at IS NULL;
CREATE INDEX alerts_shipment ON alerts (shipment_id, started_at);
CREATE INDEX alerts_status ON alerts (status, created_at DESC);
CREATE INDEX alerts_device ON alerts (device_id, started_at);

CREATE TABLE geofence_state (
    device_id    text PRIMARY KEY,
    shipment_id  bigint NOT NULL REFERENCES shipments ON DELETE CASCADE,
    state        bytea NOT NULL,  -- msgpack of geofence.state.DeviceState
    -- Readable copies for the API: progress along the route (metres from its
    -- start, at the newest fix inside the corridor) and distance from it.
    chainage_m   double precision,
    distance_m   double precision,
    last_fix_at  timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Ingest reloads routes, zones and shipments when any of them changes: it reads
-- these counters in each batch's transaction (consistent with what it reads
-- next), and listeners such as the API's live stream get a NOTIFY.
CREATE TABLE geofence_version (
    id          boolean PRIMARY KEY DEFAULT true CHECK (id),
    geometry    bigint NOT NULL DEFAULT 0,
    shipments   bigint NOT NULL DEFAULT 0
);
INSERT INTO geofence_version DEFAULT VALUES;

CREATE FUNCTION geofence_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME IN ('zones', 'routes', 'route_stop_zones') THEN
        UPDATE geofence_version SET geometry = geometry + 1;
    ELSE
        UPDATE geofence_version SET shipments = shipments + 1;
    END IF;
    PERFORM pg_notify('ctt_geofence', TG_TABLE_NAME);
    RETURN NULL;
END $$;
CREATE TRIGGER zones_changed AFTER INSERT OR UPDATE OR DELETE ON zones
    FOR EACH STATEMENT EXECUTE FUNCTION geofence_changed();
CREATE TRIGGER routes_changed AFTER INSERT OR UPDATE OR DELETE ON routes
    FOR EACH STATEMENT EXECUTE FUNCTION geofence_changed();
CREATE TRIGGER route_stop_zones_changed AFTER INSERT OR UPDATE OR DELETE ON route_stop_zones
    FOR EACH STATEMENT EXECUTE FUNCTION geofence_changed();
CREATE TRIGGER shipments_changed AFTER INSERT OR UPDATE OR DELETE ON shipments
    FOR EACH STATEMENT EXECUTE FUNCTION geofence_changed();
CREATE TRIGGER shipment_seals_changed AFTER INSERT OR UPDATE OR DELETE ON shipment_seals
    FOR EACH STATEMENT EXECUTE FUNCTION geofence_changed();
