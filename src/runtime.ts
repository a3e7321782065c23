import type { Server } from 'node:http';
import { createApp, createOpsApp } from './api/app.ts';
import type { ApiDeps } from './api/context.ts';
import { systemClock, type Clock } from './clock.ts';
import type { Config } from './config.ts';
import { BatcherRegistry } from './db/batch.ts';
import { createDb, createPool } from './db/client.ts';
import { createActionRunner } from './actions/run-action.ts';
import { countExecutionsByStatus } from './sql/executions-by-status.ts';
import { createPostgresStore } from './store/postgres-store.ts';
import { foldCounts } from './engine/count-folder.ts';
import { createSweeper } from './engine/sweeper.ts';
import { repeat, type Loop } from './loop.ts';
import { WorkflowCache } from './engine/workflow-cache.ts';
import { createLogger, type Logger } from './observability/logger.ts';
import { createWebhookGuard, type HostResolver } from './providers/webhook-guard.ts';
import { createMetrics, setExecutionsByStatusSource, setQueueDepthSource } from './observability/metrics.ts';
import { createEmailChannel } from './providers/email-channel.ts';
import { createRedis, pingRedis, probeRedis } from './queue/redis.ts';
import { describeRedisTarget } from './redis-target.ts';
import { StepQueue } from './queue/step-queue.ts';
import { WorkerSupervisor } from './queue/worker-supervisor.ts';
import { coerceError } from './errors.ts';

/** The roles a process can play. */
export interface Roles {
  api: boolean;
  worker: boolean;
}

/** What the entry points may supply instead of the defaults (tests do). */
export interface RuntimeOptions {
  clock?: Clock;
  logger?: Logger;
  /** How webhook host names are resolved before the address check (default: the system resolver). */
  resolveHost?: HostResolver;
}

/** A running flowmachine process. */
export interface Runtime {
  deps: ApiDeps;
  server: Server | null;
  /** The step worker (replaced when it stops taking due jobs), when the process is a worker. */
  worker: WorkerSupervisor | null;
  /** Actual port the API listens on (useful with PORT=0). */
  port: number | null;
  /** Stops taking work, lets in-flight steps finish (bounded), closes connections. */
  stop(): Promise<void>;
}

/**
 * Opens connections, failing fast with one clear message when Postgres or Redis does not answer. The
 * engine's own statements go straight to `pg`; Prisma serves the API's CRUD routes only, so a worker
 * never loads its query compiler.
 */
export async function createDeps(
  config: Config,
  options: RuntimeOptions = {},
): Promise<ApiDeps & { close(): Promise<void> }> {
  const logger = options.logger ?? createLogger({ level: config.LOG_LEVEL });
  const pool = createPool(config.DATABASE_URL, {
    max: config.DATABASE_POOL_SIZE,
    connectTimeoutMs: config.DATABASE_CONNECT_TIMEOUT_MS,
    statementTimeoutMs: config.DATABASE_STATEMENT_TIMEOUT_MS,
    lockTimeoutMs: config.DATABASE_LOCK_TIMEOUT_MS,
  });
  const db = createDb(config.DATABASE_URL, { pool });
  try {
    await pool.query('SELECT 1');
  } catch (error) {
    await db.$disconnect().catch(() => undefined);
    throw new Error(
      `cannot reach Postgres at ${redactUrl(config.DATABASE_URL)}: ${coerceError(error).message.split('\n').at(-1)}`,
    );
  }
  // A probe that does not retry, so an unreachable Redis (or a cluster with a slot nobody serves) is reported at once.
  try {
    await probeRedis(config.REDIS, config.QUEUE_PREFIX);
  } catch (error) {
    await db.$disconnect();
    throw new Error(`cannot reach Redis at ${describeRedisTarget(config.REDIS)}: ${coerceError(error).message}`);
  }
  const redis = createRedis(config.REDIS);
  redis.on('error', (error) => logger.warn('redis connection error', { error: error.message })); // ioredis reconnects on its own
  const queue = new StepQueue(redis, config.QUEUE_PREFIX);
  const metrics = createMetrics();
  // A count over every execution: read at most once per EXECUTIONS_GAUGE_TTL_MS whatever the scrapes,
  // so an unauthenticated /metrics cannot make Postgres scan the table on every request.
  setExecutionsByStatusSource(
    metrics,
    cachedFor(EXECUTIONS_GAUGE_TTL_MS, () => countExecutionsByStatus(pool)),
  );
  setQueueDepthSource(metrics, async () => {
    // New executions' first jobs are prioritized (see step-queue.ts): they wait all the same.
    const {
      waiting = 0,
      prioritized = 0,
      ...counts
    } = await queue.queue.getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'failed');
    return { waiting: waiting + prioritized, ...counts };
  });
  const clock = options.clock ?? systemClock;
  const email = createEmailChannel(config, clock);
  const webhooks = createWebhookGuard({ allowedHosts: config.WEBHOOK_ALLOWED_HOSTS, resolve: options.resolveHost });
  const deps: ApiDeps = {
    db,
    pool,
    store: createPostgresStore(pool, new BatcherRegistry({ pool, metrics, logger })),
    actions: createActionRunner({ config, redis, clock, email, webhooks }),
    queue,
    redis,
    clock,
    config,
    logger,
    metrics,
    cache: new WorkflowCache({ maxBytes: config.WORKFLOW_CACHE_MB * 1024 * 1024, metrics }),
    email,
    webhooks,
    async health() {
      const [postgres, redisOk] = await Promise.all([
        pool.query('SELECT 1').then(
          () => true,
          () => false,
        ),
        pingRedis(redis, config.QUEUE_PREFIX).then(
          () => true,
          () => false,
        ),
      ]);
      return { postgres, redis: redisOk };
    },
  };
  return {
    ...deps,
    async close() {
      await queue.close().catch(() => undefined);
      await deps.webhooks.close().catch(() => undefined);
      redis.disconnect();
      await deps.email.close();
      await db.$disconnect();
    },
  };
}

