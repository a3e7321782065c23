-- flowmachine_trigger(p_account, p_workflow, p_contact, p_version_id, p_reentry, p_window_ms, p_snapshot,
--                     p_total_steps, p_goal_event, p_payload, p_trace, p_now)
--   -> TABLE (kind, execution, version_id)
--
-- A trigger in one call, for a caller that has compiled the workflow version it expects to be current:
-- checks the workflow (in the account), the contact (flowmachine_contact_guard) and their states in
-- the order the API answers them, then, when the workflow's current version is p_version_id, enrolls
-- exactly as flowmachine_enroll does, in the same transaction.
--
-- Input: as flowmachine_enroll; p_version_id is the version the caller compiled.
-- Returns one row:
--   kind 'workflow_not_found', 'contact_not_found', 'inactive' or 'opted_out': nothing written;
--   'stale': the current version is not p_version_id (version_id names the current one, NULL when the
--     workflow has no row for it): the caller compiles that version and calls again;
--   or what flowmachine_enroll returned ('started', 'duplicate', 'already_enrolled') with the execution.
--   version_id is the workflow's current version in every case but 'workflow_not_found'.
-- Invariant: the current version is read after flowmachine_current_version_lock (shared), held to the
--   end of the transaction, so a move publish either waits for this trigger's execution to commit (and
--   moves it) or has committed before the version is read (and the execution starts on its version).
-- Callers: src/engine/trigger.ts (alone or many in one statement).
CREATE OR REPLACE FUNCTION flowmachine_trigger(
  p_account uuid, p_workflow uuid, p_contact uuid, p_version_id uuid, p_reentry text, p_window_ms integer,
  p_snapshot jsonb, p_total_steps integer, p_goal_event text, p_payload jsonb, p_trace jsonb, p_now timestamptz)
RETURNS TABLE (kind text, execution uuid, version_id uuid)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_status text;
  v_current_id uuid;
  v_current_version integer;
  v_guard text;
BEGIN
  -- Before the version is read, never after: see flowmachine_current_version_lock.sql.
  PERFORM flowmachine_current_version_lock(p_workflow, false);
  SELECT w.status, v.id, v.version INTO v_status, v_current_id, v_current_version FROM workflows w
    LEFT JOIN workflow_versions v ON v.workflow_id = w.id AND v.version = w.current_version
    WHERE w.id = p_workflow AND w.account_id = p_account;
  IF NOT FOUND THEN
    RETURN QUERY SELECT 'workflow_not_found'::text, NULL::uuid, NULL::uuid;
    RETURN;
  END IF;
  v_guard := flowmachine_contact_guard(p_account, p_contact);
  IF v_guard = 'contact_not_found' THEN
    RETURN QUERY SELECT v_guard, NULL::uuid, v_current_id;
  ELSIF v_status <> 'active' THEN
    RETURN QUERY SELECT 'inactive'::text, NULL::uuid, v_current_id;
  ELSIF v_guard IS NOT NULL THEN
    RETURN QUERY SELECT v_guard, NULL::uuid, v_current_id;
  ELSIF v_current_id IS DISTINCT FROM p_version_id OR v_current_id IS NULL THEN
    RETURN QUERY SELECT 'stale'::text, NULL::uuid, v_current_id;
  ELSE
    RETURN QUERY SELECT e.kind, e.execution, v_current_id FROM flowmachine_enroll(p_account, p_workflow, v_current_id, v_current_version,
      p_contact, p_reentry, p_window_ms, p_snapshot, p_total_steps, p_goal_event, p_payload, p_trace, p_now) AS e;
  END IF;
END $$;
