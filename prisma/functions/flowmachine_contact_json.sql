-- flowmachine_contact_json(c contacts) -> json
--
-- The contact as the engine reads it, one shape for every reader: the load of a step's job
-- (src/sql/load-executions.ts) and the contact flowmachine_commit answers with.
--
-- Input:   c  a contacts row
-- Returns: {id, accountId, email, phone, optedIn, timezone, attributes, tags, deletedAt}, the field names of
--          the generated client; tags is [] rather than null.
-- Invariant: inlined into its callers' queries (a single SELECT of its argument, declared no less volatile
--   than json_build_object, which is STABLE), so reading it costs what building the object in place does.
DROP FUNCTION IF EXISTS flowmachine_contact_json(contacts);
CREATE OR REPLACE FUNCTION flowmachine_contact_json(c contacts) RETURNS json
LANGUAGE sql STABLE AS $$
  SELECT json_build_object('id', c.id, 'accountId', c.account_id, 'email', c.email, 'phone', c.phone, 'optedIn', c.opted_in,
    'timezone', c.timezone, 'attributes', c.attributes, 'tags', coalesce(c.tags, '{}'), 'deletedAt', c.deleted_at)
$$;
