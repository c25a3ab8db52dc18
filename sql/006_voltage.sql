-- 006_voltage.sql -- voltage constraints: an ANM constraint that watches the
-- voltage of one bus instead of the flow of some branches (overvoltage at a
-- remote 11 or 33 kV bus with a lot of generation is a real reason DNOs
-- curtail).
--
-- A voltage constraint is an anm_constraint row with kind = 'voltage', the
-- monitored bus (bus_i) and its limits in per unit of the bus's base kV
-- (vmax_pu, vmin_pu: statutory limits, docs/methodology.md).  It monitors no
-- branch (a trigger refuses anm_constraint_branch rows for it); it curtails
-- the sites of anm_constraint_site as a thermal one does.  Its voltage_kv,
-- the ANM's ordering key, is the bus's base kV (anm_voltage_constraint_upsert
-- fills it; a CHECK cannot read the bus table).
--
-- Results: the engine maps a voltage onto the ANM's generic form as the
-- deviation from nominal in kV, (V - 1) * base_kv, so constraint_statement's
-- *_mw columns hold kV for a voltage constraint; the new `unit` column says
-- which ('MW' or 'kV'), `limit_low` holds the lower limit (1 - vmin) * base_kv
-- (the ANM acts when the deviation is below -limit_low), and per-site
-- sensitivities are kV per MW, so their [-1, 1] bound applies to MW rows only.

ALTER TABLE anm_constraint
    DROP CONSTRAINT anm_constraint_kind_check,
    ADD CONSTRAINT anm_constraint_kind_check CHECK (kind IN ('branch', 'transformer', 'boundary', 'voltage')),
    -- thermal (the flow of branches against MW/MVA limits) or voltage (a bus's voltage against p.u. limits)
    ADD COLUMN quantity text GENERATED ALWAYS AS (CASE WHEN kind = 'voltage' THEN 'voltage' ELSE 'thermal' END) STORED,
    ADD COLUMN bus_i   bigint,
    ADD COLUMN vmax_pu double precision,
    ADD COLUMN vmin_pu double precision,
    ADD CONSTRAINT anm_constraint_voltage_bus CHECK ((kind = 'voltage') = (bus_i IS NOT NULL)),
    ADD CONSTRAINT anm_constraint_voltage_vmax_given CHECK ((kind = 'voltage') = (vmax_pu IS NOT NULL)),
    ADD CONSTRAINT anm_constraint_voltage_vmin_given CHECK ((kind = 'voltage') = (vmin_pu IS NOT NULL)),
    ADD CONSTRAINT anm_constraint_vmax CHECK (vmax_pu > 1 AND vmax_pu < 1.2),
    ADD CONSTRAINT anm_constraint_vmin CHECK (vmin_pu > 0.8 AND vmin_pu < 1),
    ADD CONSTRAINT anm_constraint_voltage_bus_fk FOREIGN KEY (zone_id, bus_i) REFERENCES bus (zone_id, bus_i) ON DELETE CASCADE;

-- A voltage constraint monitors its bus, never branches.
CREATE FUNCTION anm_constraint_branch_thermal() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM anm_constraint c WHERE c.constraint_id = NEW.constraint_id AND c.kind = 'voltage') THEN
        RAISE EXCEPTION 'constraint "%" is a voltage constraint: it monitors its bus, not branches', NEW.constraint_id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER anm_constraint_branch_thermal BEFORE INSERT OR UPDATE ON anm_constraint_branch
    FOR EACH ROW EXECUTE FUNCTION anm_constraint_branch_thermal();

-- Creates or updates voltage constraint p_id of zone p_zone (and its scheme),
-- with clear errors for what the CHECKs would only name: an unknown bus, a
-- bus without a base kV, limits outside (0.8, 1) and (1, 1.2), an id taken
-- by another zone.  pcf-db import-anm calls it for voltage_constraints.csv.
CREATE FUNCTION anm_voltage_constraint_upsert(p_id text, p_scheme text, p_description text, p_anm_type text,
                                              p_bus bigint, p_vmax double precision, p_vmin double precision,
                                              p_trim double precision, p_release double precision, p_zone text)
RETURNS void LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    kv double precision;
    other text;
