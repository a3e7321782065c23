-- flowmachine_with_tag(p_tags, p_op, p_tag) -> text[]
--
-- A contact's tags after adding or removing one, the one rule for every writer of tags: an add_tag or
-- remove_tag step (flowmachine_commit) and the API (src/sql/contacts.ts). Applied inside the UPDATE of the
-- row, so tags changed concurrently by others are kept.
--
-- Input:   p_tags  the stored tags (NULL is none); p_op 'add' or 'remove'; p_tag the tag
-- Returns: the tags without p_tag, then p_tag at the end when adding (each tag at most once).
CREATE OR REPLACE FUNCTION flowmachine_with_tag(p_tags text[], p_op text, p_tag text) RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN p_op = 'add' THEN array_append(array_remove(coalesce(p_tags, '{}'), p_tag), p_tag)
    ELSE array_remove(coalesce(p_tags, '{}'), p_tag) END
$$;
