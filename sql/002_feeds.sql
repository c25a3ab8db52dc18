-- 002_feeds.sql -- what the ingest workers write: SCADA measurements, weather
-- forecasts, outages, the quarantine, and the record of ingested batches.
--
-- Time series are partitioned by month on their timestamptz (declarative
-- RANGE partitioning).  feed_ensure_partitions() creates the months a load
-- needs before it inserts; the loader calls it inside its transaction, so a
-- partition exists exactly when rows in it were committed.  There is no
-- DEFAULT partition: a row outside every partition is an error, never a row
-- parked where later partition creation would trip over it.
--
-- Idempotency and crash safety: every load is one transaction that also
-- inserts its ingest_batch row.  A committed batch with the same feed and
-- content hash means the input is already in; a crash before commit leaves
-- nothing behind.  CHECK constraints make non-finite values, unknown
-- enumerations and backwards intervals unstorable.  Reference: docs/ingest.md.

-- One row per input (file, HTTP response, ZeroMQ batch) a worker processed.
CREATE TABLE ingest_batch (
    batch_id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    feed             text NOT NULL CHECK (feed IN ('scada', 'weather', 'outage')),
    source           text NOT NULL CHECK (length(source) BETWEEN 1 AND 1024),
    content_hash     text NOT NULL CHECK (content_hash ~ '^[0-9a-f]{32}$'),
    status           text NOT NULL CHECK (status IN ('loaded', 'rejected')),
    rows_loaded      bigint NOT NULL DEFAULT 0 CHECK (rows_loaded >= 0),
    rows_quarantined bigint NOT NULL DEFAULT 0 CHECK (rows_quarantined >= 0),
    started_at       timestamptz NOT NULL,
    finished_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (finished_at >= started_at)
);
-- The same content is loaded at most once per feed; rejected inputs may be
-- retried (after the measurement points or mappings they lacked are added).
CREATE UNIQUE INDEX ingest_batch_once ON ingest_batch (feed, content_hash) WHERE status = 'loaded';

