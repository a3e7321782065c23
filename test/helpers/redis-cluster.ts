import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { createRedis } from '../../src/queue/redis.ts';
import type { ClusterRedisTarget } from '../../src/redis-target.ts';
import { freePort } from './redis-server.ts';

const execFileAsync = promisify(execFile);

/** One line of `CLUSTER NODES`, as far as the tests need it. */
export interface ClusterNodeInfo {
  id: string;
  port: number;
  /** `master` or `replica`, as the node reporting the line sees it. */
  role: 'master' | 'replica';
  /** The node reporting the line considers it failed (`fail`), or suspects it (`fail?`). */
  failing: boolean;
  /** Id of the master a replica follows. */
  masterId: string | null;
  /** Slot ranges a master serves, inclusive. */
  slots: [number, number][];
}

/** Options of {@link startRedisCluster}. */
export interface RedisClusterOptions {
  /**
   * `cluster-node-timeout`: how long a master may be unreachable before it is considered failed and a
   * replica takes over (a failover then takes about twice this).
   * @defaultValue 2000
   */
  nodeTimeoutMs?: number;
  /** How long to wait for the cluster to form. @defaultValue 30000 */
  startTimeoutMs?: number;
}

/** A private Redis Cluster of 3 masters and 3 replicas on loopback ports (see {@link startRedisCluster}). */
export interface RedisCluster {
  /** `redis+cluster://127.0.0.1:P1,…` naming every node. */
  url: string;
  target: ClusterRedisTarget;
  /** Every node's port, running or not. */
  ports: readonly number[];
  /** The nodes as a running node sees them. */
  nodes(): Promise<ClusterNodeInfo[]>;
  /** Port of the master that serves `key`'s hash slot right now. */
  masterOf(key: string): Promise<number>;
  /** Kills a node with SIGKILL (it loses everything: nothing is kept on disk but its cluster config). */
  kill(port: number): Promise<void>;
  /** Starts a killed node again; it rejoins the cluster (a former master comes back as a replica). */
  start(port: number): Promise<void>;
  /**
   * Waits until a replica has taken over the slots of the killed master on `port`, and every running
   * node says `cluster_state:ok`; returns the new master's port.
   */
  waitForFailover(port: number, timeoutMs?: number): Promise<number>;
  /** Waits until every running node says `cluster_state:ok` and every running replica is in sync. */
  waitUntilHealthy(timeoutMs?: number): Promise<void>;
  /** Kills every node and removes their files. */
  stop(): Promise<void>;
}

const MASTERS = 3;
const NODES = MASTERS * 2;

