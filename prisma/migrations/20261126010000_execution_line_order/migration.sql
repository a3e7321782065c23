-- Creation order of executions: the account's waiting line is first come, first served even when
-- several executions share a created_at millisecond.
ALTER TABLE "executions" ADD COLUMN "seq" BIGSERIAL NOT NULL;

-- DropIndex
DROP INDEX "executions_account_id_status_waiting_created_at_idx";

-- CreateIndex
CREATE INDEX "executions_account_id_status_waiting_seq_idx" ON "executions"("account_id", "status", "waiting", "seq");
