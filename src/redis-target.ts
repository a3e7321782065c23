/**
 * Where Redis is, parsed from the environment: one server (`REDIS_URL=redis://…`) or a Redis Cluster
 * named by some of its nodes (`REDIS_URL=redis+cluster://host1:7000,host2:7001` or
 * `REDIS_CLUSTER_NODES=host1:7000,host2:7001`). Pure: parsing only, no connection (queue/redis.ts connects).
 */

/** One node of a cluster, as given; the client discovers the others from it. */
export interface RedisNode {
  host: string;
  port: number;
}

/** One Redis server, reached through any URL ioredis takes (`redis://`, `rediss://`). */
export interface SingleRedisTarget {
  mode: 'single';
  url: string;
}

/** A Redis Cluster: the nodes to start from (any subset will do), and the credentials every node shares. */
export interface ClusterRedisTarget {
  mode: 'cluster';
  nodes: readonly RedisNode[];
  username?: string;
  password?: string;
}

/** Where the engine's Redis is. */
export type RedisTarget = SingleRedisTarget | ClusterRedisTarget;

/** A parse result: the value, or a message that says what is wrong with the input. */
export type ParseResult<T> = { ok: true; value: T } | { ok: false; error: string };

/** The scheme of a cluster URL. */
export const CLUSTER_SCHEME = 'redis+cluster:';

const NODE = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)):(\d{1,5})$/;

/** Parses one `host:port` (`[v6]:port` for an IPv6 address). */
export function parseRedisNode(entry: string): ParseResult<RedisNode> {
  const match = NODE.exec(entry);
  const port = Number(match?.[3]);
  if (!match || !(port >= 1 && port <= 65_535)) return { ok: false, error: `"${entry}" is not a host:port` };
  return { ok: true, value: { host: match[1] ?? match[2]!, port } };
}

/** Parses a comma-separated list of `host:port` (blanks around the commas are ignored); at least one. */
export function parseRedisNodes(list: string): ParseResult<RedisNode[]> {
  const entries = list
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean);
  if (entries.length === 0) return { ok: false, error: 'names no node (expected host:port,host:port,…)' };
  const nodes: RedisNode[] = [];
  for (const entry of entries) {
    const node = parseRedisNode(entry);
    if (!node.ok) return node;
    nodes.push(node.value);
  }
  return { ok: true, value: nodes };
}

/**
 * Parses `redis+cluster://[user[:password]@]host:port[,host:port…][/]`. The WHATWG URL parser cannot
 * read a list of hosts, so this one splits it itself; credentials are percent-decoded as in any URL.
 * A cluster has only database 0, so a path other than `/` is refused, and so are query strings.
 */
