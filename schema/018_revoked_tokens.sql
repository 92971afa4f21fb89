-- Revoked bearer tokens, by their id (jti): `ctt token revoke JTI` (audited) adds one, and the
-- notification tells every API process's stream hub to refresh its list, which every request
-- and every open stream is checked against. A row is needed only until the token would have
-- expired anyway (expires_at, when known; ctt token revoke takes it from the audit trail).
CREATE TABLE revoked_tokens (
    token_id    text PRIMARY KEY,
    revoked_at  timestamptz NOT NULL DEFAULT now(),
    revoked_by  text NOT NULL,
    expires_at  timestamptz
);

CREATE FUNCTION revoked_tokens_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ctt_revocations', '');
    RETURN NULL;
END $$;
CREATE TRIGGER revoked_tokens_changed AFTER INSERT OR UPDATE OR DELETE ON revoked_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION revoked_tokens_changed();

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ctt_api') THEN
        GRANT SELECT ON revoked_tokens TO ctt_api;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ctt_report') THEN
        GRANT SELECT ON revoked_tokens TO ctt_report;
    END IF;
END $$;
