-- flowmachine_enroll_tagged(p_account, p_contact, p_tag, p_now) -> TABLE (workflow, kind, execution)
--
-- Enrollment by a tag: enrolls the contact in every active workflow of the account whose current version
-- is entered by adding p_tag (`trigger: {type: "tag_added"}`), with the guards of any trigger
-- (flowmachine_contact_guard, then flowmachine_enroll's deduplication and reentry), in the transaction
-- that adds the tag, so a crash can neither lose nor double the enrollment.
--
-- Input:   p_account, p_contact  whose tag was just added (not present before); p_tag the tag; p_now the clock
-- Returns: one row per such workflow: 'started' with the new execution (QUEUED: the caller enqueues its
--          first job, the sweeper does if it dies first), or the refusal ('opted_out', 'duplicate',
--          'already_enrolled', 'contact_not_found') with the execution it names, if any.
-- Reads the version's stored enrollment values (workflow_versions.enrollment, written with the version).
-- Invariant: each workflow's current version is read (again) after flowmachine_current_version_lock
--   (shared) on it, held to the end of the transaction, so a move publish either waits for the execution
--   to commit (and moves it) or has committed before the version is read (and the execution starts on its
--   version, when that one is entered by the tag too). The first read only finds the candidates.
-- Callers: flowmachine_commit (an add_tag step), flowmachine_tag_contact (the API).
CREATE OR REPLACE FUNCTION flowmachine_enroll_tagged(p_account uuid, p_contact uuid, p_tag text, p_now timestamptz)
RETURNS TABLE (workflow uuid, kind text, execution uuid)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  c record;
  v record;
  v_guard text;
BEGIN
  FOR c IN
    SELECT w.id AS workflow_id FROM workflow_versions wv
      JOIN workflows w ON w.id = wv.workflow_id AND w.current_version = wv.version
      WHERE wv.entry_tag = p_tag AND w.account_id = p_account AND w.status = 'active' AND wv.enrollment IS NOT NULL
      ORDER BY w.id
  LOOP
    -- Before the version is read (again), never after: see flowmachine_current_version_lock.sql.
    PERFORM flowmachine_current_version_lock(c.workflow_id, false);
    SELECT w.id AS workflow_id, wv.id AS version_id, wv.version, wv.enrollment INTO v FROM workflows w
      JOIN workflow_versions wv ON wv.workflow_id = w.id AND wv.version = w.current_version
      WHERE w.id = c.workflow_id AND wv.entry_tag = p_tag AND w.status = 'active' AND wv.enrollment IS NOT NULL;
    CONTINUE WHEN NOT FOUND;
    v_guard := flowmachine_contact_guard(p_account, p_contact);
    IF v_guard IS NOT NULL THEN
      RETURN QUERY SELECT v.workflow_id, v_guard, NULL::uuid;
      CONTINUE;
    END IF;
    RETURN QUERY SELECT v.workflow_id, e.kind, e.execution FROM flowmachine_enroll(p_account, v.workflow_id, v.version_id, v.version,
      p_contact, v.enrollment->>'reentry', (v.enrollment->>'window_ms')::integer, v.enrollment->'snapshot',
      (v.enrollment->>'total_steps')::integer, v.enrollment->>'goal_event', '{}'::jsonb, '{}'::jsonb, p_now) AS e;
  END LOOP;
END $$;
