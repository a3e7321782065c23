import { coerceError } from '../errors.ts';
import type { EngineDeps } from '../engine/types.ts';
import type { WorkflowCache } from '../engine/workflow-cache.ts';
import { withSpan } from '../observability/tracing.ts';
import { createRedis, type RedisClient } from './redis.ts';
import type { StepQueue } from './step-queue.ts';
import { createStepWorker, type StepWorker } from './step-worker.ts';

/** A delayed job this late is due work a healthy worker would have promoted and taken. */
const DELAYED_GRACE_MS = 1_000;
/** How long a replaced worker gets to close before its connection is cut. */
const RETIRE_TIMEOUT_MS = 5_000;

/** The engine's dependencies, with the queue and the cache the workers use. */
type SupervisorDeps = EngineDeps & { queue: StepQueue; cache: WorkflowCache };

/**
 * The step worker of a process, kept taking work. After a Redis failover a BullMQ worker's blocking
 * fetch can wait forever for a connection that is ready again (seen on Redis Cluster here; BullMQ's
 * advice in taskforcesh/bullmq#3185 is to close such a worker and create a new one): the queue then
 * holds due jobs that no worker takes while every other part of the process works. {@link check}
 * looks at the worker; when it has run nothing and started nothing while jobs were due for
 * `WORKER_STALL_MS`, it closes the worker and its connection and starts a new one on a new connection.
 */
export class WorkerSupervisor {
  private running: { worker: StepWorker; connection: RedisClient };
  /** Since when due jobs have been waiting while the worker ran nothing; null while all is well. */
  private dueSince: number | null = null;
  private closing: Promise<void> | null = null;

  constructor(private readonly deps: SupervisorDeps) {
    this.running = this.start();
  }

  /** The worker now running. */
  get worker(): StepWorker {
    return this.running.worker;
  }

  /**
   * Replaces the worker if it has taken no due job for `WORKER_STALL_MS` up to `now`; true if it did.
   * Cheap while the worker is busy (no Redis call) or the queue is idle (two reads).
   */
  async check(now = Date.now()): Promise<boolean> {
    const { worker } = this.running;
    if (this.closing || worker.active() > 0 || worker.lastStartedAt() >= (this.dueSince ?? now)) {
      this.dueSince = null;
      return false;
    }
    const ready = await this.deps.queue.ready();
    const nextDelayed = ready > 0 ? null : await this.deps.queue.nextDelayedAt();
    if (ready === 0 && (nextDelayed === null || nextDelayed > now - DELAYED_GRACE_MS)) {
      this.dueSince = null;
      return false;
    }
    this.dueSince ??= now;
    const idleMs = now - this.dueSince;
    if (idleMs < this.deps.config.WORKER_STALL_MS) return false;

    const details = { ready, overdue_ms: nextDelayed === null ? undefined : now - nextDelayed, idle_ms: idleMs };
    await withSpan('worker restart', { 'flowmachine.ready_jobs': ready, 'flowmachine.idle_ms': idleMs }, async () => {
      this.deps.logger.warn('the step worker took no due job; replacing it and its connection', details);
      this.deps.metrics.workerRestarts.inc();
      const old = this.running;
      this.running = this.start();
      this.dueSince = null;
      await retire(old.worker, old.connection).catch((error: unknown) =>
        this.deps.logger.warn('closing the replaced step worker failed', { error: coerceError(error).message }),
      );
    });
    return true;
  }

  /** Stops taking jobs and lets the running ones finish (bounded by `timeoutMs`), then disconnects. */
  close(timeoutMs: number): Promise<void> {
    this.closing ??= (async () => {
      const { worker, connection } = this.running;
      await Promise.race([worker.worker.close(), delay(timeoutMs)]);
      connection.disconnect();
    })();
    return this.closing;
  }

  private start() {
    const connection = createRedis(this.deps.config.REDIS);
    connection.on('error', () => undefined); // reported by the worker's own error events
    return { connection, worker: createStepWorker(this.deps, this.deps.cache, connection) };
  }
}

/** Closes a worker that runs no job, without waiting for a fetch that may never return. */
async function retire(worker: StepWorker, connection: RedisClient): Promise<void> {
  try {
    await Promise.race([worker.worker.close(true), delay(RETIRE_TIMEOUT_MS)]);
  } finally {
    connection.disconnect();
  }
}

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());
