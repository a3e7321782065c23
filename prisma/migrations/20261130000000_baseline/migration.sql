-- The schema as of 2026-11-30, squashing the migrations 20261126000000_init to 20261127070000_shard_affinity
-- (a database that applied them is recorded as having applied this one; see src/db/migrate.ts).
-- Tables, indexes and constraints only: the plpgsql functions and the accounts_spread_slots trigger live in
-- prisma/functions/, applied after the dated migrations.
--
-- executions: no indexed column changes in a step (status changes aside), so Postgres updates the row in
-- place (HOT) without a new entry in every index; fillfactor 80 keeps free space on each page for those.
-- account_slots: an account's concurrency slots, split into shards so that executions starting and
-- stopping at once don't all queue for one counter row (prisma/functions/flowmachine_take_slot.sql).
-- executions.seq: creation order, so the waiting line is first come, first served even within a millisecond.
-- executions.notify_pending: a failure whose admin notification is not logged yet
-- (prisma/functions/flowmachine_log_notification.sql).

-- CreateTable
CREATE TABLE "accounts" (
    "id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "admin_email" TEXT NOT NULL,
    "concurrent_executions_per_account" INTEGER NOT NULL DEFAULT 100,
    "max_retry_attempts" INTEGER NOT NULL DEFAULT 3,
    "retry_base_delay_seconds" INTEGER NOT NULL DEFAULT 60,
    "error_notification" BOOLEAN NOT NULL DEFAULT true,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "accounts_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "account_slots" (
    "account_id" UUID NOT NULL,
    "shard" SMALLINT NOT NULL,
    "used" INTEGER NOT NULL DEFAULT 0,
    "quota" INTEGER NOT NULL DEFAULT 0,

    CONSTRAINT "account_slots_pkey" PRIMARY KEY ("account_id","shard")
);

