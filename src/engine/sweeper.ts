import type { StepWork } from './work.ts';
import { run } from '../db/sql.ts';
import { admitWaiting } from './admission.ts';
import { traceOf } from './commit.ts';
import { notifyFailure, type FailureNotice } from './notify.ts';
import type { EngineDeps } from './types.ts';

/** Bounds of one sweep's reads: rows per statement (and per Redis call), stale candidates checked per sweep. */
export interface SweepLimits {
  batch: number;
  staleRowsPerSweep: number;
}
const LIMITS: SweepLimits = { batch: 1_000, staleRowsPerSweep: 5_000 };

/** Timers due within the horizon that an earlier sweep has not promoted yet. */
const TIMERS = {
  name: 'sweep-timers',
  text: `SELECT id, version, next_run_at AS "nextRunAt", trace_context AS "traceContext" FROM executions
    WHERE status IN ('PAUSED', 'ACTIVE') AND next_run_at <= $1 AND ($2::timestamptz IS NULL OR next_run_at > $2)`,
};
/** Accounts with executions waiting in line (read from the line's small partial index) and free slots. */
const ACCOUNTS_WITH_ROOM = {
  name: 'sweep-accounts-with-room',
  text: `SELECT s.account_id AS id, sum(s.quota - s.used)::int AS free FROM account_slots s
    WHERE s.used < s.quota AND s.account_id IN (SELECT e.account_id FROM executions e WHERE e.status = 'QUEUED' AND e.waiting)
    GROUP BY s.account_id`,
};

/** Accounts whose limit was lowered below what they used, back under it: their slots are spread again. */
const RESPREAD = {
  name: 'sweep-respread',
  text: `SELECT flowmachine_spread_slots(a.id) FROM accounts a JOIN account_slots s ON s.account_id = a.id
    GROUP BY a.id HAVING sum(s.quota) = 0 AND sum(s.used) < a.concurrent_executions_per_account`,
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

/** Work due but untouched: a step or an admission, or a timer overdue by more than STALE_AFTER_MS. */
const STUCK = {
  name: 'sweep-stuck',
  text: `SELECT id, version, trace_context AS "traceContext" FROM executions
    WHERE ((status = 'ACTIVE' AND next_run_at IS NULL) OR (status = 'QUEUED' AND NOT waiting) OR (status IN ('ACTIVE', 'PAUSED') AND next_run_at < $1))
      AND ($2::boolean OR updated_at < $1) AND ($3::uuid IS NULL OR id > $3)
    ORDER BY id LIMIT $4`,
};

/** What one sweep did. */
export interface SweepReport {
  /** Redis had lost its state (restart, FLUSHALL) and every running execution was re-enqueued. */
  rebuilt: boolean;
  enqueued: number;
  admitted: number;
  /** Notification attempts made: failures whose worker died before notifying, and retries now due. */
  notified: number;
}

/**
 * Rebuilds Redis work from Postgres, the source of truth. Each sweep
 * - promotes timers due within the horizon (far-future waits live only in Postgres);
 * - re-enqueues executions whose work is due but untouched for `STALE_AFTER_MS` and whose job is not in
 *   Redis (a crash between commit and enqueue, a failed enqueue), overdue timers included, checking a
 *   bounded slice of the candidates per sweep;
 * - gives slots back to accounts whose limit was lowered below their use once they are under it, and
 *   admits executions waiting in line when their account has free slots;
 * - notifies the admin of failures whose worker died before it logged the notification, and retries
 *   the notifications whose earlier attempt failed transiently once their next attempt is due;
 * - after Redis lost its data (the epoch key is gone) re-enqueues every running execution, walking the
 *   table from its start in batches of `limits.batch` (not from the cursor an earlier sweep left).
 * Job ids are derived from execution versions, so re-adding a job that still exists changes nothing,
 * and a job for an outdated version is dropped by the worker: sweeping is always safe.
 */
export function createSweeper(deps: EngineDeps, limits: SweepLimits = LIMITS) {
  const { batch } = limits;
  let promotedUntil: Date | null = null;
  let staleCursor: string | undefined;
  const epochKey = `${deps.config.QUEUE_PREFIX}:epoch`; // single-key SET NX; carries the prefix's hash tag on a cluster

  return async function sweep(): Promise<SweepReport> {
    const now = deps.clock.now();
    const rebuilt = (await deps.redis.set(epochKey, now.toISOString(), 'NX')) === 'OK';
    if (rebuilt) {
      promotedUntil = null;
      staleCursor = undefined;
    }
    const horizon = new Date(now.getTime() + deps.config.TIMER_HORIZON_MS);
    const staleBefore = new Date(now.getTime() - deps.config.STALE_AFTER_MS);
    let enqueued = 0;

    const timers = await run<{ id: string; version: number; nextRunAt: Date; traceContext: unknown }>(
      deps.pool,
      TIMERS,
      [horizon, promotedUntil],
    );
    enqueued += await enqueue(
      deps,
      batch,
      timers.map((t) => ({
        executionId: t.id,
        version: t.version,
        delayMs: t.nextRunAt!.getTime() - now.getTime(),
        recovered: rebuilt || undefined,
        trace: traceOf(t),
      })),
    );
    promotedUntil = horizon;

    // After a Redis loss everything is rebuilt at once; otherwise each sweep checks the next
    // STALE_ROWS_PER_SWEEP candidates, going round the table, so a large backlog costs each sweep little.
    for (let examined = 0; rebuilt || examined < limits.staleRowsPerSweep; examined += batch) {
      const stuck = await run<{ id: string; version: number; traceContext: unknown }>(deps.pool, STUCK, [
        staleBefore,
        rebuilt,
        staleCursor ?? null,
        batch,
      ]);
      // A backlog older than STALE_AFTER_MS still has its jobs: only the missing ones are rebuilt.
      const work = stuck.map((s) => ({ executionId: s.id, version: s.version, recovered: true, trace: traceOf(s) }));
      enqueued += await enqueue(deps, batch, rebuilt ? work : await deps.queue.missing(work));
      staleCursor = stuck.length < batch ? undefined : stuck.at(-1)!.id;
      if (!staleCursor) break;
    }

    let admitted = 0;
    await run(deps.pool, RESPREAD, []);
    const accounts = await run<{ id: string; free: number }>(deps.pool, ACCOUNTS_WITH_ROOM, []);
    for (const account of accounts) {
      const work = await admitWaiting(deps, account.id, account.free);
      await deps.queue.add(work);
      admitted += work.length;
    }
    const unnotified = await run<FailureNotice>(deps.pool, UNNOTIFIED, [
      new Date(staleBefore.getTime() - deps.config.PROVIDER_TIMEOUT_MS),
      now,
    ]);
    await Promise.all(unnotified.map((notice) => notifyFailure(deps, notice)));
    return { rebuilt, enqueued, admitted, notified: unnotified.length };
  };
}

async function enqueue(deps: EngineDeps, batch: number, work: StepWork[]): Promise<number> {
  for (let i = 0; i < work.length; i += batch) await deps.queue.add(work.slice(i, i + batch));
  return work.length;
}
