-- flowmachine_admit_waiting(p_account, p_limit, p_shard) -> TABLE (execution_id, execution_version)
--
-- Admits up to p_limit executions waiting in the account's line (QUEUED and waiting), first come first
-- served (executions.seq), while the account has free slots.
--
-- Input:
--   p_account  accounts.id
--   p_limit    at most this many admissions
--   p_shard    NULL: take slots with flowmachine_take_slot; else only slots of that shard, which the caller
--              holds locked (flowmachine_commit giving a slot back)
-- Returns: one row per admitted execution, now ACTIVE with its slot's shard, and its new version (the
--   caller enqueues its job at that version).
-- Invariants: waiting executions are locked with SKIP LOCKED only, so admission never waits for a step
-- that holds one; an execution is admitted only with a slot taken in the same transaction.
-- Callers: src/engine/admission.ts (the sweeper's line rebuild) and flowmachine_commit.
CREATE OR REPLACE FUNCTION flowmachine_admit_waiting(p_account uuid, p_limit integer, p_shard smallint DEFAULT NULL)
RETURNS TABLE (execution_id uuid, execution_version integer)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  next_id uuid;
  next_version integer;
  v_shard smallint;
BEGIN
  FOR i IN 1..p_limit LOOP
    SELECT e.id, e.version INTO next_id, next_version FROM executions e
      WHERE e.account_id = p_account AND e.status = 'QUEUED' AND e.waiting
      ORDER BY e.seq LIMIT 1 FOR UPDATE SKIP LOCKED;
    EXIT WHEN next_id IS NULL;
    IF p_shard IS NULL THEN
      v_shard := flowmachine_take_slot(p_account, false);
    ELSE
      UPDATE account_slots SET used = used + 1 WHERE account_id = p_account AND shard = p_shard AND used < quota RETURNING shard INTO v_shard;
    END IF;
    EXIT WHEN v_shard IS NULL;
    -- Admission starts the execution: it is at its first step at least (steps are numbered from 1).
    UPDATE executions SET status = 'ACTIVE', waiting = false, slot_shard = v_shard, version = next_version + 1,
      current_step_index = greatest(current_step_index, 1), updated_at = now() WHERE id = next_id;
    execution_id := next_id;
    execution_version := next_version + 1;
    RETURN NEXT;
  END LOOP;
END $$;
