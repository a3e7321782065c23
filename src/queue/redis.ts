import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { coerceError } from '../errors.ts';
import type { RedisTarget } from '../redis-target.ts';

/**
 * A connection to the engine's Redis: one server, or a Redis Cluster. Both take the same commands; on
 * a cluster a command (or Lua script, or pipeline) may only touch keys of one hash slot, which the
 * key prefix guarantees (redis-target.ts `keyPrefixFor`).
 */
export type RedisClient = Redis | Cluster;

/** Options of {@link createRedis}. */
export interface CreateRedisOptions {
  /**
   * Connect on `connect()` or the first command rather than at once.
   * @defaultValue false
   */
  lazyConnect?: boolean;
  /**
   * For start-up probes and tools: no retry of a command, no reconnection, a connection attempt given
   * up after {@link FAIL_FAST_TIMEOUT_MS}, so an unreachable Redis is reported at once. Implies
   * `lazyConnect`.
   * @defaultValue false: BullMQ's settings, retrying for as long as it takes
   */
  failFast?: boolean;
}

/** How long a fail-fast connection waits for a server (or for a cluster's slot map). */
export const FAIL_FAST_TIMEOUT_MS = 5_000;

/**
 * How long a command on a cluster keeps being retried while the master of its slot is gone (connection
 * closed, `CLUSTERDOWN`, `TRYAGAIN`): 250 ms apart, up to 120 times, so about 30 s, longer than a
 * failover takes with Redis's default `cluster-node-timeout` of 15 s. ioredis's defaults (100 ms, 16
 * times) give up after 1.6 s, well before a replica can take over.
 */
const CLUSTER_RETRY_DELAY_MS = 250;
const CLUSTER_MAX_REDIRECTIONS = 120;

/**
 * Opens a connection to `target`, the one place the engine, its tests and the chaos run make one: an
 * ioredis `Redis` for one server, a `Cluster` for a cluster. The default settings suit BullMQ
 * (`maxRetriesPerRequest: null`, which its blocking commands need) and the engine's own keys alike.
 */
export function createRedis(target: RedisTarget, options: CreateRedisOptions = {}): RedisClient {
  const failFast = options.failFast ?? false;
  const lazyConnect = failFast || (options.lazyConnect ?? false);
  const server: RedisOptions = failFast
    ? { maxRetriesPerRequest: 0, connectTimeout: FAIL_FAST_TIMEOUT_MS, enableReadyCheck: true }
    : { maxRetriesPerRequest: null, enableReadyCheck: true };
  if (target.mode === 'single')
    return new Redis(target.url, { ...server, lazyConnect, ...(failFast ? { retryStrategy: () => null } : {}) });

  const cluster: ClusterOptions = {
    lazyConnect,
    redisOptions: { ...server, username: target.username, password: target.password },
    ...(failFast
      ? {
          // Fail on the first error: a cluster that is down or has slots without a master is a start-up error.
          clusterRetryStrategy: () => null,
          retryDelayOnFailover: 0,
          retryDelayOnClusterDown: 0,
          retryDelayOnTryAgain: 0,
          slotsRefreshTimeout: FAIL_FAST_TIMEOUT_MS,
        }
      : {
          clusterRetryStrategy: (times: number) => Math.min(100 * times, 2_000),
          retryDelayOnFailover: CLUSTER_RETRY_DELAY_MS,
          retryDelayOnClusterDown: CLUSTER_RETRY_DELAY_MS,
          retryDelayOnTryAgain: CLUSTER_RETRY_DELAY_MS,
          maxRedirections: CLUSTER_MAX_REDIRECTIONS,
        }),
  };
  return new Cluster(
    target.nodes.map((node) => ({ host: node.host, port: node.port })),
    cluster,
  );
}

/**
 * Checks that Redis answers for the engine's keys. On one server that is a PING; on a cluster a PING
 * goes to any node, so the check reads a key under `prefix` instead, which only the master serving the
 * engine's hash slot can answer.
 */
export async function pingRedis(client: RedisClient, prefix: string): Promise<void> {
  if (client instanceof Cluster) await client.exists(`${prefix}:health`);
  else await client.ping();
}

/** How long a start-up probe waits in all (a server that accepts connections and never answers included). */
export const PROBE_TIMEOUT_MS = 10_000;

/**
 * Connects to `target` once, without retrying, and checks that it answers for the keys under `prefix`
 * (see {@link pingRedis}); rejects with the reason (the first connection error when there is one) when
 * it does not, within `timeoutMs`. The start-up check of every process.
 */
export async function probeRedis(target: RedisTarget, prefix: string, timeoutMs = PROBE_TIMEOUT_MS): Promise<void> {
  const client = createRedis(target, { failFast: true });
  let firstError: Error | null = null;
  client.on('error', (error: Error) => (firstError ??= error));
  let timer: NodeJS.Timeout | undefined;
  // A cluster whose ready check fails (`cluster_state:fail`, or the node asked is gone) ends without
  // settling connect(): its end, and a deadline, settle the probe instead.
  const givenUp = new Promise<never>((_, reject) => {
    const fail = (reason: string) => reject(firstError ?? new Error(reason));
    client.once('end', () => fail('the cluster is not ready (CLUSTER INFO failed or did not say cluster_state:ok)'));
    timer = setTimeout(() => fail(`no answer within ${timeoutMs} ms`), timeoutMs);
  });
  const probe = (async () => {
    await client.connect();
    await pingRedis(client, prefix);
  })();
  try {
    await Promise.race([probe, givenUp]);
  } catch (error) {
    throw new Error(redisErrorMessage(firstError ?? coerceError(error)));
  } finally {
    clearTimeout(timer);
    probe.catch(() => undefined);
    givenUp.catch(() => undefined);
    client.disconnect();
  }
}

/**
 * The message of a connection error, with the cause ioredis keeps aside: a cluster that cannot load
 * its slot map says only "Failed to refresh slots cache." and keeps the last node's own error (a
 * refused connection, `WRONGPASS`, a server without cluster support) in `lastNodeError`.
 */
export function redisErrorMessage(error: Error): string {
  const last = (error as Error & { lastNodeError?: unknown }).lastNodeError;
  return last instanceof Error ? `${error.message} (${last.message})` : error.message;
}

export { Cluster, Redis };
