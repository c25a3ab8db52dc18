-- roles.sql -- login roles for the PCF services and planners (docs/operations.md).
--
-- The schema migrations (sql/001_core.sql) create three NOLOGIN group roles
-- and grant them table privileges:
--   pcf_ingest   read the model; write feeds, quarantine, ingest batches; queue runs
--   pcf_engine   read the model and feeds; write runs, results and the run queue
--   pcf_planner  read everything; write nothing
-- This file creates one LOGIN role per service and makes it a member of the
-- group it needs, so privileges stay in the migrations and a login role only
-- says "who".  The publisher reads results and the register and writes
-- nothing, so it gets pcf_planner; planners' own read-only login gets the same.
--
-- Apply it as a superuser (or a role with CREATEROLE) after `pcf-db migrate`,
-- in the PCF database:
--     psql -v ON_ERROR_STOP=1 -d pcf -f deploy/roles.sql
-- It is idempotent: re-running it changes nothing.  It sets no passwords:
-- use peer or certificate authentication in pg_hba.conf, or set one with
-- `\password pcf_ingest_svc` and keep it in ~/.pgpass of the service user.
--
-- Roles are cluster-wide; the CONNECT grants below apply to the current
-- database only, so run the file in every database the services use.

DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT * FROM (VALUES
            ('pcf_ingest_svc',  'pcf_ingest'),
            ('pcf_engine_svc',  'pcf_engine'),
            ('pcf_publish_svc', 'pcf_planner'),
            ('pcf_planner_ro',  'pcf_planner')) AS t(login, grp)
    LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r.grp) THEN
            RAISE EXCEPTION 'group role % is missing: run pcf-db migrate first', r.grp;
        END IF;
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r.login) THEN
                -- INHERIT so the group's privileges apply without SET ROLE;
                -- nothing else: no superuser, no role or database creation.
                EXECUTE format('CREATE ROLE %I LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION',
                               r.login);
            END IF;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;  -- another session created it at the same moment
        END;
        -- A role created by hand earlier might carry more; put it back.
        EXECUTE format('ALTER ROLE %I LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION',
                       r.login);
        EXECUTE format('GRANT %I TO %I', r.grp, r.login);
        EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), r.login);
    END LOOP;
END
$$;

-- Planners run ad-hoc queries: a runaway one must not hold the results
-- tables or the server for long.
ALTER ROLE pcf_planner_ro SET statement_timeout = '5min';
ALTER ROLE pcf_planner_ro SET default_transaction_read_only = on;
ALTER ROLE pcf_publish_svc SET default_transaction_read_only = on;
