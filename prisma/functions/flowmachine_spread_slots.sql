-- flowmachine_spread_slots(p_account) -> void
--
-- Sets the quotas of the account's slot shards (account_slots) to add up to its limit. Each shard keeps
-- room for what it uses; free slots are spread evenly over the first flowmachine_slot_shards(limit)
-- shards, creating them when missing.
--
-- Input:   p_account  accounts.id
-- Returns: nothing
-- Invariants:
--   - sum(quota) over the account's shards = its limit, so the account never has more ACTIVE executions
--     than its limit; quota >= used on every shard.
--   - An account using more than its limit (lowered below what is in use) gets no quota at all, so no slot
--     is handed out, until the sweeper finds it back under its limit and spreads its slots again.
--   - Locks every shard of the account in shard order before reading the limit.
-- Callers: the accounts_spread_slots trigger (the account row already locked), the sweeper (src/engine/sweeper.ts).
CREATE OR REPLACE FUNCTION flowmachine_spread_slots(p_account uuid) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  v_limit integer;
  v_shards integer;
  v_used integer;
  v_spare integer;
BEGIN
  -- The limit is read once the shards are locked, so of two spreads at once the last sees the last limit.
  PERFORM 1 FROM account_slots WHERE account_id = p_account ORDER BY shard FOR UPDATE;
  SELECT concurrent_executions_per_account INTO v_limit FROM accounts WHERE id = p_account;
  v_shards := flowmachine_slot_shards(v_limit);
  INSERT INTO account_slots (account_id, shard) SELECT p_account, g FROM generate_series(0, v_shards - 1) g ON CONFLICT DO NOTHING;
  SELECT sum(used) INTO v_used FROM account_slots WHERE account_id = p_account;
  v_spare := v_limit - v_used;
  UPDATE account_slots SET quota = CASE WHEN v_spare < 0 THEN 0
      ELSE used + CASE WHEN shard < v_shards THEN v_spare / v_shards + (CASE WHEN shard < v_spare % v_shards THEN 1 ELSE 0 END) ELSE 0 END END
    WHERE account_id = p_account;
END $$;
