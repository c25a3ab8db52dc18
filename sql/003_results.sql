-- 003_results.sql -- look-ahead runs, their results, and the run queue.
--
-- A run is written in one transaction with all its rows, so a reader never
-- sees half a run; results are kept for back-testing against what happened.
-- The run queue lets several engine processes share zones: each claims a job
-- with SELECT ... FOR UPDATE SKIP LOCKED (DESIGN.md section 7).

CREATE TABLE run (
    run_id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    zone_id          text NOT NULL REFERENCES zone ON DELETE CASCADE,
    kind             text NOT NULL CHECK (kind IN ('day_ahead', 'real_time', 'trade_check')),
    target_date      date,                   -- UK local date of a day-ahead run
    horizon_start    timestamptz NOT NULL,
    horizon_end      timestamptz NOT NULL CHECK (horizon_end > horizon_start),
    sp_count         smallint NOT NULL CHECK (sp_count BETWEEN 1 AND 50),
    seed             bigint NOT NULL,
    samples          integer NOT NULL CHECK (samples > 0),
    scada_as_of      timestamptz,
    weather_as_of    timestamptz,
    outages_as_of    timestamptz,
    software_version text NOT NULL,
    started_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    CHECK ((kind = 'day_ahead') = (target_date IS NOT NULL)),
    CHECK (finished_at IS NULL OR finished_at >= started_at)
);
CREATE INDEX run_zone_kind ON run (zone_id, kind, run_id DESC);

-- A probability with its Monte-Carlo standard error.
CREATE DOMAIN probability AS double precision CHECK (VALUE >= 0 AND VALUE <= 1);
CREATE DOMAIN std_error AS double precision CHECK (VALUE >= 0 AND VALUE < 'Infinity');

-- PCF per site and settlement period.  sp is 1..50 within the UK local day
-- (46 or 50 on clock-change days); sp_start is its UTC start.
CREATE TABLE pcf_result (
    run_id                  bigint NOT NULL REFERENCES run ON DELETE CASCADE,
    site_id                 text NOT NULL REFERENCES der_site ON DELETE CASCADE,
    sp                      smallint NOT NULL CHECK (sp BETWEEN 1 AND 50),
    sp_start                timestamptz NOT NULL,
    p_curtailed             probability NOT NULL,
    p_curtailed_se          std_error NOT NULL,
    expected_curtailed_mwh  double precision NOT NULL CHECK (expected_curtailed_mwh >= 0),
    expected_curtailed_se   std_error NOT NULL,
    deliverable_p10_mw      double precision NOT NULL CHECK (deliverable_p10_mw >= 0),
    deliverable_p50_mw      double precision NOT NULL,
    deliverable_p90_mw      double precision NOT NULL,
    deliverable_p10_se_mw   std_error NOT NULL,
    deliverable_p50_se_mw   std_error NOT NULL,
    deliverable_p90_se_mw   std_error NOT NULL,
    firm95_mw               double precision NOT NULL CHECK (firm95_mw >= 0),
    firm95_se_mw            std_error NOT NULL,
    CHECK (deliverable_p10_mw <= deliverable_p50_mw AND deliverable_p50_mw <= deliverable_p90_mw),
    PRIMARY KEY (run_id, site_id, sp)
);

-- Constraint statement per constraint and SP.
CREATE TABLE constraint_statement (
    run_id                   bigint NOT NULL REFERENCES run ON DELETE CASCADE,
    constraint_id            text NOT NULL REFERENCES anm_constraint ON DELETE CASCADE,
    sp                       smallint NOT NULL CHECK (sp BETWEEN 1 AND 50),
    sp_start                 timestamptz NOT NULL,
    limit_mw                 double precision NOT NULL CHECK (limit_mw > 0),
    limit_kind               text NOT NULL CHECK (limit_kind IN ('pel', 'continuous', 'post_fault', 'boundary')),
    season                   text NOT NULL CHECK (season IN ('winter', 'spring', 'summer', 'autumn')),
    flow_intact_p10_mw       double precision NOT NULL,
    flow_intact_p50_mw       double precision NOT NULL,
    flow_intact_p90_mw       double precision NOT NULL,
    flow_fault_p10_mw        double precision,
    flow_fault_p50_mw        double precision,
    flow_fault_p90_mw        double precision,
    p_anm_acts               probability NOT NULL,
    p_anm_acts_se            std_error NOT NULL,
    expected_curtailment_mwh double precision NOT NULL CHECK (expected_curtailment_mwh >= 0),
    expected_curtailment_se  std_error NOT NULL,
    binding_fault_branch_id  bigint REFERENCES branch ON DELETE SET NULL,
    CHECK (flow_intact_p10_mw <= flow_intact_p50_mw AND flow_intact_p50_mw <= flow_intact_p90_mw),
    CHECK ((flow_fault_p10_mw IS NULL) = (flow_fault_p90_mw IS NULL)),
    PRIMARY KEY (run_id, constraint_id, sp)
);

