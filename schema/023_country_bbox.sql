-- Each country's bounding box [west, south, east, north] in degrees, kept by a trigger
-- from its outline whatever writes it: GET /countries lists the boxes without reading
-- the outlines (all of the world's are 168 MB).
ALTER TABLE countries ADD COLUMN bbox double precision[] CHECK (cardinality(bbox) = 4);

CREATE FUNCTION country_bbox() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    positions jsonpath := CASE NEW.geometry->>'type' WHEN 'Polygon' THEN '$.coordinates[*][*]'
                                                     ELSE '$.coordinates[*][*][*]' END;
BEGIN
    SELECT ARRAY[min((p->>0)::float8), min((p->>1)::float8), max((p->>0)::float8), max((p->>1)::float8)]
    INTO NEW.bbox FROM jsonb_path_query(NEW.geometry, positions) AS p;
    RETURN NEW;
END $$;
CREATE TRIGGER countries_bbox BEFORE INSERT OR UPDATE OF geometry ON countries
    FOR EACH ROW EXECUTE FUNCTION country_bbox();

-- Rows loaded before this migration. Only if there are any: an UPDATE fires the table's
-- statement trigger, which would make every ingest worker reload its geometry.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM countries) THEN
        UPDATE countries SET geometry = geometry;
    END IF;
END $$;
