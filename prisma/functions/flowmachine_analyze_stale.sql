-- flowmachine_analyze_stale(p_min_rows, p_fraction) -> SETOF text
--
-- Keeps the planner's statistics of the engine's tables current where autovacuum does not (turned off,
-- or behind a table that grows fast): analyzes each table of the schema (log partitions included) whose
-- rows changed since its last analyze number more than p_min_rows + p_fraction × its rows.
-- Why: Postgres plans a connection's prepared statements and plpgsql statements again only when a
-- table's statistics change. Without an ANALYZE, a plan made while a table was empty serves it at a
-- million rows: measured, an enrollment's check for the pair's latest execution walking the workflow's
-- whole index (7 s for 100 contacts at 70,000 executions), a batch commit hashing the whole table.
-- Input: p_min_rows, p_fraction  the thresholds (the sweeper passes 1,000 and 0.2, so that autovacuum's
--   default, 50 + 0.1 × rows, comes first where it runs).
-- Returns the tables analyzed (or skipped, when locked), in name order; none while another process analyzes.
-- Invariant: one process at a time analyzes (transaction advisory try-lock 72707006).
-- Callers: src/sql/sweep.ts (the sweeper).
CREATE OR REPLACE FUNCTION flowmachine_analyze_stale(p_min_rows bigint, p_fraction real) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
  v_table text;
BEGIN
  IF NOT pg_try_advisory_xact_lock(72707006) THEN
    RETURN;
  END IF;
  FOR v_table IN
    SELECT s.relname FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
    WHERE s.schemaname = current_schema() AND c.relkind = 'r'
      AND s.n_mod_since_analyze > p_min_rows + p_fraction * greatest(c.reltuples, 0)
    ORDER BY s.relname
  LOOP
    -- A table locked by a VACUUM or DDL is skipped (and analyzed by a later call).
    EXECUTE format('ANALYZE (SKIP_LOCKED) %I', v_table);
    RETURN NEXT v_table;
  END LOOP;
END $$;
