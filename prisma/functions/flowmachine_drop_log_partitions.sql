-- flowmachine_drop_log_partitions(p_before, p_limit) -> TABLE (table_name, partition_name, rows_kept, rows_deleted)
--
-- LOG_RETENTION_DAYS: drops the monthly partitions of execution_logs and contact_events (migration
-- partitioned_logs) whose whole month ends at or before p_before, oldest first, at most p_limit per table
-- per call, so one call takes bounded time.
--
-- Running executions never lose their log: before an execution_logs partition goes, its rows of
-- executions still running (QUEUED, ACTIVE, PAUSED: src/vocabulary.ts RUNNING_STATUSES) are read, and
-- once the partition is detached they are written to the DEFAULT partition with their own ids and times
-- (directly, so the stats counters' statement triggers on the parent do not count them again). Rows the
-- default holds from before p_before are deleted once their execution has ended (or is gone): the rows
-- kept earlier, and contact events written with an old time.
-- contact_events partitions are dropped whole: an event older than the retention no longer counts as
-- "seen" (src/sql/contact-events.ts); no running execution reads old events.
--
-- Input: p_before, now minus LOG_RETENTION_DAYS; p_limit, partitions per table per call.
-- Returns: one row per partition dropped (rows_deleted NULL: the whole table) and one per default
--   partition rows were deleted from (rows_kept 0).
-- Invariants:
--   - One caller at a time: the advisory lock is tried, not waited for; a second sweeper returns nothing.
--   - The strong lock on the parent that detaching takes is held only for the detach, the copy of the
--     kept rows and the drop; reading the kept rows happens before it. The wait for it is bounded
--     (lock_timeout 2 s): a busy table fails the call, which is retried at the next sweep.
--   - log_retention.pruned_before of the table becomes at least p_before whenever rows went.
-- Callers: src/sql/partitions.ts (the sweeper, when LOG_RETENTION_DAYS is set).
CREATE OR REPLACE FUNCTION flowmachine_drop_log_partitions(p_before timestamptz, p_limit integer DEFAULT 1)
RETURNS TABLE (table_name text, partition_name text, rows_kept integer, rows_deleted integer)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_table text;
  v_column text;
  v_part record;
  v_kept execution_logs[];
  v_dropped integer;
  v_deleted integer;
BEGIN
  IF NOT pg_try_advisory_xact_lock(72707004) THEN
    RETURN;
  END IF;
  PERFORM set_config('lock_timeout', '2s', true);
  FOREACH v_table IN ARRAY ARRAY['execution_logs', 'contact_events'] LOOP
    v_column := CASE v_table WHEN 'execution_logs' THEN 'timestamp' ELSE 'created_at' END;
    v_dropped := 0;
    FOR v_part IN
      SELECT c.relname::text AS name, to_date(right(c.relname, 6), 'YYYYMM')::timestamp AT TIME ZONE 'UTC' AS month
      FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
      WHERE i.inhparent = v_table::regclass AND c.relname ~ ('^' || v_table || '_p[0-9]{6}$')
      ORDER BY c.relname
    LOOP
      EXIT WHEN v_dropped >= p_limit OR v_part.month + interval '1 month' > p_before;
      v_kept := '{}';
      IF v_table = 'execution_logs' THEN
        EXECUTE format(
          $q$SELECT coalesce(array_agg(l ORDER BY l.id), '{}') FROM %I l
             WHERE EXISTS (SELECT 1 FROM executions e WHERE e.id = l.execution_id AND e.status IN ('QUEUED', 'ACTIVE', 'PAUSED'))$q$,
          v_part.name) INTO v_kept;
      END IF;
      EXECUTE format('ALTER TABLE %I DETACH PARTITION %I', v_table, v_part.name);
      IF cardinality(v_kept) > 0 THEN
        INSERT INTO execution_logs_default SELECT * FROM unnest(v_kept);
      END IF;
      EXECUTE format('DROP TABLE %I', v_part.name);
      v_dropped := v_dropped + 1;
      PERFORM flowmachine_note_retention(v_table, p_before, 1, cardinality(v_kept));
      table_name := v_table;
      partition_name := v_part.name;
      rows_kept := cardinality(v_kept);
      rows_deleted := NULL;
      RETURN NEXT;
    END LOOP;

    -- The default partition's old rows: kept rows whose execution has ended since, stray old times.
    IF v_table = 'execution_logs' THEN
      DELETE FROM execution_logs_default l WHERE l."timestamp" < p_before
        AND NOT EXISTS (SELECT 1 FROM executions e WHERE e.id = l.execution_id AND e.status IN ('QUEUED', 'ACTIVE', 'PAUSED'));
    ELSE
      DELETE FROM contact_events_default c WHERE c.created_at < p_before;
    END IF;
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    IF v_deleted > 0 THEN
      PERFORM flowmachine_note_retention(v_table, p_before, 0, 0);
      table_name := v_table;
      partition_name := v_table || '_default';
      rows_kept := 0;
      rows_deleted := v_deleted;
      RETURN NEXT;
    END IF;
  END LOOP;
  RETURN;
END $$;
