-- 005_ingest_speed.sql -- what the historian bulk path needs (docs/ingest.md):
-- measurement without a per-row foreign key, the same integrity kept by
-- statement-level triggers, and the privileges to COPY into partitions.
--
-- Why drop the foreign key: PostgreSQL checks an FK with one SPI lookup (and
-- a row lock) per inserted row, which cost more than everything else of a
-- historian load together.  A statement-level trigger does the same check
-- once per statement over the DISTINCT points of its transition table --
-- a few hundred lookups for a million rows.
--
-- The rules that replace measurement_point_id_fkey:
--   * a measurement's point must exist: measurement_lock_points() locks the
--     points FOR KEY SHARE (as the FK check would, so a concurrent delete or
--     rename waits) and raises SQLSTATE 23503 (foreign_key_violation) for an
--     unknown one; AFTER INSERT/UPDATE statement triggers call it on the
--     measurement table and on every partition (a COPY straight into a
--     partition fires the partition's statement triggers, not the parent's);
--   * deleting a point deletes its measurements (was ON DELETE CASCADE);
--   * renaming a point that has measurements is refused with 23503 (was
--     ON UPDATE NO ACTION).

ALTER TABLE measurement DROP CONSTRAINT measurement_point_id_fkey;

-- Locks the given points against delete and rename for the rest of the
-- transaction; raises 23503 naming the first point that does not exist.
CREATE FUNCTION measurement_lock_points(ids text[]) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    missing text;
    n       integer;
BEGIN
    -- Sorted, so two loaders locking overlapping sets cannot deadlock.
    PERFORM 1 FROM measurement_point WHERE point_id = ANY (ids) ORDER BY point_id FOR KEY SHARE;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n < cardinality(ids) THEN
        SELECT u INTO missing FROM unnest(ids) u
         WHERE NOT EXISTS (SELECT 1 FROM measurement_point p WHERE p.point_id = u)
         ORDER BY u LIMIT 1;
        IF missing IS NOT NULL THEN
            RAISE EXCEPTION 'measurement: point "%" is not in measurement_point', missing
                USING ERRCODE = 'foreign_key_violation';
        END IF;
    END IF;
    RETURN n;
