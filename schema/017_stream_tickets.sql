-- Live-stream tickets: a browser's EventSource cannot send a header, and a bearer token in
-- the query string lands in access logs. POST /stream/tickets (bearer) stores one here
-- (only its SHA-256); GET /stream?ticket= deletes it as it reads it: single use, short-lived.
CREATE TABLE stream_tickets (
    digest            bytea PRIMARY KEY,
    subject           text NOT NULL,
    role              text NOT NULL,
    region            text,
    token_id          text,
    token_expires_at  timestamptz,
    expires_at        timestamptz NOT NULL
);
CREATE INDEX stream_tickets_expires_at ON stream_tickets (expires_at);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ctt_api') THEN
        GRANT SELECT, INSERT, DELETE ON stream_tickets TO ctt_api;
    END IF;
END $$;
