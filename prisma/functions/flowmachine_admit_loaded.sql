-- flowmachine_admit_loaded(p_id, p_job_version, p_version, p_status, p_waiting, p_next_run_at, p_now, p_due_tolerance_ms) -> text
--
-- Admission (or a timer's resumption) in the same call as the load of a step's job: called by the load
-- query (src/sql/load-executions.ts) for the row it reads, it admits the execution with flowmachine_commit
-- ('acquire_in_line') when the row is at the job's version, not waiting in line, and either QUEUED or
-- PAUSED with its timer due (within p_due_tolerance_ms: the engine's DUE_TOLERANCE_MS, src/engine/decide-step.ts).
--
-- Input:
--   p_id           executions.id
--   p_job_version  the version the job was enqueued for
--   p_version, p_status, p_waiting, p_next_run_at  the row as the load read it
--   p_now          the caller's clock
--   p_due_tolerance_ms  how early a timer still counts as due (clock skew between processes)
-- Returns: the status admission left ('ACTIVE', or 'QUEUED' when the execution joined the waiting line),
--   or NULL when there was nothing to admit or the row changed meanwhile (flowmachine_commit's version
--   check). The load's own columns show the row as read before.
-- Invariant: a resumed PAUSED execution keeps next_run_at, so the worker then fires the timer of an
-- execution already ACTIVE and writes wait_completed with the commit of the step that follows.
DROP FUNCTION IF EXISTS flowmachine_admit_loaded(uuid, integer, integer, text, boolean, timestamptz, timestamptz);
CREATE OR REPLACE FUNCTION flowmachine_admit_loaded(p_id uuid, p_job_version integer, p_version integer, p_status text, p_waiting boolean,
  p_next_run_at timestamptz, p_now timestamptz, p_due_tolerance_ms integer)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  v_status text;
BEGIN
  IF p_job_version IS DISTINCT FROM p_version OR p_waiting
     OR NOT (p_status = 'QUEUED' OR (p_status = 'PAUSED' AND p_next_run_at <= p_now + make_interval(secs => p_due_tolerance_ms / 1000.0))) THEN
    RETURN NULL;
  END IF;
  SELECT c.new_status INTO v_status FROM flowmachine_commit(p_id, p_version,
    jsonb_build_object('status', 'ACTIVE', 'updatedAt', p_now), '[]'::jsonb, NULL, NULL, 'acquire_in_line') AS c;
  RETURN v_status;
END $$;