-- CreateTable
CREATE TABLE "users" (
    "id" UUID NOT NULL,
    "account_id" UUID NOT NULL,
    "email" TEXT NOT NULL,
    "role" TEXT NOT NULL DEFAULT 'admin',
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "users_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "api_keys" (
    "id" UUID NOT NULL,
    "account_id" UUID NOT NULL,
    "user_id" UUID NOT NULL,
    "key_hash" TEXT NOT NULL,
    "prefix" TEXT NOT NULL,
    "name" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "revoked_at" TIMESTAMPTZ(3),

    CONSTRAINT "api_keys_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "contacts" (
    "id" UUID NOT NULL,
    "account_id" UUID NOT NULL,
    "email" TEXT NOT NULL,
    "phone" TEXT,
    "opted_in" BOOLEAN NOT NULL DEFAULT true,
    "timezone" TEXT,
    "attributes" JSONB NOT NULL DEFAULT '{}',
    "tags" TEXT[] DEFAULT ARRAY[]::TEXT[],
    "deleted_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "contacts_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "workflows" (
    "id" UUID NOT NULL,
    "account_id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'draft',
    "current_version" INTEGER NOT NULL DEFAULT 1,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "workflows_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "workflow_versions" (
    "id" UUID NOT NULL,
    "workflow_id" UUID NOT NULL,
    "version" INTEGER NOT NULL,
    "definition" JSONB NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "workflow_versions_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "executions" (
    "id" UUID NOT NULL,
    "account_id" UUID NOT NULL,
    "workflow_id" UUID NOT NULL,
    "workflow_version_id" UUID NOT NULL,
    "contact_id" UUID NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'QUEUED',
    "snapshot" JSONB NOT NULL,
    "version" INTEGER NOT NULL DEFAULT 0,
    "current_step_index" INTEGER NOT NULL DEFAULT 0,
    "total_steps" INTEGER NOT NULL,
    "retry_count" INTEGER NOT NULL DEFAULT 0,
    "completion_reason" TEXT,
    "last_error" TEXT,
    "goal_event" TEXT,
    "next_run_at" TIMESTAMPTZ(3),
    "waiting" BOOLEAN NOT NULL DEFAULT false,
    "payload" JSONB NOT NULL DEFAULT '{}',
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "finished_at" TIMESTAMPTZ(3),
    "seq" BIGSERIAL NOT NULL,
    "trace_context" JSONB,
    "notify_pending" BOOLEAN NOT NULL DEFAULT false,
    "slot_shard" SMALLINT,

    CONSTRAINT "executions_pkey" PRIMARY KEY ("id")
) WITH (fillfactor = 80);

-- CreateTable
CREATE TABLE "execution_logs" (
    "id" BIGSERIAL NOT NULL,
    "execution_id" UUID,
    "account_id" UUID NOT NULL,
    "workflow_id" UUID,
    "contact_id" UUID,
    "event_type" TEXT NOT NULL,
    "step_index" INTEGER,
    "step_id" TEXT,
    "status" TEXT NOT NULL,
    "timestamp" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "duration_ms" INTEGER,
    "user_id" UUID,
    "details" JSONB NOT NULL DEFAULT '{}',

    CONSTRAINT "execution_logs_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "users_account_id_idx" ON "users"("account_id");

-- CreateIndex
CREATE UNIQUE INDEX "api_keys_key_hash_key" ON "api_keys"("key_hash");

-- CreateIndex
CREATE INDEX "api_keys_account_id_idx" ON "api_keys"("account_id");

-- CreateIndex
CREATE INDEX "contacts_account_id_email_idx" ON "contacts"("account_id", "email");

-- CreateIndex
CREATE INDEX "workflows_account_id_created_at_idx" ON "workflows"("account_id", "created_at");

-- CreateIndex
CREATE UNIQUE INDEX "workflow_versions_workflow_id_version_key" ON "workflow_versions"("workflow_id", "version");

-- CreateIndex
CREATE INDEX "executions_workflow_id_created_at_idx" ON "executions"("workflow_id", "created_at" DESC);

-- CreateIndex
CREATE INDEX "executions_workflow_id_status_created_at_idx" ON "executions"("workflow_id", "status", "created_at" DESC);

-- CreateIndex
CREATE INDEX "executions_contact_id_workflow_id_created_at_idx" ON "executions"("contact_id", "workflow_id", "created_at" DESC);

-- CreateIndex
CREATE INDEX "executions_status_next_run_at_idx" ON "executions"("status", "next_run_at");

-- The account's waiting line: only the executions waiting for a slot, so it stays small whatever the
-- backlog of queued work, and the planner picks it even before the statistics know about a backlog.
CREATE INDEX "executions_waiting_line_idx" ON "executions"("account_id", "seq") WHERE "status" = 'QUEUED' AND "waiting";

-- Failures whose admin notification is not logged yet, oldest first, for the sweeper.
CREATE INDEX "executions_notify_pending_idx" ON "executions"("finished_at") WHERE "notify_pending";

-- CreateIndex
CREATE INDEX "execution_logs_execution_id_id_idx" ON "execution_logs"("execution_id", "id");

-- AddForeignKey
ALTER TABLE "account_slots" ADD CONSTRAINT "account_slots_account_id_fkey" FOREIGN KEY ("account_id") REFERENCES "accounts"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "users" ADD CONSTRAINT "users_account_id_fkey" FOREIGN KEY ("account_id") REFERENCES "accounts"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "api_keys" ADD CONSTRAINT "api_keys_account_id_fkey" FOREIGN KEY ("account_id") REFERENCES "accounts"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "api_keys" ADD CONSTRAINT "api_keys_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "contacts" ADD CONSTRAINT "contacts_account_id_fkey" FOREIGN KEY ("account_id") REFERENCES "accounts"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "workflows" ADD CONSTRAINT "workflows_account_id_fkey" FOREIGN KEY ("account_id") REFERENCES "accounts"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "workflow_versions" ADD CONSTRAINT "workflow_versions_workflow_id_fkey" FOREIGN KEY ("workflow_id") REFERENCES "workflows"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "executions" ADD CONSTRAINT "executions_account_id_fkey" FOREIGN KEY ("account_id") REFERENCES "accounts"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "executions" ADD CONSTRAINT "executions_workflow_id_fkey" FOREIGN KEY ("workflow_id") REFERENCES "workflows"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "executions" ADD CONSTRAINT "executions_workflow_version_id_fkey" FOREIGN KEY ("workflow_version_id") REFERENCES "workflow_versions"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "executions" ADD CONSTRAINT "executions_contact_id_fkey" FOREIGN KEY ("contact_id") REFERENCES "contacts"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "execution_logs" ADD CONSTRAINT "execution_logs_execution_id_fkey" FOREIGN KEY ("execution_id") REFERENCES "executions"("id") ON DELETE CASCADE ON UPDATE CASCADE;
