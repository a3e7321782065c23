import { randomUUID } from 'node:crypto';
import { coerceError } from '../errors.ts';
import { withSpan } from '../observability/tracing.ts';
import type { StepWork } from './work.ts';
import { traceOf } from './decide-step.ts';
import { notifyFailure } from './notify.ts';
import type { TimerPosition } from '../store/execution-store.ts';
import type { EngineDeps } from './types.ts';

/**
 * Bounds of one sweep's reads: rows per statement (and per Redis call), stale candidates checked per
 * sweep, and the ready jobs the timer release tops the queue up to (`TIMER_READY_TARGET` unless given).
 */
export interface SweepLimits {
  batch: number;
  staleRowsPerSweep: number;
  readyTarget?: number;
}
const LIMITS: SweepLimits = { batch: 1_000, staleRowsPerSweep: 5_000 };
/** How often one process's sweeper keeps the log partitions (created ahead, dropped by LOG_RETENTION_DAYS). */
export const LOG_MAINTENANCE_MS = 3_600_000;
const DAY_MS = 86_400_000;

/** The end of the timer order: every timer due by `at`, whatever its id, is passed. */
const LAST_ID = 'ffffffff-ffff-ffff-ffff-ffffffffffff';

/** This process, as the holder of the timer release's lease (every sweeper of a process is one holder). */
const PROCESS_ID = randomUUID();

/** What one sweep did. */
export interface SweepReport {
  /** Redis had lost its state (restart, FLUSHALL) and every running execution was re-enqueued. */
  rebuilt: boolean;
  enqueued: number;
  /** Timers released from Postgres to Redis (counted in `enqueued`). */
  promoted: number;
  admitted: number;
  /** Notification attempts made: failures whose worker died before notifying, and retries now due. */
  notified: number;
  /** Monthly log partitions created ahead, and dropped by LOG_RETENTION_DAYS (at most hourly, see {@link LOG_MAINTENANCE_MS}). */
  partitionsCreated: number;
  partitionsDropped: number;
  /** Tables analyzed because their statistics were stale (see prisma/functions/flowmachine_analyze_stale.sql). */
  analyzed: string[];
}

/** What one timer release did: whether this process held the lease, the queue's ready jobs before it, the timers it released. */
export interface ReleaseReport {
  leader: boolean;
  ready: number;
  released: number;
}

/** A sweep, and the timer release it starts with, which the runtime also runs on its own, more often. */
export type Sweeper = (() => Promise<SweepReport>) & { release: () => Promise<ReleaseReport> };

/**
 * Rebuilds Redis work from Postgres, the source of truth. Each sweep
 * - releases due timers ({@link Sweeper.release}, also run every `TIMER_RELEASE_INTERVAL_MS`): one
 *   process at a time (a lease in Redis) walks the timers due within `TIMER_PROMOTE_AHEAD_MS` in
 *   (next_run_at, id) order from where the walk stands (a position in Redis, shared by every worker),
 *   enqueueing only as many as keep the queue's ready jobs under `TIMER_READY_TARGET`. A spike of due
 *   timers thus enters Redis as fast as the workers take it and no faster, and their jobs share one
 *   line with new executions' first jobs, so a new trigger waits behind at most that many jobs. A
 *   release that enqueues any is one `timer release` span and counts them in
 *   `flowmachine_timers_released_total`; one that finds nothing to do leaves no span;
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
 * - analyzes the tables whose statistics are stale (flowmachine_analyze_stale; autovacuum off or behind),
 *   so that every connection's cached plans are made again for the tables' size;
 * - after Redis lost its data (the epoch key is gone, and with it the walk's position) re-enqueues every
 *   running execution, walking the table from its start in batches of `limits.batch`, and the timer
 *   release walks the timers again from the first.
 * Job ids are derived from execution versions, so re-adding a job that still exists changes nothing,
 * and a job for an outdated version is dropped by the worker: sweeping is always safe.
 */
