-- flowmachine_count_as(r executions)
--   -> TABLE (workflow_id, workflow_version_id, status, step_id, completion_reason)
--
-- The key of workflow_counts an execution row is counted under (migration workflow_counts): a running
-- execution (QUEUED, ACTIVE, PAUSED: src/vocabulary.ts RUNNING_STATUSES) at the state of its snapshot,
-- the step it is at or waits on; an ended one by its completion reason, without a step.
--
-- Input: a row of executions. Returns one row. IMMUTABLE: it reads nothing but its argument, so the
-- triggers' statements inline it.
-- Callers: flowmachine_count_executions, flowmachine_rebuild_counts (sorts before them, so it exists
-- before the triggers that use it).
CREATE OR REPLACE FUNCTION flowmachine_count_as(r executions)
RETURNS TABLE (workflow_id uuid, workflow_version_id uuid, status text, step_id text, completion_reason text)
LANGUAGE sql IMMUTABLE AS $$
  SELECT r.workflow_id, r.workflow_version_id, r.status,
    CASE WHEN r.status IN ('QUEUED', 'ACTIVE', 'PAUSED') THEN coalesce(r.snapshot->>'value', '') ELSE '' END,
    CASE WHEN r.status IN ('QUEUED', 'ACTIVE', 'PAUSED') THEN '' ELSE coalesce(r.completion_reason, '') END
$$;
