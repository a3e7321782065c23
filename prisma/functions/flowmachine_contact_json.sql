-- flowmachine_contact_json(c contacts) -> jsonb
--
-- The contact as the engine reads it, one shape for every reader: the load of a step's job
-- (src/sql/load-executions.ts) and the contact flowmachine_commit answers with.
--
-- Input:   c  a contacts row
-- Returns: {id, accountId, email, phone, optedIn, timezone, attributes, tags, deletedAt}, the field names of
--          the generated client; tags is [] rather than null.
-- Invariant: pure and inlinable (a single SELECT of its argument), so reading it costs what the columns do.
CREATE OR REPLACE FUNCTION flowmachine_contact_json(c contacts) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
  SELECT jsonb_build_object('id', c.id, 'accountId', c.account_id, 'email', c.email, 'phone', c.phone, 'optedIn', c.opted_in,
    'timezone', c.timezone, 'attributes', c.attributes, 'tags', coalesce(c.tags, '{}'), 'deletedAt', c.deleted_at)
$$;
