-- Audit rows are numbered under the chain's lock, not by the id column's default
-- (taken at insert, before the lock): two writers could otherwise commit ids
-- out of order, and the row with the lower id would chain after the higher one,
-- so `ctt audit verify`, walking in id order, would call an honest log broken.
-- Numbered under the lock, ids follow commit order and have no gaps.
CREATE OR REPLACE FUNCTION audit_chain() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    last_id bigint;
    last_hash bytea;
BEGIN
    -- One writer at a time extends the chain; the lock is held until commit.
    PERFORM pg_advisory_xact_lock(7710001);
    SELECT id, hash INTO last_id, last_hash FROM audit_log ORDER BY id DESC LIMIT 1;
    NEW.id := coalesce(last_id, 0) + 1;
    NEW.prev_hash := coalesce(last_hash, '\x'::bytea);
    NEW.hash := audit_row_hash(NEW.prev_hash, NEW);
    RETURN NEW;
END $$;
