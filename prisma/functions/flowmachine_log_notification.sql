-- flowmachine_log_notification(p_id, p_version, p_event, p_status, p_details) -> boolean
--
-- Logs the admin notification of the failure that left the execution at p_version, once, and clears
-- executions.notify_pending. The commit that fails an execution of an account with error notifications
-- on sets notify_pending (flowmachine_commit, p_set key notifyPending); the notification is sent with its
-- own idempotency key and then logged here. A worker that dies in between leaves the flag set, and the
-- sweeper sends the notification again, with the same key, once the failure is older than the time a
-- worker takes to notify.
--
-- Input:
--   p_id, p_version  the failed execution and the version its failure was committed at
--   p_event, p_status, p_details  the execution_logs row to insert
-- Returns: whether it logged (false: already logged, or the execution moved on).
-- Invariant: of a worker and the sweeper notifying the same failure, only the first to get here logs
--   (the flag is cleared by a conditional UPDATE, which the second waits for and then finds cleared).
-- Callers: src/engine/notify.ts.
CREATE OR REPLACE FUNCTION flowmachine_log_notification(p_id uuid, p_version integer, p_event text, p_status text, p_details jsonb)
RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
  UPDATE executions SET notify_pending = false WHERE id = p_id AND version = p_version AND notify_pending;
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  INSERT INTO execution_logs (execution_id, account_id, workflow_id, contact_id, event_type, status, details)
    SELECT e.id, e.account_id, e.workflow_id, e.contact_id, p_event, p_status, p_details FROM executions e WHERE e.id = p_id;
  RETURN true;
END $$;
