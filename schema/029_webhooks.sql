-- Issue 14, events out: Standard Webhooks (tracking_api/webhooks/, docs/integration.md "Webhooks").
--
-- A change (an alert event, a shipment milestone, an officer's depart/arrive) writes its
-- webhook event into webhook_outbox in its own transaction, by trigger, whoever makes it, and
-- a delivery row for every enabled subscription that wants that type at that moment: a
-- subscription made later never receives the past, one disabled meanwhile does not either.
-- The API processes' dispatchers deliver them (at least once, in order per subscription and
-- shipment) and log every attempt.
--
-- The trigger functions are SECURITY DEFINER (owner): ingest and the API write outbox and
-- deliveries through them only, and ingest never reads a subscription's secret.

CREATE TABLE webhook_subscriptions (
    id               bigserial PRIMARY KEY,
    url              text NOT NULL CHECK (length(url) <= 2048),
    description      text NOT NULL DEFAULT '' CHECK (length(description) <= 500),
    event_types      text[] NOT NULL CHECK (cardinality(event_types) > 0),
    -- whsec_<base64 of 32 random bytes>: the dispatcher signs with it; the API shows it only
    -- in the answers that create or rotate it.
    secret           text NOT NULL CHECK (secret LIKE 'whsec\_%'),
    enabled          boolean NOT NULL DEFAULT true,
    disabled_reason  text,
    disabled_at      timestamptz,
    -- Private and loopback addresses allowed (an admin's or operator's decision only).
    allow_private    boolean NOT NULL DEFAULT false,
    created_by       text NOT NULL,
    created_role     text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    -- The first failure of the current unbroken run of failures (null: the last attempt succeeded).
    failing_since    timestamptz
);
CREATE INDEX webhook_subscriptions_owner ON webhook_subscriptions (created_by);

-- seq: given at commit, under the lock alert_events take for theirs (one lock: a transaction
-- numbering both never waits on another in the opposite order). Whoever sees seq N sees every
-- seq below it, so "earlier" is well defined for the ordering per shipment.
CREATE TABLE webhook_outbox (
    id            bigserial PRIMARY KEY,
    seq           bigint UNIQUE,
    type          text NOT NULL,
    ordering_key  bigint,  -- the shipment id; null: no order (webhook.test)
    payload       jsonb NOT NULL,
    -- A replay re-inserting the same milestone is the same event: at most one outbox row.
    dedupe        text UNIQUE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    committed_at  timestamptz  -- clock time at numbering (the commit): the latency's start
);
CREATE SEQUENCE webhook_outbox_seq;

