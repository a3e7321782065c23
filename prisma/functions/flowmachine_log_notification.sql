-- flowmachine_log_notification(p_id, p_version, p_attempt, p_event, p_status, p_details, p_next_at) -> boolean
--
-- Logs one attempt at notifying the account's admin of the failure that left the execution at p_version.
-- The commit that fails an execution of an account with error notifications on sets notify_pending
-- (flowmachine_commit, p_set key notifyPending); each attempt is sent with the failure's own idempotency
-- key and then logged here. A transient failure keeps the notification pending until p_next_at, when the
-- sweeper makes the next attempt (NOTIFY_MAX_ATTEMPTS at most).
--
-- Input:
--   p_id, p_version  the failed execution and the version its failure was committed at
--   p_attempt        attempts already logged for this failure (0 for the first)
--   p_event, p_status, p_details  the execution_logs row (notification_sent or notification_failed)
--   p_next_at        when to try again (stays pending), or NULL when settled: sent, failed permanently,
--                    or out of attempts (notify_pending is cleared)
-- Returns: whether it logged (false: that attempt was logged already, or the execution moved on).
-- Invariant: each attempt is logged exactly once: of a worker and a sweeper (or two sweepers) making the
--   same attempt, the conditional UPDATE lets only the first through.
-- Callers: src/engine/notify.ts.
DROP FUNCTION IF EXISTS flowmachine_log_notification(uuid, integer, text, text, jsonb);
CREATE OR REPLACE FUNCTION flowmachine_log_notification(p_id uuid, p_version integer, p_attempt integer, p_event text, p_status text, p_details jsonb, p_next_at timestamptz)
RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
  UPDATE executions SET notify_pending = p_next_at IS NOT NULL, notify_attempts = p_attempt + 1, notify_after = p_next_at
    WHERE id = p_id AND version = p_version AND notify_pending AND notify_attempts = p_attempt;
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  INSERT INTO execution_logs (execution_id, account_id, workflow_id, contact_id, event_type, status, details)
    SELECT e.id, e.account_id, e.workflow_id, e.contact_id, p_event, p_status, p_details FROM executions e WHERE e.id = p_id;
  RETURN true;
END $$;
