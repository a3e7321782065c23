-- flowmachine_current_version_lock(p_workflow, p_publish) -> void
--
-- The lock that orders a move publish (`PUT /workflows/{id}/definition` with "in_flight": "move") and the
-- creations of executions of the same workflow. Every creation takes it shared (p_publish false) before
-- it reads the workflow's current version, and keeps it until its transaction ends. A move publish takes
-- it exclusive (p_publish true) as the first statement of the transaction that changes the current
-- version. So each creation C and publish P of the workflow are ordered one way or the other:
--   - C took it first: P waits until C has committed (or rolled back), so every execution C inserted on
--     the version it read is committed before P commits, and P's move reads the running executions only
--     after P committed (src/api/version-publish.ts); every one of its pages sees C's executions.
--   - P took it first: C waits until P has committed and only then reads the current version, in a later
--     statement, which under READ COMMITTED takes a new snapshot: C reads P's version, and the
--     executions it creates need no move.
-- Without it, a creation that read the old version just before the publish committed could insert its
-- execution after the move's read, on the old version, and run that version to its end.
--
-- Input:   p_workflow  the workflow; p_publish  true for the publish, false for a creation
-- Returns: nothing; the lock is transaction-scoped (pg_advisory_xact_lock), so it ends with the caller's transaction.
-- Invariants:
--   - A creation reads the current version only after this call, never from a snapshot taken before it.
--   - An advisory lock, not a row lock on workflows: Postgres queues a shared request behind a waiting
--     exclusive one, so a publish waits only for the creations in progress, where a row lock (FOR UPDATE
--     against the triggers' FOR KEY SHARE) lets every new trigger pass a waiting publish, which then
--     waits as long as triggers of its workflow overlap. Shared holders never wait for each other.
--   - Its own key space (the two-key form, class 72707005), apart from the one-key locks (the
--     contact/workflow pairs of flowmachine_enroll, 72707002-72707004). Two workflows whose ids hash
--     alike only make a publish of one wait for the creations of the other.
--   - Taken before the pair locks of its workflow. Its name sorts before its callers', so migrate creates
--     it before them.
-- Callers: flowmachine_trigger, flowmachine_enroll_many, flowmachine_enroll_tagged (shared);
--   src/sql/version-migration.ts (the publish, exclusive).
CREATE OR REPLACE FUNCTION flowmachine_current_version_lock(p_workflow uuid, p_publish boolean) RETURNS void
LANGUAGE sql AS $$
  SELECT CASE WHEN p_publish THEN pg_advisory_xact_lock(72707005, hashtext(p_workflow::text))
              ELSE pg_advisory_xact_lock_shared(72707005, hashtext(p_workflow::text)) END
$$;
