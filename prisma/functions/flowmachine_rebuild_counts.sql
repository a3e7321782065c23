-- flowmachine_rebuild_counts(p_workflow) -> void
--
-- Recomputes one workflow's workflow_counts from its executions and their logs (migration
-- workflow_counts): the counters are derived data, and this is how they are brought back in line
-- (a database that had executions before the counters, or a repair).
--
-- Input: p_workflow, the workflow.
-- Invariants:
--   - Exact under concurrent commits: the deltas it deletes and the rows it counts are read by one
--     statement, so a change committed after that snapshot keeps its delta and is folded later, and
--     one committed before it is counted once. The fold's advisory lock keeps folds out meanwhile.
--   - Log entries count under their execution's current version (the triggers count them under the
--     version of when they were written; the two differ only for executions moved to another version).
-- Callers: this file (every workflow when the file is applied), operators.
CREATE OR REPLACE FUNCTION flowmachine_rebuild_counts(p_workflow uuid) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_advisory_xact_lock(72707002);
  DELETE FROM workflow_counts WHERE workflow_id = p_workflow;
  WITH gone AS (
    DELETE FROM workflow_count_deltas WHERE workflow_id = p_workflow
  )
  INSERT INTO workflow_counts (workflow_id, workflow_version_id, status, step_id, completion_reason, event_type, n)
    SELECT k.workflow_id, k.workflow_version_id, k.status, k.step_id, k.completion_reason, '', count(*)
      FROM executions r, LATERAL flowmachine_count_as(r) k WHERE r.workflow_id = p_workflow
      GROUP BY 1, 2, 3, 4, 5
    UNION ALL
    SELECT e.workflow_id, e.workflow_version_id, '', l.step_id, '', l.event_type, count(*)
      FROM execution_logs l JOIN executions e ON e.id = l.execution_id
      WHERE e.workflow_id = p_workflow AND l.step_id IS NOT NULL
        AND NOT (l.event_type = 'action_started' AND flowmachine_count_attempt(l.details) > 1)
      GROUP BY 1, 2, 3, 4, 5, 6;
END $$;

-- The counters start from what is already stored (the triggers count everything after this point).
SELECT flowmachine_rebuild_counts(id) FROM workflows;
