-- Saved detector states along each trip (geofence/replay.py): after
-- out-of-order fixes, ingest replays a tracker from the newest checkpoint
-- before the earliest late fix instead of from departure, and stops where the
-- recomputed state meets a checkpoint again. Live evaluation adds one every
-- 15 minutes of fix time; a replay replaces those inside its window.
CREATE TABLE geofence_checkpoints (
    device_id    text NOT NULL,
    shipment_id  bigint NOT NULL REFERENCES shipments ON DELETE CASCADE,
    last_ts      timestamptz NOT NULL,  -- the newest fix the state has evaluated
    state        bytea NOT NULL,        -- msgpack of geofence.state.DeviceState
    PRIMARY KEY (device_id, shipment_id, last_ts)
);
-- Pruning by shipment (and the cascade) without a scan.
CREATE INDEX geofence_checkpoints_shipment ON geofence_checkpoints (shipment_id);
