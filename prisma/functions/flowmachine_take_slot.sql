-- flowmachine_take_slot(p_account, p_in_line) -> smallint
--
-- Takes one of the account's concurrency slots and returns its shard, or NULL when none is free (or, with
-- p_in_line, when executions are waiting in line: they go first).
--
-- Input:
--   p_account  accounts.id
--   p_in_line  true: respect the waiting line (NULL while any execution of the account waits in it)
-- Returns: the shard whose `used` was incremented (the caller stores it in executions.slot_shard and gives
--   the slot back there), or NULL: no slot taken.
-- Invariants:
--   - Takes a slot only from a shard with used < quota, so used <= quota always holds.
--   - Lock order: a shard that no one holds (SKIP LOCKED, never waiting), or else all of the account's
--     shards in shard order, then it looks again: a slot given back meanwhile is seen, and one given back
--     later finds the execution in line. Two callers doing that at once, each holding a shard the other
--     waits for, deadlock: the one Postgres picks gets NULL (and waits in line, to be admitted by the next
--     slot given back) instead of an error.
--   - Shard affinity: a transaction keeps taking slots from the shard it took its last one from
--     (transaction setting flowmachine.slot_shard) while that shard has room, and starts from the
--     connection's own shard (backend pid) otherwise, so connections mostly update different rows and a
--     group commit (src/db/batch.ts) of many admissions holds one or two shards, not most of them.
CREATE OR REPLACE FUNCTION flowmachine_take_slot(p_account uuid, p_in_line boolean) RETURNS smallint
LANGUAGE plpgsql AS $$
DECLARE
  v_own smallint := nullif(current_setting('flowmachine.slot_shard', true), '')::smallint;
  v_shard smallint;
BEGIN
  IF p_in_line AND EXISTS (SELECT 1 FROM executions w WHERE w.account_id = p_account AND w.status = 'QUEUED' AND w.waiting) THEN
    RETURN NULL;
  END IF;
  IF v_own IS NULL THEN
    SELECT pg_backend_pid() % flowmachine_slot_shards(a.concurrent_executions_per_account) INTO v_own FROM accounts a WHERE a.id = p_account;
  END IF;
  UPDATE account_slots t SET used = t.used + 1
    WHERE t.account_id = p_account AND t.shard = (
      SELECT o.shard FROM account_slots o WHERE o.account_id = p_account AND o.used < o.quota
      ORDER BY o.shard = v_own DESC, o.quota - o.used DESC LIMIT 1 FOR UPDATE SKIP LOCKED)
    RETURNING t.shard INTO v_shard;
  IF NOT FOUND THEN
    BEGIN
      PERFORM 1 FROM account_slots WHERE account_id = p_account ORDER BY shard FOR UPDATE;
    EXCEPTION WHEN deadlock_detected THEN
      RETURN NULL;
    END;
    UPDATE account_slots t SET used = t.used + 1
      WHERE t.account_id = p_account AND t.shard = (
        SELECT o.shard FROM account_slots o WHERE o.account_id = p_account AND o.used < o.quota ORDER BY o.quota - o.used DESC LIMIT 1)
      RETURNING t.shard INTO v_shard;
  END IF;
  IF v_shard IS NOT NULL THEN
    PERFORM set_config('flowmachine.slot_shard', v_shard::text, true);
  END IF;
  RETURN v_shard;
END $$;