export function createSweeper(deps: EngineDeps, limits: SweepLimits = LIMITS): Sweeper {
  const { batch } = limits;
  const readyTarget = limits.readyTarget ?? deps.config.TIMER_READY_TARGET;
  let staleCursor: string | undefined;
  let maintainedAt: number | null = null;
  // Single-key commands, each key carrying the prefix's hash tag on a cluster.
  const prefix = deps.config.QUEUE_PREFIX;
  const keys = { epoch: `${prefix}:epoch`, lease: `${prefix}:timer-release`, walk: `${prefix}:timer-walk` };
  const leaseMs = Math.max(2_000, 4 * deps.config.TIMER_RELEASE_INTERVAL_MS);

  /** Takes or keeps the release's lease; false while another process holds it. */
  const lease = async (): Promise<boolean> => {
    if ((await deps.redis.set(keys.lease, PROCESS_ID, 'PX', leaseMs, 'NX')) === 'OK') {
      // Rare: this process's first run, or the holder stopped renewing (it died, or a run outlasted the lease).
      deps.logger.info('timer release lease taken', { holder: PROCESS_ID, lease_ms: leaseMs });
      return true;
    }
    if ((await deps.redis.get(keys.lease)) !== PROCESS_ID) return false;
    await deps.redis.pexpire(keys.lease, leaseMs);
    return true;
  };
  const walkPosition = async (): Promise<TimerPosition | null> => parsePosition(await deps.redis.get(keys.walk));

  const release = async (): Promise<ReleaseReport> => {
    const startTime = Date.now(); // the span's, in wall time like every other span, whatever deps.clock says
    if (!(await lease())) return { leader: false, ready: 0, released: 0 };
    const now = deps.clock.now();
    const ready = await deps.queue.ready();
    const room = readyTarget - ready;
    if (room <= 0) return { leader: true, ready, released: 0 };
    const horizon = new Date(now.getTime() + deps.config.TIMER_PROMOTE_AHEAD_MS);
    const start = await walkPosition();
    // No position: Redis lost its data (or this is its first walk), so the jobs it adds are rebuilt ones.
    const recovered = start === null;
    const end: TimerPosition = { at: horizon, id: LAST_ID };
    // Bounded statements up to the room under the target; a short one means the walk reached the
    // horizon, and the next release starts after it (later waits that start get their job at once).
    const next = (position: TimerPosition | null, released: number) => {
      const limit = Math.min(batch, room - released);
      return deps.store.sweep.timers(horizon, position, limit).then((timers) => ({ timers, limit }));
    };
    // Most runs find nothing due: they make no span, so a trace store does not get one every interval.
    const first = await next(start, 0);
    if (first.timers.length === 0) {
      await deps.redis.set(keys.walk, formatPosition(end));
      return { leader: true, ready, released: 0 };
    }
    const attributes = {
      'flowmachine.ready_jobs': ready,
      'flowmachine.ready_target': readyTarget,
      'flowmachine.recovered': recovered,
    };
    return withSpan(
      'timer release',
      attributes,
      async (span) => {
        let { timers, limit } = first;
        let released = 0;
        let position: TimerPosition;
        for (;;) {
          await enqueue(
            deps,
            batch,
            timers.map((t) => ({
              executionId: t.id,
              version: t.version,
              delayMs: t.nextRunAt!.getTime() - now.getTime(),
              first: true,
              recovered: recovered || undefined,
              trace: traceOf(t),
            })),
          );
          released += timers.length;
          deps.metrics.timersReleased.inc({ recovered: String(recovered) }, timers.length);
          span.setAttribute('flowmachine.timers_released', released);
          if (timers.length < limit) {
            position = end;
            break;
          }
          position = { at: timers.at(-1)!.nextRunAt!, id: timers.at(-1)!.id };
          if (released >= room) break;
          ({ timers, limit } = await next(position, released));
        }
        await deps.redis.set(keys.walk, formatPosition(position));
        if (recovered)
          deps.logger.info('timer release from the first timer', { released, ready, ready_target: readyTarget });
        return { leader: true, ready, released };
      },
      { startTime },
    );
  };

  const sweep = async function sweep(): Promise<SweepReport> {
    const now = deps.clock.now();
    const rebuilt = (await deps.redis.set(keys.epoch, now.toISOString(), 'NX')) === 'OK';
    if (rebuilt) {
      staleCursor = undefined;
      await deps.redis.del(keys.walk); // gone with the data already, unless this is the first sweep
    }
    const staleBefore = new Date(now.getTime() - deps.config.STALE_AFTER_MS);
    const { released: count } = await release(); // after a loss, from the first timer (the position went too)
    let enqueued = count;
    const position = await walkPosition();

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
    const analyzed = await analyzeStale(deps);
    return {
      rebuilt,
      enqueued,
      admitted,
      promoted: count,
      notified: unnotified.length,
      partitionsCreated: partitions.created,
      partitionsDropped: partitions.dropped,
      analyzed,
    };
  };
  return Object.assign(sweep, { release });
}

/** A table's name for a metric label: a log partition (`execution_logs_p202612`) counts as its table. */
const tableFamily = (table: string) => table.replace(/_(p\d{6}|default)$/, '');

/** Analyzes the tables whose statistics are stale, counting each; a failure is a warning, and none analyzed. */
async function analyzeStale(deps: EngineDeps): Promise<string[]> {
  try {
    const analyzed = await deps.store.sweep.analyzeStale();
    for (const table of analyzed) deps.metrics.tablesAnalyzed.inc({ table: tableFamily(table) });
    return analyzed;
  } catch (error) {
    deps.logger.warn('analyzing stale tables failed', { error: coerceError(error).message });
    return [];
  }
}

/** The walk's position as kept in Redis: `<next_run_at ISO> <id>`. */
const formatPosition = (position: TimerPosition) => `${position.at.toISOString()} ${position.id}`;
function parsePosition(value: string | null): TimerPosition | null {
  const [at, id] = value?.split(' ') ?? [];
  return at && id ? { at: new Date(at), id } : null;
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
