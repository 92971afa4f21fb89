-- Ingest rewrites the state of every in-transit tracker that reported, every
-- batch (tens of thousands of rows a second on a national corridor). Room left
-- on each page lets that update stay on its page (HOT: no new index entry, old
-- versions pruned in place) instead of writing a new tuple elsewhere plus an index entry.
ALTER TABLE geofence_state SET (fillfactor = 50);

-- Each batch asks which of its trackers have lost their signal: few ever have,
-- and this finds them without scanning every open alert.
CREATE INDEX alerts_signal_lost_open ON alerts (device_id) WHERE type = 'signal_lost' AND ended_at IS NULL;
