-- Counters behind GET /workflows/{id}/stats, so the answer costs the same at a million executions as at
-- ten. Triggers on executions and execution_logs (prisma/functions/flowmachine_count_*.sql) append
-- signed deltas to workflow_count_deltas; the sweeper folds them into workflow_counts
-- (flowmachine_fold_counts); a read adds the not yet folded deltas to the counts.
--
-- A row counts one of two things, told apart by event_type:
--   event_type = ''   executions of the version now in (status, step_id, completion_reason); step_id is
--                     the step a running execution is at ('' once it ended), completion_reason '' while
--                     it runs;
--   event_type <> ''  log entries of that type at step_id (an action's retries count once).
CREATE TABLE "workflow_counts" (
    "workflow_id" UUID NOT NULL,
    "workflow_version_id" UUID NOT NULL,
    "status" TEXT NOT NULL DEFAULT '',
    "step_id" TEXT NOT NULL DEFAULT '',
    "completion_reason" TEXT NOT NULL DEFAULT '',
    "event_type" TEXT NOT NULL DEFAULT '',
    "n" BIGINT NOT NULL,

    CONSTRAINT "workflow_counts_pkey" PRIMARY KEY ("workflow_id", "workflow_version_id", "status", "step_id", "completion_reason", "event_type")
);

-- Append-only: written by the triggers in the transaction of the change they count, so committing
-- never waits on a counter row; deleted only when folded. No foreign keys: a workflow's deletion
-- cascades to its executions, whose deltas are then dropped by the fold.
CREATE TABLE "workflow_count_deltas" (
    "id" BIGSERIAL NOT NULL,
    "workflow_id" UUID NOT NULL,
    "workflow_version_id" UUID NOT NULL,
    "status" TEXT NOT NULL DEFAULT '',
    "step_id" TEXT NOT NULL DEFAULT '',
    "completion_reason" TEXT NOT NULL DEFAULT '',
    "event_type" TEXT NOT NULL DEFAULT '',
    "n" INTEGER NOT NULL,

    CONSTRAINT "workflow_count_deltas_pkey" PRIMARY KEY ("id")
);

-- A read adds one workflow's unfolded deltas.
CREATE INDEX "workflow_count_deltas_workflow_id_idx" ON "workflow_count_deltas"("workflow_id");

ALTER TABLE "workflow_counts" ADD CONSTRAINT "workflow_counts_workflow_id_fkey" FOREIGN KEY ("workflow_id") REFERENCES "workflows"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "workflow_counts" ADD CONSTRAINT "workflow_counts_workflow_version_id_fkey" FOREIGN KEY ("workflow_version_id") REFERENCES "workflow_versions"("id") ON DELETE CASCADE ON UPDATE CASCADE;
