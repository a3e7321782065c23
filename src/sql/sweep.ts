import type { Pool } from '../db/client.ts';
import { run } from '../db/sql.ts';
import { createLogPartitions, dropLogPartitions } from './partitions.ts';
import type { SweepQueries, SweptExecution, UnnotifiedFailure } from '../store/execution-store.ts';

/**
 * Timers due by $1 after the keyset position ($2, $3) = (next_run_at, id) of the last one promoted
 * (none: from the first), in that order, at most $4: the sweeper walks them in bounded statements, none
 * skipped or read twice. The partial index executions_due_idx (next_run_at, id) returns them in that
 * order, so a statement reads its LIMIT whatever the number due.
 */
export const TIMERS = {
  name: 'sweep-timers',
  text: `SELECT id, version, next_run_at AS "nextRunAt", trace_context AS "traceContext" FROM executions
    WHERE status IN ('PAUSED', 'ACTIVE') AND next_run_at <= $1
      AND (next_run_at, id) > (coalesce($2::timestamptz, '-infinity'), coalesce($3::uuid, '00000000-0000-0000-0000-000000000000'))
    ORDER BY next_run_at, id LIMIT $4`,
};
/**
 * Work due but untouched after id $3 (none: from the first), in id order: a step or an admission
 * (executions_unstarted_idx), or a timer overdue by more than STALE_AFTER_MS among those the timer walk
 * has passed (due before $5; none when NULL): timers it has not reached yet are its work, at its bounded
 * rate, not lost jobs. Two disjoint parts, each read through its partial index: as one OR, the planner
 * walked the primary key for them and read the whole table when few matched.
 */
export const STUCK = {
  name: 'sweep-stuck',
  text: `SELECT id, version, next_run_at AS "nextRunAt", trace_context AS "traceContext" FROM (
      SELECT id, version, next_run_at, trace_context FROM executions
        WHERE ((status = 'ACTIVE' AND next_run_at IS NULL) OR (status = 'QUEUED' AND NOT waiting))
          AND ($2::boolean OR updated_at < $1) AND id > coalesce($3::uuid, '00000000-0000-0000-0000-000000000000')
      UNION ALL
      SELECT id, version, next_run_at, trace_context FROM executions
        WHERE status IN ('ACTIVE', 'PAUSED') AND next_run_at < $1 AND next_run_at < $5::timestamptz
          AND ($2::boolean OR updated_at < $1) AND id > coalesce($3::uuid, '00000000-0000-0000-0000-000000000000')
    ) due ORDER BY id LIMIT $4`,
};
/** Accounts whose limit was lowered below what they used, back under it: their slots are spread again. */
const RESPREAD = {
  name: 'sweep-respread',
  text: `SELECT flowmachine_spread_slots(a.id) FROM accounts a JOIN account_slots s ON s.account_id = a.id
    GROUP BY a.id HAVING sum(s.quota) = 0 AND sum(s.used) < a.concurrent_executions_per_account`,
};
/** Accounts with executions waiting in line (read from the line's small partial index) and free slots. */
const ACCOUNTS_WITH_ROOM = {
  name: 'sweep-accounts-with-room',
  text: `SELECT s.account_id AS id, sum(s.quota - s.used)::int AS free FROM account_slots s
    WHERE s.used < s.quota AND s.account_id IN (SELECT e.account_id FROM executions e WHERE e.status = 'QUEUED' AND e.waiting)
    GROUP BY s.account_id`,
};
/**
 * Failures whose admin notification is pending and due: the first attempt once the failure is older than
 * a worker takes to notify ($1; its worker died), a retry once its notify_after has come ($2).
 */
const UNNOTIFIED = {
  name: 'sweep-unnotified',
  text: `SELECT e.id AS "executionId", e.account_id AS "accountId", e.version, a.admin_email AS "adminEmail", w.name AS "workflowName",
      coalesce(e.last_error, 'failed') AS error, e.notify_attempts AS attempt
    FROM executions e JOIN accounts a ON a.id = e.account_id JOIN workflows w ON w.id = e.workflow_id
    WHERE e.notify_pending AND e.status = 'FAILED' AND CASE WHEN e.notify_after IS NULL THEN e.finished_at < $1 ELSE e.notify_after <= $2 END
    ORDER BY coalesce(e.notify_after, e.finished_at) LIMIT 100`,
};

/**
 * Tables whose rows changed by more than 1,000 + 20 % since their last ANALYZE are analyzed: where
 * autovacuum runs it gets there first (50 + 10 %); where it does not, plans stay fit for the tables' size.
 */
const ANALYZE_STALE = {
  name: 'sweep-analyze-stale',
  text: 'SELECT t AS "table" FROM flowmachine_analyze_stale(1000, 0.2) AS t',
};

/** The sweeper's statements over `pool`. */
export function sweepQueries(pool: Pool): SweepQueries {
  return {
    timers: (horizon, after, limit) =>
      run<SweptExecution>(pool, TIMERS, [horizon, after?.at ?? null, after?.id ?? null, limit]),
    stuck: (staleBefore, all, cursor, limit, timersBefore) =>
      run<SweptExecution>(pool, STUCK, [staleBefore, all, cursor, limit, timersBefore]),
    respread: async () => {
      await run(pool, RESPREAD, []);
    },
    accountsWithRoom: () => run<{ id: string; free: number }>(pool, ACCOUNTS_WITH_ROOM, []),
    unnotified: (firstBefore, now) => run<UnnotifiedFailure>(pool, UNNOTIFIED, [firstBefore, now]),
    createLogPartitions: (now) => createLogPartitions(pool, now),
    dropLogPartitions: (before) => dropLogPartitions(pool, before),
    analyzeStale: async () => (await run<{ table: string }>(pool, ANALYZE_STALE, [])).map((row) => row.table),
  };
}
