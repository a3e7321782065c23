-- An account's concurrency slots, split into shards so that executions starting and stopping at once
-- don't all queue for one counter row. Each shard counts the ACTIVE executions holding one of its slots
-- (`used`) and may hand out up to `quota`; the quotas add up to the account's limit, so the account
-- never has more ACTIVE executions than its limit. An execution remembers its slot's shard
-- (`executions.slot_shard`) and gives the slot back there. Accounts of up to 127 slots have one shard,
-- an exact counter as before; larger ones one shard per 64 slots, at most 16.
--
-- Lock order: execution, contact, then the account's shards: one that no one holds (SKIP LOCKED, so
-- never waiting), or all of them in shard order; waiting executions are locked with SKIP LOCKED only.
-- Changing an account's limit locks the account row and then every shard in order; nothing that holds
-- a shard ever waits for the account row.
CREATE TABLE "account_slots" (
    "account_id" UUID NOT NULL,
    "shard" SMALLINT NOT NULL,
    "used" INTEGER NOT NULL DEFAULT 0,
    "quota" INTEGER NOT NULL DEFAULT 0,

    CONSTRAINT "account_slots_pkey" PRIMARY KEY ("account_id","shard")
);
ALTER TABLE "account_slots" ADD CONSTRAINT "account_slots_account_id_fkey" FOREIGN KEY ("account_id") REFERENCES "accounts"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "executions" ADD COLUMN "slot_shard" SMALLINT;

CREATE FUNCTION flowmachine_slot_shards(p_limit integer) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$ SELECT least(16, greatest(1, p_limit / 64)) $$;

-- Sets the quotas of the account's shards to add up to its limit. Each shard keeps room for what it
-- uses; free slots are spread evenly over the first flowmachine_slot_shards(limit) shards. An account
-- using more than its limit (lowered below what is in use) gets no quota at all, so no slot is handed
-- out, until the sweeper finds it back under its limit and spreads its slots again.
CREATE FUNCTION flowmachine_spread_slots(p_account uuid) RETURNS void
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

CREATE FUNCTION flowmachine_spread_slots_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM flowmachine_spread_slots(NEW.id);
  RETURN NULL;
END $$;

CREATE TRIGGER accounts_spread_slots AFTER INSERT OR UPDATE OF concurrent_executions_per_account ON accounts
  FOR EACH ROW EXECUTE FUNCTION flowmachine_spread_slots_trigger();

-- Takes one of the account's slots and returns its shard, or NULL when none is free (or, with p_in_line,
-- when executions are waiting in line: they go first). It takes a slot of the first shard with room that
-- no one holds right now, this connection's own shard first, so that connections mostly update
-- different rows. When every shard with room is held (or none has room) it locks them all, in order,
-- and looks again: a slot given back meanwhile is seen, and one given back later finds this execution in
-- line. Two executions doing so at once, each holding a shard the other waits for, would deadlock: the
-- one Postgres picks waits in line instead, to be admitted by the next slot given back.
CREATE FUNCTION flowmachine_take_slot(p_account uuid, p_in_line boolean) RETURNS smallint
LANGUAGE plpgsql AS $$
DECLARE
  v_own smallint;
  v_shard smallint;
BEGIN
  IF p_in_line AND EXISTS (SELECT 1 FROM executions w WHERE w.account_id = p_account AND w.status = 'QUEUED' AND w.waiting) THEN
    RETURN NULL;
  END IF;
  SELECT pg_backend_pid() % flowmachine_slot_shards(a.concurrent_executions_per_account) INTO v_own FROM accounts a WHERE a.id = p_account;
  UPDATE account_slots t SET used = t.used + 1
    WHERE t.account_id = p_account AND t.shard = (
      SELECT o.shard FROM account_slots o WHERE o.account_id = p_account AND o.used < o.quota
      ORDER BY o.shard = v_own DESC, o.quota - o.used DESC LIMIT 1 FOR UPDATE SKIP LOCKED)
    RETURNING t.shard INTO v_shard;
  IF FOUND THEN
    RETURN v_shard;
  END IF;
  BEGIN
    PERFORM 1 FROM account_slots WHERE account_id = p_account ORDER BY shard FOR UPDATE;
  EXCEPTION WHEN deadlock_detected THEN
    RETURN NULL;
  END;
  UPDATE account_slots t SET used = t.used + 1
    WHERE t.account_id = p_account AND t.shard = (
      SELECT o.shard FROM account_slots o WHERE o.account_id = p_account AND o.used < o.quota ORDER BY o.quota - o.used DESC LIMIT 1)
    RETURNING t.shard INTO v_shard;
  RETURN v_shard;
END $$;

-- Admits up to p_limit executions waiting in the account's line, first come first served, while the
-- account has free slots (with p_shard, only slots of that shard, which the caller holds). Returns the
-- admitted executions with their new version.
DROP FUNCTION flowmachine_admit_waiting(uuid, integer);
CREATE FUNCTION flowmachine_admit_waiting(p_account uuid, p_limit integer, p_shard smallint DEFAULT NULL)
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
    UPDATE executions SET status = 'ACTIVE', waiting = false, slot_shard = v_shard, version = next_version + 1, updated_at = now() WHERE id = next_id;
    execution_id := next_id;
    execution_version := next_version + 1;
    RETURN NEXT;
  END LOOP;
END $$;

