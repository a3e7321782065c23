-- flowmachine_count_executions() -> trigger
--
-- Keeps the executions part of workflow_counts (migration workflow_counts): after every INSERT, UPDATE
-- and DELETE statement on executions, appends to workflow_count_deltas, per (workflow, version, status,
-- step, completion reason), how many executions came in (+) and went out (-) of it.
--
-- Input: the statement's transition tables new_rows / old_rows (statement-level AFTER triggers, one per
--   operation: Postgres allows a transition table on a one-event trigger only).
-- Output: nothing; no row when the statement changed no counted key (most updates change the step).
-- Invariants:
--   - Every change of a row's counted key lands, in the row's own transaction: the counts of a
--     workflow are exactly its executions grouped by key (test/integration/workflow-counts.test.ts).
--   - Only appends: a commit never waits on another's counter row.
--   - The key of a running execution (QUEUED, ACTIVE, PAUSED; src/vocabulary.ts RUNNING_STATUSES) is its
--     snapshot's state (the step it is at) without a completion reason; of an ended one, its status and
--     completion reason without a step.
-- Callers: the triggers below.
CREATE OR REPLACE FUNCTION flowmachine_count_executions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO workflow_count_deltas (workflow_id, workflow_version_id, status, step_id, completion_reason, n)
      SELECT k.workflow_id, k.workflow_version_id, k.status, k.step_id, k.completion_reason, count(*)
      FROM new_rows r, LATERAL flowmachine_count_as(r) k
      GROUP BY 1, 2, 3, 4, 5;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO workflow_count_deltas (workflow_id, workflow_version_id, status, step_id, completion_reason, n)
      SELECT k.workflow_id, k.workflow_version_id, k.status, k.step_id, k.completion_reason, -count(*)
      FROM old_rows r, LATERAL flowmachine_count_as(r) k
      GROUP BY 1, 2, 3, 4, 5;
  ELSE
    INSERT INTO workflow_count_deltas (workflow_id, workflow_version_id, status, step_id, completion_reason, n)
      SELECT d.workflow_id, d.workflow_version_id, d.status, d.step_id, d.completion_reason, sum(d.n)
      FROM (
        SELECT k.*, 1 AS n FROM new_rows r, LATERAL flowmachine_count_as(r) k
        UNION ALL
        SELECT k.*, -1 FROM old_rows r, LATERAL flowmachine_count_as(r) k
      ) d
      GROUP BY 1, 2, 3, 4, 5
      HAVING sum(d.n) <> 0;
  END IF;
  RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER flowmachine_count_inserted AFTER INSERT ON executions
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION flowmachine_count_executions();
CREATE OR REPLACE TRIGGER flowmachine_count_updated AFTER UPDATE ON executions
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION flowmachine_count_executions();
CREATE OR REPLACE TRIGGER flowmachine_count_deleted AFTER DELETE ON executions
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION flowmachine_count_executions();
