-- Admin notifications are retried. A notification that fails transiently (HTTP 5xx, 429, timeout,
-- connection trouble; SMTP 4xx) stays pending and is sent again by the sweeper once notify_after has
-- come, with the same idempotency key, until it is delivered, fails permanently, or has used its
-- attempts (NOTIFY_MAX_ATTEMPTS). notify_attempts counts the attempts logged for the failure now
-- pending; notify_after is when the next one is due (NULL before the first: the sweeper then waits
-- for the failure's worker, see src/engine/sweeper.ts).
ALTER TABLE "executions" ADD COLUMN "notify_attempts" INTEGER NOT NULL DEFAULT 0;
ALTER TABLE "executions" ADD COLUMN "notify_after" TIMESTAMPTZ(3);

-- A new failure to notify starts with no attempts. flowmachine_commit clears notify_pending on every
-- other commit, so each failure to notify sets it from false to true; this resets the counters then,
-- whatever an earlier failure of the execution (before a manual retry) left in them.
CREATE FUNCTION flowmachine_reset_notification() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.notify_attempts := 0;
  NEW.notify_after := NULL;
  RETURN NEW;
END $$;
CREATE TRIGGER executions_reset_notification BEFORE UPDATE OF notify_pending ON executions
  FOR EACH ROW WHEN (NEW.notify_pending AND NOT OLD.notify_pending) EXECUTE FUNCTION flowmachine_reset_notification();

-- flowmachine_log_notification(p_id, p_version, p_attempt, p_event, p_status, p_details, p_next_at) → boolean
-- Logs one attempt at notifying the failure that left the execution at p_version.
--   p_attempt  attempts already logged for this failure (0 for the first); the attempt is logged only
--              if it still is the next one, so of a worker and a sweeper (or two sweepers) making the
--              same attempt exactly one logs it.
--   p_event, p_status, p_details  the log entry (notification_sent or notification_failed).
--   p_next_at  when to try again (the notification stays pending), or NULL when it is settled: sent,
--              failed permanently, or out of attempts (notify_pending is cleared).
-- Returns whether it logged.
DROP FUNCTION flowmachine_log_notification(uuid, integer, text, text, jsonb);
CREATE FUNCTION flowmachine_log_notification(p_id uuid, p_version integer, p_attempt integer, p_event text, p_status text, p_details jsonb, p_next_at timestamptz)
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