/** Starts the API and/or the worker (with its sweeper) on shared connections. */
export async function startRuntime(config: Config, roles: Roles, options: RuntimeOptions = {}): Promise<Runtime> {
  const deps = await createDeps(config, options);
  let server: Server | null = null;
  let worker: WorkerSupervisor | null = null;
  const loops: Loop[] = [];

  if (roles.worker) {
    const supervisor = new WorkerSupervisor(deps);
    worker = supervisor;
    const sweep = createSweeper(deps);
    const failed = (what: string) => (error: unknown) =>
      deps.logger.warn(`${what} failed`, { error: coerceError(error).message });
    const stalled = (what: string) => (ms: number) =>
      deps.logger.warn(`${what} has not finished after ${ms} ms; the next one starts`);
    loops.push(
      repeat(0, config.SWEEP_INTERVAL_MS, stalled('sweep'), () =>
        sweep()
          .then((report) =>
            report.rebuilt ||
            report.admitted ||
            report.notified ||
            report.partitionsCreated ||
            report.partitionsDropped ||
            report.analyzed.length
              ? deps.logger.info('sweep', { ...report })
              : undefined,
          )
          .catch(failed('sweep')),
      ),
      repeat(config.COUNTS_FOLD_INTERVAL_MS, config.COUNTS_FOLD_INTERVAL_MS, stalled('folding counts'), () =>
        foldCounts(deps.store).catch(failed('folding counts')),
      ),
      repeat(config.TIMER_RELEASE_INTERVAL_MS, config.TIMER_RELEASE_INTERVAL_MS, stalled('timer release'), () =>
        sweep.release().catch(failed('timer release')),
      ),
      repeat(WORKER_CHECK_INTERVAL_MS, WORKER_CHECK_INTERVAL_MS, stalled('checking the step worker'), () =>
        supervisor.check().catch(failed('checking the step worker')),
      ),
    );
  }
  const app = roles.api ? createApp(deps) : config.METRICS_PORT !== undefined ? createOpsApp(deps) : null;
  if (app) {
    server = await new Promise<Server>((resolve, reject) => {
      const listening = app.listen(roles.api ? config.PORT : (config.METRICS_PORT ?? 0), config.HOST, () =>
        resolve(listening),
      );
      listening.once('error', reject);
    });
    server.keepAliveTimeout = 65_000;
  }
  const address = server?.address();
  const port = address && typeof address === 'object' ? address.port : null;
  deps.logger.info('started', { api: roles.api, worker: roles.worker, port: port ?? undefined });

  let stopping: Promise<void> | null = null;
  return {
    deps,
    server,
    worker,
    port,
    stop() {
      stopping ??= (async () => {
        for (const loop of loops) loop.stop();
        const closing = Promise.all([
          worker?.close(config.SHUTDOWN_TIMEOUT_MS),
          server && new Promise<void>((resolve) => server!.close(() => resolve())),
        ]);
        server?.closeIdleConnections();
        await Promise.race([
          closing,
          new Promise((resolve) => setTimeout(resolve, config.SHUTDOWN_TIMEOUT_MS).unref()),
        ]);
        await deps.close();
      })();
      return stopping;
    },
  };
}

/** How often a worker process checks that its step worker takes the jobs that are due. */
const WORKER_CHECK_INTERVAL_MS = 1_000;

/** How long the executions-by-status gauge is served from memory. */
const EXECUTIONS_GAUGE_TTL_MS = 15_000;

/** `read`, called at most once per `ttlMs` (concurrent callers share the read in flight). */
function cachedFor<T>(ttlMs: number, read: () => Promise<T>): () => Promise<T> {
  let value: Promise<T> | null = null;
  let readAt = 0;
  return () => {
    if (!value || Date.now() - readAt > ttlMs) {
      readAt = Date.now();
      value = read().catch((error: unknown) => {
        value = null;
        throw error;
      });
    }
    return value;
  };
}

const redactUrl = (url: string) => url.replace(/\/\/([^:@/]+):[^@/]+@/, '//$1:***@');
