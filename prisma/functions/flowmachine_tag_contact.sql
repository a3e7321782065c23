-- flowmachine_tag_contact(p_account, p_contact, p_op, p_tag, p_now) -> jsonb
--
-- A tag added to or removed from a contact through the API, and the enrollments an added tag makes
-- (flowmachine_enroll_tagged), in one transaction.
--
-- Input:   p_account, p_contact  the contact (in the account, not deleted); p_op 'add' or 'remove'; p_tag; p_now
-- Returns: NULL when there is no such contact; else {"added": bool, "enrolled": [{workflow, kind, execution}]}
--          where added says the tag was not there before (only then does it enroll).
-- Invariant: the contact row is locked before its tags are read, so of concurrent adds of one tag only
--   the first enrolls.
-- Callers: src/sql/contacts.ts.
CREATE OR REPLACE FUNCTION flowmachine_tag_contact(p_account uuid, p_contact uuid, p_op text, p_tag text, p_now timestamptz)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  v_had boolean;
  v_enrolled jsonb;
BEGIN
  SELECT p_tag = ANY(coalesce(c.tags, '{}')) INTO v_had FROM contacts c
    WHERE c.id = p_contact AND c.account_id = p_account AND c.deleted_at IS NULL FOR UPDATE;
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;
  UPDATE contacts SET tags = flowmachine_with_tag(tags, p_op, p_tag), updated_at = p_now WHERE id = p_contact;
  IF p_op = 'add' AND NOT v_had THEN
    SELECT coalesce(jsonb_agg(jsonb_build_object('workflow', t.workflow, 'kind', t.kind, 'execution', t.execution)), '[]')
      INTO v_enrolled FROM flowmachine_enroll_tagged(p_account, p_contact, p_tag, p_now) t;
  END IF;
  RETURN jsonb_build_object('added', p_op = 'add' AND NOT v_had, 'enrolled', coalesce(v_enrolled, '[]'::jsonb));
END $$;
