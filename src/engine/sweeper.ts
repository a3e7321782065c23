import { coerceError } from '../errors.ts';
import type { StepWork } from './work.ts';
import { traceOf } from './decide-step.ts';
import { notifyFailure } from './notify.ts';
import type { TimerPosition } from '../store/execution-store.ts';
import type { EngineDeps } from './types.ts';

/**
 * Bounds of one sweep's reads: rows per statement (and per Redis call), stale candidates checked per
 * sweep, timers promoted per sweep (`TIMER_PROMOTE_PER_SWEEP` unless given).
 */
export interface SweepLimits {
  batch: number;
  staleRowsPerSweep: number;
  timersPerSweep?: number;
}
const LIMITS: SweepLimits = { batch: 1_000, staleRowsPerSweep: 5_000 };
/** How often one process's sweeper keeps the log partitions (created ahead, dropped by LOG_RETENTION_DAYS). */
export const LOG_MAINTENANCE_MS = 3_600_000;
const DAY_MS = 86_400_000;

/** The end of the timer order: every timer due by `at`, whatever its id, is passed. */
const LAST_ID = 'ffffffff-ffff-ffff-ffff-ffffffffffff';

/** What one sweep did. */
export interface SweepReport {
  /** Redis had lost its state (restart, FLUSHALL) and every running execution was re-enqueued. */
  rebuilt: boolean;
  enqueued: number;
  /** Timers promoted from Postgres to Redis (counted in `enqueued`). */
  promoted: number;
  admitted: number;
  /** Notification attempts made: failures whose worker died before notifying, and retries now due. */
  notified: number;
  /** Monthly log partitions created ahead, and dropped by LOG_RETENTION_DAYS (at most hourly, see {@link LOG_MAINTENANCE_MS}). */
  partitionsCreated: number;
  partitionsDropped: number;
}

/**
 * Rebuilds Redis work from Postgres, the source of truth. Each sweep
 * - promotes timers due within `TIMER_PROMOTE_AHEAD_MS` (later ones live only in Postgres), walking
 *   them in (next_run_at, id) order from where the previous sweep stopped, at most `timersPerSweep` per
 *   sweep in statements of `batch`; their jobs come due at their time but no faster than
 *   `timersPerSweep` per interval, so a spike of due timers enters Redis, and comes due, at a bounded
 *   rate that leaves new triggers room;
 * - re-enqueues executions whose work is due but untouched for `STALE_AFTER_MS` and whose job is not in
 *   Redis (a crash between commit and enqueue, a failed enqueue), overdue timers the walk has passed
 *   included, checking a bounded slice of the candidates per sweep;
 * - gives slots back to accounts whose limit was lowered below their use once they are under it, and
 *   admits executions waiting in line when their account has free slots;
 * - notifies the admin of failures whose worker died before it logged the notification, and retries
 *   the notifications whose earlier attempt failed transiently once their next attempt is due;
 * - at most once per {@link LOG_MAINTENANCE_MS}, creates the log tables' monthly partitions ahead and,
 *   with LOG_RETENTION_DAYS, drops the months wholly older than it (src/sql/partitions.ts); a failure
 *   there (a lock not granted in time) is logged and tried again at the next sweep;
 * - after Redis lost its data (the epoch key is gone) re-enqueues every running execution, walking the
 *   table from its start in batches of `limits.batch` (not from the cursor an earlier sweep left), and
 *   walks the timers again from the first.
 * Job ids are derived from execution versions, so re-adding a job that still exists changes nothing,
 * and a job for an outdated version is dropped by the worker: sweeping is always safe.
 */