/** Polls `check` until it returns a value (not `undefined`), failing with `what` after `timeoutMs`. */
async function waitFor<T>(what: () => string, timeoutMs: number, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`redis cluster: ${what()} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Parses `CLUSTER NODES` output. */
export function parseClusterNodes(text: string): ClusterNodeInfo[] {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean)
    .map((line) => {
      const [id, address, flags, master, , , , , ...slots] = line.split(' ');
      const flagList = flags!.split(',');
      return {
        id: id!,
        port: Number(address!.split('@')[0]!.split(':').at(-1)),
        role: flagList.includes('master') ? ('master' as const) : ('replica' as const),
        failing: flagList.includes('fail') || flagList.includes('fail?'),
        masterId: master === '-' ? null : master!,
        slots: slots
          .filter((range) => !range.startsWith('['))
          .map((range) => {
            const [from, to] = range.split('-').map(Number);
            return [from!, to ?? from!] as [number, number];
          }),
      };
    });
}

/**
 * Starts a Redis Cluster of 3 masters and 3 replicas: six `redis-server --cluster-enabled yes` on free
 * loopback ports (each with its own free cluster-bus port), nothing saved but each node's cluster
 * config file in a temporary directory, joined by `redis-cli --cluster create … --cluster-replicas 1`.
 * Resolves once every node says `cluster_state:ok` and every replica is in sync with its master.
 */
export async function startRedisCluster(options: RedisClusterOptions = {}): Promise<RedisCluster> {
  const nodeTimeoutMs = options.nodeTimeoutMs ?? 2_000;
  const startTimeoutMs = options.startTimeoutMs ?? 30_000;
  const dir = await mkdtemp(path.join(tmpdir(), 'fm-redis-cluster-'));
  // A port and a cluster-bus port per node, all distinct.
  const taken = new Set<number>();
  while (taken.size < NODES * 2) taken.add(await freePort());
  const allPorts = [...taken];
  const ports = allPorts.slice(0, NODES);
  const busPortOf = new Map(ports.map((port, i) => [port, allPorts[NODES + i]!]));
  const children = new Map<number, ChildProcess>();

  /** Runs one command on one node (a fresh connection, closed after). */
  const onNode = async <T>(port: number, command: string, ...args: string[]): Promise<T> => {
    const client = createRedis({ mode: 'single', url: `redis://127.0.0.1:${port}` }, { failFast: true });
    client.on('error', () => undefined);
    try {
      await client.connect();
      return (await client.call(command, ...args)) as T;
    } finally {
      client.disconnect();
    }
  };
  const running = () => ports.filter((port) => children.has(port));

  const start = async (port: number) => {
    if (children.has(port)) throw new Error(`redis cluster: node ${port} is running already`);
    const child = spawn(
      'redis-server',
      [
        ...['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
        ...['--cluster-enabled', 'yes', '--cluster-port', String(busPortOf.get(port))],
        ...['--cluster-config-file', path.join(dir, `nodes-${port}.conf`), '--dir', dir],
        ...['--cluster-node-timeout', String(nodeTimeoutMs)],
        // A replica may take over however long ago it last heard from its master: the tests kill masters
        // right after the cluster formed, or twice in a row, and want the failover every time.
        ...['--cluster-replica-validity-factor', '0'],
        ...['--logfile', path.join(dir, `redis-${port}.log`)],
      ],
      { stdio: 'ignore' },
    );
    children.set(port, child);
    child.once('exit', () => children.get(port) === child && children.delete(port));
    await waitFor(
      () => `node ${port} did not answer`,
      10_000,
      async () => ((await onNode<string>(port, 'ping')) === 'PONG' ? true : undefined),
    );
  };

  const kill = async (port: number) => {
    const child = children.get(port);
    if (!child) return;
    children.delete(port);
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
  };

  const nodes = async () => {
    for (const port of running()) {
      const text = await onNode<string>(port, 'cluster', 'nodes').catch(() => null);
      if (text !== null) return parseClusterNodes(text);
    }
    throw new Error('redis cluster: no node answers');
  };

  const healthy = async () => {
    for (const port of running()) {
      const info = await onNode<string>(port, 'cluster', 'info');
      if (!info.includes('cluster_state:ok')) return undefined;
      const replication = await onNode<string>(port, 'info', 'replication');
      if (replication.includes('role:slave') && !replication.includes('master_link_status:up')) return undefined;
    }
    const seen = await nodes();
    const masters = seen.filter((n) => n.role === 'master' && !n.failing && n.slots.length > 0);
    return masters.length === MASTERS ? true : undefined;
  };
  const waitUntilHealthy = async (timeoutMs = startTimeoutMs) => {
    await waitFor(() => 'not every node is in sync with cluster_state:ok', timeoutMs, healthy);
  };

  const stop = async () => {
    await Promise.all(ports.map(kill));
    await rm(dir, { recursive: true, force: true });
  };

  try {
    await Promise.all(ports.map(start));
    await execFileAsync(
      'redis-cli',
      ['--cluster', 'create', ...ports.map((port) => `127.0.0.1:${port}`), '--cluster-replicas', '1', '--cluster-yes'],
      { timeout: startTimeoutMs },
    );
    await waitUntilHealthy();
  } catch (error) {
    await stop();
    throw error;
  }

  const target: ClusterRedisTarget = { mode: 'cluster', nodes: ports.map((port) => ({ host: '127.0.0.1', port })) };
  return {
    url: `redis+cluster://${ports.map((port) => `127.0.0.1:${port}`).join(',')}`,
    target,
    ports,
    nodes,
    async masterOf(key: string) {
      const [port] = running();
      const slot = await onNode<number>(port!, 'cluster', 'keyslot', key);
      const master = (await nodes()).find(
        (n) => n.role === 'master' && !n.failing && n.slots.some(([from, to]) => slot >= from && slot <= to),
      );
      if (!master) throw new Error(`redis cluster: no master serves slot ${slot}`);
      return master.port;
    },
    kill,
    start,
    async waitForFailover(port: number, timeoutMs = 30_000) {
      const before = (await nodes()).find((n) => n.port === port);
      if (!before) throw new Error(`redis cluster: no node on port ${port}`);
      return waitFor(
        () => `no replica took over from ${port}`,
        timeoutMs,
        async () => {
          const seen = await nodes();
          const old = seen.find((n) => n.id === before.id);
          const takenOver = seen.find(
            (n) =>
              n.role === 'master' &&
              !n.failing &&
              n.port !== port &&
              before.slots.every(([from, to]) => n.slots.some(([a, b]) => a <= from && to <= b)),
          );
          if (!takenOver || (old && old.role === 'master' && old.slots.length > 0)) return undefined;
          for (const live of running()) {
            if (!(await onNode<string>(live, 'cluster', 'info')).includes('cluster_state:ok')) return undefined;
          }
          return takenOver.port;
        },
      );
    },
    waitUntilHealthy,
    stop,
  };
}