-- The sites a constraint curtails, in LIFO order, with sensitivity factors.
CREATE TABLE constraint_statement_site (
    run_id                   bigint NOT NULL,
    constraint_id            text NOT NULL,
    sp                       smallint NOT NULL,
    site_id                  text NOT NULL REFERENCES der_site ON DELETE CASCADE,
    lifo_position            integer NOT NULL CHECK (lifo_position >= 1),
    sensitivity              double precision NOT NULL CHECK (sensitivity >= -1 AND sensitivity <= 1),
    expected_curtailment_mwh double precision NOT NULL CHECK (expected_curtailment_mwh >= 0),
    PRIMARY KEY (run_id, constraint_id, sp, site_id),
    FOREIGN KEY (run_id, constraint_id, sp) REFERENCES constraint_statement ON DELETE CASCADE
);

-- Constraint blocks: headroom and curtailment at stated confidence levels,
-- the form a trading platform puts in an order book.
CREATE TABLE constraint_block (
    run_id            bigint NOT NULL,
    constraint_id     text NOT NULL,
    sp                smallint NOT NULL,
    confidence        double precision NOT NULL CHECK (confidence > 0 AND confidence < 1),
    headroom_mw       double precision NOT NULL CHECK (headroom_mw >= 0),
    curtailment_mw    double precision NOT NULL CHECK (curtailment_mw >= 0),
    curtailment_mwh   double precision NOT NULL CHECK (curtailment_mwh >= 0),
    PRIMARY KEY (run_id, constraint_id, sp, confidence),
    FOREIGN KEY (run_id, constraint_id, sp) REFERENCES constraint_statement ON DELETE CASCADE
);

-- Work for the engines.  A job is claimed by one engine at a time; an engine
-- that dies leaves a stale heartbeat and its job is taken over.
CREATE TABLE run_queue (
    job_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    zone_id      text NOT NULL REFERENCES zone ON DELETE CASCADE,
    kind         text NOT NULL CHECK (kind IN ('day_ahead', 'real_time')),
    target_date  date,
    status       text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'claimed', 'done', 'failed')),
    requested_at timestamptz NOT NULL DEFAULT now(),
    not_before   timestamptz NOT NULL DEFAULT now(),
    claimed_by   text,
    claimed_at   timestamptz,
    heartbeat_at timestamptz,
    finished_at  timestamptz,
    attempts     integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    run_id       bigint REFERENCES run ON DELETE SET NULL,
    error        text,
    CHECK ((kind = 'day_ahead') = (target_date IS NOT NULL)),
    CHECK (status <> 'claimed' OR claimed_by IS NOT NULL),
    CHECK (status <> 'done' OR run_id IS NOT NULL)
);
CREATE INDEX run_queue_ready ON run_queue (not_before) WHERE status = 'queued';
-- At most one pending job per zone, kind and date: re-requests coalesce.
CREATE UNIQUE INDEX run_queue_pending ON run_queue (zone_id, kind, coalesce(target_date, '-infinity'::date))
    WHERE status IN ('queued', 'claimed');

GRANT SELECT, INSERT, UPDATE, DELETE ON run, pcf_result, constraint_statement, constraint_statement_site,
    constraint_block, run_queue TO pcf_engine;
GRANT SELECT ON run, pcf_result, constraint_statement, constraint_statement_site, constraint_block,
    run_queue TO pcf_planner, pcf_ingest;
-- Ingest queues real-time runs when fresh SCADA lands.
GRANT INSERT ON run_queue TO pcf_ingest;
