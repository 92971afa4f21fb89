-- Least privilege: what each application role may do, granted by the owner
-- (ctt_owner runs the migrations; the roles are created beforehand by a
-- superuser: deploy/postgres/roles.sql). Everything not granted here is
-- refused. Later migrations grant on the tables they add.
--
-- Triggers run as the role whose statement fires them: a role that writes
-- alerts also writes their alert_events (and numbers them), a role that
-- changes shipments or geometry also bumps geofence_version, a role that
-- appends to audit_log also reads its head (the chain) and takes an id.

REVOKE CREATE ON SCHEMA public FROM PUBLIC;

-- ctt_ingest: stores what devices send, runs the geofence engine, relays alert events.
GRANT SELECT, INSERT ON fixes, seal_events, device_status, dead_letters, suspect_records TO ctt_ingest;
GRANT SELECT, INSERT, UPDATE ON devices, latest_positions, alerts, geofence_state, relay_cursors TO ctt_ingest;
GRANT SELECT, INSERT, UPDATE, DELETE ON geofence_checkpoints TO ctt_ingest;  -- upsert, replace a replay window
GRANT SELECT ON shipments, shipment_seals, shipment_regions, regions, routes, route_stop_zones, zones,
    geofence_version, alert_view TO ctt_ingest;
GRANT USAGE ON SEQUENCE alerts_id_seq, dead_letters_id_seq TO ctt_ingest;

-- ctt_api: reads what the pages show; registers shipments, geometry and regions;
-- acknowledges and resolves alerts; Web Push subscriptions and deliveries.
GRANT SELECT ON fixes, latest_positions, devices, geofence_state, alert_view TO ctt_api;
GRANT SELECT, INSERT, UPDATE ON shipments, shipment_seals TO ctt_api;
GRANT SELECT, INSERT ON shipment_regions, regions, routes, route_stop_zones, zones TO ctt_api;
GRANT SELECT, UPDATE ON alerts TO ctt_api;
GRANT SELECT, UPDATE ON geofence_version TO ctt_api;
GRANT SELECT, INSERT, UPDATE, DELETE ON push_subscriptions TO ctt_api;
GRANT SELECT, INSERT, UPDATE ON push_deliveries TO ctt_api;
GRANT USAGE ON SEQUENCE shipments_id_seq, routes_id_seq, zones_id_seq, push_subscriptions_id_seq TO ctt_api;

-- Both: alert events (alerts' trigger, numbered at commit) and the audit trail (append only).
GRANT SELECT, INSERT, UPDATE (seq) ON alert_events TO ctt_ingest, ctt_api;
GRANT USAGE ON SEQUENCE alert_events_id_seq, alert_events_seq TO ctt_ingest, ctt_api;
GRANT SELECT, INSERT ON audit_log TO ctt_ingest, ctt_api;
GRANT USAGE ON SEQUENCE audit_log_id_seq TO ctt_ingest, ctt_api;

-- ctt_report (Grafana): reads the reporting tables, writes nothing.
GRANT SELECT ON fixes, seal_events, device_status, latest_positions, devices, dead_letters, suspect_records,
    shipments, shipment_seals, shipment_regions, regions, routes, route_stop_zones, zones,
    alerts, alert_view, alert_events TO ctt_report;

-- The owner keeps only what appending needs on audit_log: PostgreSQL lets an
-- owner grant itself anything back (and disable triggers), which is why the
-- chain's head is signed outside the database (schema/014, ctt/audit.py).
REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM ctt_owner;
