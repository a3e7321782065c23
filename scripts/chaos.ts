/**
 * Chaos run: thousands of executions through real API and worker processes while faults are
 * injected on a seeded schedule (worker SIGKILL and graceful restarts, Redis FLUSHALL and restart,
 * dropped Postgres connections, provider outages, cancellations, contact deletions, goals racing
 * with waits, concurrent tag changes, journeys entered by events whose wait_for_event races its timeout and
 * whose exit events land while workers die (chaos-journeys.ts), contacts of a second account through a 50/50
 * split and emails under frequency caps while a new version of their workflow is published with
 * `in_flight: "move"` (chaos-splits.ts), optionally a Postgres restart, or on a Redis
 * Cluster the failover of the queue's master), then a check that every execution ended as its inputs imply, that the database
 * is consistent, and that no step was sent under two idempotency keys. See docs/reliability.md.
 *
 *   npm run chaos -- [--seed N] [--executions N] [--workers N] [--quick] [--postgres-restart] [--redis-cluster] [--keep]
 *
 * With --redis-cluster the run's Redis is a private cluster of 3 masters and 3 replicas
 * (test/helpers/redis-cluster.ts): instead of Redis restarts, the master serving the queue's hash slot is
 * killed with SIGKILL and its replica takes over (the killed node then rejoins as a replica), and a
 * FLUSHALL flushes every master.
 *
 * Everything it starts is its own (a fresh database on the shared Postgres, a private redis-server or
 * cluster, the processes, fake providers) and is removed at the end (the database is kept with --keep).
 * Exit code 0 when no violation was found, 1 otherwise.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import pg from 'pg';
import { createAccount } from '../src/api/api-keys.ts';
import { createDb, type PrismaClient } from '../src/db/client.ts';
import { migrate } from '../src/db/migrate.ts';
import { createRedis } from '../src/queue/redis.ts';
import { keyPrefixFor } from '../src/redis-target.ts';
import { checkConsistency, type ConsistencyReport } from '../src/engine/consistency.ts';
import { startFakeProvider, type FakeResponse } from '../test/helpers/fake-provider.ts';
import { startRedisCluster } from '../test/helpers/redis-cluster.ts';
import { freePort, startPrivateRedis } from '../test/helpers/redis-server.ts';
import {
  chaosWorkflow,
  checkChaosRun,
  CHAOS_VIOLATIONS,
  INTERVENTIONS,
  type Answer,
  type ChaosRecord,
  type Fate,
  type FaultWindow,
  type InterventionKind,
  type PlannedExecution,
  type RecordedRequest,
} from './chaos-checker.ts';
import {
  checkJourneys,
  JOURNEY_EVENTS,
  JOURNEY_KINDS,
  journeyWorkflow,
  type JourneyKind,
  type PlannedJourney,
} from './chaos-journeys.ts';
import {
  checkSplits,
  planSplits,
  SPLIT_CAPS,
  SPLIT_VARIANTS,
  splitWorkflow,
  type PlannedSplitContact,
  type SplitPublish,
} from './chaos-splits.ts';

const BIN = path.resolve(import.meta.dirname, '../bin/flowmachine.mjs');
const execFileAsync = promisify(execFile);
const ADMIN_URL = process.env.CHAOS_DATABASE_ADMIN_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
const PROVIDER_TIMEOUT_MS = 1_000;
const MAX_RETRY_ATTEMPTS = 4;

const { values: args } = parseArgs({
  options: {
    seed: { type: 'string' },
    executions: { type: 'string' },
    workers: { type: 'string' },
    'concurrency-limit': { type: 'string' },
    quick: { type: 'boolean', default: false },
    'postgres-restart': { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    hostile: { type: 'boolean', default: false },
    'redis-cluster': { type: 'boolean', default: false },
  },
});
const onCluster = args['redis-cluster']!;
const quick = args.quick!;
const seed = Number(args.seed ?? Date.now() % 100_000);
const total = Number(args.executions ?? (quick ? 150 : 2000));
const workerCount = Number(args.workers ?? (quick ? 2 : 3));
const concurrencyLimit = Number(args['concurrency-limit'] ?? (quick ? 25 : 60));
if (
  ![seed, total, workerCount, concurrencyLimit].every((n) => Number.isInteger(n) && n >= 0) ||
  workerCount < 1 ||
  concurrencyLimit < 1
) {
  console.error(
    'usage: chaos [--seed N] [--executions N] [--workers N] [--concurrency-limit N] [--quick] [--postgres-restart] [--hostile] [--redis-cluster] [--keep]',
  );
  process.exit(2);
}
/**
 * Triggers per second, the wait step, outage spacing, how long the run may take to drain, live checks
 * every N seconds, and the account's concurrency limit (low enough that executions wait in line; above
 * 127 its slots are split into shards).
 */
const profile = quick
  ? { rate: 6, waitSeconds: 2, outageEveryMs: 9_000, drainMs: 90_000, liveCheckEvery: 5, concurrencyLimit }
  : { rate: 12, waitSeconds: 2, outageEveryMs: 20_000, drainMs: 600_000, liveCheckEvery: 15, concurrencyLimit };

// ---------------------------------------------------------------------------------------------
// Seeded randomness (mulberry32): the plan and the fault schedule depend only on the seed.

function createRandom(value: number) {
  let state = value >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
  const between = (min: number, max: number) => min + next() * (max - min);
  const weighted = <T>(choices: [T, number][]) => {
    let roll = next() * choices.reduce((sum, [, weight]) => sum + weight, 0);
    for (const [choice, weight] of choices) if ((roll -= weight) < 0) return choice;
    return choices.at(-1)![0];
  };
  return { next, between, weighted };
}
const random = createRandom(seed);

// ---------------------------------------------------------------------------------------------
// The plan: each contact's fate and intervention, and the fault schedule.

const FATE_WEIGHTS: [Fate, number][] = [
  ['basic', 50],
  ['vip', 25],
  ['vip_no_phone', 5],
  ['rejected', 10],
  ['doomed', 10],
];
const INTERVENTION_WEIGHTS: [InterventionKind | null, number][] = [
  [null, 66],
  ['cancel', 8],
  ['delete', 7],
  ['goal_early', 6],
  ['goal_race', 9],
  ['cancel_vs_goal', 4],
];
const plan: PlannedExecution[] = Array.from({ length: total }, (_, index) => {
  const fate = random.weighted(FATE_WEIGHTS);
  const kind = random.weighted(INTERVENTION_WEIGHTS);
  const offsetMs = kind === 'goal_race' ? random.between(-400, 400) : random.between(100, 5_000);
  const tagAdds =
    random.next() < 0.2
      ? Array.from({ length: 4 }, (_, i) => ({ tag: `api-${i}`, offsetMs: random.between(0, 2_000) }))
      : [];
  return {
    index,
    contactId: randomUUID(),
    fate,
    intervention: kind ? { kind, offsetMs } : null,
    doubleTrigger: random.next() < 0.05,
    tagAdds,
  };
});

