import type { Pool } from '../db/client.ts';
import { run } from '../db/sql.ts';
import type { DroppedLogRows } from '../store/execution-store.ts';

/**
 * execution_logs and contact_events are partitioned by month (migration partitioned_logs): a partition
 * per UTC month, `<table>_pYYYYMM`, and a DEFAULT partition for any other time, so no insert fails.
 * `migrate` and the sweeper keep the current month and the next two created; with LOG_RETENTION_DAYS
 * the sweeper drops months wholly older than the retention, keeping the rows of running executions.
 */

/** Months ahead kept created after the current one. */
export const LOG_PARTITIONS_AHEAD = 2;
/** Partitions of each table one retention call drops at most (each is one month: normally one is due). */
export const LOG_PARTITIONS_PER_CALL = 1;

/** Creates the missing partitions of the current month and the ones ahead (prisma/functions/flowmachine_log_partitions.sql). */
const CREATE_AHEAD = {
  name: 'log-partitions-ahead',
  text: 'SELECT flowmachine_log_partitions($1::timestamptz, $2::integer) AS created',
};
/** Drops the partitions wholly older than the bound (prisma/functions/flowmachine_drop_log_partitions.sql). */
const DROP_OLD = {
  name: 'log-partitions-drop',
  text: `SELECT table_name AS "table", partition_name AS "partition", rows_kept AS "rowsKept", rows_deleted AS "rowsDeleted"
    FROM flowmachine_drop_log_partitions($1::timestamptz, $2::integer)`,
};

/** Creates the partitions due by `now`; returns how many were missing. */
export async function createLogPartitions(pool: Pool, now: Date): Promise<number> {
  const [row] = await run<{ created: number }>(pool, CREATE_AHEAD, [now, LOG_PARTITIONS_AHEAD]);
  return row?.created ?? 0;
}

/** Drops the log partitions whose month ended by `before`, and old rows of the default partitions. */
export function dropLogPartitions(pool: Pool, before: Date): Promise<DroppedLogRows[]> {
  return run<DroppedLogRows>(pool, DROP_OLD, [before, LOG_PARTITIONS_PER_CALL]);
}
