-- Web Push to officers' browsers when an alert opens in their region
-- (tracking_api/push.py, docs/push.md).

-- One browser's push subscription (the PushSubscription its push service gave
-- the page), owned by whoever subscribed from that browser last. region: the
-- officer's region; NULL for admins and operators, who hear of every region.
-- No foreign key to regions: an officer's token may name a region that is not
-- (or no longer) defined, and such an officer simply hears of nothing.
CREATE TABLE push_subscriptions (
    id            bigserial PRIMARY KEY,
    subject       text NOT NULL,
    role          text NOT NULL,
    region        text,
    endpoint      text NOT NULL UNIQUE,
    p256dh        text NOT NULL,
    auth          text NOT NULL,
    user_agent    text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_sent_at  timestamptz,
    -- Failed sends since the last success (404/410 delete the subscription instead).
    failures      integer NOT NULL DEFAULT 0,
    CHECK (role <> 'officer' OR region IS NOT NULL)
);
CREATE INDEX push_subscriptions_region ON push_subscriptions (region);
CREATE INDEX push_subscriptions_subject ON push_subscriptions (subject);

-- One row per subscription and alert opening. Every API process hears every
-- opening; each claims its pushes with INSERT ... ON CONFLICT DO NOTHING
-- RETURNING and sends only what it claimed, so that a browser is pushed at
-- most once whatever the number of processes. sent_at: when the send ended;
-- status: the push service's HTTP status, NULL if it did not answer.
CREATE TABLE push_deliveries (
    subscription_id  bigint NOT NULL REFERENCES push_subscriptions ON DELETE CASCADE,
    alert_event_id   bigint NOT NULL REFERENCES alert_events ON DELETE CASCADE,
    claimed_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz,
    status           integer,
    PRIMARY KEY (subscription_id, alert_event_id)
);
CREATE INDEX push_deliveries_event ON push_deliveries (alert_event_id);
