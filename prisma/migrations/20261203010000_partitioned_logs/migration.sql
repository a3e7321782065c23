-- execution_logs and contact_events become partitioned by month of their time (`timestamp`,
-- `created_at`; months in UTC), so LOG_RETENTION_DAYS drops whole old months instead of deleting rows
-- (prisma/functions/flowmachine_drop_log_partitions.sql), and a month's log is one table to scan.
--
-- Each table is converted in place, keeping every row: the old table is renamed, the partitioned one
-- created under the old name with a partition for every month that holds rows, the current month and the
-- next two, and a DEFAULT partition (so no insert can fail, whatever its time); the rows are moved, then
-- the primary key (which must hold the partition key), the indexes and the foreign keys are made again.
-- The new parent has no trigger while the rows move, so nothing counts them twice.
-- `migrate` and the sweeper keep months created ahead (flowmachine_log_partitions.sql). Partitions are
-- named `<table>_pYYYYMM`; those functions read a partition's month from its name.

-- What retention has removed, per table (prisma/functions/flowmachine_drop_log_partitions.sql): rows
-- older than `pruned_before` may be gone, except those of executions running when they went. The
-- consistency check reads it (src/engine/consistency.ts) so a finished execution's pruned log is no fault.
CREATE TABLE "log_retention" (
    "table_name" TEXT NOT NULL,
    "pruned_before" TIMESTAMPTZ(3) NOT NULL,
    "partitions_dropped" INTEGER NOT NULL DEFAULT 0,
    "rows_kept" INTEGER NOT NULL DEFAULT 0,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "log_retention_pkey" PRIMARY KEY ("table_name")
);

-- execution_logs: the old table steps aside, its id sequence is kept for the new one.
ALTER TABLE "execution_logs" RENAME TO "execution_logs_unpartitioned";
ALTER TABLE "execution_logs_unpartitioned" RENAME CONSTRAINT "execution_logs_pkey" TO "execution_logs_unpartitioned_pkey";
ALTER TABLE "execution_logs_unpartitioned" RENAME CONSTRAINT "execution_logs_execution_id_fkey" TO "execution_logs_unpartitioned_execution_id_fkey";
ALTER INDEX "execution_logs_execution_id_id_idx" RENAME TO "execution_logs_unpartitioned_execution_id_id_idx";
ALTER TABLE "execution_logs_unpartitioned" ALTER COLUMN "id" DROP DEFAULT;
ALTER SEQUENCE "execution_logs_id_seq" OWNED BY NONE;

CREATE TABLE "execution_logs" (
    "id" BIGINT NOT NULL DEFAULT nextval('execution_logs_id_seq'),
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
    "details" JSONB NOT NULL DEFAULT '{}'
) PARTITION BY RANGE ("timestamp");
ALTER SEQUENCE "execution_logs_id_seq" OWNED BY "execution_logs"."id";

-- contact_events likewise.
ALTER TABLE "contact_events" RENAME TO "contact_events_unpartitioned";
ALTER TABLE "contact_events_unpartitioned" RENAME CONSTRAINT "contact_events_pkey" TO "contact_events_unpartitioned_pkey";
ALTER TABLE "contact_events_unpartitioned" RENAME CONSTRAINT "contact_events_account_id_fkey" TO "contact_events_unpartitioned_account_id_fkey";
ALTER TABLE "contact_events_unpartitioned" RENAME CONSTRAINT "contact_events_contact_id_fkey" TO "contact_events_unpartitioned_contact_id_fkey";
ALTER INDEX "contact_events_contact_id_name_created_at_idx" RENAME TO "contact_events_unpartitioned_contact_id_name_created_at_idx";
ALTER INDEX "contact_events_account_id_name_idx" RENAME TO "contact_events_unpartitioned_account_id_name_idx";

CREATE TABLE "contact_events" (
    "id" UUID NOT NULL,
    "account_id" UUID NOT NULL,
    "contact_id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "properties" JSONB NOT NULL DEFAULT '{}',
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP
) PARTITION BY RANGE ("created_at");

-- The partitions: every month holding rows, the current month and the next two, and the default.
DO $$
DECLARE
  v_table text;
  v_column text;
  v_month timestamptz;
BEGIN
  FOREACH v_table IN ARRAY ARRAY['execution_logs', 'contact_events'] LOOP
    v_column := CASE v_table WHEN 'execution_logs' THEN 'timestamp' ELSE 'created_at' END;
    FOR v_month IN EXECUTE format(
      $q$SELECT DISTINCT date_trunc('month', %I AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' FROM %I
         UNION SELECT date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' + make_interval(months => m)
         FROM generate_series(0, 2) AS m$q$,
      v_column, v_table || '_unpartitioned')
    LOOP
      EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
        v_table || '_p' || to_char(v_month AT TIME ZONE 'UTC', 'YYYYMM'), v_table,
        v_month, v_month + interval '1 month');
    END LOOP;
    EXECUTE format('CREATE TABLE %I PARTITION OF %I DEFAULT', v_table || '_default', v_table);
  END LOOP;
END $$;

-- The rows move (each lands in its month's partition), then the keys and indexes are built.
INSERT INTO "execution_logs" ("id", "execution_id", "account_id", "workflow_id", "contact_id", "event_type", "step_index", "step_id", "status", "timestamp", "duration_ms", "user_id", "details")
  SELECT "id", "execution_id", "account_id", "workflow_id", "contact_id", "event_type", "step_index", "step_id", "status", "timestamp", "duration_ms", "user_id", "details"
  FROM "execution_logs_unpartitioned";
DROP TABLE "execution_logs_unpartitioned";

INSERT INTO "contact_events" ("id", "account_id", "contact_id", "name", "properties", "created_at")
  SELECT "id", "account_id", "contact_id", "name", "properties", "created_at" FROM "contact_events_unpartitioned";
DROP TABLE "contact_events_unpartitioned";

-- A partitioned table's primary key holds its partition key: ids stay unique (a sequence, a random UUID).
ALTER TABLE "execution_logs" ADD CONSTRAINT "execution_logs_pkey" PRIMARY KEY ("id", "timestamp");
CREATE INDEX "execution_logs_execution_id_id_idx" ON "execution_logs"("execution_id", "id");
ALTER TABLE "execution_logs" ADD CONSTRAINT "execution_logs_execution_id_fkey" FOREIGN KEY ("execution_id") REFERENCES "executions"("id") ON DELETE CASCADE ON UPDATE CASCADE;

ALTER TABLE "contact_events" ADD CONSTRAINT "contact_events_pkey" PRIMARY KEY ("id", "created_at");
CREATE INDEX "contact_events_contact_id_name_created_at_idx" ON "contact_events"("contact_id", "name", "created_at");
CREATE INDEX "contact_events_account_id_name_idx" ON "contact_events"("account_id", "name");
ALTER TABLE "contact_events" ADD CONSTRAINT "contact_events_account_id_fkey" FOREIGN KEY ("account_id") REFERENCES "accounts"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "contact_events" ADD CONSTRAINT "contact_events_contact_id_fkey" FOREIGN KEY ("contact_id") REFERENCES "contacts"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- Replacing execution_logs dropped the triggers on it: the function files that create them
-- (flowmachine_count_*: the stats counters) are applied again after the migrations. `migrate` creates
-- flowmachine_functions before it runs any migration.
DELETE FROM "flowmachine_functions" WHERE "name" LIKE 'flowmachine\_count\_%';