-- Records refused by validation, with where they came from and why.
CREATE TABLE quarantine (
    quarantine_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    batch_id      bigint NOT NULL REFERENCES ingest_batch ON DELETE CASCADE,
    feed          text NOT NULL CHECK (feed IN ('scada', 'weather', 'outage')),
    source        text NOT NULL,
    line          bigint NOT NULL CHECK (line >= 0),     -- 0: not line-oriented (JSON)
    field         text NOT NULL DEFAULT '',
    reason        text NOT NULL CHECK (length(reason) >= 1),
    raw           text NOT NULL DEFAULT '' CHECK (length(raw) <= 8192),
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX quarantine_batch ON quarantine (batch_id);

-- SCADA measurements in the canonical unit of their point's quantity
-- (measurement_point.scale already applied).  quality: 'good', 'uncertain'
-- (suspect), 'bad' (kept so the engine can see the gap), 'substituted'
-- (manually entered or estimated by the historian).
CREATE TABLE measurement (
    point_id text NOT NULL REFERENCES measurement_point ON DELETE CASCADE,
    ts       timestamptz NOT NULL,
    value    double precision NOT NULL CHECK (value > '-Infinity' AND value < 'Infinity'),
    quality  text NOT NULL CHECK (quality IN ('good', 'uncertain', 'bad', 'substituted')),
    batch_id bigint NOT NULL,
    PRIMARY KEY (point_id, ts)
) PARTITION BY RANGE (ts);

-- Places forecasts are fetched for.
CREATE TABLE weather_location (
    location_id text PRIMARY KEY CHECK (location_id ~ '^[A-Za-z0-9_.-]{1,64}$'),
    zone_id     text REFERENCES zone ON DELETE SET NULL,
    latitude    double precision NOT NULL CHECK (latitude BETWEEN -90 AND 90),
    longitude   double precision NOT NULL CHECK (longitude BETWEEN -180 AND 180),
    elevation_m double precision CHECK (elevation_m BETWEEN -500 AND 9000)
);

-- The variables the engine understands, with the canonical unit values are
-- stored in (wind in m/s whatever the feed sent).
CREATE TABLE weather_variable (
    variable text PRIMARY KEY,
    unit     text NOT NULL CHECK (unit IN ('degC', '%', 'm/s', 'deg', 'W/m2'))
);
INSERT INTO weather_variable (variable, unit) VALUES
    ('temperature_2m', 'degC'), ('cloud_cover', '%'),
    ('wind_speed_10m', 'm/s'), ('wind_speed_80m', 'm/s'), ('wind_speed_100m', 'm/s'),
    ('wind_speed_120m', 'm/s'), ('wind_speed_180m', 'm/s'),
    ('wind_direction_10m', 'deg'), ('wind_direction_80m', 'deg'), ('wind_direction_100m', 'deg'),
    ('wind_direction_120m', 'deg'), ('wind_direction_180m', 'deg'),
    ('shortwave_radiation', 'W/m2'), ('direct_radiation', 'W/m2'),
    ('direct_normal_irradiance', 'W/m2'), ('diffuse_radiation', 'W/m2'),
    ('global_tilted_irradiance', 'W/m2'),
    ('shortwave_radiation_instant', 'W/m2'), ('direct_radiation_instant', 'W/m2'),
    ('direct_normal_irradiance_instant', 'W/m2'), ('diffuse_radiation_instant', 'W/m2'),
    ('global_tilted_irradiance_instant', 'W/m2');

-- One forecast value.  member 0 is the control (or deterministic) run,
-- 1..N the ensemble members.  interval_s: 0 = the value at valid_at,
-- 900/3600 = the mean over the preceding 15 minutes / hour ending at
-- valid_at (Open-Meteo radiation).  issued_at is when the worker retrieved
-- the forecast, floored to the hour (Open-Meteo does not say when the model
-- ran), so a re-fetch within the hour replaces values instead of adding.
CREATE TABLE weather_forecast (
    location_id text NOT NULL REFERENCES weather_location ON DELETE CASCADE,
    model       text NOT NULL CHECK (model ~ '^[a-z0-9_]{1,64}$'),
    issued_at   timestamptz NOT NULL,
    valid_at    timestamptz NOT NULL,
    variable    text NOT NULL REFERENCES weather_variable,
    member      smallint NOT NULL CHECK (member BETWEEN 0 AND 200),
    value       double precision NOT NULL CHECK (value > '-Infinity' AND value < 'Infinity'),
    interval_s  integer NOT NULL CHECK (interval_s IN (0, 900, 3600)),
    batch_id    bigint NOT NULL,
    PRIMARY KEY (location_id, model, issued_at, variable, member, valid_at)
) PARTITION BY RANGE (issued_at);

-- Equipment (circuit) ids as outage feeds name them, mapped to branches.
CREATE TABLE equipment_branch (
    equipment_id text PRIMARY KEY CHECK (length(equipment_id) BETWEEN 1 AND 128),
    branch_id    bigint NOT NULL REFERENCES branch ON DELETE CASCADE
);

-- Every revision of every outage ever received: history is kept, the
-- highest revision is the current one (outage_current).  UK Power Networks'
-- CSV carries no revision: the loader numbers a changed row as the next one.
CREATE TABLE outage (
    outage_id    text NOT NULL CHECK (length(outage_id) BETWEEN 1 AND 128),
    revision     integer NOT NULL CHECK (revision >= 1),
    equipment_id text NOT NULL,
    branch_id    bigint NOT NULL REFERENCES branch ON DELETE CASCADE,
    kind         text NOT NULL CHECK (kind IN ('planned', 'unplanned')),
    status       text NOT NULL CHECK (status IN ('planned', 'confirmed', 'cancelled', 'completed')),
    start_at     timestamptz NOT NULL,
    end_at       timestamptz NOT NULL,
    source       text NOT NULL,
    batch_id     bigint NOT NULL REFERENCES ingest_batch,
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (outage_id, revision),
    CHECK (end_at > start_at)
);
CREATE INDEX outage_branch ON outage (branch_id, start_at);

CREATE VIEW outage_current AS
    SELECT DISTINCT ON (outage_id) outage_id, revision, equipment_id, branch_id, kind, status,
           start_at, end_at, source, batch_id, received_at
      FROM outage
     ORDER BY outage_id, revision DESC;

-- Creates the monthly partitions of `tbl` (measurement or weather_forecast)
-- covering [from_ts, to_ts]; existing ones are left alone.  Partitions are
-- named <table>_yYYYYmMM and bounded by UTC month starts.  SECURITY DEFINER
-- so the ingest role needs no DDL rights; the table name is checked against
-- a fixed list, never interpolated from outside.  Returns how many it made.
CREATE FUNCTION feed_ensure_partitions(tbl text, from_ts timestamptz, to_ts timestamptz)
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
            made := made + 1;
        END IF;
        m := m + interval '1 month';
    END LOOP;
    RETURN made;
END
$$;
REVOKE ALL ON FUNCTION feed_ensure_partitions(text, timestamptz, timestamptz) FROM PUBLIC;

-- Least privilege: the ingest role writes feeds, the engine and planners read.
GRANT SELECT, INSERT, UPDATE ON measurement, weather_forecast TO pcf_ingest;
GRANT SELECT, INSERT ON ingest_batch, quarantine, outage TO pcf_ingest;
GRANT SELECT ON weather_location, weather_variable, equipment_branch TO pcf_ingest;
GRANT EXECUTE ON FUNCTION feed_ensure_partitions(text, timestamptz, timestamptz) TO pcf_ingest;
GRANT SELECT ON ingest_batch, quarantine, measurement, weather_location, weather_variable,
    weather_forecast, equipment_branch, outage, outage_current TO pcf_engine, pcf_planner;