END
$$;
REVOKE ALL ON FUNCTION measurement_lock_points(text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION measurement_lock_points(text[]) TO pcf_ingest;

CREATE FUNCTION measurement_check_points() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    PERFORM measurement_lock_points(ARRAY(SELECT DISTINCT point_id FROM new_rows WHERE point_id IS NOT NULL));
    RETURN NULL;
END
$$;

-- Puts the point checks on one table (measurement or one of its partitions).
CREATE FUNCTION measurement_add_point_checks(tbl regclass) RETURNS void
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    EXECUTE format('CREATE TRIGGER measurement_points_ins AFTER INSERT ON %s '
                   'REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT '
                   'EXECUTE FUNCTION measurement_check_points()', tbl);
    EXECUTE format('CREATE TRIGGER measurement_points_upd AFTER UPDATE ON %s '
                   'REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT '
                   'EXECUTE FUNCTION measurement_check_points()', tbl);
END
$$;
REVOKE ALL ON FUNCTION measurement_add_point_checks(regclass) FROM PUBLIC;

SELECT measurement_add_point_checks('measurement');
SELECT measurement_add_point_checks(inhrelid::regclass) FROM pg_inherits
 WHERE inhparent = 'measurement'::regclass;

CREATE FUNCTION measurement_point_cascade() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    DELETE FROM measurement m USING old_points o WHERE m.point_id = o.point_id;
    RETURN NULL;
END
$$;
CREATE TRIGGER measurement_point_cascade AFTER DELETE ON measurement_point
    REFERENCING OLD TABLE AS old_points FOR EACH STATEMENT EXECUTE FUNCTION measurement_point_cascade();

CREATE FUNCTION measurement_point_no_rename() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF NEW.point_id IS DISTINCT FROM OLD.point_id
       AND EXISTS (SELECT 1 FROM measurement WHERE point_id = OLD.point_id) THEN
        RAISE EXCEPTION 'measurement_point: "%" has measurements and cannot be renamed', OLD.point_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER measurement_point_no_rename BEFORE UPDATE OF point_id ON measurement_point
    FOR EACH ROW EXECUTE FUNCTION measurement_point_no_rename();

-- feed_ensure_partitions as in 002, plus what a new measurement partition
-- needs for the bulk path: the point checks, and INSERT/UPDATE for the
-- ingest role (grants on the parent do not cover a COPY into a partition).
CREATE OR REPLACE FUNCTION feed_ensure_partitions(tbl text, from_ts timestamptz, to_ts timestamptz)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    m     timestamp;
    last  timestamp;
    part  text;
    made  integer := 0;
BEGIN
    IF tbl NOT IN ('measurement', 'weather_forecast') THEN
        RAISE EXCEPTION 'feed_ensure_partitions: unknown table %', tbl;
    END IF;
    IF from_ts IS NULL OR to_ts IS NULL OR to_ts < from_ts
       OR to_ts - from_ts > interval '20 years' THEN
        RAISE EXCEPTION 'feed_ensure_partitions: bad range % .. %', from_ts, to_ts;
    END IF;
    m    := date_trunc('month', from_ts AT TIME ZONE 'UTC');
    last := date_trunc('month', to_ts AT TIME ZONE 'UTC');
    -- Serialise concurrent creators of the same table's partitions.
    PERFORM pg_advisory_xact_lock(hashtext('feed_ensure_partitions:' || tbl));
    WHILE m <= last LOOP
        part := format('%s_y%sm%s', tbl, to_char(m, 'YYYY'), to_char(m, 'MM'));
        IF to_regclass(part) IS NULL THEN
            EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                           part, tbl, (m AT TIME ZONE 'UTC'),
                           ((m + interval '1 month') AT TIME ZONE 'UTC'));
            IF tbl = 'measurement' THEN
                PERFORM measurement_add_point_checks(part::regclass);
                EXECUTE format('GRANT SELECT, INSERT, UPDATE ON %I TO pcf_ingest', part);
            END IF;
            made := made + 1;
        END IF;
        m := m + interval '1 month';
    END LOOP;
    RETURN made;
END
$$;

DO $$
DECLARE
    p regclass;
BEGIN
    FOR p IN SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = 'measurement'::regclass LOOP
        EXECUTE format('GRANT SELECT, INSERT, UPDATE ON %s TO pcf_ingest', p);
    END LOOP;
END
$$;

-- Retention: drops the monthly partitions of tbl that end at or before
-- `before` (whole months only; never called by the services).
CREATE FUNCTION feed_drop_partitions(tbl text, before timestamptz) RETURNS integer
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    r       record;
    dropped integer := 0;
BEGIN
    IF tbl NOT IN ('measurement', 'weather_forecast') THEN
        RAISE EXCEPTION 'feed_drop_partitions: unknown table %', tbl;
    END IF;
    FOR r IN SELECT c.oid::regclass AS part, c.relname
               FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
              WHERE i.inhparent = tbl::regclass AND c.relname ~ ('^' || tbl || '_y[0-9]{4}m[0-9]{2}$')
              ORDER BY c.relname LOOP
        IF (to_date(right(r.relname, 7), 'YYYY"m"MM')::timestamp AT TIME ZONE 'UTC')
           + interval '1 month' <= before THEN
            EXECUTE format('DROP TABLE %s', r.part);
            dropped := dropped + 1;
        END IF;
    END LOOP;
    RETURN dropped;
END
$$;
REVOKE ALL ON FUNCTION feed_drop_partitions(text, timestamptz) FROM PUBLIC;

-- The loader updates its batch's counters after the data (load.c s_commit);
-- 002 granted only SELECT, INSERT, so every load as pcf_ingest failed.
GRANT UPDATE (rows_loaded, rows_quarantined, finished_at) ON ingest_batch TO pcf_ingest;
