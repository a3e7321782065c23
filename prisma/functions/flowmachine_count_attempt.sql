-- flowmachine_count_attempt(p_details jsonb) -> numeric
--
-- The attempt an `action_started` entry's details name: their `attempt` when it is a number, else 1,
-- so counting never fails a commit. The counters count the first attempt of an action only.
-- IMMUTABLE, so its callers inline it.
-- Callers: flowmachine_count_logs, flowmachine_rebuild_counts.
CREATE OR REPLACE FUNCTION flowmachine_count_attempt(p_details jsonb) RETURNS numeric LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN jsonb_typeof(p_details->'attempt') = 'number' THEN (p_details->>'attempt')::numeric ELSE 1 END
$$;
