-- flowmachine_fold_counts(p_limit) -> integer
--
-- Folds the oldest p_limit deltas of workflow_count_deltas into workflow_counts (migration
-- workflow_counts), in one statement: they are deleted and added in the same transaction, so a reader
-- (counts plus deltas, in one snapshot) sees each change exactly once, before or after.
--
-- Input: p_limit, the most deltas folded by one call (bounds the transaction).
-- Returns: how many deltas were folded; 0 when another process is folding (the advisory lock is taken
--   without waiting: one folder at a time, so two never update the same counter rows).
-- Invariants:
--   - Sum over counts and deltas is unchanged by a fold.
--   - Deltas of a version that no longer exists (its workflow was deleted) are dropped.
-- Callers: src/sql/workflow-stats.ts (foldCounts), run by every process's count folder.
CREATE OR REPLACE FUNCTION flowmachine_fold_counts(p_limit integer) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  v_folded integer;
BEGIN
  IF NOT pg_try_advisory_xact_lock(72707002) THEN
    RETURN 0;
  END IF;
  WITH folded AS (
    DELETE FROM workflow_count_deltas WHERE id IN (SELECT id FROM workflow_count_deltas ORDER BY id LIMIT p_limit)
    RETURNING *
  ), summed AS (
    SELECT workflow_id, workflow_version_id, status, step_id, completion_reason, event_type, sum(n) AS n, count(*) AS deltas
    FROM folded GROUP BY 1, 2, 3, 4, 5, 6
  ), stored AS (
    INSERT INTO workflow_counts (workflow_id, workflow_version_id, status, step_id, completion_reason, event_type, n)
      SELECT s.workflow_id, s.workflow_version_id, s.status, s.step_id, s.completion_reason, s.event_type, s.n FROM summed s
      WHERE s.n <> 0 AND EXISTS (SELECT 1 FROM workflow_versions v WHERE v.id = s.workflow_version_id)
      ORDER BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (workflow_id, workflow_version_id, status, step_id, completion_reason, event_type)
      DO UPDATE SET n = workflow_counts.n + excluded.n
  )
  SELECT coalesce(sum(deltas), 0)::integer INTO v_folded FROM summed;
  RETURN v_folded;
END $$;
