import { z } from 'zod';
import { normaliseAllowedHost } from './definition/address-guard.ts';
import { keyPrefixFor, resolveRedisTarget, type RedisSettings, type RedisTarget } from './redis-target.ts';

/** A comma-separated list of hosts or `host:port`, each normalised (address-guard.ts); unset is empty. */
const allowedHostList = z
  .string()
  .optional()
  .transform((value, context) => {
    const entries = (value ?? '')
      .split(',')
      .map((entry) => entry.trim())
      .filter(Boolean);
    return entries.map((entry) => {
      const normalised = normaliseAllowedHost(entry);
      if (normalised === null) context.addIssue({ code: 'custom', message: `"${entry}" is not a host or host:port` });
      return normalised ?? '';
    });
  });

/** A Redis setting checked on its own (redis-target.ts), so its problem is reported with the others'. */
const redisSetting = (setting: keyof RedisSettings) =>
  z
    .string()
    .optional()
    .superRefine((value, context) => {
      const target = value === undefined ? null : resolveRedisTarget({ [setting]: value });
      if (target && !target.ok) context.addIssue({ code: 'custom', message: target.error });
    });

/** Environment of every flowmachine process, parsed once; see CONTRACT.md for the public variables. */
const environmentSchema = z.object({
  DATABASE_URL: z.string().url().default('postgresql://postgres@127.0.0.1:5432/flowmachine'),
  /**
   * One Redis server (`redis://`, `rediss://`), or a Redis Cluster: `redis+cluster://[user:pass@]host:port,host:port…`.
   * @defaultValue `redis://127.0.0.1:6379`
   */
  REDIS_URL: redisSetting('REDIS_URL'),
  /**
   * A Redis Cluster as comma-separated `host:port` of some of its nodes (the others are discovered);
   * the same as `REDIS_URL=redis+cluster://…` without credentials. Not together with `REDIS_URL`.
   * @defaultValue unset: `REDIS_URL` says where Redis is
   */
  REDIS_CLUSTER_NODES: redisSetting('REDIS_CLUSTER_NODES'),
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  LOG_LEVEL: z.enum(['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly']).default('info'),
  /**
   * Hosts (or `host:port`) that webhook steps may reach even though they name or resolve to a loopback,
   * private, link-local or otherwise non-public address (CONTRACT.md).
   * @defaultValue none: every webhook must reach a public address
   */
  WEBHOOK_ALLOWED_HOSTS: allowedHostList,
  EMAIL_HTTP_URL: z.string().url().optional(),
  SMS_HTTP_URL: z.string().url().optional(),
  /** `smtp://user:pass@host:port` or `smtps://…`: emails go over SMTP when set and EMAIL_HTTP_URL is not. */
  SMTP_URL: z
    .string()
    .url()
    .refine((url) => /^smtps?:\/\//i.test(url), 'must start with smtp:// or smtps://')
    .optional(),
  /** From address of emails sent over SMTP. */
  SMTP_FROM: z.string().min(1).default('flowmachine@localhost'),
  /** Attempts at an admin failure notification (the first included) before it is given up. */
  NOTIFY_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(100).default(10),
  /**
   * Prefix of every Redis key (BullMQ's and the engine's own), so several deployments (or test runs) can
   * share one Redis. On a cluster it carries a hash tag (`fm` is used as `{fm}`, see redis-target.ts).
   */
  QUEUE_PREFIX: z.string().min(1).default('fm'),
  /** Jobs one worker process runs at once. */
  WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(1000).default(50),
  /** How long a worker holds a job's lock; a crashed worker's job is taken over after about this long. */
  WORKER_LOCK_MS: z.coerce.number().int().min(1000).default(30_000),
  /**
   * A worker that runs no job while jobs have been due this long is replaced, with its Redis connection
   * (a blocking fetch that never returned after a failover; see queue/worker-supervisor.ts).
   */
  WORKER_STALL_MS: z.coerce.number().int().min(1000).default(15_000),
  /** Timeout of one provider HTTP call; a timeout is a transient failure. */
  PROVIDER_TIMEOUT_MS: z.coerce.number().int().min(100).default(10_000),
  /** How often the sweeper rebuilds missing Redis work from Postgres. */
  SWEEP_INTERVAL_MS: z.coerce.number().int().min(100).default(15_000),
  /** How often a worker folds the stats counters' deltas into their totals (flowmachine_fold_counts). */
  COUNTS_FOLD_INTERVAL_MS: z.coerce.number().int().min(100).default(1_000),
  /** An ACTIVE execution untouched for this long is re-enqueued by the sweeper. */
  STALE_AFTER_MS: z.coerce.number().int().min(100).default(60_000),
  /** A wait due within this when it starts gets its delayed job at once; a later one stays in Postgres. */
  TIMER_HORIZON_MS: z.coerce.number().int().min(1000).default(7_200_000),
  /**
   * Timers kept in Postgres are released into the queue by one worker at a time, every
   * `TIMER_RELEASE_INTERVAL_MS`, once due within `TIMER_PROMOTE_AHEAD_MS`, and only while the queue holds
   * fewer than `TIMER_READY_TARGET` jobs ready to run: Redis holds near-term timers only, a spike of due
   * timers drains as fast as the workers take it, and new triggers wait behind at most that many jobs.
   */
  TIMER_RELEASE_INTERVAL_MS: z.coerce.number().int().min(50).default(250),
  TIMER_PROMOTE_AHEAD_MS: z.coerce.number().int().min(0).default(1_000),
  TIMER_READY_TARGET: z.coerce.number().int().min(1).default(500),
  /**
   * A bulk enrollment is refused with 429 and `Retry-After` while the queue holds this many jobs ready
   * to run or more (0: never): the enrollment backlog waits with the caller, not in Redis.
   */
  ENROLL_QUEUE_LIMIT: z.coerce.number().int().min(0).default(50_000),
  /**
   * Days of execution logs and contact events kept: whole months older than this are dropped by the
   * sweeper, except the log rows of executions still running (prisma/functions/flowmachine_drop_log_partitions.sql).
   * @defaultValue 0: kept forever
   */
  LOG_RETENTION_DAYS: z.coerce
    .number({ message: 'must be a whole number of days (0 keeps logs forever)' })
    .int('must be a whole number of days (0 keeps logs forever)')
    .min(0, 'must be 0 (keep forever) or more days')
    .max(36_500)
    .default(0),
  /** Longest `Retry-After` honoured (CONTRACT.md): a longer one waits this long. */
  MAX_RETRY_AFTER_SECONDS: z.coerce.number().int().min(1).max(31_536_000).default(3_600),
  /** Longest retry back-off, whatever the account's retry settings. */
  MAX_RETRY_DELAY_SECONDS: z.coerce.number().int().min(1).max(31_536_000).default(86_400),
  /** Memory budget of each process's cache of compiled workflow versions, in MB (estimated). */
  WORKFLOW_CACHE_MB: z.coerce.number().min(1).max(65_536).default(256),
  /** Where a worker-only process serves `/metrics` and `/health` (unset: not served). */
  METRICS_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  /** Operator ceiling on an account's `concurrent_executions_per_account` (the fairness limit between tenants). */
  MAX_ACCOUNT_CONCURRENCY: z.coerce.number().int().min(1).max(100_000).default(10_000),
  /** Requests per second per API key across API processes (0 = off); failed authentications per client address alike. */
  API_RATE_LIMIT: z.coerce.number().int().min(0).default(1_000),
  /** When set, `GET /metrics` needs `Authorization: Bearer <METRICS_TOKEN>`. */
  METRICS_TOKEN: z.string().min(16).optional(),
  /** Postgres: connections per process, and the longest a connection attempt, a statement and a lock wait may take. */
  DATABASE_POOL_SIZE: z.coerce.number().int().min(1).max(1_000).default(10),
  DATABASE_CONNECT_TIMEOUT_MS: z.coerce.number().int().min(100).default(10_000),
  DATABASE_STATEMENT_TIMEOUT_MS: z.coerce.number().int().min(100).default(60_000),
  DATABASE_LOCK_TIMEOUT_MS: z.coerce.number().int().min(100).default(30_000),
  /**
   * Base URL of a Jaeger UI (`http://jaeger:16686`): `GET /executions/{id}` then gives `trace_url`,
   * the page of the execution's trace, which the designer's view links to.
   * @defaultValue unset: no link
   */
  JAEGER_UI_URL: z
    .string()
    .url()
    .refine((url) => /^https?:\/\//i.test(url), 'must start with http:// or https://')
    .optional(),
  /** Largest accepted request body. */
  BODY_LIMIT: z.string().default('100kb'),
  /** Graceful shutdown: how long in-flight steps may take before the process exits anyway. */
  SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().min(0).default(15_000),
});

/**
 * The environment with its Redis settings resolved into one {@link RedisTarget} (`REDIS`), and the
 * key prefix made fit for it (`QUEUE_PREFIX`).
 */
const configSchema = environmentSchema.transform(({ REDIS_URL, REDIS_CLUSTER_NODES, ...env }, context) => {
  const target = resolveRedisTarget({ REDIS_URL, REDIS_CLUSTER_NODES });
  if (!target.ok) {
    context.addIssue({ code: 'custom', path: [target.setting], message: target.error });
    return z.NEVER;
  }
  const REDIS: RedisTarget = Object.freeze(target.value);
  return { ...env, REDIS, QUEUE_PREFIX: keyPrefixFor(REDIS, env.QUEUE_PREFIX) };
});

/** Parsed, frozen configuration. */
export type Config = Readonly<z.infer<typeof configSchema>>;

/** Parses `env` into a {@link Config}; throws one readable error naming every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const defined = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value !== ''));
  const parsed = configSchema.safeParse(defined);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ');
    throw new Error(`invalid configuration: ${problems}`);
  }
  return Object.freeze(parsed.data);
}