BEGIN
    SELECT base_kv INTO kv FROM bus WHERE zone_id = p_zone AND bus_i = p_bus;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'bus %: no such bus in zone %', p_bus, p_zone USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF NOT (kv > 0) THEN
        RAISE EXCEPTION 'bus %: base kV is %, a voltage constraint needs the bus''s nominal voltage', p_bus, kv
            USING ERRCODE = 'check_violation';
    END IF;
    IF NOT (p_vmax > 1 AND p_vmax < 1.2) THEN
        RAISE EXCEPTION 'vmax_pu %: must be above 1 and below 1.2', p_vmax USING ERRCODE = 'check_violation';
    END IF;
    IF NOT (p_vmin > 0.8 AND p_vmin < 1) THEN
        RAISE EXCEPTION 'vmin_pu %: must be above 0.8 and below 1', p_vmin USING ERRCODE = 'check_violation';
    END IF;
    SELECT zone_id INTO other FROM anm_constraint WHERE constraint_id = p_id;
    IF FOUND AND other <> p_zone THEN
        RAISE EXCEPTION 'constraint "%" belongs to zone %', p_id, other USING ERRCODE = 'unique_violation';
    END IF;
    IF EXISTS (SELECT 1 FROM anm_constraint_branch WHERE constraint_id = p_id) THEN
        RAISE EXCEPTION 'constraint "%" monitors branches (constraint_branches): a voltage constraint cannot', p_id
            USING ERRCODE = 'check_violation';
    END IF;
    INSERT INTO anm_scheme (scheme_id, zone_id) VALUES (p_scheme, p_zone) ON CONFLICT (scheme_id) DO NOTHING;
    INSERT INTO anm_constraint (constraint_id, scheme_id, description, kind, anm_type, voltage_kv, limit_mw,
                                trim_pct, release_pct, zone_id, bus_i, vmax_pu, vmin_pu)
    VALUES (p_id, p_scheme, coalesce(p_description, ''), 'voltage', p_anm_type, kv, NULL,
            coalesce(p_trim, 100), coalesce(p_release, 95), p_zone, p_bus, p_vmax, p_vmin)
    ON CONFLICT (constraint_id) DO UPDATE SET scheme_id = EXCLUDED.scheme_id, description = EXCLUDED.description,
        kind = 'voltage', anm_type = EXCLUDED.anm_type, voltage_kv = EXCLUDED.voltage_kv, limit_mw = NULL,
        trim_pct = EXCLUDED.trim_pct, release_pct = EXCLUDED.release_pct, bus_i = EXCLUDED.bus_i,
        vmax_pu = EXCLUDED.vmax_pu, vmin_pu = EXCLUDED.vmin_pu;
END
$$;

-- Statements of voltage constraints: the unit of the flow, limit and block
-- columns, and the lower limit.
ALTER TABLE constraint_statement
    ADD COLUMN unit text NOT NULL DEFAULT 'MW' CHECK (unit IN ('MW', 'kV')),
    -- the ANM acts when the flow falls below -limit_low (voltage: (1 - vmin) * base kV); NULL: no lower limit
    -- but minus limit_mw for a two-way thermal limit, none for a boundary
    ADD COLUMN limit_low double precision CHECK (limit_low > 0 AND limit_low < 'Infinity'),
    DROP CONSTRAINT constraint_statement_limit_kind_check,
    ADD CONSTRAINT constraint_statement_limit_kind_check
        CHECK (limit_kind IN ('pel', 'continuous', 'post_fault', 'boundary', 'voltage')),
    ADD CONSTRAINT constraint_statement_voltage_unit CHECK ((limit_kind = 'voltage') = (unit = 'kV')),
    ADD CONSTRAINT constraint_statement_voltage_low CHECK ((unit = 'kV') = (limit_low IS NOT NULL)),
    ADD CONSTRAINT constraint_statement_unit_key UNIQUE (run_id, constraint_id, sp, unit);

-- A site row carries its statement's unit (the foreign key keeps the two
-- equal), so the MW bound can stay a CHECK.
ALTER TABLE constraint_statement_site
    ADD COLUMN unit text NOT NULL DEFAULT 'MW',
    DROP CONSTRAINT constraint_statement_site_sensitivity_check,
    ADD CONSTRAINT constraint_statement_site_sensitivity_check
        CHECK (sensitivity > '-Infinity' AND sensitivity < 'Infinity' AND
               (unit = 'kV' OR (sensitivity >= -1 AND sensitivity <= 1))),
    ADD CONSTRAINT constraint_statement_site_unit_fk FOREIGN KEY (run_id, constraint_id, sp, unit)
        REFERENCES constraint_statement (run_id, constraint_id, sp, unit) ON DELETE CASCADE;

GRANT SELECT ON anm_constraint TO pcf_ingest, pcf_engine, pcf_planner;
REVOKE ALL ON FUNCTION anm_voltage_constraint_upsert(text, text, text, text, bigint, double precision,
    double precision, double precision, double precision, text) FROM PUBLIC;