const FAULT_KINDS = [
  'worker_sigkill',
  'worker_rolling_restart',
  'redis_flushall',
  'redis_restart',
  'redis_failover',
  'provider_503',
  'provider_429',
  'provider_hang',
  'postgres_disconnect',
  'postgres_restart',
  'provider_hostile_retry_after',
  'provider_huge_body',
  'provider_drip',
] as const;
/** With --hostile, the provider also answers 429 with Retry-After 0, huge or garbage, 503 with huge bodies, and drips. */
const HOSTILE_RETRY_AFTER = [
  '0',
  '-1',
  '10000000000000',
  '3000000000',
  'Fri, 31 Dec 9999 23:59:59 GMT',
  'soon',
  '9'.repeat(300),
];
type FaultKind = (typeof FAULT_KINDS)[number];
const plannedInterventions: Record<string, number> = {};
for (const p of plan)
  if (p.intervention) plannedInterventions[p.intervention.kind] = (plannedInterventions[p.intervention.kind] ?? 0) + 1;
interface Fault {
  at: number;
  kind: FaultKind;
  durationMs: number;
  /** A seeded number in [0, 1) for the fault's own choice (which worker, which Retry-After). */
  pick: number;
}
const loadMs = (total / profile.rate) * 1000;
const windowMs = loadMs + 5_000;
const schedule: Fault[] = [];
{
  const at = () => random.between(2_000, windowMs);
  const times = (quickCount: number, everyMs: number) =>
    quick ? quickCount : Math.max(1, Math.ceil(windowMs / everyMs));
  for (let i = times(2, 15_000); i > 0; i -= 1)
    schedule.push({ at: at(), kind: 'worker_sigkill', durationMs: random.between(500, 2_500), pick: random.next() });
  for (let i = times(1, 70_000); i > 0; i -= 1)
    schedule.push({ at: at(), kind: 'worker_rolling_restart', durationMs: 0, pick: 0 });
  for (let i = times(1, 40_000); i > 0; i -= 1)
    schedule.push({ at: at(), kind: 'redis_flushall', durationMs: 0, pick: 0 });
  // A cluster is not restarted as a whole: its queue's master fails over instead, somewhat more often.
  if (onCluster)
    for (let i = times(1, 30_000); i > 0; i -= 1)
      schedule.push({ at: at(), kind: 'redis_failover', durationMs: 0, pick: 0 });
  else
    for (let i = times(1, 50_000); i > 0; i -= 1)
      schedule.push({ at: at(), kind: 'redis_restart', durationMs: 0, pick: 0 });
  for (let i = times(1, 45_000); i > 0; i -= 1)
    schedule.push({ at: at(), kind: 'postgres_disconnect', durationMs: 0, pick: 0 });
  // Provider outages are short and far apart, so a normal execution's retries (1+2+4+8 s) outlast them.
  const outages: FaultKind[] = ['provider_503', 'provider_429', 'provider_hang'];
  if (args.hostile) outages.push('provider_hostile_retry_after', 'provider_huge_body', 'provider_drip');
  for (let slot = 3_000, n = 0; slot < windowMs; slot += profile.outageEveryMs, n += 1) {
    if (n % outages.length === 0) outages.sort(() => random.next() - 0.5);
    schedule.push({
      at: slot + random.between(0, profile.outageEveryMs / 4),
      kind: outages[n % outages.length]!,
      durationMs: random.between(1_500, 3_000),
      pick: random.next(),
    });
  }
  schedule.sort((a, b) => a.at - b.at);
  if (args['postgres-restart']) schedule.push({ at: windowMs, kind: 'postgres_restart', durationMs: 0, pick: 0 });
}

// Journeys, drawn after the plan and the schedule so that those stay what the seed gave before.
const JOURNEY_WEIGHTS: [JourneyKind, number][] = [
  ['timeout', 30],
  ['order', 25],
  ['order_race', 30],
  ['exit', 15],
];
/** The wait_for_event's timeout: an order sent around it races the timer. */
const journeyTimeoutSeconds = profile.waitSeconds + 1;
const journeys: PlannedJourney[] = Array.from({ length: Math.ceil(total / 4) }, (_, index) => {
  const kind = random.weighted(JOURNEY_WEIGHTS);
  return {
    index,
    contactId: randomUUID(),
    kind,
    offsetMs:
      kind === 'order_race'
        ? random.between(-400, 400)
        : kind === 'order'
          ? random.between(200, 1_500)
          : kind === 'exit'
            ? random.between(0, 6_000)
            : 0,
    doubleEntry: random.next() < 0.1,
  };
});
// The A/B contacts of a second account (chaos-splits.ts), drawn after the journeys, and the moment a new
// version of their workflow is published with `in_flight: "move"`: while entries still come in.
const splitContacts: PlannedSplitContact[] = planSplits(random, Math.ceil(total / 10), loadMs, randomUUID);
const splitPublish: SplitPublish = { atMs: random.between(0.4, 0.6) * loadMs, attempts: [] };
// Sent once, so not within 5 s of a planned drop of every Postgres connection.
while (schedule.some((f) => f.kind.startsWith('postgres') && Math.abs(f.at - splitPublish.atMs) < 5_000))
  splitPublish.atMs += 2_000;

// ---------------------------------------------------------------------------------------------
// Processes and resources the run starts; all of them are released in `cleanup`.

const t0 = Date.now();
const elapsed = () => `${((Date.now() - t0) / 1000).toFixed(1)}s`;
const say = (message: string) => console.log(`[${elapsed()}] ${message}`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
const cleanups: (() => Promise<unknown>)[] = [];
const processProblems: string[] = [];
const processMessages = new Map<string, number>();

/** A flowmachine process of the run. */
interface Engine {
  name: string;
  child: ChildProcess;
  port: number;
  exited: Promise<number | null>;
  /** Set while it starts and once the run stops it: an exit then is expected. */
  stopping: boolean;
}
const engines = new Set<Engine>();
let engineCount = 0;
/** Where the API listens; changes when a crashed API is started again. */
let apiPort = 0;
/** Set once the run stops its processes: from then on nothing is restarted. */
let finishing = false;

/**
 * Starts `flowmachine <role>` and waits until its /health answers. A process that cannot reach
 * Postgres or Redis exits at start by design (one of them may be restarting): it is started again.
 */
async function startEngine(role: 'api' | 'worker', env: Record<string, string>): Promise<Engine> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await spawnEngine(role, env);
    } catch (error) {
      if (attempt >= 10) throw error;
      say(`${(error as Error).message.split('\n')[0]}; starting it again`);
      await sleep(1_000);
    }
  }
}

