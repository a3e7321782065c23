-- A step that keeps its status changes no indexed column of executions (updated_at was the only one),
-- so Postgres updates the row in place (HOT) without a new entry in every index; free space on each
-- page keeps those updates on the row's page.
DROP INDEX "executions_status_updated_at_idx";
ALTER TABLE "executions" SET (fillfactor = 80);

-- The account's waiting line as a partial index: it holds only the executions waiting for a slot, so it
-- stays small whatever the backlog of queued work, and the planner picks it even before the table's
-- statistics know about a sudden backlog (the full index was passed over for a scan of every QUEUED row).
DROP INDEX "executions_account_id_status_waiting_seq_idx";
CREATE INDEX "executions_waiting_line_idx" ON "executions"("account_id", "seq") WHERE "status" = 'QUEUED' AND "waiting";

-- Admits up to p_limit executions waiting in the account's line, first come first served, while the
-- account has free slots. Returns the admitted executions with their new version.
CREATE FUNCTION flowmachine_admit_waiting(p_account uuid, p_limit integer)
RETURNS TABLE (execution_id uuid, execution_version integer)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  next_id uuid;
  next_version integer;
BEGIN
  FOR i IN 1..p_limit LOOP
    SELECT e.id, e.version INTO next_id, next_version FROM executions e
      WHERE e.account_id = p_account AND e.status = 'QUEUED' AND e.waiting
      ORDER BY e.seq LIMIT 1 FOR UPDATE SKIP LOCKED;
    EXIT WHEN next_id IS NULL;
    UPDATE accounts SET active_executions = active_executions + 1
      WHERE id = p_account AND active_executions < concurrent_executions_per_account;
    EXIT WHEN NOT FOUND;
    UPDATE executions SET status = 'ACTIVE', waiting = false, version = next_version + 1, updated_at = now() WHERE id = next_id;
    execution_id := next_id;
    execution_version := next_version + 1;
    RETURN NEXT;
  END LOOP;
END $$;

-- Commits one engine step in one call: the execution's new state (only if its version is still
-- p_version), its log entries, the contact's tag change and the account's concurrency slot.
--   p_set   new field values, camelCase keys; absent keys keep the stored value, except status.
--   p_logs  log rows (jsonb array).
--   p_slot  'keep'; 'acquire' or 'acquire_in_line' (also respects the waiting line) for an execution
--           becoming ACTIVE, which instead waits in line (QUEUED, waiting) when no slot is free;
--           'release' for one leaving ACTIVE, whose slot goes to the longest waiting execution.
-- Locks are taken in one order (execution, contact, account, a waiting execution without waiting for
-- it), and the account row is locked only for the end of this call and its commit. An execution that
-- stays ACTIVE gets its contact back as committed, so its next step needs no read of its own.
CREATE FUNCTION flowmachine_commit(p_id uuid, p_version integer, p_set jsonb, p_logs jsonb, p_tag_op text, p_tag text, p_slot text)
RETURNS TABLE (committed boolean, new_status text, new_waiting boolean, admitted jsonb, contact jsonb)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_account uuid;
  v_contact uuid;
  v_status text := p_set->>'status';
  v_waiting boolean := false;
  v_admitted jsonb;
  v_contact_now jsonb;
BEGIN
  SELECT e.account_id, e.contact_id INTO v_account, v_contact FROM executions e WHERE e.id = p_id AND e.version = p_version FOR UPDATE;
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
    UPDATE accounts a SET active_executions = a.active_executions + 1
      WHERE a.id = v_account AND a.active_executions < a.concurrent_executions_per_account
        AND (p_slot = 'acquire' OR NOT EXISTS (
          SELECT 1 FROM executions w WHERE w.account_id = v_account AND w.status = 'QUEUED' AND w.waiting));
    IF NOT FOUND THEN
      v_status := 'QUEUED';
      v_waiting := true;
    END IF;
  END IF;
  UPDATE executions SET
    status = v_status,
    waiting = v_waiting,
    version = p_version + 1,
    snapshot = COALESCE(p_set->'snapshot', snapshot),
    current_step_index = COALESCE((p_set->>'currentStepIndex')::integer, current_step_index),
    total_steps = COALESCE((p_set->>'totalSteps')::integer, total_steps),
    next_run_at = CASE WHEN p_set ? 'nextRunAt' THEN (p_set->>'nextRunAt')::timestamptz ELSE next_run_at END,
    completion_reason = CASE WHEN p_set ? 'completionReason' THEN p_set->>'completionReason' ELSE completion_reason END,
    retry_count = COALESCE((p_set->>'retryCount')::integer, retry_count),
    last_error = CASE WHEN p_set ? 'lastError' THEN p_set->>'lastError' ELSE last_error END,
    finished_at = COALESCE((p_set->>'finishedAt')::timestamptz, finished_at),
    updated_at = COALESCE((p_set->>'updatedAt')::timestamptz, now())
  WHERE id = p_id;
  INSERT INTO execution_logs (execution_id, account_id, workflow_id, contact_id, event_type, status, step_index, step_id, duration_ms, timestamp, user_id, details)
    SELECT p_id, l.account_id, l.workflow_id, l.contact_id, l.event_type, l.status, l.step_index, l.step_id, l.duration_ms, l.timestamp, l.user_id, l.details
    FROM jsonb_to_recordset(p_logs) AS l(account_id uuid, workflow_id uuid, contact_id uuid, event_type text, status text,
      step_index integer, step_id text, duration_ms integer, timestamp timestamptz, user_id uuid, details jsonb);
  IF p_slot = 'release' THEN
    UPDATE accounts SET active_executions = GREATEST(active_executions - 1, 0) WHERE id = v_account;
    SELECT jsonb_agg(jsonb_build_object('executionId', w.execution_id, 'version', w.execution_version)) INTO v_admitted
      FROM flowmachine_admit_waiting(v_account, 1) w;
  END IF;
  IF v_status = 'ACTIVE' THEN
    SELECT jsonb_build_object('id', c.id, 'accountId', c.account_id, 'email', c.email, 'phone', c.phone, 'optedIn', c.opted_in,
      'timezone', c.timezone, 'attributes', c.attributes, 'tags', coalesce(c.tags, '{}'), 'deletedAt', c.deleted_at)
      INTO v_contact_now FROM contacts c WHERE c.id = v_contact;
  END IF;
  RETURN QUERY SELECT true, v_status, v_waiting, v_admitted, v_contact_now;
END $$;
