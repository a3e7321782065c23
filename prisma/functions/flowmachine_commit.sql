-- flowmachine_commit(p_id, p_version, p_set, p_logs, p_tag_op, p_tag, p_slot)
--   -> TABLE (committed, new_status, new_waiting, admitted, contact, enrolled)
--
-- Commits one engine step in one call: the execution's new state, its log entries, the contact's tag
-- change and the account's concurrency slot.
--
-- Input:
--   p_id, p_version  the execution and the version the step was computed from (optimistic check)
--   p_set    new field values, camelCase keys (snapshot, status, currentStepIndex, totalSteps, nextRunAt,
--            completionReason, retryCount, lastError, finishedAt, notifyPending, waitingEvent, updatedAt, and for a
--            move to another version workflowVersionId, goalEvent, waiting); an absent key keeps the stored value,
--            except status (always set), notifyPending (cleared when absent) and waiting (false when absent,
--            unless the slot operation put the execution in line)
--            contactAttributes, when present, is merged into the contact's attributes (a webhook's save_response)
--   p_logs   execution_logs rows to insert (jsonb array)
--   p_tag_op 'add', 'remove' or NULL; p_tag the tag (an add of a tag the contact did not have enrolls it
--            in the workflows entered by that tag: flowmachine_enroll_tagged)
--   p_slot   'keep'; 'acquire' or 'acquire_in_line' (also respects the waiting line) for an execution
--            becoming ACTIVE, which instead waits in line (QUEUED, waiting) when no slot is free;
--            'release' for one leaving ACTIVE, whose slot goes to the longest waiting execution
-- Returns one row:
--   committed    false (and nothing written) when the execution is no longer at p_version
--   new_status, new_waiting  what was stored (an 'acquire' may have turned ACTIVE into QUEUED, waiting)
--   admitted     [{executionId, version}] admitted with the released slot, or NULL
--   contact      the contact as committed when the execution stays ACTIVE, so its next step needs no read
--   enrolled     [{executionId, version}] of the executions the added tag started (QUEUED), or NULL
-- Invariants:
--   - version goes up by exactly one per commit; a step computed from a stale row writes nothing.
--   - An ACTIVE execution holds exactly one slot (slot_shard); 'release' clears it and gives it back to
--     that shard (shard 0 for executions admitted before slots had shards).
--   - Lock order: execution, contact, the account's shards (flowmachine_take_slot), a waiting execution
--     (SKIP LOCKED). A slot is given back at the end of the call, so its shard is held only for the end of
--     this call and its commit.
-- Callers: src/engine/commit.ts (alone or many in one statement), flowmachine_admit_loaded.
DROP FUNCTION IF EXISTS flowmachine_commit(uuid, integer, jsonb, jsonb, text, text, text);
CREATE OR REPLACE FUNCTION flowmachine_commit(p_id uuid, p_version integer, p_set jsonb, p_logs jsonb, p_tag_op text, p_tag text, p_slot text)
RETURNS TABLE (committed boolean, new_status text, new_waiting boolean, admitted jsonb, contact json, enrolled jsonb)
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
  v_contact_now json;
  v_enrolled jsonb;
BEGIN
  SELECT e.account_id, e.contact_id, e.slot_shard INTO v_account, v_contact, v_shard FROM executions e WHERE e.id = p_id AND e.version = p_version FOR UPDATE;
  IF NOT FOUND THEN
    RETURN QUERY SELECT false, NULL::text, NULL::boolean, NULL::jsonb, NULL::json, NULL::jsonb;
    RETURN;
  END IF;
  IF p_tag_op = 'add' THEN
    -- Only a tag the contact did not have changes the row (and enrolls): the condition is checked again on
    -- the locked row, so of concurrent adds of one tag exactly one finds it missing.
    UPDATE contacts SET updated_at = now(), tags = flowmachine_with_tag(tags, 'add', p_tag)
      WHERE id = v_contact AND NOT (coalesce(tags, '{}') @> ARRAY[p_tag]);
    IF FOUND THEN
      SELECT jsonb_agg(jsonb_build_object('executionId', t.execution, 'version', 0)) INTO v_enrolled
        FROM flowmachine_enroll_tagged(v_account, v_contact, p_tag, COALESCE((p_set->>'updatedAt')::timestamptz, now())) t
        WHERE t.kind = 'started';
    END IF;
  ELSIF p_tag_op = 'remove' THEN
    UPDATE contacts SET updated_at = now(), tags = flowmachine_with_tag(tags, 'remove', p_tag) WHERE id = v_contact;
  END IF;
  IF p_set ? 'contactAttributes' THEN
    UPDATE contacts SET updated_at = now(), attributes = coalesce(attributes, '{}'::jsonb) || (p_set->'contactAttributes')
      WHERE id = v_contact;
  END IF;
  IF p_slot IN ('acquire', 'acquire_in_line') THEN
    v_shard := flowmachine_take_slot(v_account, p_slot = 'acquire_in_line');
    IF v_shard IS NULL THEN
      v_status := 'QUEUED';
      v_waiting := true;
    END IF;
  END IF;
  -- A move to another version (src/engine/move-execution.ts) keeps an execution waiting in line there.
  v_waiting := v_waiting OR COALESCE((p_set->>'waiting')::boolean, false);
  UPDATE executions SET
    status = v_status,
    waiting = v_waiting,
    slot_shard = CASE WHEN p_slot = 'release' THEN NULL ELSE v_shard END,
    version = p_version + 1,
    snapshot = COALESCE(p_set->'snapshot', snapshot),
    -- An execution that becomes ACTIVE is at its first step at least (steps are numbered from 1).
    current_step_index = CASE WHEN v_status = 'ACTIVE' THEN greatest(COALESCE((p_set->>'currentStepIndex')::integer, current_step_index), 1)
      ELSE COALESCE((p_set->>'currentStepIndex')::integer, current_step_index) END,
    total_steps = COALESCE((p_set->>'totalSteps')::integer, total_steps),
    next_run_at = CASE WHEN p_set ? 'nextRunAt' THEN (p_set->>'nextRunAt')::timestamptz ELSE next_run_at END,
    completion_reason = CASE WHEN p_set ? 'completionReason' THEN p_set->>'completionReason' ELSE completion_reason END,
    retry_count = COALESCE((p_set->>'retryCount')::integer, retry_count),
    last_error = CASE WHEN p_set ? 'lastError' THEN p_set->>'lastError' ELSE last_error END,
    finished_at = COALESCE((p_set->>'finishedAt')::timestamptz, finished_at),
    waiting_event = CASE WHEN p_set ? 'waitingEvent' THEN p_set->>'waitingEvent' ELSE waiting_event END,
    workflow_version_id = COALESCE((p_set->>'workflowVersionId')::uuid, workflow_version_id),
    goal_event = CASE WHEN p_set ? 'goalEvent' THEN p_set->>'goalEvent' ELSE goal_event END,
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
    SELECT flowmachine_contact_json(c) INTO v_contact_now FROM contacts c WHERE c.id = v_contact;
  END IF;
  RETURN QUERY SELECT true, v_status, v_waiting, v_admitted, v_contact_now, v_enrolled;
END $$;