async function spawnEngine(role: 'api' | 'worker', env: Record<string, string>): Promise<Engine> {
  const port = await freePort();
  const name = `${role}-${(engineCount += 1)}`;
  const child = spawn(process.execPath, [BIN, role], {
    env: { ...env, ...(role === 'api' ? { PORT: String(port) } : { METRICS_PORT: String(port) }) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const tail: string[] = [];
  const collect = (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n').filter(Boolean)) {
      tail.push(line);
      if (tail.length > 60) tail.shift();
      const message = /"message":"([^"]*)"/.exec(line)?.[1] ?? line.slice(0, 120);
      const error = /"error":"((?:[^"\\]|\\.){0,400})/
        .exec(line)?.[1]
        ?.replace(/\\n/g, ' ')
        .replace(/[0-9a-f]{8}-[0-9a-f-]{27}(\.\d+)?/g, '<id>')
        .replace(/\s+/g, ' ');
      const key = error ? `${message} (${error})` : message;
      processMessages.set(key, (processMessages.get(key) ?? 0) + 1);
    }
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const engine: Engine = {
    name,
    child,
    port,
    stopping: true,
    exited: new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? (signal ? -1 : null)))),
  };
  engines.add(engine);
  void engine.exited.then((code) => {
    engines.delete(engine);
    if (engine.stopping) return;
    processProblems.push(`${name} exited unexpectedly with ${code}: ${tail.slice(-5).join(' | ')}`);
    say(`${name} exited unexpectedly with ${code}:\n${tail.slice(-60).join('\n')}`);
    // As a supervisor would, start it again so the run goes on; the crash itself is a violation.
    if (!finishing && !interrupted) {
      void startEngine(role, env).then(
        (restarted) => role === 'api' && (apiPort = restarted.port),
        (error: Error) => say(`could not start ${role} again: ${error.message}`),
      );
    }
  });
  const deadline = Date.now() + 90_000;
  for (;;) {
    const healthy = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(2_000) }).then(
      (r) => r.ok,
      () => false,
    );
    if (healthy) {
      engine.stopping = false; // from now on an exit the run did not ask for is a problem
      return engine;
    }
    if (!engines.has(engine) || Date.now() > deadline) {
      engine.child.kill('SIGKILL');
      throw new Error(`${name} did not start: ${tail.slice(-3).join(' | ')}`);
    }
    await sleep(200);
  }
}

/** Stops an engine: SIGKILL, or SIGTERM and a bounded wait for a clean exit (a problem otherwise). */
async function stopEngine(engine: Engine, signal: 'SIGKILL' | 'SIGTERM'): Promise<void> {
  engine.stopping = true;
  engine.child.kill(signal);
  const code = await Promise.race([engine.exited, sleep(30_000).then(() => 'timeout' as const)]);
  if (signal === 'SIGTERM' && code !== 0) {
    processProblems.push(`${engine.name} did not shut down cleanly on SIGTERM (${code})`);
    engine.child.kill('SIGKILL');
    await engine.exited;
  }
}

async function cleanup() {
  for (const engine of engines) {
    engine.stopping = true;
    engine.child.kill('SIGKILL');
  }
  await Promise.all([...engines].map((e) => e.exited));
  for (const release of cleanups.reverse())
    await release().catch((error: Error) => console.error(`cleanup: ${error.message}`));
}

let interrupted = false;
process.once('SIGINT', () => {
  interrupted = true;
  console.error('interrupted; cleaning up');
  void cleanup().finally(() => process.exit(130));
});

