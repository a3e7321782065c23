-- Admission in the same call as the load of a step's job. Called by the load query for the row it reads,
-- it admits the execution as a call of its own did before (flowmachine_commit with 'acquire_in_line')
-- when the row is at the job's version, QUEUED and not waiting in line. Returns the status admission
-- left ('ACTIVE', or 'QUEUED' when the execution joined the waiting line), or NULL when there was
-- nothing to admit or the row changed meanwhile. The load's own columns show the row as read before.
CREATE FUNCTION flowmachine_admit_loaded(p_id uuid, p_job_version integer, p_version integer, p_status text, p_waiting boolean, p_now timestamptz)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  v_status text;
BEGIN
  IF p_job_version IS DISTINCT FROM p_version OR p_status <> 'QUEUED' OR p_waiting THEN
    RETURN NULL;
  END IF;
  SELECT c.new_status INTO v_status FROM flowmachine_commit(p_id, p_version,
    jsonb_build_object('status', 'ACTIVE', 'updatedAt', p_now), '[]'::jsonb, NULL, NULL, 'acquire_in_line') AS c;
  RETURN v_status;
END $$;
