-- Webhooks of cases (schema/029's outbox, schema/030's cases): case.opened when a case opens,
-- case.closed when it closes, in the change's transaction like every other event. The data:
-- {case, shipment, reference, status, opened_at, opened_by, closed_at, closed_by, outcome,
-- summary, alerts}; the evidence itself stays behind GET /cases/{id} (it is sensitive).

CREATE FUNCTION webhook_case_data(p_case bigint) RETURNS jsonb LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = public, pg_temp AS $$
    SELECT jsonb_build_object('case', c.id, 'shipment', c.shipment_id, 'reference', s.reference, 'status', c.status,
                              'opened_at', webhook_time(c.opened_at), 'opened_by', c.opened_by,
                              'closed_at', CASE WHEN c.closed_at IS NULL THEN NULL ELSE webhook_time(c.closed_at) END,
                              'closed_by', c.closed_by, 'outcome', c.outcome, 'summary', c.summary,
                              'alerts', coalesce((SELECT jsonb_agg(ca.alert_id ORDER BY ca.alert_id)
                                                  FROM case_alerts ca WHERE ca.case_id = c.id), '[]'::jsonb))
    FROM cases c JOIN shipments s ON s.id = c.shipment_id WHERE c.id = p_case
$$;

-- Deferred to commit: the case's alerts are added after the case row, in the same transaction.
CREATE FUNCTION webhook_case() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public, pg_temp AS $$
DECLARE
    kind text := CASE WHEN TG_OP = 'INSERT' THEN 'case.opened' ELSE 'case.closed' END;
BEGIN
    IF webhook_wanted(kind) THEN
        PERFORM webhook_emit(kind, NEW.shipment_id, webhook_case_data(NEW.id), concat_ws(':', kind, NEW.id));
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER cases_opened_webhook AFTER INSERT ON cases DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION webhook_case();
CREATE CONSTRAINT TRIGGER cases_closed_webhook AFTER UPDATE OF status ON cases DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (OLD.status = 'open' AND NEW.status = 'closed') EXECUTE FUNCTION webhook_case();
