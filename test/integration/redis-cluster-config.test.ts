import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiRateLimits } from '../../src/api/rate-limit.ts';
import { loadConfig } from '../../src/config.ts';
import { createServer, type Socket } from 'node:net';
import { Cluster, probeRedis } from '../../src/queue/redis.ts';
import { describeRedisTarget, hashTagOf } from '../../src/redis-target.ts';
import { startRuntime } from '../../src/runtime.ts';
import { sequential } from '../fixtures/workflows.ts';
import { createTestDatabase } from '../helpers/database.ts';
import { startHarness, type Harness } from '../helpers/harness.ts';
import { startRedisCluster, type RedisCluster } from '../helpers/redis-cluster.ts';

/** The configuration of `env` alone (no variable of this process leaks in). */
const configOf = (env: Record<string, string>) => loadConfig(env);
/** The message loadConfig refuses `env` with. */
const refusal = (env: Record<string, string>) => {
  try {
    loadConfig(env);
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error(`accepted ${JSON.stringify(env)}`);
};

describe('Redis settings', () => {
  it('default to the one local server, and keep the key prefix as configured', () => {
    const config = configOf({});
    expect(config.REDIS).toEqual({ mode: 'single', url: 'redis://127.0.0.1:6379' });
    expect(config.QUEUE_PREFIX).toBe('fm');
    expect(configOf({ REDIS_URL: 'rediss://u:p@redis.internal:6380/2', QUEUE_PREFIX: 'acme' })).toMatchObject({
      REDIS: { mode: 'single', url: 'rediss://u:p@redis.internal:6380/2' },
      QUEUE_PREFIX: 'acme',
    });
  });

  it('read a cluster from REDIS_URL=redis+cluster://…, credentials percent-decoded', () => {
    const config = configOf({
      REDIS_URL: 'redis+cluster://app:p%40ss%3Aword@10.0.0.1:7000,redis-b.internal:7001,[::1]:7002/',
    });
    expect(config.REDIS).toEqual({
      mode: 'cluster',
      nodes: [
        { host: '10.0.0.1', port: 7000 },
        { host: 'redis-b.internal', port: 7001 },
        { host: '::1', port: 7002 },
      ],
      username: 'app',
      password: 'p@ss:word',
    });
    expect(configOf({ REDIS_URL: 'REDIS+CLUSTER://:secret@h:1' }).REDIS).toEqual({
      mode: 'cluster',
      nodes: [{ host: 'h', port: 1 }],
      password: 'secret',
    });
  });

  it('read a cluster from REDIS_CLUSTER_NODES, blanks around the commas ignored', () => {
    expect(configOf({ REDIS_CLUSTER_NODES: ' a:7000 , b:7001,' }).REDIS).toEqual({
      mode: 'cluster',
      nodes: [
        { host: 'a', port: 7000 },
        { host: 'b', port: 7001 },
      ],
    });
  });

  it('give the key prefix a hash tag on a cluster, unless it has one', () => {
    const cluster = { REDIS_CLUSTER_NODES: 'a:7000' };
    expect(configOf(cluster).QUEUE_PREFIX).toBe('{fm}');
    expect(configOf({ ...cluster, QUEUE_PREFIX: 'acme' }).QUEUE_PREFIX).toBe('{acme}');
    expect(configOf({ ...cluster, QUEUE_PREFIX: '{acme}:prod' }).QUEUE_PREFIX).toBe('{acme}:prod');
    // `{}` is no hash tag to Redis (the whole key is hashed), so it is wrapped like any other prefix.
    expect(configOf({ ...cluster, QUEUE_PREFIX: 'a{}b' }).QUEUE_PREFIX).toBe('{a{}b}');
    // Wrapping is idempotent: a process handed another's prefix keeps it.
    expect(configOf({ ...cluster, QUEUE_PREFIX: configOf(cluster).QUEUE_PREFIX }).QUEUE_PREFIX).toBe('{fm}');
    expect(hashTagOf('{fm}:steps:1.0')).toBe('fm');
    expect(hashTagOf('fm:{api-limit}:key')).toBe('api-limit');
    expect(hashTagOf('fm:steps')).toBeNull();
  });

  it('refuse bad values with a message naming the setting and the problem', () => {
    for (const [env, message] of [
      [{ REDIS_URL: 'redis+cluster://' }, 'REDIS_URL: names no node (expected host:port,host:port,…)'],
      [{ REDIS_URL: 'redis+cluster://a' }, 'REDIS_URL: "a" is not a host:port'],
      [{ REDIS_URL: 'redis+cluster://a:0' }, 'REDIS_URL: "a:0" is not a host:port'],
      [{ REDIS_URL: 'redis+cluster://a:65536' }, 'REDIS_URL: "a:65536" is not a host:port'],
      [{ REDIS_URL: 'redis+cluster://a:1,b' }, 'REDIS_URL: "b" is not a host:port'],
      [{ REDIS_URL: 'redis+cluster://a_b:1' }, 'REDIS_URL: "a_b:1" is not a host:port'],
      [{ REDIS_URL: 'redis+cluster://a:1/3' }, 'REDIS_URL: a cluster has no database number'],
      [{ REDIS_URL: 'redis+cluster://a:1?tls=true' }, 'REDIS_URL: a cluster URL takes no query string or fragment'],
      [{ REDIS_URL: 'redis+cluster://%zz@a:1' }, 'REDIS_URL: its credentials are not valid percent-encoding'],
      [{ REDIS_URL: 'rediss+cluster://a:1' }, 'REDIS_URL: must start with redis+cluster://'],
      [{ REDIS_URL: 'http://a:1' }, 'REDIS_URL: must start with redis://, rediss:// or redis+cluster://'],
      [{ REDIS_URL: 'not a url' }, 'REDIS_URL: is not a URL'],
      [{ REDIS_CLUSTER_NODES: ' , ' }, 'REDIS_CLUSTER_NODES: names no node'],
      [{ REDIS_CLUSTER_NODES: 'a:7000,b:x' }, 'REDIS_CLUSTER_NODES: "b:x" is not a host:port'],
      [
        { REDIS_CLUSTER_NODES: 'a:7000', REDIS_URL: 'redis://b:6379' },
        'REDIS_CLUSTER_NODES: set REDIS_URL or REDIS_CLUSTER_NODES, not both',
      ],
    ] as const) {
      const refused = refusal(env);
      expect(refused, JSON.stringify(env)).toMatch(/^invalid configuration: /);
      expect(refused, JSON.stringify(env)).toContain(message);
    }
    // A bad Redis setting is reported with the other bad variables, in one message.
    expect(refusal({ PORT: 'x', REDIS_CLUSTER_NODES: 'nowhere' })).toMatch(
      /PORT: .*; REDIS_CLUSTER_NODES: "nowhere" is not a host:port|REDIS_CLUSTER_NODES: "nowhere" is not a host:port.*; PORT: /,
    );
  });

  it('describe a target without its password', () => {
    expect(describeRedisTarget(configOf({ REDIS_URL: 'redis://u:secret@h:1' }).REDIS)).toBe('redis://u:***@h:1');
    expect(describeRedisTarget(configOf({ REDIS_URL: 'redis+cluster://u:secret@h:1,[::1]:2' }).REDIS)).toBe(
      'redis+cluster://u:***@h:1,[::1]:2',
    );
    expect(describeRedisTarget(configOf({ REDIS_URL: 'redis+cluster://u@h:1' }).REDIS)).toBe('redis+cluster://u@h:1');
    expect(describeRedisTarget(configOf({ REDIS_CLUSTER_NODES: 'h:1' }).REDIS)).toBe('redis+cluster://h:1');
  });
});

// The same settings against a real cluster of 3 masters and 3 replicas: both forms run executions, and
// every way of pointing at a Redis that will not do gives one clear error at start.
describe('Redis Cluster connections', () => {
  let cluster: RedisCluster;
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  const nodes = () => cluster.ports.map((port) => `127.0.0.1:${port}`).join(',');
  /** The start-up error of a runtime on `env`. */
  const startError = async (env: Record<string, string>) => {
    const config = loadConfig({ DATABASE_URL: database.url, PORT: '0', LOG_LEVEL: 'error', ...env });
    const started = await startRuntime(config, { api: true, worker: false }).then(
      async (runtime) => {
        await runtime.stop();
        return null;
      },
      (error: Error) => error.message,
    );
    if (started === null) throw new Error(`started on ${JSON.stringify(env)}`);
    return started;
  };

  beforeAll(async () => {
    cluster = await startRedisCluster();
    database = await createTestDatabase();
  });
  afterAll(async () => {
    await database?.drop();
    await cluster?.stop();
  });

  for (const form of ['REDIS_URL', 'REDIS_CLUSTER_NODES'] as const) {
    describe(`given as ${form}`, () => {
      let h: Harness;
      beforeAll(async () => {
        const redis: Record<string, string> =
          form === 'REDIS_URL' ? { REDIS_URL: cluster.url } : { REDIS_URL: '', REDIS_CLUSTER_NODES: nodes() };
        h = await startHarness({ env: redis });
      });
      afterAll(() => h?.stop());

      it('runs executions, with the engine, the API and the rate limits on the cluster', async () => {
        expect(h.deps.redis).toBeInstanceOf(Cluster);
        expect((await h.api.raw('GET', '/health')).body).toMatchObject({ postgres: true, redis: true });
        // A 429 sets the provider's hold on the cluster (a single-key SET PX under the prefix's hash tag).
        h.provider.script({ status: 429, retryAfter: '1' });
        const id = await h.trigger((await h.createWorkflow(sequential)).id, (await h.createContact()).id);
        await h.waitForExecution(id, (e) => e.status === 'COMPLETED');
        expect(h.provider.received.some((r) => r.body.execution_id === id)).toBe(true);
        const logs = await h.logsOf(id);
        expect(logs.some((l) => l.eventType === 'rate_limit_hit')).toBe(true);
        // The API's limiter counts on the cluster too: the third request within a second is refused.
        const limits = new ApiRateLimits(h.deps.redis, h.config.QUEUE_PREFIX, 2, h.runtime.deps.logger);
        const key = `cluster-${form}-${Date.now()}`;
        await limits.request(key);
        await limits.request(key);
        await expect(limits.request(key)).rejects.toMatchObject({ status: 429 });
        // The sweeper's epoch is there, under the prefix.
        expect(await h.deps.redis.exists(`${h.config.QUEUE_PREFIX}:epoch`)).toBe(1);
      });
    });
  }

  it('refuses to start on a cluster nobody answers, naming it', async () => {
    expect(await startError({ REDIS_URL: 'redis+cluster://127.0.0.1:1,127.0.0.1:2' })).toBe(
      'cannot reach Redis at redis+cluster://127.0.0.1:1,127.0.0.1:2: Failed to refresh slots cache. (Connection is closed.)',
    );
  });

  it('refuses to start on a server that is not a cluster', async () => {
    // The shared test Redis runs without cluster support.
    expect(await startError({ REDIS_CLUSTER_NODES: '127.0.0.1:6379' })).toMatch(
      /^cannot reach Redis at redis\+cluster:\/\/127\.0\.0\.1:6379: .*cluster support disabled/,
    );
  });

  it('refuses to start with credentials the nodes do not accept, without printing the password', async () => {
    const message = await startError({ REDIS_URL: cluster.url.replace('//', '//nobody:s3cret@') });
    expect(message).toMatch(/^cannot reach Redis at redis\+cluster:\/\/nobody:\*\*\*@127\.0\.0\.1:\d+,.*WRONGPASS/);
    expect(message).not.toContain('s3cret');
  });

  it('gives up on a server that accepts connections and never answers', async () => {
    const sockets = new Set<Socket>();
    const silent = createServer((socket) => sockets.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as { port: number };
    try {
      for (const target of [
        { mode: 'single', url: `redis://127.0.0.1:${port}` },
        { mode: 'cluster', nodes: [{ host: '127.0.0.1', port }] },
      ] as const)
        await expect(probeRedis(target, 'fm', 300)).rejects.toThrow('no answer within 300 ms');
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it('refuses to start while the slot of its keys has no master', async () => {
    // The master of the prefix's slot and its replica both gone: that slot stays unserved (the last test
    // of the file, since the cluster does not recover from it).
    const prefix = '{fmtest-down}';
    const master = await cluster.masterOf(`${prefix}:steps`);
    const seen = await cluster.nodes();
    const masterId = seen.find((n) => n.port === master)!.id;
    const replica = seen.find((n) => n.masterId === masterId)!.port;
    await cluster.kill(replica);
    await cluster.kill(master);
    // Until the cluster marks the master failed, the probe finds its connection refused; after, the
    // cluster's state is `fail` (every slot must be served).
    expect(await startError({ REDIS_URL: cluster.url, QUEUE_PREFIX: prefix })).toMatch(
      /^cannot reach Redis at redis\+cluster:\/\/[^ ]+: (Connection is closed\.|the cluster is not ready)/,
    );
  });
});
