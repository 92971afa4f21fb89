-- Issue 14, alerts to a closed case: response times per severity (escalation), the
-- escalations' log, and cases opened by a confirmed outcome with their evidence, the
-- officers' entries, read-only once closed (the trigger below, whatever the role).

-- How long an alert of each severity may stay open (unacknowledged) before it escalates to
-- the region's supervisors; the n-th escalation comes after ack_within_s * 2^n.
CREATE TABLE response_times (
    severity      text PRIMARY KEY CHECK (severity IN ('critical', 'high', 'medium', 'low')),
    ack_within_s  integer NOT NULL CHECK (ack_within_s BETWEEN 1 AND 604800),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
INSERT INTO response_times (severity, ack_within_s)
VALUES ('critical', 300), ('high', 900), ('medium', 3600), ('low', 14400);

-- One row per escalation: which alert, to which level, when, and how many push subscriptions
-- were told (filled in by the API process that claimed the pushes).
CREATE TABLE escalations (
    id        bigserial PRIMARY KEY,
    alert_id  bigint NOT NULL REFERENCES alerts ON DELETE CASCADE,
    level     smallint NOT NULL CHECK (level >= 1),
    at        timestamptz NOT NULL DEFAULT now(),
    notified  integer NOT NULL DEFAULT 0,
    UNIQUE (alert_id, level)
);

CREATE TABLE cases (
    id           bigserial PRIMARY KEY,
    shipment_id  bigint NOT NULL REFERENCES shipments,
    status       text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    opened_at    timestamptz NOT NULL DEFAULT now(),
    opened_by    text NOT NULL,
    closed_at    timestamptz,
    closed_by    text,
    outcome      text CHECK (outcome IN ('false_alarm', 'technical_fault', 'confirmed_irregularity',
                                         'goods_seized', 'other')),
    summary      text,
    CHECK ((status = 'closed') = (closed_at IS NOT NULL AND closed_by IS NOT NULL AND outcome IS NOT NULL
                                  AND summary IS NOT NULL))
);
-- At most one open case per shipment: a second confirmed alert joins it.
CREATE UNIQUE INDEX cases_one_open ON cases (shipment_id) WHERE status = 'open';
CREATE INDEX cases_status ON cases (status, id);

CREATE TABLE case_alerts (
    case_id   bigint NOT NULL REFERENCES cases,
    alert_id  bigint NOT NULL REFERENCES alerts UNIQUE,  -- an alert belongs to one case
    added_at  timestamptz NOT NULL DEFAULT now(),
    added_by  text NOT NULL,
    PRIMARY KEY (case_id, alert_id)
);

CREATE TABLE case_entries (
    id       bigserial PRIMARY KEY,
    case_id  bigint NOT NULL REFERENCES cases,
    at       timestamptz NOT NULL DEFAULT now(),
    author   text NOT NULL,
    role     text NOT NULL,
    text     text NOT NULL CHECK (length(text) BETWEEN 1 AND 10000),
    detail   jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX case_entries_case ON case_entries (case_id, id);

-- The evidence snapshot taken when the case opened (and when an alert joined it): the exact
-- bytes served, and their SHA-256, checked here so a row cannot claim a hash it does not have.
CREATE TABLE case_evidence (
    id          bigserial PRIMARY KEY,
    case_id     bigint NOT NULL REFERENCES cases,
    kind        text NOT NULL CHECK (kind IN ('track', 'timeline', 'seal_events', 'alerts', 'audit', 'report')),
    media_type  text NOT NULL,
    content     bytea NOT NULL,
    sha256      bytea NOT NULL,
    taken_at    timestamptz NOT NULL DEFAULT now(),
    taken_by    text NOT NULL,
    CHECK (sha256 = sha256(content))
);
CREATE INDEX case_evidence_case ON case_evidence (case_id, id);

-- Read-only after closing, even for the API's role: a closed case's row is never changed, and
-- nothing is added to it. Entries, evidence and memberships are append-only at all times.
CREATE FUNCTION case_closed_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'cases' THEN
        IF OLD.status = 'closed' THEN
            RAISE EXCEPTION 'case % is closed: read-only', OLD.id USING ERRCODE = 'object_not_in_prerequisite_state';
        END IF;
        IF TG_OP = 'DELETE' THEN
            RAISE EXCEPTION 'case % cannot be deleted', OLD.id USING ERRCODE = 'object_not_in_prerequisite_state';
        END IF;
        RETURN NEW;
    END IF;
    IF TG_OP <> 'INSERT' THEN
        RAISE EXCEPTION '% rows are append-only (case %)', TG_TABLE_NAME, OLD.case_id
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF EXISTS (SELECT 1 FROM cases WHERE id = NEW.case_id AND status = 'closed') THEN
        RAISE EXCEPTION 'case % is closed: read-only', NEW.case_id USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER cases_read_only BEFORE UPDATE OR DELETE ON cases
    FOR EACH ROW EXECUTE FUNCTION case_closed_guard();
CREATE TRIGGER case_alerts_read_only BEFORE INSERT OR UPDATE OR DELETE ON case_alerts
    FOR EACH ROW EXECUTE FUNCTION case_closed_guard();
CREATE TRIGGER case_entries_read_only BEFORE INSERT OR UPDATE OR DELETE ON case_entries
    FOR EACH ROW EXECUTE FUNCTION case_closed_guard();
CREATE TRIGGER case_evidence_read_only BEFORE INSERT OR UPDATE OR DELETE ON case_evidence
    FOR EACH ROW EXECUTE FUNCTION case_closed_guard();

-- KPI: alerts resolved per type and outcome over a range.
CREATE INDEX alerts_resolved_at ON alerts (resolved_at) WHERE resolved_at IS NOT NULL;

-- The evidence snapshot (and the shipment report) read the shipment's seal events.
GRANT SELECT ON seal_events TO ctt_api;
GRANT SELECT, UPDATE ON response_times TO ctt_api;
GRANT SELECT ON response_times, escalations, cases, case_alerts, case_entries TO ctt_report;
GRANT SELECT, INSERT, UPDATE (notified) ON escalations TO ctt_api;
GRANT SELECT, INSERT, UPDATE ON cases TO ctt_api;
GRANT SELECT, INSERT ON case_alerts, case_entries, case_evidence TO ctt_api;
GRANT USAGE ON SEQUENCE escalations_id_seq, cases_id_seq, case_entries_id_seq, case_evidence_id_seq TO ctt_api;
