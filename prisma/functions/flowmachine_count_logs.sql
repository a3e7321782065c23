-- flowmachine_count_logs() -> trigger
--
-- Keeps the log part of workflow_counts (migration workflow_counts): after every INSERT statement on
-- execution_logs, appends to workflow_count_deltas how many entries of each type each step of each
-- version got. The version is the execution's when the entry is written (a move to another version
-- leaves what happened before it counted under the old one).
--
-- Input: the statement's transition table new_rows.
-- Output: nothing.
-- Invariants:
--   - Counts entries with a step only, and an action's `action_started` of its first attempt only, so
--     each execution counts once per step it entered, completed, skipped or failed (retries do not
--     count again; a bulk retry of a failed execution enters its step again and counts again).
--   - Only appends: a commit never waits on another's counter row.
-- Callers: the trigger below.
CREATE OR REPLACE FUNCTION flowmachine_count_logs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO workflow_count_deltas (workflow_id, workflow_version_id, step_id, event_type, n)
    SELECT e.workflow_id, e.workflow_version_id, l.step_id, l.event_type, count(*)
    FROM new_rows l JOIN executions e ON e.id = l.execution_id
    WHERE l.step_id IS NOT NULL
      AND NOT (l.event_type = 'action_started' AND flowmachine_count_attempt(l.details) > 1)
    GROUP BY 1, 2, 3, 4;
  RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER flowmachine_count_logged AFTER INSERT ON execution_logs
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION flowmachine_count_logs();
