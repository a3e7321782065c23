-- flowmachine_enroll_many(p_account, p_workflow, p_version_id, p_version, p_contacts, p_reentry, p_window_ms,
--                         p_snapshot, p_total_steps, p_goal_event, p_payload, p_traces, p_now)
--   -> TABLE (contact, kind, execution)
--
-- Bulk enrollment: enrolls each of p_contacts that passes flowmachine_contact_guard exactly as
-- flowmachine_enroll does, in the order given. The workflow (in the account, active, at p_version_id) is
-- checked by the caller for the whole request.
--
-- Input: as flowmachine_enroll, with p_contacts (uuid[]) for p_contact and p_traces (a jsonb array, one
--   trace context per contact) for p_trace.
-- Returns: one row per contact, in order: the guard's refusal ('contact_not_found', 'opted_out', with no
--   execution) or what flowmachine_enroll returned for it.
-- Invariant: callers sort p_contacts (src/engine/trigger.ts), so concurrent calls take the per-pair
--   advisory locks in one order and never deadlock.
CREATE OR REPLACE FUNCTION flowmachine_enroll_many(
  p_account uuid, p_workflow uuid, p_version_id uuid, p_version integer, p_contacts uuid[], p_reentry text, p_window_ms integer,
  p_snapshot jsonb, p_total_steps integer, p_goal_event text, p_payload jsonb, p_traces jsonb, p_now timestamptz)
RETURNS TABLE (contact uuid, kind text, execution uuid)
LANGUAGE plpgsql AS $$
DECLARE
  v_guard text;
BEGIN
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
