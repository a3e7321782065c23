-- flowmachine_contact_guard(p_account, p_contact) -> text
--
-- The contact's side of every enrollment guard, decided once for the single trigger
-- (flowmachine_trigger) and the bulk enrollment (flowmachine_enroll_many), in the same transaction as the
-- enrollment it allows, so an opt-out or a deletion committed before it is always seen.
--
-- Input:   p_account, p_contact  the contact to enroll and the account it must belong to
-- Returns: 'contact_not_found' (not in the account, or deleted), 'opted_out', or NULL when it may be enrolled.
CREATE OR REPLACE FUNCTION flowmachine_contact_guard(p_account uuid, p_contact uuid) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_opted_in boolean;
BEGIN
  SELECT c.opted_in INTO v_opted_in FROM contacts c WHERE c.id = p_contact AND c.account_id = p_account AND c.deleted_at IS NULL;
  IF NOT FOUND THEN
    RETURN 'contact_not_found';
  END IF;
  RETURN CASE WHEN v_opted_in THEN NULL ELSE 'opted_out' END;
END $$;
