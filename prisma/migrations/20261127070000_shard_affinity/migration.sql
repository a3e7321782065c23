-- Group commit (src/db/batch.ts) admits many executions in one transaction. Each admission took the
-- emptiest shard no other transaction held, so one batch came to hold most of the account's shards until
-- its commit, the others found every shard with room held and fell back to locking them all, and two
-- batches doing so deadlocked (the one Postgres picked, and everyone after it, waited in line).
-- A transaction now keeps taking slots from the shard it took its last one from while that shard has
-- room, and only then moves to another, so a batch holds one or two shards.
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
