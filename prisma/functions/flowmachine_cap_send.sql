-- flowmachine_cap_send(p_account, p_contact, p_channel, p_execution, p_step, p_caps, p_now) -> timestamptz
--
-- The frequency-cap check of one message, atomic with its count: either records the message as sent to
-- the contact (then answers NULL: send it) or answers when the cap next allows it (then records nothing).
--
-- Input:
--   p_account, p_contact  the account and its contact the message goes to
--   p_channel  'email' or 'sms'
--   p_execution, p_step   the step that sends it (a second call for the same step answers NULL again
--                         and counts nothing: a retried, redelivered or recovered step is counted once)
--   p_caps     the account's caps of this channel, [{"max": 3, "per_ms": 86400000}, ...]
--   p_now      the engine's clock
-- Returns: NULL when the message may be sent (and is now counted), else the instant the oldest send that
--   holds it back leaves the window of the strictest cap (the latest such instant over all caps).
-- Invariants:
--   - Counted across all workflows of the account: message_sends holds the contact's sends of every one.
--   - Never beyond a cap, under any number of workers: the contact's row is locked first, so two calls
--     for one contact count and record one after the other.
--   - Lock order: the contact only (no execution or slot is locked here), held to the end of this call's
--     transaction (the caller's statement).
-- Callers: src/sql/frequency-caps.ts (engine/effects.ts, before the provider call of a capped message).
CREATE OR REPLACE FUNCTION flowmachine_cap_send(p_account uuid, p_contact uuid, p_channel text, p_execution uuid, p_step text, p_caps jsonb, p_now timestamptz)
RETURNS timestamptz
LANGUAGE plpgsql AS $$
DECLARE
  v_cap record;
  v_count integer;
  v_free timestamptz;
  v_resume timestamptz;
BEGIN
  PERFORM 1 FROM contacts WHERE id = p_contact FOR NO KEY UPDATE;
  IF EXISTS (SELECT 1 FROM message_sends WHERE execution_id = p_execution AND step_id = p_step) THEN
    RETURN NULL;
  END IF;
  FOR v_cap IN SELECT (c->>'max')::integer AS max, (c->>'per_ms')::bigint AS per_ms FROM jsonb_array_elements(p_caps) c LOOP
    SELECT count(*) INTO v_count FROM message_sends
      WHERE contact_id = p_contact AND channel = p_channel AND sent_at > p_now - v_cap.per_ms * interval '1 millisecond';
    IF v_count >= v_cap.max THEN
      -- The cap allows one more once all but max - 1 of the sends inside the window have left it: when the
      -- (count - max + 1)-th oldest of them does.
      SELECT s.sent_at + v_cap.per_ms * interval '1 millisecond' INTO v_free FROM message_sends s
        WHERE s.contact_id = p_contact AND s.channel = p_channel AND s.sent_at > p_now - v_cap.per_ms * interval '1 millisecond'
        ORDER BY s.sent_at OFFSET v_count - v_cap.max LIMIT 1;
      v_resume := greatest(v_resume, v_free);
    END IF;
  END LOOP;
  IF v_resume IS NOT NULL THEN
    RETURN v_resume;
  END IF;
  INSERT INTO message_sends (execution_id, step_id, account_id, contact_id, channel, sent_at)
    VALUES (p_execution, p_step, p_account, p_contact, p_channel, p_now);
  RETURN NULL;
END $$;