CREATE TABLE webhook_deliveries (
    subscription_id  bigint NOT NULL REFERENCES webhook_subscriptions ON DELETE CASCADE,
    outbox_id        bigint NOT NULL REFERENCES webhook_outbox ON DELETE CASCADE,
    ordering_key     bigint,
    -- pending: not tried yet; failed: tried, will be retried; delivered: a 2xx; dead: gave up.
    state            text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'failed', 'delivered', 'dead')),
    attempts         integer NOT NULL DEFAULT 0,
    -- Due time; while an attempt runs, the end of its lease (another process may take it after).
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    -- Start of the retry window (the first attempt, or a manual redelivery).
    since            timestamptz NOT NULL DEFAULT now(),
    delivered_at     timestamptz,
    last_status      smallint,
    last_error       text,
    last_latency_ms  real,
    PRIMARY KEY (subscription_id, outbox_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state IN ('pending', 'failed');
CREATE INDEX webhook_deliveries_open ON webhook_deliveries (subscription_id, ordering_key)
    WHERE state IN ('pending', 'failed');
CREATE INDEX webhook_deliveries_log ON webhook_deliveries (subscription_id, outbox_id DESC);

CREATE TABLE webhook_attempts (
    id               bigserial PRIMARY KEY,
    subscription_id  bigint NOT NULL,
    outbox_id        bigint NOT NULL,
    at               timestamptz NOT NULL DEFAULT now(),
    status           smallint,  -- null: no answer (timeout, refused address, connection error)
    latency_ms       real NOT NULL,
    error            text,
    FOREIGN KEY (subscription_id, outbox_id) REFERENCES webhook_deliveries ON DELETE CASCADE
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (subscription_id, outbox_id, id);

-- RFC 3339 in UTC with a Z, microseconds.
CREATE FUNCTION webhook_time(t timestamptz) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;

CREATE FUNCTION webhook_wanted(kind text) RETURNS boolean LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = public, pg_temp AS $$
    SELECT EXISTS (SELECT 1 FROM webhook_subscriptions WHERE enabled AND kind = ANY (event_types))
$$;

-- One event into the outbox, with a delivery per enabled subscription of its type. Nothing
-- when nobody subscribes (the outbox does not grow for nobody).
CREATE FUNCTION webhook_emit(kind text, key bigint, data jsonb, dedupe_key text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    new_id bigint;
BEGIN
    IF NOT webhook_wanted(kind) THEN
        RETURN;
    END IF;
    INSERT INTO webhook_outbox (type, ordering_key, payload, dedupe)
    VALUES (kind, key, jsonb_build_object('type', kind, 'timestamp', webhook_time(now()), 'data', data), dedupe_key)
    ON CONFLICT (dedupe) DO NOTHING
    RETURNING id INTO new_id;
    IF new_id IS NULL THEN
        RETURN;
    END IF;
    INSERT INTO webhook_deliveries (subscription_id, outbox_id, ordering_key)
    SELECT id, new_id, key FROM webhook_subscriptions WHERE enabled AND kind = ANY (event_types);
    PERFORM pg_notify('ctt_webhooks', '');
END $$;

CREATE FUNCTION webhook_outbox_number() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public, pg_temp AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(7710002);  -- alert_event_number()'s lock (schema/006)
    UPDATE webhook_outbox SET seq = nextval('webhook_outbox_seq'), committed_at = clock_timestamp()
    WHERE id = NEW.id;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER webhook_outbox_number AFTER INSERT ON webhook_outbox
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION webhook_outbox_number();

-- Alert events: the one alert object (alert_view, times in UTC) plus "event".
CREATE FUNCTION webhook_alert_event() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public, pg_temp SET timezone = 'UTC' AS $$
DECLARE
    kind text := CASE NEW.event WHEN 'opened' THEN 'alert.opened' WHEN 'escalated' THEN 'alert.escalated'
                                ELSE 'alert.changed' END;
    battery boolean;
    data jsonb;
BEGIN
    battery := NEW.event = 'opened' AND webhook_wanted('device.battery_low');
    IF NOT (battery OR webhook_wanted(kind)) THEN
        RETURN NULL;
    END IF;
    SELECT to_jsonb(v) || jsonb_build_object('event', NEW.event) INTO data FROM alert_view v WHERE v.id = NEW.alert_id;
    PERFORM webhook_emit(kind, NEW.shipment_id, data, NULL);
    IF battery AND data->>'type' IN ('low_battery', 'device_battery') THEN
        PERFORM webhook_emit('device.battery_low', NEW.shipment_id, data, NULL);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER alert_events_webhook AFTER INSERT ON alert_events
    FOR EACH ROW EXECUTE FUNCTION webhook_alert_event();

CREATE FUNCTION webhook_shipment_data(p_shipment bigint, p_kind text, p_office text, p_country text,
                                      p_at timestamptz, p_detail jsonb)
RETURNS jsonb LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT jsonb_build_object('shipment', s.id, 'reference', s.reference, 'kind', p_kind, 'office', p_office,
                              'country', coalesce(p_country, (SELECT z.country FROM zones z
                                                              WHERE z.office_code = p_office LIMIT 1)),
                              'at', webhook_time(p_at), 'detail', coalesce(p_detail, '{}'::jsonb))
    FROM shipments s WHERE s.id = p_shipment
$$;

-- Milestones on the timeline (the engine's arrivals, departures and crossings; release).
CREATE FUNCTION webhook_shipment_event() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public, pg_temp AS $$
DECLARE
    kind text := 'shipment.' || NEW.kind;
BEGIN
    IF webhook_wanted(kind) THEN
        PERFORM webhook_emit(kind, NEW.shipment_id,
                             webhook_shipment_data(NEW.shipment_id, NEW.kind, NEW.office_code, NEW.country, NEW.at,
                                                   NEW.detail),
                             concat_ws(':', 'shipment', NEW.shipment_id, NEW.kind, NEW.office_code,
                                       webhook_time(NEW.at)));
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER shipment_events_webhook AFTER INSERT ON shipment_events
    FOR EACH ROW WHEN (NEW.kind IN ('departed', 'arrived', 'border_crossed', 'released'))
    EXECUTE FUNCTION webhook_shipment_event();

-- Officers' depart and arrive (status changes): detail.source says so.
CREATE FUNCTION webhook_shipment_status() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public, pg_temp AS $$
DECLARE
    departed boolean := NEW.status = 'in_transit';
    kind text := CASE WHEN NEW.status = 'in_transit' THEN 'departed' ELSE 'arrived' END;
BEGIN
    IF webhook_wanted('shipment.' || kind) THEN
        PERFORM webhook_emit('shipment.' || kind, NEW.id,
                             webhook_shipment_data(NEW.id, kind,
                                                   CASE WHEN departed THEN NEW.office_of_departure
                                                        ELSE NEW.office_of_destination END, NULL,
                                                   CASE WHEN departed THEN NEW.departed_at ELSE NEW.arrived_at END,
                                                   jsonb_build_object('source', 'status', 'status', NEW.status)),
                             NULL);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER shipments_webhook AFTER UPDATE OF status ON shipments
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status AND NEW.status IN ('in_transit', 'arrived'))
    EXECUTE FUNCTION webhook_shipment_status();

-- The triggers need no grant (SECURITY DEFINER). The API manages subscriptions, sends
-- webhook.test pings (an outbox row of its own) and records deliveries and attempts.
GRANT SELECT, INSERT, UPDATE, DELETE ON webhook_subscriptions TO ctt_api;
GRANT SELECT, INSERT ON webhook_outbox TO ctt_api;
GRANT SELECT, INSERT, UPDATE ON webhook_deliveries TO ctt_api;
GRANT SELECT, INSERT ON webhook_attempts TO ctt_api;
GRANT USAGE ON SEQUENCE webhook_subscriptions_id_seq, webhook_outbox_id_seq, webhook_attempts_id_seq TO ctt_api;
REVOKE EXECUTE ON FUNCTION webhook_emit(text, bigint, jsonb, text) FROM PUBLIC;
