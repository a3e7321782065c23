-- flowmachine_enroll(p_account, p_workflow, p_version_id, p_version, p_contact, p_reentry, p_window_ms,
--                    p_snapshot, p_total_steps, p_goal_event, p_payload, p_trace, p_now)
--   -> TABLE (kind, execution)
--
-- Enrolls a contact in a workflow: checks the pair's latest execution (deduplication window, reentry
-- rule) and, when it may start, inserts the execution (QUEUED) with its execution_started log entry.
--
-- Input:
--   p_account, p_workflow, p_contact  who is enrolled where (checked by the caller, flowmachine_trigger)
--   p_version_id, p_version           the workflow version the execution runs
--   p_reentry     'after_completion', 'always' or 'never'
--   p_window_ms   a running execution of the pair younger than this is a duplicate
--   p_snapshot, p_total_steps, p_goal_event, p_payload, p_trace  the new execution's initial values
--   p_now         the caller's clock (created_at, updated_at, the window)
-- Returns one row: 'started' with the new execution, or 'duplicate' / 'already_enrolled' with the latest
--   one (nothing written).
-- Invariant: of concurrent triggers of one workflow and contact, at most one starts an execution within
--   the window. They are serialised by a transaction advisory lock on the pair, and each statement of a
--   plpgsql function under READ COMMITTED takes a new snapshot, so the check made after the lock sees
--   every execution committed by a trigger that held it before.
CREATE OR REPLACE FUNCTION flowmachine_enroll(
  p_account uuid, p_workflow uuid, p_version_id uuid, p_version integer, p_contact uuid, p_reentry text, p_window_ms integer,
  p_snapshot jsonb, p_total_steps integer, p_goal_event text, p_payload jsonb, p_trace jsonb, p_now timestamptz)
RETURNS TABLE (kind text, execution uuid)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  latest_id uuid;
  latest_status text;
  latest_created timestamptz;
  running boolean;
  new_id uuid := gen_random_uuid();
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended(p_workflow::text || ':' || p_contact::text, 0));
  SELECT e.id, e.status, e.created_at INTO latest_id, latest_status, latest_created FROM executions e
    WHERE e.workflow_id = p_workflow AND e.contact_id = p_contact ORDER BY e.created_at DESC LIMIT 1;
  IF FOUND THEN
    running := latest_status IN ('QUEUED', 'ACTIVE', 'PAUSED');
    IF running AND p_now - latest_created < make_interval(secs => p_window_ms / 1000.0) THEN
      RETURN QUERY SELECT 'duplicate'::text, latest_id;
      RETURN;
    END IF;
    IF p_reentry = 'never' OR (p_reentry = 'after_completion' AND running) THEN
      RETURN QUERY SELECT 'already_enrolled'::text, latest_id;
      RETURN;
    END IF;
  END IF;
  INSERT INTO executions (id, account_id, workflow_id, workflow_version_id, contact_id, status, snapshot, total_steps, goal_event,
                          payload, trace_context, created_at, updated_at)
    VALUES (new_id, p_account, p_workflow, p_version_id, p_contact, 'QUEUED', p_snapshot, p_total_steps, p_goal_event,
            p_payload, p_trace, p_now, p_now);
  INSERT INTO execution_logs (execution_id, account_id, workflow_id, contact_id, event_type, status, step_index, timestamp, details)
    VALUES (new_id, p_account, p_workflow, p_contact, 'execution_started', 'QUEUED', 0, p_now, jsonb_build_object('workflow_version', p_version));
  RETURN QUERY SELECT 'started'::text, new_id;
END $$;