-- Commits one engine step in one call: the execution's new state (only if its version is still
-- p_version), its log entries, the contact's tag change and the account's concurrency slot.
--   p_set   new field values, camelCase keys; absent keys keep the stored value, except status and
--           notifyPending (a failure to notify, migration notification_recovery), which is cleared.
--   p_logs  log rows (jsonb array).
--   p_slot  'keep'; 'acquire' or 'acquire_in_line' (also respects the waiting line) for an execution
--           becoming ACTIVE, which instead waits in line (QUEUED, waiting) when no slot is free;
--           'release' for one leaving ACTIVE, whose slot goes to the longest waiting execution.
-- Locks are taken in the order above; a slot is given back at the end of the call, so its shard is held
-- only for the end of this call and its commit. An execution that stays ACTIVE gets its contact back as
-- committed, so its next step needs no read of its own.
CREATE OR REPLACE FUNCTION flowmachine_commit(p_id uuid, p_version integer, p_set jsonb, p_logs jsonb, p_tag_op text, p_tag text, p_slot text)
RETURNS TABLE (committed boolean, new_status text, new_waiting boolean, admitted jsonb, contact jsonb)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_account uuid;
  v_contact uuid;
  v_shard smallint;
  v_status text := p_set->>'status';
  v_waiting boolean := false;
  v_room boolean;
  v_admitted jsonb;
  v_contact_now jsonb;
BEGIN
  SELECT e.account_id, e.contact_id, e.slot_shard INTO v_account, v_contact, v_shard FROM executions e WHERE e.id = p_id AND e.version = p_version FOR UPDATE;
  IF NOT FOUND THEN
    RETURN QUERY SELECT false, NULL::text, NULL::boolean, NULL::jsonb, NULL::jsonb;
    RETURN;
  END IF;
  IF p_tag_op IS NOT NULL THEN
    UPDATE contacts SET updated_at = now(),
      tags = CASE WHEN p_tag_op = 'add' THEN array_append(array_remove(tags, p_tag), p_tag) ELSE array_remove(tags, p_tag) END
      WHERE id = v_contact;
  END IF;
  IF p_slot IN ('acquire', 'acquire_in_line') THEN
    v_shard := flowmachine_take_slot(v_account, p_slot = 'acquire_in_line');
    IF v_shard IS NULL THEN
      v_status := 'QUEUED';
      v_waiting := true;
    END IF;
  END IF;
  UPDATE executions SET
    status = v_status,
    waiting = v_waiting,
    slot_shard = CASE WHEN p_slot = 'release' THEN NULL ELSE v_shard END,
    version = p_version + 1,
    snapshot = COALESCE(p_set->'snapshot', snapshot),
    current_step_index = COALESCE((p_set->>'currentStepIndex')::integer, current_step_index),
    total_steps = COALESCE((p_set->>'totalSteps')::integer, total_steps),
    next_run_at = CASE WHEN p_set ? 'nextRunAt' THEN (p_set->>'nextRunAt')::timestamptz ELSE next_run_at END,
    completion_reason = CASE WHEN p_set ? 'completionReason' THEN p_set->>'completionReason' ELSE completion_reason END,
    retry_count = COALESCE((p_set->>'retryCount')::integer, retry_count),
    last_error = CASE WHEN p_set ? 'lastError' THEN p_set->>'lastError' ELSE last_error END,
    finished_at = COALESCE((p_set->>'finishedAt')::timestamptz, finished_at),
    notify_pending = COALESCE((p_set->>'notifyPending')::boolean, false),
    updated_at = COALESCE((p_set->>'updatedAt')::timestamptz, now())
  WHERE id = p_id;
  INSERT INTO execution_logs (execution_id, account_id, workflow_id, contact_id, event_type, status, step_index, step_id, duration_ms, timestamp, user_id, details)
    SELECT p_id, l.account_id, l.workflow_id, l.contact_id, l.event_type, l.status, l.step_index, l.step_id, l.duration_ms, l.timestamp, l.user_id, l.details
    FROM jsonb_to_recordset(p_logs) AS l(account_id uuid, workflow_id uuid, contact_id uuid, event_type text, status text,
      step_index integer, step_id text, duration_ms integer, timestamp timestamptz, user_id uuid, details jsonb);
  IF p_slot = 'release' THEN
    -- Executions admitted before slots had shards hold a slot of shard 0.
    UPDATE account_slots SET used = greatest(used - 1, 0) WHERE account_id = v_account AND shard = coalesce(v_shard, 0)
      RETURNING used < quota INTO v_room;
    IF v_room THEN
      SELECT jsonb_agg(jsonb_build_object('executionId', w.execution_id, 'version', w.execution_version)) INTO v_admitted
        FROM flowmachine_admit_waiting(v_account, 1, coalesce(v_shard, 0)::smallint) w;
    END IF;
  END IF;
  IF v_status = 'ACTIVE' THEN
    SELECT jsonb_build_object('id', c.id, 'accountId', c.account_id, 'email', c.email, 'phone', c.phone, 'optedIn', c.opted_in,
      'timezone', c.timezone, 'attributes', c.attributes, 'tags', coalesce(c.tags, '{}'), 'deletedAt', c.deleted_at)
      INTO v_contact_now FROM contacts c WHERE c.id = v_contact;
  END IF;
  RETURN QUERY SELECT true, v_status, v_waiting, v_admitted, v_contact_now;
END $$;

-- Existing accounts: their ACTIVE executions hold slots of shard 0.
INSERT INTO account_slots (account_id, shard, used) SELECT id, 0, active_executions FROM accounts;
UPDATE executions SET slot_shard = 0 WHERE status = 'ACTIVE';
SELECT flowmachine_spread_slots(id) FROM accounts;
ALTER TABLE "accounts" DROP COLUMN "active_executions";
