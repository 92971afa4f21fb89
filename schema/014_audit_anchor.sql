-- The audit chain anchored outside the database: `ctt audit checkpoint` signs
-- the chain's head (Ed25519, key in a file the database never sees), appends
-- the checkpoint to an export file and records a copy here for the API
-- (GET /api/v1/audit/checkpoints). `ctt audit verify` trusts the file, not
-- this table: whoever can write here cannot sign.
CREATE TABLE audit_checkpoints (
    id          bigint PRIMARY KEY,       -- 1, 2, 3... numbered by the signer under its lock
    head_id     bigint NOT NULL,          -- audit_log row signed
    head_hash   bytea NOT NULL,           -- that row's hash
    signed_at   timestamptz NOT NULL,
    signature   bytea NOT NULL,           -- Ed25519 over ctt.audit_anchor's canonical message
    key_id      text NOT NULL             -- first 16 hex digits of sha256(raw public key)
);
-- The signer connects as ctt_api (docker-compose's audit-anchor service) or as the owner (the CLI).
GRANT SELECT, INSERT ON audit_checkpoints TO ctt_api;

-- Alert lifecycle changes made by the engine are in the audit trail as well
-- as officers' actions: opened, ended, withdrawn (contested is audited by
-- ingest with its reason; acknowledged and resolved by the API). The actor is
-- the database role that made the change. Security definer: whichever role
-- writes alerts, the audit row is written.
CREATE FUNCTION alert_event_audited() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public, pg_temp AS $$
BEGIN
    INSERT INTO audit_log (actor, role, action, object_type, object_id, detail)
    SELECT session_user, 'system', 'alert.' || NEW.event, 'alert', a.id::text,
           jsonb_build_object('event', NEW.id, 'type', a.type, 'shipment', a.shipment_id, 'device', a.device_id,
                              'late', a.late)
    FROM alerts a WHERE a.id = NEW.alert_id;
    RETURN NULL;
END $$;
REVOKE EXECUTE ON FUNCTION alert_event_audited() FROM PUBLIC;
CREATE TRIGGER alert_events_audited AFTER INSERT ON alert_events FOR EACH ROW
    WHEN (NEW.event IN ('opened', 'ended', 'withdrawn')) EXECUTE FUNCTION alert_event_audited();
