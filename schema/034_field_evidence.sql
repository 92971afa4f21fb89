-- Issue 15, evidence from the roadside: idempotency keys (an officer's queued action sent
-- exactly once however often the phone retries it), photos attached to an alert or a case,
-- and the language of each push subscription's notifications.

-- One action per (caller, key): the first request's response, replayed for the same request.
-- request_hash: SHA-256 over the method, path (with query) and body; status/body: the stored
-- response (written in the action's own transaction, so a key exists only with its response).
CREATE TABLE idempotency_keys (
    subject       text NOT NULL,
    key           text NOT NULL CHECK (key ~ '^[A-Za-z0-9_-]{1,64}$'),
    method        text NOT NULL,
    path          text NOT NULL,
    request_hash  bytea NOT NULL CHECK (length(request_hash) = 32),
    status        smallint NOT NULL CHECK (status BETWEEN 200 AND 599),
    media_type    text NOT NULL,
    body          bytea NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    PRIMARY KEY (subject, key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);

-- A photo taken by an officer, attached to an alert or a case (of the shipment), as the exact
-- bytes received with their SHA-256 (checked here, as case_evidence's). Never changed or removed.
CREATE TABLE photos (
    id            bigserial PRIMARY KEY,
    content       bytea NOT NULL,
    sha256        bytea NOT NULL,
    content_type  text NOT NULL CHECK (content_type IN ('image/jpeg', 'image/png', 'image/webp')),
    bytes         integer NOT NULL CHECK (bytes > 0),
    width         integer NOT NULL CHECK (width > 0),
    height        integer NOT NULL CHECK (height > 0),
    thumbnail     bytea NOT NULL,
    taken_at      timestamptz NOT NULL,
    lat           double precision CHECK (lat BETWEEN -90 AND 90),
    lon           double precision CHECK (lon BETWEEN -180 AND 180),
    accuracy_m    double precision CHECK (accuracy_m >= 0),
    note          text CHECK (length(note) BETWEEN 1 AND 500),
    alert_id      bigint REFERENCES alerts,
    case_id       bigint REFERENCES cases,
    shipment_id   bigint NOT NULL REFERENCES shipments,
    uploaded_by   text NOT NULL,
    uploaded_at   timestamptz NOT NULL DEFAULT now(),
    CHECK (sha256 = sha256(content)),
    CHECK (bytes = length(content)),
    CHECK ((lat IS NULL) = (lon IS NULL)),
    CHECK (accuracy_m IS NULL OR lat IS NOT NULL),
    CHECK ((alert_id IS NULL) <> (case_id IS NULL))
);
CREATE INDEX photos_alert ON photos (alert_id, id) WHERE alert_id IS NOT NULL;
CREATE INDEX photos_case ON photos (case_id, id) WHERE case_id IS NOT NULL;
CREATE INDEX photos_shipment ON photos (shipment_id, id);

-- Evidence: append-only whatever the role (the API's role is granted no UPDATE or DELETE either).
CREATE FUNCTION photos_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'photo % is evidence: it cannot be changed or deleted', OLD.id
        USING ERRCODE = 'object_not_in_prerequisite_state';
END $$;
CREATE TRIGGER photos_append_only BEFORE UPDATE OR DELETE ON photos
    FOR EACH ROW EXECUTE FUNCTION photos_append_only();

-- The language of a browser's notifications (a catalogue code, dashboards/common/locales).
ALTER TABLE push_subscriptions ADD COLUMN language text NOT NULL DEFAULT 'en'
    CHECK (language ~ '^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$');

GRANT SELECT, INSERT, UPDATE, DELETE ON idempotency_keys TO ctt_api;
GRANT SELECT, INSERT ON photos TO ctt_api;
GRANT USAGE ON SEQUENCE photos_id_seq TO ctt_api;
GRANT SELECT ON photos TO ctt_report;