async function adminQuery(sql: string) {
  const client = new pg.Client({ connectionString: ADMIN_URL });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  console.log(
    `chaos run: seed ${seed}, ${total} executions, ${workerCount} workers${quick ? ', quick' : ''}${args['postgres-restart'] ? ', with a Postgres restart' : ''}${onCluster ? ', on a Redis Cluster' : ''}`,
  );

  // Own database on the shared server, own Redis, own providers.
  const dbName = `fm_chaos_${Date.now()}`;
  const dbUrl = new URL(ADMIN_URL);
  dbUrl.pathname = `/${dbName}`;
  await adminQuery(`CREATE DATABASE "${dbName}"`);
  cleanups.push(async () =>
    args.keep ? console.log(`kept database ${dbName}`) : adminQuery(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`),
  );
  await migrate(dbUrl.toString());
  const db: PrismaClient = createDb(dbUrl.toString(), { max: 4 });
  cleanups.push(() => db.$disconnect());
  const QUEUE_PREFIX = 'chaos';
  const redis = onCluster ? null : await startPrivateRedis();
  const cluster = onCluster ? await startRedisCluster({ nodeTimeoutMs: 2_000 }) : null;
  cleanups.push(async () => {
    await redis?.stop();
    await cluster?.stop();
  });
  if (cluster) say(`started a Redis Cluster of 3 masters and 3 replicas: ${cluster.url}`);
  /** The masters a FLUSHALL must reach: the one server, or every master of the cluster. */
  const masterUrls = async () =>
    redis
      ? [redis.url]
      : (await cluster!.nodes())
          .filter((n) => n.role === 'master' && !n.failing)
          .map((n) => `redis://127.0.0.1:${n.port}`);
  const provider = await startFakeProvider();
  const broken = await startFakeProvider();
  const rejecting = await startFakeProvider();
  cleanups.push(() => Promise.all([provider.close(), broken.close(), rejecting.close()]));
  broken.setDefault({ status: 503 });
  rejecting.setDefault({ status: 400 });

  // The main provider's answer to request i is the mode set last before it arrived (recorded by index).
  const modes: { from: number; answer: Answer }[] = [{ from: 0, answer: 'ok' }];
  const setMode = (answer: Answer, response: FakeResponse) => {
    modes.push({ from: provider.received.length, answer });
    provider.setDefault(response);
  };
  const outages: FaultWindow[] = [];

  const env: Record<string, string> = {
    ...Object.fromEntries(
      Object.entries(process.env).filter(([key]) => !key.startsWith('OTEL_')) as [string, string][],
    ),
    DATABASE_URL: dbUrl.toString(),
    REDIS_URL: redis?.url ?? cluster!.url,
    QUEUE_PREFIX,
    HOST: '127.0.0.1',
    EMAIL_HTTP_URL: provider.emailUrl,
    SMS_HTTP_URL: provider.smsUrl,
    // The webhook providers listen on loopback, which webhooks may reach only when allow-listed.
    WEBHOOK_ALLOWED_HOSTS: [broken.url, rejecting.url].map((url) => new URL(url).host).join(','),
    WORKER_CONCURRENCY: '20',
    WORKER_LOCK_MS: '2000',
    STALE_AFTER_MS: '3000',
    SWEEP_INTERVAL_MS: '500',
    PROVIDER_TIMEOUT_MS: String(PROVIDER_TIMEOUT_MS),
    // A huge Retry-After waits this long at most: short enough for the run to drain.
    MAX_RETRY_AFTER_SECONDS: '3',
    SHUTDOWN_TIMEOUT_MS: '10000',
    LOG_LEVEL: 'warn',
  };
  const [api, ...workers] = await Promise.all([
    startEngine('api', env),
    ...Array.from({ length: workerCount }, () => startEngine('worker', env)),
  ]);
  apiPort = api!.port;
  say(`started the API and ${workers.length} workers`);

  // The account, with quick retries so failing executions end within seconds, and its workflow.
  const account = await createAccount(db, { name: 'Chaos', adminEmail: 'ops@chaos.example.com' });
  const call = async (
    method: string,
    route: string,
    body?: unknown,
    headers: Record<string, string> = {},
    timeoutMs = 60_000,
  ) => {
    const response = await fetch(`http://127.0.0.1:${apiPort}/api/v1${route}`, {
      method,
      headers: { authorization: `Bearer ${account.api_key}`, 'content-type': 'application/json', ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await response.text();
    return { status: response.status, body: (text ? JSON.parse(text) : null) as any };
  };
  /** Calls the API until it gives an answer that is not a server error (the API may be briefly without its database). */
  const callRetrying = async (method: string, route: string, body?: unknown) => {
    let failed = false;
    for (let attempt = 0; attempt < 40; attempt += 1) {
      const answer = await call(method, route, body).catch(() => null);
      if (answer && answer.status < 500) return { ...answer, failed };
      failed = true;
      await sleep(500);
    }
    return { status: 0, body: null, failed };
  };
  const settings = await call('PATCH', '/account/settings', {
    max_retry_attempts: MAX_RETRY_ATTEMPTS,
    retry_base_delay_seconds: 1,
    concurrent_executions_per_account: profile.concurrencyLimit,
  });
  if (settings.status !== 200) throw new Error(`settings: ${JSON.stringify(settings.body)}`);
  const workflow = await call('POST', '/workflows', {
    name: 'Chaos',
    status: 'active',
    definition: chaosWorkflow({ broken: broken.url, rejecting: rejecting.url }, profile.waitSeconds),
  });
  if (workflow.status !== 201) throw new Error(`workflow: ${JSON.stringify(workflow.body)}`);
  const journeyFlow = await call('POST', '/workflows', {
    name: 'Chaos journey',
    status: 'active',
    definition: journeyWorkflow(journeyTimeoutSeconds),
  });
  if (journeyFlow.status !== 201) throw new Error(`journey workflow: ${JSON.stringify(journeyFlow.body)}`);
  await db.contact.createMany({
    data: journeys.map((j) => ({
      id: j.contactId,
      accountId: account.account_id,
      email: `j${j.index}@chaos.example.com`,
      attributes: { first_name: `J${j.index}` },
    })),
  });
  // The A/B account: its own frequency caps (they count per contact across the account's workflows, so
  // the other workflows stay uncapped), its split workflow and its contacts.
  const splitAccount = await createAccount(db, { name: 'Chaos A/B', adminEmail: 'ab@chaos.example.com' });
  const asSplit = { authorization: `Bearer ${splitAccount.api_key}` };
  const splitSettings = await call(
    'PATCH',
    '/account/settings',
    {
      max_retry_attempts: MAX_RETRY_ATTEMPTS,
      retry_base_delay_seconds: 1,
      frequency_caps: SPLIT_CAPS.map(({ channel, max, per }) => ({ channel, max, per })),
    },
    asSplit,
  );
  if (splitSettings.status !== 200) throw new Error(`A/B settings: ${JSON.stringify(splitSettings.body)}`);
  const splitFlow = await call(
    'POST',
    '/workflows',
    { name: 'Chaos A/B', status: 'active', definition: splitWorkflow(1) },
    asSplit,
  );
  if (splitFlow.status !== 201) throw new Error(`A/B workflow: ${JSON.stringify(splitFlow.body)}`);
  await db.contact.createMany({
    data: splitContacts.map((c) => ({
      id: c.contactId,
      accountId: splitAccount.account_id,
      email: `ab${c.index}@chaos.example.com`,
      tags: c.vip ? ['VIP'] : [],
      attributes: { first_name: `AB${c.index}` },
    })),
  });
  await db.contact.createMany({
    data: plan.map((p) => ({
      id: p.contactId,
      accountId: account.account_id,
      email: `c${p.index}@chaos.example.com`,
      phone: p.fate === 'vip_no_phone' ? null : `+1555${String(p.index).padStart(7, '0')}`,
      tags: p.fate === 'vip' || p.fate === 'vip_no_phone' ? ['VIP'] : [],
      attributes: {
        ref: p.index,
        first_name: `C${p.index}`,
        plan: p.fate === 'doomed' || p.fate === 'rejected' ? p.fate : 'basic',
      },
    })),
  });

  const faultCounts: Record<string, number> = {};
  /** How long each failover took, from the kill until every node said `cluster_state:ok` again. */
  const failovers: number[] = [];
  // Interventions: cancel, delete the contact, or send the goal event, at their planned moment.
  const executionOf = new Map<number, string>();
  const pending: Promise<unknown>[] = [];
  /** Background work of the run; its failure is reported, never thrown into the run. */
  const track = (work: Promise<unknown>, what: string) =>
    pending.push(work.catch((error: Error) => console.error(`${what}: ${error.message}`)));
  /** The execution of a contact, read again if the database is briefly away (a Postgres restart). */
  const executionOfContact = async (contactId: string) => {
    for (let attempt = 0; ; attempt += 1) {
      try {
        return (await db.execution.findFirst({ where: { contactId }, select: { id: true } }))?.id;
      } catch (error) {
        if (attempt > 20) throw error;
        await sleep(500);
      }
    }
  };
  const racing = new Map<number, PlannedExecution>();
  const intervene = async (p: PlannedExecution) => {
    const intervention = p.intervention!;
    const id = executionOf.get(p.index) ?? (await executionOfContact(p.contactId));
    if (!id) return;
    const cancel = async () => {
      const answer = await callRetrying('POST', `/executions/${id}/cancel`);
      return { applied: answer.status === 200, refused: answer.status === 409 && !answer.failed };
    };
    const goal = async () => {
      const answer = await callRetrying('POST', `/contacts/${p.contactId}/events`, { name: 'appointment_booked' });
      const applied = answer.status === 202 && (answer.body.goal_completed_executions as string[]).includes(id);
      return { applied, refused: answer.status === 202 && !applied && !answer.failed };
    };
    const remove = async () => ({
      applied: (await callRetrying('DELETE', `/contacts/${p.contactId}`)).status === 204,
      refused: false,
    });
    // cancel_vs_goal sends both at once: exactly one may win.
    const answers = await Promise.all(
      intervention.kind === 'cancel'
        ? [cancel()]
        : intervention.kind === 'delete'
          ? [remove()]
          : intervention.kind === 'cancel_vs_goal'
            ? [cancel(), goal()]
            : [goal()],
    );
    intervention.doneAt = Date.now();
    const applied = answers.filter((a) => a.applied).length;
    if (intervention.kind === 'cancel_vs_goal')
      intervention.winner =
        applied === 2 ? 'both' : answers[0]!.applied ? 'cancel' : answers[1]!.applied ? 'goal' : undefined;
    intervention.result = applied > 0 ? 'applied' : answers.every((a) => a.refused) ? 'refused' : 'error';
    faultCounts[intervention.kind] = (faultCounts[intervention.kind] ?? 0) + 1;
  };
  // Goals racing with the wait: sent around the moment the wait is due.
  const raceWatcher = setInterval(() => {
    const ids = [...racing.keys()].map((i) => executionOf.get(i)).filter(Boolean) as string[];
    if (ids.length === 0) return;
    void db.execution
      .findMany({ where: { id: { in: ids } }, select: { id: true, status: true, nextRunAt: true, snapshot: true } })
      .then((rows) => {
        for (const row of rows) {
          const p = [...racing.values()].find((q) => executionOf.get(q.index) === row.id)!;
          const atWait =
            row.status === 'PAUSED' && (row.snapshot as { value: string }).value === 'pause' && row.nextRunAt;
          const past =
            ['COMPLETED', 'FAILED', 'CANCELLED'].includes(row.status) ||
            !['welcome', 'tag', 'pause'].includes((row.snapshot as { value: string }).value);
          if (!atWait && !past) continue;
          racing.delete(p.index);
          const dueIn = atWait ? row.nextRunAt!.getTime() + p.intervention!.offsetMs - Date.now() : 0;
          track(
            sleep(dueIn).then(() => intervene(p)),
            `${p.intervention!.kind} of contact ${p.index}`,
          );
        }
      })
      .catch(() => undefined);
  }, 200);

  // Triggers, paced; failed requests are retried (a retried trigger may answer 200 duplicate or 409).
  let inFlight = 0;
  const t1 = Date.now();
  const triggering = (async () => {
    for (const p of plan) {
      await sleep(t1 + (p.index / profile.rate) * 1000 - Date.now());
      while (inFlight >= 16) await sleep(5);
      inFlight += 1;
      track(
        (async () => {
          const send = () =>
            callRetrying('POST', `/workflows/${workflow.body.id}/trigger`, { contact_id: p.contactId });
          const answers = await Promise.all(p.doubleTrigger ? [send(), send()] : [send()]);
          const answer = answers.find((a) => a.body?.execution_id) ?? answers[0]!;
          if (p.doubleTrigger) faultCounts.duplicate_trigger = (faultCounts.duplicate_trigger ?? 0) + 1;
          inFlight -= 1;
          if (answer.status === 202 || (answer.status === 200 && answer.body.duplicate) || answer.status === 409) {
            p.triggered = true;
            if (answer.body.execution_id) executionOf.set(p.index, answer.body.execution_id);
            else executionOf.set(p.index, (await executionOfContact(p.contactId))!);
          } else {
            console.error(`trigger of contact ${p.index} failed: ${answer.status} ${JSON.stringify(answer.body)}`);
            return;
          }
          for (const add of p.tagAdds) {
            track(
              sleep(add.offsetMs).then(async () => {
                add.ok = (await callRetrying('POST', `/contacts/${p.contactId}/tags`, { tag: add.tag })).status === 200;
                faultCounts.api_tag_change = (faultCounts.api_tag_change ?? 0) + 1;
              }),
              `tag of contact ${p.index}`,
            );
          }
          if (p.intervention?.kind === 'goal_race') racing.set(p.index, p);
          else if (p.intervention)
            track(
              sleep(p.intervention.offsetMs).then(() => intervene(p)),
              `${p.intervention.kind} of contact ${p.index}`,
            );
        })(),
        `trigger of contact ${p.index}`,
      );
    }
  })();

  // Journeys: entries by event (some twice at once under one Idempotency-Key), then the order or the
  // exit event at its seeded moment; orders wait until the execution is at its wait_for_event.
  /**
   * Posts a contact event with an Idempotency-Key until it gets an answer that is neither a server
   * error nor "still in progress"; `failed` says an earlier attempt may have done the work already.
   */
  const postWithKey = async (route: string, body: unknown, key: string, headers: Record<string, string> = {}) => {
    let failed = false;
    for (let attempt = 0; attempt < 60; attempt += 1) {
      const answer = await call('POST', route, body, { ...headers, 'idempotency-key': key }).catch(() => null);
      if (answer && answer.status < 500 && answer.status !== 409) return { ...answer, failed };
      failed = failed || !answer || answer.status >= 500;
      await sleep(500);
    }
    return { status: 0, body: null, failed: true };
  };
  const postEvent = (contactId: string, event: unknown, key: string) =>
    postWithKey(`/contacts/${contactId}/events`, event, key);
  const journeyExecution = new Map<number, string>();
  const journeyRacing = new Map<number, PlannedJourney>();
  const journeyEvent = async (j: PlannedJourney) => {
    const id = journeyExecution.get(j.index);
    if (!id) return;
    const name = j.kind === 'exit' ? JOURNEY_EVENTS.exit : JOURNEY_EVENTS.order;
    const answer = await postEvent(j.contactId, { name, properties: { cart: `c${j.index}` } }, `${name}-${j.index}`);
    j.doneAt = Date.now();
    const listed = (answer.body?.[j.kind === 'exit' ? 'exited' : 'resumed'] ?? []) as string[];
    j.result =
      answer.status === 202 && listed.includes(id)
        ? 'applied'
        : answer.status === 202 && !answer.failed
          ? 'refused'
          : 'error';
    const fault = j.kind === 'exit' ? 'journey_exit' : 'journey_order';
    faultCounts[fault] = (faultCounts[fault] ?? 0) + 1;
  };
  const journeyWatcher = setInterval(() => {
    const ids = [...journeyRacing.keys()].map((i) => journeyExecution.get(i)!);
    if (ids.length === 0) return;
    void db.execution
      .findMany({ where: { id: { in: ids } }, select: { id: true, status: true, snapshot: true, nextRunAt: true } })
      .then((rows) => {
        for (const row of rows) {
          const j = [...journeyRacing.values()].find((q) => journeyExecution.get(q.index) === row.id)!;
          const at = (row.snapshot as { value: string }).value;
          const atWait = row.status === 'PAUSED' && at === 'j_await' && row.nextRunAt;
          // Until the wait has started (the row PAUSED there), or the execution went past it or ended.
          const before = at === 'j_welcome' || at === 'j_await';
          if (!atWait && before && !['COMPLETED', 'FAILED', 'CANCELLED'].includes(row.status)) continue;
          journeyRacing.delete(j.index);
          // nextRunAt of the wait is its timeout: a race is timed around it, an early order after its start.
          const timeoutAt = atWait ? row.nextRunAt!.getTime() : Date.now();
          const sendAt =
            j.kind === 'order_race' ? timeoutAt + j.offsetMs : timeoutAt - journeyTimeoutSeconds * 1000 + j.offsetMs;
          track(
            sleep(atWait ? sendAt - Date.now() : 0).then(() => journeyEvent(j)),
            `${j.kind} of journey ${j.index}`,
          );
        }
      })
      .catch(() => undefined);
  }, 200);
  const journeyRate = journeys.length / Math.max(1, loadMs / 1000);
  const journeying = (async () => {
    for (const j of journeys) {
      await sleep(t1 + (j.index / journeyRate) * 1000 - Date.now());
      track(
        (async () => {
          const send = () =>
            postEvent(
              j.contactId,
              { name: JOURNEY_EVENTS.entry, properties: { total: 10 + j.index, cart: `c${j.index}` } },
              `entry-${j.index}`,
            );
          const answers = await Promise.all(j.doubleEntry ? [send(), send()] : [send()]);
          if (j.doubleEntry) faultCounts.journey_double_entry = (faultCounts.journey_double_entry ?? 0) + 1;
          const enrolled = answers
            .flatMap((a) => (a.body?.enrolled ?? []) as { workflow_id: string; execution_id: string }[])
            .find((e) => e.workflow_id === journeyFlow.body.id);
          const blocked = answers.some((a) =>
            ((a.body?.blocked ?? []) as { workflow_id: string }[]).some((b) => b.workflow_id === journeyFlow.body.id),
          );
          if (!enrolled && !blocked) {
            console.error(`entry of journey ${j.index} failed: ${JSON.stringify(answers.map((a) => a.body))}`);
            return;
          }
          j.entered = true;
          const id = enrolled?.execution_id ?? (await executionOfContact(j.contactId));
          if (!id) return;
          journeyExecution.set(j.index, id);
          if (j.kind === 'exit')
            track(
              sleep(j.offsetMs).then(() => journeyEvent(j)),
              `exit of journey ${j.index}`,
            );
          else if (j.kind !== 'timeout') journeyRacing.set(j.index, j);
        })(),
        `entry of journey ${j.index}`,
      );
    }
  })();

  // A/B entries at their planned moments, each a trigger under its own Idempotency-Key (re-entries of a
  // contact are apart by more than the deduplication window), and midway the publish of version 2 with
  // `in_flight: "move"`. A publish without an answer (its move stopped by a dropped connection) is sent
  // again, which publishes a further version and moves what it finds then.
  const splitting = (async () => {
    const entries = splitContacts
      .flatMap((c) => c.entries.map((entry, n) => ({ c, entry, n })))
      .sort((a, b) => a.entry.atMs - b.entry.atMs);
    for (const { c, entry, n } of entries) {
      await sleep(t1 + entry.atMs - Date.now());
      if (interrupted) return;
      track(
        (async () => {
          const answer = await postWithKey(
            `/workflows/${splitFlow.body.id}/trigger`,
            { contact_id: c.contactId },
            `ab-${c.index}-${n}`,
            asSplit,
          );
          entry.result =
            answer.status === 202 ? 'started' : answer.status === 200 && answer.body?.duplicate ? 'duplicate' : 'error';
          if (entry.result === 'started') entry.executionId = String(answer.body.execution_id);
          if (entry.result === 'error')
            console.error(
              `entry ${n} of A/B contact ${c.index} failed: ${answer.status} ${JSON.stringify(answer.body)}`,
            );
          faultCounts.split_entry = (faultCounts.split_entry ?? 0) + 1;
        })(),
        `entry ${n} of A/B contact ${c.index}`,
      );
    }
  })();
  const publishing = (async () => {
    await sleep(t1 + splitPublish.atMs - Date.now());
    for (let attempt = 0; attempt < 5 && !interrupted; attempt += 1) {
      const startedAt = Date.now();
      say(`publishing a new version of the A/B workflow with in_flight "move" (${new Date(startedAt).toISOString()})`);
      const answer = await call(
        'PUT',
        `/workflows/${splitFlow.body.id}/definition`,
        { definition: splitWorkflow(2), in_flight: 'move' },
        asSplit,
        600_000,
      ).catch((error: Error) => ({ status: 0, body: { error: error.message } }));
      const moves = answer.body?.in_flight as { moved: number; stayed: number } | undefined;
      splitPublish.attempts.push({
        startedAt,
        doneAt: Date.now(),
        status: answer.status,
        version: answer.body?.version,
        ...moves,
      });
      faultCounts.version_move = (faultCounts.version_move ?? 0) + 1;
      if (answer.status === 200) {
        say(
          `version ${answer.body.version} published in ${Date.now() - startedAt} ms: ${moves?.moved} moved, ${moves?.stayed} stayed`,
        );
        return;
      }
      say(`the publish failed: ${answer.status} ${JSON.stringify(answer.body)}; sending it again`);
      await sleep(1_000);
    }
  })();

  // Faults, in lanes (workers, Redis, provider, Postgres) so a slow restart does not delay the others.
  const running = () => [...engines].filter((e) => e.name.startsWith('worker') && !e.stopping);
  const inject = async (fault: Fault) => {
    faultCounts[fault.kind] = (faultCounts[fault.kind] ?? 0) + 1;
    const outage = async (answer: Answer, response: FakeResponse, description: string) => {
      say(`provider ${description} for ${Math.round(fault.durationMs)} ms`);
      const start = Date.now();
      setMode(answer, response);
      await sleep(fault.durationMs);
      setMode('ok', { status: 200 });
      // A hanging request fails when the caller gives up, up to PROVIDER_TIMEOUT_MS after the hang ends.
      if (answer !== 'rate_limited')
        outages.push({
          kind: fault.kind,
          start,
          end: Date.now() + (answer === 'hang' ? PROVIDER_TIMEOUT_MS : 0) + 100,
        });
    };
    switch (fault.kind) {
      case 'worker_sigkill': {
        const victim = running()[Math.floor(fault.pick * running().length)]!;
        say(`SIGKILL ${victim.name}; a new worker in ${Math.round(fault.durationMs)} ms`);
        await stopEngine(victim, 'SIGKILL');
        await sleep(fault.durationMs);
        await startEngine('worker', env);
        return;
      }
      case 'worker_rolling_restart':
        say('rolling restart: each worker replaced, the old one stopped with SIGTERM');
        for (const old of running()) {
          await startEngine('worker', env);
          await stopEngine(old, 'SIGTERM');
        }
        return;
      case 'redis_flushall': {
        const urls = await masterUrls();
        say(`Redis FLUSHALL${cluster ? ` on every master (${urls.length})` : ''}`);
        for (const url of urls) {
          const client = createRedis({ mode: 'single', url }, { failFast: true });
          await client.flushall().finally(() => client.disconnect());
        }
        return;
      }
      case 'redis_restart':
        say('Redis restart');
        return redis!.restart();
      case 'redis_failover': {
        // The master serving the queue's slot (the engine's keys share its hash tag) dies at once.
        const key = `${keyPrefixFor(cluster!.target, QUEUE_PREFIX)}:steps`;
        const victim = await cluster!.masterOf(key);
        say(`Redis Cluster: SIGKILL the master of the queue's slot (port ${victim})`);
        const started = Date.now();
        await cluster!.kill(victim);
        const successor = await cluster!.waitForFailover(victim, 60_000);
        say(`Redis Cluster: ${successor} took over in ${Date.now() - started} ms; ${victim} rejoins as a replica`);
        failovers.push(Date.now() - started);
        await cluster!.start(victim);
        await cluster!.waitUntilHealthy(60_000);
        return;
      }
      case 'provider_503':
        return outage('failure', { status: 503 }, 'answers 503');
      case 'provider_429': {
        const retryAfter = String(1 + Math.floor(fault.pick * 2));
        return outage('rate_limited', { status: 429, retryAfter }, `answers 429 (Retry-After ${retryAfter})`);
      }
      case 'provider_hang':
        return outage('hang', { hang: true }, 'hangs');
      case 'provider_hostile_retry_after': {
        const retryAfter = HOSTILE_RETRY_AFTER[Math.floor(fault.pick * HOSTILE_RETRY_AFTER.length)]!;
        return outage(
          'rate_limited',
          { status: 429, retryAfter },
          `answers 429 (Retry-After ${retryAfter.slice(0, 40)})`,
        );
      }
      case 'provider_huge_body':
        return outage('failure', { status: 503, body: 'x'.repeat(4 << 20) }, 'answers 503 with a 4 MB body');
      case 'provider_drip':
        // A 200 whose body never ends was answered (the provider took the message); a 503 one failed.
        return fault.pick < 0.5
          ? outage('ok', { drip: true, status: 200 }, 'answers 200 and drips its body a byte at a time')
          : outage('failure', { drip: true, status: 503 }, 'answers 503 and drips its body a byte at a time');
      case 'postgres_disconnect':
        // Every connection to the run's own database is dropped, as a restart would; the shared server stays up.
        say("Postgres: every connection of the run's database terminated");
        await adminQuery(
          `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${dbName}' AND pid <> pg_backend_pid()`,
        );
        return;
      case 'postgres_restart':
        say('Postgres restart (shared server)');
        execFileSync('pg_ctlcluster', ['--skip-systemctl-redirect', '15', 'main', 'restart'], { stdio: 'inherit' });
        return;
    }
  };
  const laneOf = (kind: FaultKind) => kind.split('_')[0]!;
  const faulting = Promise.all(
    [...new Set(schedule.map((f) => laneOf(f.kind)))].map(async (lane) => {
      for (const fault of schedule.filter((f) => laneOf(f.kind) === lane)) {
        await sleep(t1 + fault.at - Date.now());
        if (!interrupted)
          await inject(fault).catch((error: Error) =>
            say(`fault ${fault.kind} could not be injected: ${error.message}`),
          );
      }
    }),
  );

  // Live checks while the faults go on: the invariants must hold at every instant, not only at the end.
  const live: ChaosRecord['live'] = { checks: 0, violations: [], maxActive: 0, maxWaiting: 0 };
  let sampling = true;
  const sampler = (async () => {
    for (let tick = 1; sampling; tick += 1) {
      await sleep(1_000);
      try {
        const [counts] = await db.$queryRaw<{ active: number; waiting: number }[]>`
          SELECT count(*) FILTER (WHERE status = 'ACTIVE')::int AS active, count(*) FILTER (WHERE waiting)::int AS waiting FROM executions`;
        live.maxActive = Math.max(live.maxActive, counts!.active);
        live.maxWaiting = Math.max(live.maxWaiting, counts!.waiting);
        if (tick % profile.liveCheckEvery === 0) {
          // Stuck executions aside. A large database is checked by `flowmachine check` in its own process,
          // since a long check in this one would hold up the fake providers.
          const never = 365 * 86_400_000;
          const report = quick
            ? await checkConsistency(db, { stuckAfterMs: never })
            : await execFileAsync(process.execPath, [BIN, 'check', '--stuck-after-ms', String(never)], {
                env: { ...env, LOG_LEVEL: 'error' },
                maxBuffer: 64 << 20,
              })
                .catch((error: { stdout?: string }) => ({ stdout: error.stdout ?? '' }))
                .then(({ stdout }) => (stdout.trim() ? (JSON.parse(stdout) as ConsistencyReport) : null));
          if (report) live.checks += 1;
          for (const v of report?.violations ?? [])
            live.violations.push(`at ${elapsed()}: ${v.kind} ${v.execution_id ?? v.account_id}: ${v.message}`);
        }
      } catch {
        // The database may be restarting; the next tick tries again.
      }
    }
  })();

  await Promise.all([triggering, journeying, splitting, publishing, faulting]);
  say(
    `all ${total} triggers, ${journeys.length} journey entries and ${splitContacts.length} A/B contacts' entries sent, ${schedule.length} faults injected; waiting for executions to finish`,
  );
  const deadline = Date.now() + profile.drainMs;
  let runningCount = -1;
  while (Date.now() < deadline && !interrupted) {
    const settled =
      racing.size === 0 &&
      journeyRacing.size === 0 &&
      (await Promise.race([Promise.all(pending).then(() => true), sleep(0).then(() => false)]));
    runningCount = await db.execution
      .count({ where: { status: { in: ['QUEUED', 'ACTIVE', 'PAUSED'] } } })
      .catch(() => -1);
    if (settled && runningCount === 0) break;
    await sleep(1_000);
  }
  clearInterval(raceWatcher);
  clearInterval(journeyWatcher);
  sampling = false;
  await sampler;
  await sleep(1_500); // admin notifications are logged just after their execution's last commit
  say(
    runningCount === 0
      ? 'every execution finished; stopping the processes'
      : `${runningCount} executions still running; giving up waiting`,
  );
  finishing = true;
  await Promise.all([...engines].map((e) => stopEngine(e, 'SIGTERM')));

  // Checks.
  const answerOf = (index: number) => modes.filter((m) => m.from <= index).at(-1)!.answer;
  const requests: RecordedRequest[] = [
    ...provider.received.map((r, i) => ({
      key: r.idempotencyKey,
      executionId: String(r.body.execution_id),
      ref: null,
      stepId: String(r.body.step_id),
      at: r.at,
      answer: answerOf(i),
    })),
    ...broken.received.map((r) => ({
      key: r.idempotencyKey,
      executionId: null,
      ref: Number(r.body.ref),
      stepId: 'doom',
      at: r.at,
      answer: 'failure' as const,
    })),
    ...rejecting.received.map((r) => ({
      key: r.idempotencyKey,
      executionId: null,
      ref: Number(r.body.ref),
      stepId: 'reject',
      at: r.at,
      answer: 'rejected' as const,
    })),
  ];
  const journeyExecutions = journeys.filter((j) => j.entered).length;
  const splitExecutions = splitContacts.flatMap((c) => c.entries).filter((e) => e.result === 'started').length;
  const record: ChaosRecord = {
    plan,
    requests,
    outages,
    maxRetryAttempts: MAX_RETRY_ATTEMPTS,
    processProblems,
    live,
    otherExecutions: journeyExecutions + splitExecutions,
  };
  if (args.keep) {
    const file = path.join(tmpdir(), `${dbName}.record.json`);
    writeFileSync(file, JSON.stringify(record));
    console.log(`kept the run's record in ${file}`);
  }
  const findings = await checkChaosRun(db, record);
  const journeyFindings = await checkJourneys(
    db,
    { journeys, requests, outages, maxRetryAttempts: MAX_RETRY_ATTEMPTS },
    (kind, message) => {
      findings.violations[kind] += 1;
      if ((findings.examples[kind] ??= []).length < 5) findings.examples[kind]!.push(message);
    },
  );
  const versions = await db.workflowVersion.findMany({ where: { workflowId: splitFlow.body.id } });
  const splitFindings = await checkSplits(
    db,
    {
      contacts: splitContacts,
      publish: splitPublish,
      versionIds: new Map(versions.map((v) => [v.version, v.id])),
      requests,
      outages,
      maxRetryAttempts: MAX_RETRY_ATTEMPTS,
    },
    (kind, message) => {
      findings.violations[kind] += 1;
      if ((findings.examples[kind] ??= []).length < 5) findings.examples[kind]!.push(message);
    },
  );
  const violationCount = Object.values(findings.violations).reduce((a, b) => a + b, 0);

  const row = (label: string, value: string | number) => `  ${label.padEnd(40)} ${value}`;
  const lines = [
    '',
    `chaos run  seed ${seed}  ${total} executions  ${workerCount} workers${quick ? '  (quick)' : ''}${onCluster ? '  (Redis Cluster)' : ''}`,
    'outcomes',
    ...Object.entries(findings.outcomes)
      .sort()
      .map(([outcome, n]) => row(outcome, n)),
    `journeys (${journeys.length} contacts entered by ${JOURNEY_EVENTS.entry}, ${journeyFindings.executions} executions)`,
    ...JOURNEY_KINDS.map((kind) =>
      row(
        kind,
        Object.entries(journeyFindings.outcomes)
          .filter(([label]) => label.startsWith(`${kind} `))
          .sort()
          .map(([label, n]) => `${n} ${label.slice(kind.length + 1)}`)
          .join(', ') || 'none',
      ),
    ),
    `A/B (${splitFindings.contacts} contacts of a second account, ${splitFindings.executions} executions)`,
    row(
      'variants (contacts)',
      `${SPLIT_VARIANTS.map(({ id }) => `${splitFindings.variants[id] ?? 0} ${id}`).join(', ')}; ${splitFindings.splitExecutions} executions passed the split`,
    ),
    row(
      'frequency caps',
      `${splitFindings.capped} frequency_capped in ${splitFindings.cappedExecutions} executions; ${splitFindings.transactional} transactional receipts; ${splitFindings.lateSends} sends placed at their count`,
    ),
    row(
      'version 2 published with move',
      `${splitFindings.moved} moved, ${splitFindings.stayed} stayed at the removed step, ${splitFindings.startedOnNew} started on it; answers: ${
        splitPublish.attempts
          .map((a) =>
            a.status === 200
              ? `version ${a.version}: ${a.moved} moved, ${a.stayed} stayed, in ${a.doneAt - a.startedAt} ms`
              : `${a.status || 'no answer'} after ${a.doneAt - a.startedAt} ms`,
          )
          .join('; ') || 'none'
      }`,
    ),
    row('entries refused as duplicates', splitFindings.duplicates),
    'faults injected',
    ...[
      ...FAULT_KINDS,
      ...INTERVENTIONS,
      'duplicate_trigger',
      'api_tag_change',
      'journey_double_entry',
      'journey_order',
      'journey_exit',
      'split_entry',
      'version_move',
    ]
      .filter((kind) => kind !== 'postgres_restart' || args['postgres-restart'])
      .filter((kind) => (kind === 'redis_restart' ? !onCluster : kind === 'redis_failover' ? onCluster : true))
      .map((kind) =>
        row(
          kind,
          `${faultCounts[kind] ?? 0}${kind in plannedInterventions ? ` of ${plannedInterventions[kind]} planned` : ''}`,
        ),
      ),
    'violations by kind',
    ...CHAOS_VIOLATIONS.map((kind) => row(kind, findings.violations[kind])),
    'delivery',
    row('provider requests', findings.stats.requests),
    row('idempotency keys', findings.stats.keys),
    row('same-key re-sends after a failure', findings.stats.resendsAfterFailure),
    row('same-key re-sends of a delivered step', findings.stats.duplicatesAfterSuccess),
    row(
      'in flight when stopped (late)',
      `${findings.stats.lateInFlight} + ${findings.stats.lateDuplicates} duplicates, at most ${findings.stats.lateMaxMs} ms late`,
    ),
    row('executions failed by outages', findings.stats.failedByOutage),
    row(
      'unexplained transient failures',
      `${findings.stats.unexplainedFailures}${
        findings.stats.unexplainedFailures
          ? ` (${Object.entries(findings.stats.unexplainedErrors)
              .map(([e, n]) => `${n}× ${e}`)
              .join('; ')})`
          : ''
      }`,
    ),
    row('journey messages in flight at their exit', journeyFindings.lateAfterTimer),
    row('recovered log entries', findings.stats.recoveredLogs),
    row(
      'live consistency checks',
      `${live.checks} (most ACTIVE at once ${live.maxActive}, most waiting in line ${live.maxWaiting})`,
    ),
    row('failures without admin notification', findings.stats.failedWithoutNotification),
    ...(onCluster
      ? [
          row(
            'Redis Cluster failovers (kill to all ok)',
            failovers.map((ms) => `${(ms / 1000).toFixed(1)} s`).join(', ') || 'none',
          ),
        ]
      : []),
    `violations: ${violationCount}`,
    `duration: ${((Date.now() - t0) / 1000).toFixed(1)} s`,
  ];
  console.log(lines.join('\n'));
  for (const [kind, messages] of Object.entries(findings.examples))
    for (const message of messages) console.log(`  ${kind}: ${message}`);
  const noisy = [...processMessages.entries()].sort((a, b) => b[1] - a[1]).slice(0, 8);
  if (noisy.length > 0)
    console.log(`process warnings and errors (most frequent): ${noisy.map(([m, n]) => `${n}× ${m}`).join('; ')}`);
  return violationCount === 0 ? 0 : 1;
}

main()
  .then(async (code) => {
    await cleanup();
    process.exit(code);
  })
  .catch(async (error: Error) => {
    console.error(`chaos run failed: ${error.stack ?? error.message}`);
    await cleanup();
    process.exit(1);
  });
