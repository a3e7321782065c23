-- flowmachine_slot_shards(p_limit) -> integer
--
-- How many slot shards an account with a concurrency limit of p_limit spreads its free slots over: one per
-- 64 slots, at least 1, at most 16. So an account of up to 127 slots has one shard, an exact counter.
--
-- Input:   p_limit  accounts.concurrent_executions_per_account
-- Returns: the number of shards, 1..16
-- A SQL-language function, IMMUTABLE: Postgres checks its body when the file is applied.
CREATE OR REPLACE FUNCTION flowmachine_slot_shards(p_limit integer) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$ SELECT least(16, greatest(1, p_limit / 64)) $$;
