-- Steps are numbered from 1, as the SPEC's tables number them (CONTRACT.md): a log entry's step_index is
-- the 1-based position of its step on the path taken, and current_step_index the position of the step
-- being run or waited on: 0 before the first step starts, total_steps once COMPLETED (src/engine/snapshot.ts).
-- An execution starts when it is first admitted, so both admissions (in flowmachine_commit, and from the
-- waiting line) move an execution that becomes ACTIVE to at least its first step. The rest is unchanged.

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
    UPDATE executions SET status = 'ACTIVE', waiting = false, slot_shard = v_shard, version = next_version + 1,
      current_step_index = greatest(current_step_index, 1), updated_at = now() WHERE id = next_id;
    execution_id := next_id;
    execution_version := next_version + 1;
    RETURN NEXT;
  END LOOP;
END $$;

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
    current_step_index = CASE WHEN v_status = 'ACTIVE' THEN greatest(COALESCE((p_set->>'currentStepIndex')::integer, current_step_index), 1)
      ELSE COALESCE((p_set->>'currentStepIndex')::integer, current_step_index) END,
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

-- Rows written with 0-based numbering. Step entries move up one; executions at a step (or stopped at one)
-- move to that step's position, those never started stay at 0, completed ones keep their count.
UPDATE execution_logs SET step_index = step_index + 1 WHERE step_id IS NOT NULL AND step_index IS NOT NULL;
UPDATE executions e SET current_step_index = current_step_index + 1
  WHERE NOT (e.status = 'COMPLETED' AND e.completion_reason = 'completed')
    AND (e.status IN ('ACTIVE', 'PAUSED') OR EXISTS (SELECT 1 FROM execution_logs l WHERE l.execution_id = e.id AND l.step_id IS NOT NULL));
