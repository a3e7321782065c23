-- flowmachine_log_partitions(p_now, p_ahead) -> integer
--
-- Creates the monthly partitions of execution_logs and contact_events (migration partitioned_logs) for
-- the month of p_now and the p_ahead months after it, where missing. Months are UTC calendar months; a
-- partition is named `<table>_pYYYYMM` (flowmachine_drop_log_partitions reads the month from the name).
--
-- Input: p_now, the caller's clock; p_ahead, how many months after the current one exist ahead (2).
-- Returns: how many partitions it created.
-- Invariants:
--   - No insert ever fails for want of a partition: the DEFAULT partition takes rows outside every month
--     created. Rows the default holds in a month being created (written with a clock ahead of the
--     partitions) move into the new partition first, as Postgres refuses to create a partition whose
--     rows are in the default; they are inserted into the partition directly, so the statement triggers
--     of the parent (the stats counters) do not count them again.
--   - One creator at a time (a transaction-scoped advisory lock), so two sweepers never race on a name.
--   - Creating a partition locks the parent briefly; the wait for that lock is bounded (lock_timeout
--     2 s) so inserts never queue long behind it: a busy table fails the call, retried at the next sweep
--     (months are created two ahead, so there is time).
-- Callers: src/db/migrate.ts (after the function files), src/sql/partitions.ts (the sweeper).
CREATE OR REPLACE FUNCTION flowmachine_log_partitions(p_now timestamptz, p_ahead integer DEFAULT 2)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  v_table text;
  v_column text;
  v_month timestamptz;
  v_name text;
  v_stray boolean;
  v_created integer := 0;
BEGIN
  PERFORM pg_advisory_xact_lock(72707003);
  PERFORM set_config('lock_timeout', '2s', true);
  FOREACH v_table IN ARRAY ARRAY['execution_logs', 'contact_events'] LOOP
    v_column := CASE v_table WHEN 'execution_logs' THEN 'timestamp' ELSE 'created_at' END;
    FOR i IN 0 .. p_ahead LOOP
      v_month := date_trunc('month', p_now AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' + make_interval(months => i);
      v_name := v_table || '_p' || to_char(v_month AT TIME ZONE 'UTC', 'YYYYMM');
      CONTINUE WHEN to_regclass(quote_ident(v_name)) IS NOT NULL;
      EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I WHERE %I >= $1 AND %I < $2)', v_table || '_default', v_column, v_column)
        INTO v_stray USING v_month, v_month + interval '1 month';
      IF v_stray THEN
        EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS)', v_name, v_table);
        EXECUTE format('WITH moved AS (DELETE FROM %I WHERE %I >= $1 AND %I < $2 RETURNING *) INSERT INTO %I SELECT * FROM moved',
          v_table || '_default', v_column, v_column, v_name) USING v_month, v_month + interval '1 month';
        EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
          v_table, v_name, v_month, v_month + interval '1 month');
      ELSE
        EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
          v_name, v_table, v_month, v_month + interval '1 month');
      END IF;
      v_created := v_created + 1;
    END LOOP;
  END LOOP;
  RETURN v_created;
END $$;
