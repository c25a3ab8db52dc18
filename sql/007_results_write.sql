-- 007_results_write.sql -- drop a foreign key another one already implies, so
-- writing a run's results costs the server one per-row check less.
--
-- constraint_statement_site had two keys into constraint_statement:
-- (run_id, constraint_id, sp) from 003 and (run_id, constraint_id, sp, unit)
-- from 006.  unit is NOT NULL and constraint_statement's (run_id,
-- constraint_id, sp) is its primary key, so a row that satisfies the 4-column
-- key satisfies the 3-column one; and a statement's deletion cascades to its
-- site rows through either.  Each key is a trigger per inserted row: the
-- 8,784 site rows of a day-ahead run of the demo zone spent about 59 of the
-- server's 285 ms of writing in the redundant one (EXPLAIN ANALYZE, issue 5).
-- tests/test_results_write.c checks that what the dropped key refused is
-- still refused and that deleting a run still removes its site rows.

ALTER TABLE constraint_statement_site DROP CONSTRAINT constraint_statement_site_run_id_constraint_id_sp_fkey;
