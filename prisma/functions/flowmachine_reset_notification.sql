-- flowmachine_reset_notification() -> trigger, and the trigger executions_reset_notification that runs it
--
-- A new failure to notify starts with no attempts. flowmachine_commit clears notify_pending on every
-- other commit, so each failure to notify sets it from false to true; this resets notify_attempts and
-- notify_after then, whatever an earlier failure of the execution (before a manual retry) left in them.
--
-- Input:   NEW  the executions row being written
-- Returns: NEW, with the counters reset (a BEFORE trigger)
-- The trigger is kept here with its function (CREATE OR REPLACE TRIGGER needs the function to exist).
CREATE OR REPLACE FUNCTION flowmachine_reset_notification() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.notify_attempts := 0;
  NEW.notify_after := NULL;
  RETURN NEW;
END $$;

CREATE OR REPLACE TRIGGER executions_reset_notification BEFORE UPDATE OF notify_pending ON executions
  FOR EACH ROW WHEN (NEW.notify_pending AND NOT OLD.notify_pending) EXECUTE FUNCTION flowmachine_reset_notification();
