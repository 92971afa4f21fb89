-- Dead letters keep the evidence but cannot fill the disk: ingest stores at most
-- a prefix of an oversized payload (CTT_DEAD_LETTER_MAX_BYTES) with the full
-- payload's length and SHA-256, so the original can still be recognised. The
-- digest (dedup of a redelivered message) is unchanged: computed on the full bytes.
ALTER TABLE dead_letters
    ADD COLUMN payload_length integer,
    ADD COLUMN payload_sha256 bytea;
UPDATE dead_letters SET payload_length = length(payload), payload_sha256 = sha256(payload);
ALTER TABLE dead_letters
    ALTER COLUMN payload_length SET NOT NULL,
    ALTER COLUMN payload_sha256 SET NOT NULL,
    ADD CONSTRAINT dead_letters_payload_prefix CHECK (length(payload) <= payload_length);
COMMENT ON COLUMN dead_letters.payload IS 'the payload, or its first CTT_DEAD_LETTER_MAX_BYTES bytes when longer';
COMMENT ON COLUMN dead_letters.payload_length IS 'length of the full payload, bytes';
COMMENT ON COLUMN dead_letters.payload_sha256 IS 'SHA-256 of the full payload';
