-- flowmachine_enroll_many(p_account, p_workflow, p_version_id, p_version, p_contacts, p_reentry, p_window_ms,
--                         p_snapshot, p_total_steps, p_goal_event, p_payload, p_traces, p_now)
--   -> TABLE (contact, kind, execution)
--
-- Bulk enrollment: enrolls each of p_contacts that passes flowmachine_contact_guard exactly as
-- flowmachine_enroll does, in the order given. The workflow (in the account, active) is checked by the
-- caller for the whole request, and its version read once, before the first chunk.
--
-- Input: as flowmachine_enroll, with p_contacts (uuid[]) for p_contact and p_traces (a jsonb array, one
--   trace context per contact) for p_trace. p_version_id and the initial values are those of the version
--   the caller read; when another version is current by the time of this call (a publish committed since),
--   the contacts are enrolled in that one, with the values stored with it (workflow_versions.enrollment,
--   as flowmachine_enroll_tagged enrolls).
-- Returns: one row per contact, in order: the guard's refusal ('contact_not_found', 'opted_out', with no
--   execution) or what flowmachine_enroll returned for it.
-- Invariants:
--   - The current version is read after flowmachine_current_version_lock (shared), held to the end of the
--     transaction, so a move publish either waits for this call's executions to commit (and moves them)
--     or has committed before the version is read (and they start on its version).
--   - Callers sort p_contacts (src/engine/trigger.ts), so concurrent calls take the per-pair advisory
--     locks in one order and never deadlock.
-- Callers: src/sql/enroll-many.ts.
CREATE OR REPLACE FUNCTION flowmachine_enroll_many(
  p_account uuid, p_workflow uuid, p_version_id uuid, p_version integer, p_contacts uuid[], p_reentry text, p_window_ms integer,
  p_snapshot jsonb, p_total_steps integer, p_goal_event text, p_payload jsonb, p_traces jsonb, p_now timestamptz)
RETURNS TABLE (contact uuid, kind text, execution uuid)
LANGUAGE plpgsql AS $$
DECLARE
  v_guard text;
  v_current record;
BEGIN
  -- Before the version is read, never after: see flowmachine_current_version_lock.sql.
  PERFORM flowmachine_current_version_lock(p_workflow, false);
  SELECT v.id, v.version, v.enrollment INTO v_current FROM workflows w
    JOIN workflow_versions v ON v.workflow_id = w.id AND v.version = w.current_version WHERE w.id = p_workflow;
  IF FOUND AND v_current.id <> p_version_id THEN
    IF v_current.enrollment IS NULL THEN
      RAISE EXCEPTION 'workflow % version % has no stored enrollment values', p_workflow, v_current.version;
    END IF;
    p_version_id := v_current.id;
    p_version := v_current.version;
    p_reentry := v_current.enrollment->>'reentry';
    p_snapshot := v_current.enrollment->'snapshot';
    p_total_steps := (v_current.enrollment->>'total_steps')::integer;
    p_goal_event := v_current.enrollment->>'goal_event';
  END IF;
  FOR i IN 1..coalesce(array_length(p_contacts, 1), 0) LOOP
    v_guard := flowmachine_contact_guard(p_account, p_contacts[i]);
    IF v_guard IS NOT NULL THEN
      RETURN QUERY SELECT p_contacts[i], v_guard, NULL::uuid;
      CONTINUE;
    END IF;
    RETURN QUERY SELECT p_contacts[i], e.kind, e.execution FROM flowmachine_enroll(p_account, p_workflow, p_version_id, p_version,
      p_contacts[i], p_reentry, p_window_ms, p_snapshot, p_total_steps, p_goal_event, p_payload, p_traces -> (i - 1), p_now) e;
  END LOOP;
END $$;
