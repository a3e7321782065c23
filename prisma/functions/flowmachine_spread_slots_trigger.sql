-- flowmachine_spread_slots_trigger() -> trigger, and the trigger accounts_spread_slots that runs it
--
-- After an account is created or its concurrency limit changes, spreads its slots again
-- (flowmachine_spread_slots), in the same transaction: an account always has its shards and quotas.
--
-- Input:   NEW  the accounts row written
-- Returns: NULL (an AFTER trigger)
-- Invariant: changing an account's limit locks the account row and then every shard in order; nothing
-- that holds a shard ever waits for the account row, so this never deadlocks with a commit.
-- The trigger is kept here with its function (CREATE OR REPLACE TRIGGER needs the function to exist).
CREATE OR REPLACE FUNCTION flowmachine_spread_slots_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM flowmachine_spread_slots(NEW.id);
  RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER accounts_spread_slots AFTER INSERT OR UPDATE OF concurrent_executions_per_account ON accounts
  FOR EACH ROW EXECUTE FUNCTION flowmachine_spread_slots_trigger();
