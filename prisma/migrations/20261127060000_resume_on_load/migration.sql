-- A due timer resumes in the load of its job, as an admission does: a PAUSED execution at the job's
-- version whose timer is due (within 5 ms) takes its slot in the same call, or joins the waiting line
-- when none is free. It keeps next_run_at, so the worker then fires the timer of an execution already
-- ACTIVE, and writes wait_completed with the commit of the step that follows.
DROP FUNCTION flowmachine_admit_loaded(uuid, integer, integer, text, boolean, timestamptz);
CREATE FUNCTION flowmachine_admit_loaded(p_id uuid, p_job_version integer, p_version integer, p_status text, p_waiting boolean,
  p_next_run_at timestamptz, p_now timestamptz)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  v_status text;
BEGIN
  IF p_job_version IS DISTINCT FROM p_version OR p_waiting
     OR NOT (p_status = 'QUEUED' OR (p_status = 'PAUSED' AND p_next_run_at <= p_now + interval '5 milliseconds')) THEN
    RETURN NULL;
  END IF;
  SELECT c.new_status INTO v_status FROM flowmachine_commit(p_id, p_version,
    jsonb_build_object('status', 'ACTIVE', 'updatedAt', p_now), '[]'::jsonb, NULL, NULL, 'acquire_in_line') AS c;
  RETURN v_status;
END $$;
