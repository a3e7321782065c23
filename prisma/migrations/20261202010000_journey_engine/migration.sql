-- Journeys in the engine: what Postgres needs to enroll on a tag without the API (a version's entry and
-- its enrollment values), and to find the executions waiting for an event with an index.

-- The entry of a version (`trigger` of its definition): the event or the tag that enrolls, if any.
ALTER TABLE "workflow_versions" ADD COLUMN "entry_event" TEXT;
ALTER TABLE "workflow_versions" ADD COLUMN "entry_tag" TEXT;
-- What a new execution of the version starts with ({snapshot, total_steps, reentry, goal_event}), written
-- when the version is created, so a tag added inside a commit can enroll in the same transaction.
ALTER TABLE "workflow_versions" ADD COLUMN "enrollment" JSONB;

-- The versions whose entry is a tag, by tag (few: the index holds only them).
CREATE INDEX "workflow_versions_entry_tag_idx" ON "workflow_versions"("entry_tag") WHERE "entry_tag" IS NOT NULL;

-- The event an execution at a wait_for_event step waits for; NULL at any other step.
ALTER TABLE "executions" ADD COLUMN "waiting_event" TEXT;

-- The executions of a contact waiting for an event, by name (holds only the waiting ones).
CREATE INDEX "executions_contact_id_waiting_event_idx" ON "executions"("contact_id", "waiting_event") WHERE "waiting_event" IS NOT NULL;