export function createSweeper(deps: EngineDeps, limits: SweepLimits = LIMITS) {
  const { batch } = limits;
  const timersPerSweep = limits.timersPerSweep ?? deps.config.TIMER_PROMOTE_PER_SWEEP;
  /** Where the timer walk stands: every timer up to it in (next_run_at, id) order has been promoted. */
  let position: TimerPosition | null = null;
  /** Jobs of promoted timers are released one per `spacingMs` at most, from `releaseAt` on: `timersPerSweep` per interval. */
  const spacingMs = deps.config.SWEEP_INTERVAL_MS / timersPerSweep;
  let releaseAt = 0;
  let staleCursor: string | undefined;
  let maintainedAt: number | null = null;
  const epochKey = `${deps.config.QUEUE_PREFIX}:epoch`; // single-key SET NX; carries the prefix's hash tag on a cluster

  return async function sweep(): Promise<SweepReport> {
    const now = deps.clock.now();
    const rebuilt = (await deps.redis.set(epochKey, now.toISOString(), 'NX')) === 'OK';
    if (rebuilt) {
      position = null;
      releaseAt = 0;
      staleCursor = undefined;
    }
    const horizon = new Date(now.getTime() + deps.config.TIMER_PROMOTE_AHEAD_MS);
    const staleBefore = new Date(now.getTime() - deps.config.STALE_AFTER_MS);
    let enqueued = 0;

    // Timers, in bounded statements up to the sweep's share; a short statement means the walk reached
    // the horizon, and the next sweep starts after it (later waits that start get their job at once).
    let count = 0;
    releaseAt = Math.max(releaseAt, now.getTime()); // no credit for time the sweeper had nothing to release
    while (count < timersPerSweep) {
      const limit = Math.min(batch, timersPerSweep - count);
      const timers = await deps.store.sweep.timers(horizon, position, limit);
      enqueued += await enqueue(
        deps,
        batch,
        timers.map((t) => {
          const release = Math.max(t.nextRunAt!.getTime(), releaseAt);
          releaseAt = release + spacingMs;
          return {
            executionId: t.id,
            version: t.version,
            delayMs: release - now.getTime(),
            recovered: rebuilt || undefined,
            trace: traceOf(t),
          };
        }),
      );
      count += timers.length;
      if (timers.length < limit) {
        position = { at: horizon, id: LAST_ID };
        break;
      }
      position = { at: timers.at(-1)!.nextRunAt!, id: timers.at(-1)!.id };
    }

    // After a Redis loss everything is rebuilt at once; otherwise each sweep checks the next
    // STALE_ROWS_PER_SWEEP candidates, going round the table, so a large backlog costs each sweep little.
    for (let examined = 0; rebuilt || examined < limits.staleRowsPerSweep; examined += batch) {
      const stuck = await deps.store.sweep.stuck(
        staleBefore,
        rebuilt,
        staleCursor ?? null,
        batch,
        position?.at ?? null,
      );
      // A backlog older than STALE_AFTER_MS still has its jobs: only the missing ones are rebuilt.
      const work = stuck.map((s) => ({ executionId: s.id, version: s.version, recovered: true, trace: traceOf(s) }));
      enqueued += await enqueue(deps, batch, rebuilt ? work : await deps.queue.missing(work));
      staleCursor = stuck.length < batch ? undefined : stuck.at(-1)!.id;
      if (!staleCursor) break;
    }

    let admitted = 0;
    await deps.store.sweep.respread();
    for (const account of await deps.store.sweep.accountsWithRoom()) {
      const work = await deps.store.admitWaiting(account.id, account.free);
      await deps.queue.add(work);
      admitted += work.length;
    }
    const unnotified = await deps.store.sweep.unnotified(
      new Date(staleBefore.getTime() - deps.config.PROVIDER_TIMEOUT_MS),
      now,
    );
    await Promise.all(unnotified.map((notice) => notifyFailure(deps, notice)));

    let partitions = { created: 0, dropped: 0 };
    if (maintainedAt === null || now.getTime() - maintainedAt >= LOG_MAINTENANCE_MS) {
      try {
        partitions = await maintainLogPartitions(deps, now);
        maintainedAt = now.getTime();
      } catch (error) {
        deps.logger.warn('log partition upkeep failed', { error: coerceError(error).message });
      }
    }
    return {
      rebuilt,
      enqueued,
      admitted,
      promoted: count,
      notified: unnotified.length,
      partitionsCreated: partitions.created,
      partitionsDropped: partitions.dropped,
    };
  };
}

/** Creates the log partitions ahead; with LOG_RETENTION_DAYS drops those wholly older, logging each. */
async function maintainLogPartitions(deps: EngineDeps, now: Date): Promise<{ created: number; dropped: number }> {
  const created = await deps.store.sweep.createLogPartitions(now);
  if (created > 0) deps.logger.info('log partitions created', { created });
  const days = deps.config.LOG_RETENTION_DAYS;
  if (days === 0) return { created, dropped: 0 };
  const before = new Date(now.getTime() - days * DAY_MS);
  let dropped = 0;
  for (const removed of await deps.store.sweep.dropLogPartitions(before)) {
    if (removed.rowsDeleted === null) {
      dropped += 1;
      deps.metrics.logPartitionsDropped.inc({ table: removed.table });
    }
    deps.logger.info('log retention', { ...removed, before: before.toISOString() });
  }
  return { created, dropped };
}

async function enqueue(deps: EngineDeps, batch: number, work: StepWork[]): Promise<number> {
  for (let i = 0; i < work.length; i += batch) await deps.queue.add(work.slice(i, i + batch));
  return work.length;
}
