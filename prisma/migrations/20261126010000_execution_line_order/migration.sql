-- Creation order of executions: the account's waiting line is first come, first served even when
-- several executions share a created_at millisecond.
ALTER TABLE "executions" ADD COLUMN "seq" BIGSERIAL NOT NULL;

-- W3C trace context of the trigger, so every job of the execution (even one rebuilt from Postgres) joins its trace.
ALTER TABLE "executions" ADD COLUMN "trace_context" JSONB;

-- DropIndex
DROP INDEX "executions_account_id_status_waiting_created_at_idx";

-- CreateIndex
CREATE INDEX "executions_account_id_status_waiting_seq_idx" ON "executions"("account_id", "status", "waiting", "seq");
