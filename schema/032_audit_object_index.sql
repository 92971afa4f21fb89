-- A shipment's report and a case's evidence list the audit entries of one object: read them by
-- index, not by scanning the whole (append-only, ever-growing) log.
CREATE INDEX audit_log_object ON audit_log (object_type, object_id, id);
