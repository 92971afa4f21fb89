-- Tracking API: regions for officers, alert workflow, and the audit log.

-- A region (customs district, border area) as a GeoJSON Polygon or
-- MultiPolygon (lon, lat). An officer's token names one region: the officer
-- sees and acts on shipments whose offices or route lie in it.
CREATE TABLE regions (
    code         text PRIMARY KEY CHECK (code ~ '^[A-Za-z0-9_-]{1,32}$'),
    name         text NOT NULL,
    geometry     jsonb NOT NULL CHECK (geometry->>'type' IN ('Polygon', 'MultiPolygon')),
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- Which regions a shipment touches (its offices' zones or its route),
-- computed by the API when the shipment is registered.
CREATE TABLE shipment_regions (
    shipment_id  bigint NOT NULL REFERENCES shipments ON DELETE CASCADE,
    region_code  text NOT NULL REFERENCES regions ON DELETE CASCADE,
    PRIMARY KEY (shipment_id, region_code)
);
CREATE INDEX shipment_regions_region ON shipment_regions (region_code, shipment_id);

ALTER TABLE shipments ADD COLUMN created_by text;
-- An e-seal serves one active shipment at a time (trackers: shipments_active_tracker).
ALTER TABLE shipment_seals ADD COLUMN active boolean NOT NULL DEFAULT true;
CREATE UNIQUE INDEX shipment_seals_active ON shipment_seals (seal_id) WHERE active;

-- Officers' workflow on an alert: who acknowledged or resolved it, when, why.
ALTER TABLE alerts
    ADD COLUMN acknowledged_by text,
    ADD COLUMN acknowledged_at timestamptz,
    ADD COLUMN resolved_by     text,
    ADD COLUMN resolved_at     timestamptz,
    ADD COLUMN note            text;

-- Every state change (shipment transitions, alert actions, logins), chained:
-- each row's hash covers the previous row's hash and its own content, so an
-- edited, deleted or inserted row breaks the chain from there on
-- (`ctt audit verify` names the first broken row). The hash is computed by
-- the database, whoever writes; rows can be added, never changed.
CREATE TABLE audit_log (
    id           bigserial PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    actor        text NOT NULL,
    role         text NOT NULL,
    action       text NOT NULL,
    object_type  text NOT NULL,
    object_id    text,
    detail       jsonb NOT NULL DEFAULT '{}',
    prev_hash    bytea NOT NULL,
    hash         bytea NOT NULL
);

CREATE FUNCTION audit_row_hash(prev bytea, r audit_log) RETURNS bytea LANGUAGE sql IMMUTABLE AS $$
    SELECT sha256(prev || convert_to(concat_ws(E'\x1f', r.id::text,
        to_char(r.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'), r.actor, r.role, r.action,
        r.object_type, coalesce(r.object_id, ''), r.detail::text), 'UTF8'))
$$;

CREATE FUNCTION audit_chain() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- One writer at a time extends the chain.
    PERFORM pg_advisory_xact_lock(7710001);
    NEW.prev_hash := coalesce((SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1), '\x'::bytea);
    NEW.hash := audit_row_hash(NEW.prev_hash, NEW);
    RETURN NEW;
END $$;
CREATE TRIGGER audit_log_chain BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_chain();

CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM PUBLIC;
