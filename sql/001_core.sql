-- 001_core.sql -- roles, zones, the network model, ANM schemes, the DER register
-- and measurement points: everything the engine reads that changes rarely.
--
-- The network tables hold a MATPOWER case column for column (bus, gen, branch,
-- gencost), so `pcf-db export-matpower` reproduces the imported file number for
-- number; columns beyond MATPOWER's standard ones are kept in `extra` arrays.
-- What a distribution network adds (seasonal ratings, pre-event limits,
-- post-fault ratings, fault statistics, circuit names) sits beside them.
-- CHECK constraints and foreign keys make impossible data unstorable, so every
-- reader may trust what it reads.

-- Least-privilege roles.  Roles are cluster-wide, so migrating two databases
-- of one cluster at once may race to create them: whichever loses the race
-- sees duplicate_object or unique_violation, and the role exists either way.
-- Login roles for real services are members of these; see docs/operations.md.
DO $$
DECLARE r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['pcf_ingest', 'pcf_engine', 'pcf_planner'] LOOP
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
                EXECUTE format('CREATE ROLE %I NOLOGIN', r);
            END IF;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END LOOP;
END
$$;

-- A zone is one ANM system (a GSP or a group of GSPs) with its own network
-- model.  Its id appears in ZeroMQ topics (`pcf.da.<zone>`), hence the
-- restricted alphabet: no dots, no spaces.
CREATE TABLE zone (
    zone_id      text PRIMARY KEY CHECK (zone_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    name         text NOT NULL DEFAULT '',
    base_mva     double precision NOT NULL CHECK (base_mva > 0 AND base_mva < 'Infinity'),
    case_name    text NOT NULL DEFAULT '',
    case_version text NOT NULL DEFAULT '2',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- MATPOWER bus table.  bus_i is a label, row_no keeps the file's row order.
-- base_kv is the voltage level the ANM orders constraints by.
CREATE TABLE bus (
    zone_id  text NOT NULL REFERENCES zone ON DELETE CASCADE,
    bus_i    bigint NOT NULL CHECK (bus_i > 0),
    row_no   integer NOT NULL CHECK (row_no >= 1),
    bus_type smallint NOT NULL CHECK (bus_type BETWEEN 1 AND 4),
    pd       double precision NOT NULL,
    qd       double precision NOT NULL,
    gs       double precision NOT NULL,
    bs       double precision NOT NULL,
    area     double precision NOT NULL,
    vm       double precision NOT NULL,
    va       double precision NOT NULL,
    base_kv  double precision NOT NULL CHECK (base_kv >= 0),
    loss_zone double precision NOT NULL,
    vmax     double precision NOT NULL,
    vmin     double precision NOT NULL,
    extra    double precision[] NOT NULL DEFAULT '{}',
    name     text,
    PRIMARY KEY (zone_id, bus_i),
    UNIQUE (zone_id, row_no)
);

-- MATPOWER gen table; idx is the 1-based row of mpc.gen.
CREATE TABLE gen (
    zone_id  text NOT NULL REFERENCES zone ON DELETE CASCADE,
    idx      integer NOT NULL CHECK (idx >= 1),
    bus_i    bigint NOT NULL,
    pg       double precision NOT NULL,
    qg       double precision NOT NULL,
    qmax     double precision NOT NULL,
    qmin     double precision NOT NULL,
    vg       double precision NOT NULL,
    mbase    double precision NOT NULL,
    status   double precision NOT NULL,
    pmax     double precision NOT NULL,
    pmin     double precision NOT NULL,
    extra    double precision[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (zone_id, idx),
    FOREIGN KEY (zone_id, bus_i) REFERENCES bus (zone_id, bus_i) ON DELETE CASCADE
);

-- MATPOWER gencost rows, kept whole (model, startup, shutdown, n, coefficients).
CREATE TABLE gencost (
    zone_id  text NOT NULL REFERENCES zone ON DELETE CASCADE,
    idx      integer NOT NULL CHECK (idx >= 1),
    cost     double precision[] NOT NULL CHECK (cardinality(cost) >= 4),
    PRIMARY KEY (zone_id, idx)
);

-- MATPOWER branch table plus what a DSO knows about a circuit.  idx is the
-- 1-based row of mpc.branch (the id pcf-pf prints); name is the circuit or
-- equipment id used by SCADA, outage feeds and the LTDS.  status 0 means the
-- branch is open in the base switching state.
CREATE TABLE branch (
    branch_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    zone_id   text NOT NULL REFERENCES zone ON DELETE CASCADE,
    idx       integer NOT NULL CHECK (idx >= 1),
    name      text CHECK (name IS NULL OR length(name) BETWEEN 1 AND 128),
    kind      text NOT NULL DEFAULT 'line' CHECK (kind IN ('line', 'cable', 'transformer')),
    f_bus     bigint NOT NULL,
    t_bus     bigint NOT NULL CHECK (t_bus <> f_bus),
    r         double precision NOT NULL,
    x         double precision NOT NULL,
    b         double precision NOT NULL,
    rate_a    double precision NOT NULL CHECK (rate_a >= 0),
    rate_b    double precision NOT NULL CHECK (rate_b >= 0),
    rate_c    double precision NOT NULL CHECK (rate_c >= 0),
    tap       double precision NOT NULL CHECK (tap >= 0),
    shift     double precision NOT NULL CHECK (shift > -360 AND shift < 360),
    status    double precision NOT NULL CHECK (status IN (0, 1)),
    angmin    double precision,
    angmax    double precision,
    extra     double precision[] NOT NULL DEFAULT '{}',
    -- Credible-fault statistics; NULL means the documented default for the kind.
    fault_rate_per_year double precision CHECK (fault_rate_per_year >= 0),
    mean_repair_hours   double precision CHECK (mean_repair_hours > 0),
    CHECK ((angmin IS NULL) = (angmax IS NULL)),
    CHECK (extra = '{}' OR angmin IS NOT NULL),
    UNIQUE (zone_id, idx),
    UNIQUE (zone_id, name),
    UNIQUE (branch_id, zone_id),
    FOREIGN KEY (zone_id, f_bus) REFERENCES bus (zone_id, bus_i) ON DELETE CASCADE,
    FOREIGN KEY (zone_id, t_bus) REFERENCES bus (zone_id, bus_i) ON DELETE CASCADE
);

-- Seasonal ratings (UK practice: winter, spring, summer, autumn).  The ANM
-- compares intact flows with the pre-event limit (PEL) where one is set, else
-- the continuous rating, and post-fault flows with the post-fault rating.
CREATE TABLE branch_rating (
    branch_id      bigint NOT NULL REFERENCES branch ON DELETE CASCADE,
    season         text NOT NULL CHECK (season IN ('winter', 'spring', 'summer', 'autumn')),
    continuous_mva double precision NOT NULL CHECK (continuous_mva > 0 AND continuous_mva < 'Infinity'),
    pel_mva        double precision CHECK (pel_mva > 0 AND pel_mva <= continuous_mva),
    post_fault_mva double precision NOT NULL CHECK (post_fault_mva >= continuous_mva AND post_fault_mva < 'Infinity'),
    PRIMARY KEY (branch_id, season)
);

-- An ANM scheme and the constraints it monitors.  A constraint watches one
-- branch/transformer (limit from branch_rating) or, for a transmission
-- boundary (GSP limits such as CARPL/CAFPL, or a Technical Limit), the signed
-- sum of several branch flows against limit_mw.
CREATE TABLE anm_scheme (
    scheme_id  text PRIMARY KEY CHECK (length(scheme_id) BETWEEN 1 AND 64),
    zone_id    text NOT NULL REFERENCES zone ON DELETE CASCADE,
    name       text NOT NULL DEFAULT '',
    UNIQUE (scheme_id, zone_id)
);

CREATE TABLE anm_constraint (
    constraint_id text PRIMARY KEY CHECK (length(constraint_id) BETWEEN 1 AND 64),
    scheme_id     text NOT NULL,
    zone_id       text NOT NULL,
    description   text NOT NULL DEFAULT '',
    kind          text NOT NULL CHECK (kind IN ('branch', 'transformer', 'boundary')),
    anm_type      text NOT NULL CHECK (anm_type IN ('DANM', 'TANM')),
    voltage_kv    double precision NOT NULL CHECK (voltage_kv > 0),
    limit_mw      double precision CHECK (limit_mw > 0 AND limit_mw < 'Infinity'),
    -- Trim when utilisation exceeds trim_pct of the limit, release below release_pct.
    trim_pct      double precision NOT NULL DEFAULT 100 CHECK (trim_pct > 0 AND trim_pct <= 150),
    release_pct   double precision NOT NULL DEFAULT 95 CHECK (release_pct > 0),
    CHECK (release_pct <= trim_pct),
    CHECK ((kind = 'boundary') = (limit_mw IS NOT NULL)),
    UNIQUE (constraint_id, zone_id),
    FOREIGN KEY (scheme_id, zone_id) REFERENCES anm_scheme (scheme_id, zone_id) ON DELETE CASCADE
);

-- Branches a constraint monitors.  sign +1 counts flow in the branch's
-- from->to direction, -1 the reverse.
CREATE TABLE anm_constraint_branch (
    constraint_id text NOT NULL,
    zone_id       text NOT NULL,
    branch_id     bigint NOT NULL,
    sign          smallint NOT NULL DEFAULT 1 CHECK (sign IN (-1, 1)),
    PRIMARY KEY (constraint_id, branch_id),
    FOREIGN KEY (constraint_id, zone_id) REFERENCES anm_constraint (constraint_id, zone_id) ON DELETE CASCADE,
    FOREIGN KEY (branch_id, zone_id) REFERENCES branch (branch_id, zone_id) ON DELETE CASCADE
);

-- DER register, structured as NGED's curtailment estimator method has it:
-- a site at a node with an export capacity (output is capped there: a G100
-- export limitation scheme), enquiries (capacity tranches with a LIFO queue
-- position, ANM membership, dates, firm or not), and machines.
CREATE TABLE der_site (
    site_id            text PRIMARY KEY CHECK (length(site_id) BETWEEN 1 AND 64),
    zone_id            text NOT NULL REFERENCES zone ON DELETE CASCADE,
    name               text NOT NULL DEFAULT '',
    bus_i              bigint NOT NULL,
    export_capacity_mw double precision NOT NULL CHECK (export_capacity_mw > 0 AND export_capacity_mw < 'Infinity'),
    import_capacity_mw double precision NOT NULL DEFAULT 0 CHECK (import_capacity_mw >= 0 AND import_capacity_mw < 'Infinity'),
    latitude           double precision CHECK (latitude BETWEEN -90 AND 90),
    longitude          double precision CHECK (longitude BETWEEN -180 AND 180),
    UNIQUE (site_id, zone_id),
    FOREIGN KEY (zone_id, bus_i) REFERENCES bus (zone_id, bus_i) ON DELETE CASCADE
);

CREATE TABLE der_enquiry (
    enquiry_id      text PRIMARY KEY CHECK (length(enquiry_id) BETWEEN 1 AND 64),
    site_id         text NOT NULL,
    zone_id         text NOT NULL,
    capacity_mw     double precision NOT NULL CHECK (capacity_mw > 0 AND capacity_mw < 'Infinity'),
    firm            boolean NOT NULL,
    -- Queue position: 1 is the oldest (curtailed last).  NULL for firm tranches.
    lifo_position   integer CHECK (lifo_position >= 1),
    anm_type        text NOT NULL CHECK (anm_type IN ('NONE', 'DANM', 'TANM', 'DANM+TANM')),
    status          text NOT NULL DEFAULT 'connected'
                    CHECK (status IN ('enquiry', 'offered', 'accepted', 'connected', 'withdrawn')),
    enquiry_date    date,
    connection_date date,
    CHECK (connection_date IS NULL OR enquiry_date IS NULL OR connection_date >= enquiry_date),
    CHECK (firm = (lifo_position IS NULL)),
    CHECK (firm = (anm_type = 'NONE')),
    FOREIGN KEY (site_id, zone_id) REFERENCES der_site (site_id, zone_id) ON DELETE CASCADE
);
-- Two non-firm tranches of one zone can never share a queue position.
CREATE UNIQUE INDEX der_enquiry_lifo ON der_enquiry (zone_id, lifo_position) WHERE NOT firm;

CREATE TABLE der_machine (
    machine_id            text PRIMARY KEY CHECK (length(machine_id) BETWEEN 1 AND 64),
    site_id               text NOT NULL REFERENCES der_site ON DELETE CASCADE,
    fuel_type             text NOT NULL CHECK (fuel_type IN ('solar', 'wind', 'battery', 'hydro', 'gas',
                              'diesel', 'biomass', 'chp', 'other')),
    installed_capacity_mw double precision NOT NULL CHECK (installed_capacity_mw > 0 AND installed_capacity_mw < 'Infinity'),
    -- Physical-model parameters; NULL means the documented default for the fuel type.
    hub_height_m          double precision CHECK (hub_height_m > 0 AND hub_height_m < 300),
    tilt_deg              double precision CHECK (tilt_deg BETWEEN 0 AND 90),
    azimuth_deg           double precision CHECK (azimuth_deg >= 0 AND azimuth_deg < 360)
);

-- Which constraint can curtail which site (the scheme's membership list).
CREATE TABLE anm_constraint_site (
    constraint_id text NOT NULL,
    zone_id       text NOT NULL,
    site_id       text NOT NULL,
    PRIMARY KEY (constraint_id, site_id),
    FOREIGN KEY (constraint_id, zone_id) REFERENCES anm_constraint (constraint_id, zone_id) ON DELETE CASCADE,
    FOREIGN KEY (site_id, zone_id) REFERENCES der_site (site_id, zone_id) ON DELETE CASCADE
);

-- SCADA points and the network element each one measures.  value * scale is
-- the measurement in the quantity's canonical unit.
CREATE TABLE measurement_point (
    point_id   text PRIMARY KEY CHECK (length(point_id) BETWEEN 1 AND 128),
    zone_id    text NOT NULL REFERENCES zone ON DELETE CASCADE,
    quantity   text NOT NULL CHECK (quantity IN ('p_mw', 'q_mvar', 'i_a', 'v_kv', 'v_pu', 'breaker_state')),
    element    text NOT NULL CHECK (element IN ('branch', 'bus', 'site')),
    branch_id  bigint,
    branch_end text CHECK (branch_end IN ('from', 'to')),
    bus_i      bigint,
    site_id    text,
    scale      double precision NOT NULL DEFAULT 1 CHECK (scale <> 0 AND scale < 'Infinity' AND scale > '-Infinity'),
    CHECK ((element = 'branch') = (branch_id IS NOT NULL)),
    CHECK ((element = 'branch') = (branch_end IS NOT NULL)),
    CHECK ((element = 'bus') = (bus_i IS NOT NULL)),
    CHECK ((element = 'site') = (site_id IS NOT NULL)),
    CHECK (quantity <> 'breaker_state' OR element = 'branch'),
    FOREIGN KEY (branch_id, zone_id) REFERENCES branch (branch_id, zone_id) ON DELETE CASCADE,
    FOREIGN KEY (zone_id, bus_i) REFERENCES bus (zone_id, bus_i) ON DELETE CASCADE,
    FOREIGN KEY (site_id, zone_id) REFERENCES der_site (site_id, zone_id) ON DELETE CASCADE
);

GRANT USAGE ON SCHEMA public TO pcf_ingest, pcf_engine, pcf_planner;
GRANT SELECT ON zone, bus, gen, gencost, branch, branch_rating, anm_scheme, anm_constraint,
    anm_constraint_branch, der_site, der_enquiry, der_machine, anm_constraint_site, measurement_point
    TO pcf_ingest, pcf_engine, pcf_planner;
