-- 004_results_detail.sql -- the figures of a constraint statement and block
-- that 003 did not keep, so the publisher no longer sends them as 0.
--
-- Standard errors of quantiles are the distribution-free order-statistic
-- ones of forecaster/mcstat.h.  The columns are nullable only because runs
-- written before this migration do not have them; the engine fills every
-- one (the fault-flow SEs exactly when the fault flows are there).

ALTER TABLE constraint_statement
    ADD COLUMN post_fault_limit_mw   double precision CHECK (post_fault_limit_mw > 0),
    -- P(the ANM acts on the constraint AND the binding fault is in force)
    ADD COLUMN p_binding_fault       probability,
    ADD COLUMN p_binding_fault_se    std_error,
    ADD COLUMN flow_intact_p10_se_mw std_error,
    ADD COLUMN flow_intact_p50_se_mw std_error,
    ADD COLUMN flow_intact_p90_se_mw std_error,
    ADD COLUMN flow_fault_p10_se_mw  std_error,
    ADD COLUMN flow_fault_p50_se_mw  std_error,
    ADD COLUMN flow_fault_p90_se_mw  std_error,
    ADD CONSTRAINT constraint_statement_binding_within_acts CHECK (p_binding_fault <= p_anm_acts),
    ADD CONSTRAINT constraint_statement_binding_se CHECK ((p_binding_fault IS NULL) = (p_binding_fault_se IS NULL)),
    ADD CONSTRAINT constraint_statement_fault_se CHECK (
        (flow_fault_p10_mw IS NOT NULL OR flow_fault_p10_se_mw IS NULL) AND
        (flow_fault_p50_mw IS NOT NULL OR flow_fault_p50_se_mw IS NULL) AND
        (flow_fault_p90_mw IS NOT NULL OR flow_fault_p90_se_mw IS NULL));

-- What the constraint does to each site: P(it curtails the site at all in
-- the SP) and the SE of the expected energy it takes.
ALTER TABLE constraint_statement_site
    ADD COLUMN expected_curtailment_se std_error,
    ADD COLUMN p_curtailed             probability,
    ADD COLUMN p_curtailed_se          std_error,
    ADD CONSTRAINT constraint_statement_site_p_se CHECK ((p_curtailed IS NULL) = (p_curtailed_se IS NULL));

ALTER TABLE constraint_block
    ADD COLUMN headroom_se_mw     std_error,
    ADD COLUMN curtailment_se_mw  std_error,
    ADD COLUMN curtailment_mwh_se std_error;
