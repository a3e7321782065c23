-- The admin notification of a failure survives the worker that committed the failure. The commit that
-- fails an execution of an account with error notifications on sets notify_pending (flowmachine_commit,
-- p_set key notifyPending, as redefined by migration account_slot_shards); the notification is
-- sent (with its own idempotency key) and then logged by flowmachine_log_notification, which clears the
-- flag. A worker that dies in between leaves the flag set, and the sweeper sends the notification again,
-- with the same key, once the failure is older than the time a worker takes to notify.
ALTER TABLE "executions" ADD COLUMN "notify_pending" BOOLEAN NOT NULL DEFAULT false;
CREATE INDEX "executions_notify_pending_idx" ON "executions"("finished_at") WHERE "notify_pending";

-- Logs the notification of the failure that left the execution at p_version, once: of a worker and the
-- sweeper notifying the same failure, only the first to get here logs (and clears the flag). Returns
-- whether it logged.
CREATE FUNCTION flowmachine_log_notification(p_id uuid, p_version integer, p_event text, p_status text, p_details jsonb)
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
