-- Ingest rewrites the state of every in-transit tracker that reported, every
-- batch (tens of thousands of rows a second on a national corridor); a moving
-- truck's state holds its last 15 minutes of fixes (the stop detector's
-- window), about 3.7 kB at one fix every 10 s.
-- * Kept in the row, uncompressed, below a page (TOAST's default moves values
--   past 2 kB to the TOAST table, compressed: a new TOAST chunk, its index
--   entry and a dead old chunk per update; pglz on packed floats gains little).
-- * Room left on each page lets the update stay on its page (HOT: no new index
--   entry, the old version pruned in place).
ALTER TABLE geofence_state ALTER COLUMN state SET STORAGE MAIN;
ALTER TABLE geofence_state SET (fillfactor = 50, toast_tuple_target = 8160);

-- Each batch asks which of its trackers have lost their signal: few ever have,
-- and this finds them without scanning every open alert.
CREATE INDEX alerts_signal_lost_open ON alerts (device_id) WHERE type = 'signal_lost' AND ended_at IS NULL;