export function parseClusterUrl(url: string): ParseResult<ClusterRedisTarget> {
  if (!url.toLowerCase().startsWith(`${CLUSTER_SCHEME}//`))
    return { ok: false, error: `must start with ${CLUSTER_SCHEME}//` };
  let rest = url.slice(CLUSTER_SCHEME.length + 2);
  if (/[?#]/.test(rest)) return { ok: false, error: 'a cluster URL takes no query string or fragment' };
  const at = rest.lastIndexOf('@');
  const userinfo = at >= 0 ? rest.slice(0, at) : null;
  rest = at >= 0 ? rest.slice(at + 1) : rest;
  const slash = rest.indexOf('/');
  if (slash >= 0 && rest.slice(slash) !== '/')
    return { ok: false, error: 'a cluster has no database number (nothing may follow the nodes but "/")' };
  const nodes = parseRedisNodes(slash >= 0 ? rest.slice(0, slash) : rest);
  if (!nodes.ok) return nodes;
  const target: ClusterRedisTarget = { mode: 'cluster', nodes: nodes.value };
  if (userinfo !== null) {
    const colon = userinfo.indexOf(':');
    try {
      const username = decodeURIComponent(colon >= 0 ? userinfo.slice(0, colon) : userinfo);
      const password = colon >= 0 ? decodeURIComponent(userinfo.slice(colon + 1)) : '';
      if (username) target.username = username;
      if (password) target.password = password;
    } catch {
      return { ok: false, error: 'its credentials are not valid percent-encoding' };
    }
  }
  return { ok: true, value: target };
}

/** The Redis settings as the environment gives them (unset ones undefined). */
export interface RedisSettings {
  REDIS_URL?: string;
  REDIS_CLUSTER_NODES?: string;
}

/** Where Redis is, or which setting is wrong and why. */
export type RedisTargetResult =
  | { ok: true; value: RedisTarget }
  | { ok: false; setting: keyof RedisSettings; error: string };

/** The default Redis: the one server on this machine. */
export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

/**
 * Decides where Redis is: `REDIS_CLUSTER_NODES` (a cluster), else `REDIS_URL` (a cluster when its
 * scheme is `redis+cluster:`, else one server), else {@link DEFAULT_REDIS_URL}. Both set is refused
 * rather than one silently winning.
 */
export function resolveRedisTarget(settings: RedisSettings): RedisTargetResult {
  const { REDIS_URL: url, REDIS_CLUSTER_NODES: list } = settings;
  if (list !== undefined) {
    if (url !== undefined)
      return {
        ok: false,
        setting: 'REDIS_CLUSTER_NODES',
        error: 'set REDIS_URL or REDIS_CLUSTER_NODES, not both (credentials go in REDIS_URL=redis+cluster://…)',
      };
    const nodes = parseRedisNodes(list);
    return nodes.ok
      ? { ok: true, value: { mode: 'cluster', nodes: nodes.value } }
      : { ok: false, setting: 'REDIS_CLUSTER_NODES', error: nodes.error };
  }
  const given = url ?? DEFAULT_REDIS_URL;
  if (/^[a-z][a-z0-9+.-]*\+cluster:/i.test(given)) {
    const cluster = parseClusterUrl(given);
    return cluster.ok ? cluster : { ok: false, setting: 'REDIS_URL', error: cluster.error };
  }
  if (!URL.canParse(given)) return { ok: false, setting: 'REDIS_URL', error: 'is not a URL' };
  if (!/^rediss?:$/i.test(new URL(given).protocol))
    return { ok: false, setting: 'REDIS_URL', error: 'must start with redis://, rediss:// or redis+cluster://' };
  return { ok: true, value: { mode: 'single', url: given } };
}

/**
 * The hash tag of a key as Redis Cluster reads it: the text between the first `{` and the first `}`
 * after it, when that text is not empty; a key without one is hashed whole.
 */
export function hashTagOf(key: string): string | null {
  const open = key.indexOf('{');
  if (open < 0) return null;
  const close = key.indexOf('}', open + 1);
  return close > open + 1 ? key.slice(open + 1, close) : null;
}

/**
 * The key prefix the engine uses on `target`. On a cluster every key of the queue must hash to one slot
 * (BullMQ's Lua scripts touch several keys at once), and so must every other key the engine writes:
 * the prefix is wrapped in a hash tag (`fm` → `{fm}`) unless it carries one already. On one server the
 * prefix stays as configured, so existing keys keep their names.
 */
export function keyPrefixFor(target: RedisTarget, prefix: string): string {
  return target.mode === 'cluster' && hashTagOf(prefix) === null ? `{${prefix}}` : prefix;
}

/** A description of `target` fit for logs and error messages: passwords replaced by `***`. */
export function describeRedisTarget(target: RedisTarget): string {
  if (target.mode === 'single') return target.url.replace(/\/\/([^:@/]*):[^@/]+@/, '//$1:***@');
  const credentials = target.password ? `${target.username ?? ''}:***@` : target.username ? `${target.username}@` : '';
  const nodes = target.nodes.map((n) => (n.host.includes(':') ? `[${n.host}]:${n.port}` : `${n.host}:${n.port}`));
  return `${CLUSTER_SCHEME}//${credentials}${nodes.join(',')}`;
}
