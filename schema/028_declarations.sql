-- Issue 14, declarations in: the transit declaration as the declaration-processing
-- system sent it, versioned (every amendment and the cancellation kept), and the
-- shipment it registered. A declaration's shipment may be cancelled before departure.

-- Only a registered shipment can be cancelled; a cancelled one never departed.
ALTER TABLE shipments DROP CONSTRAINT shipments_status_check;
ALTER TABLE shipments ADD CONSTRAINT shipments_status_check
    CHECK (status IN ('registered', 'in_transit', 'arrived', 'closed', 'cancelled'));
ALTER TABLE shipments DROP CONSTRAINT shipments_check;
ALTER TABLE shipments ADD CONSTRAINT shipments_departed_check
    CHECK (status IN ('registered', 'cancelled') OR departed_at IS NOT NULL);
ALTER TABLE shipments
    ADD COLUMN cancelled_at  timestamptz,
    ADD COLUMN cancelled_by  text,
    ADD CONSTRAINT shipments_cancelled_check CHECK ((status = 'cancelled') = (cancelled_at IS NOT NULL));

CREATE TABLE declarations (
    mrn              text PRIMARY KEY CHECK (mrn ~ '^[0-9]{2}[A-Z]{2}[A-Z0-9]{13,14}$'),
    shipment_id      bigint NOT NULL UNIQUE REFERENCES shipments,
    version          integer NOT NULL CHECK (version >= 1),
    status           text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'cancelled')),
    document         jsonb NOT NULL,
    document_sha256  text NOT NULL CHECK (document_sha256 ~ '^[0-9a-f]{64}$'),
    created_at       timestamptz NOT NULL DEFAULT now(),
    created_by       text NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    updated_by       text NOT NULL
);

-- Every version as it was: append only for the API (no UPDATE or DELETE granted).
CREATE TABLE declaration_versions (
    mrn       text NOT NULL REFERENCES declarations,
    version   integer NOT NULL CHECK (version >= 1),
    document  jsonb NOT NULL,
    sha256    text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    at        timestamptz NOT NULL DEFAULT now(),
    by        text NOT NULL,
    change    text NOT NULL CHECK (change IN ('created', 'amended', 'cancelled')),
    reason    text CHECK (length(reason) BETWEEN 1 AND 1000),
    PRIMARY KEY (mrn, version)
);

-- An amendment replaces the itinerary, seal numbers, goods, regions and (before departure) the
-- e-seals; the triggers on these tables bump geofence_version, so ingest reloads.
GRANT SELECT, INSERT, UPDATE ON declarations TO ctt_api;
GRANT SELECT, INSERT ON declaration_versions TO ctt_api;
GRANT DELETE ON shipment_offices, shipment_seal_numbers, shipment_goods, shipment_seals, shipment_regions TO ctt_api;
GRANT SELECT ON declarations, declaration_versions TO ctt_report;
