/**
 * End-to-end benchmark of the engine, run the way it is deployed: a fresh migrated database, a private
 * Redis, the API process, N worker processes and a fake HTTP provider. It first measures the hardware
 * floor (a Postgres transaction shaped like one engine step, and a BullMQ no-op job round trip), then
 * triggers executions of a five-step workflow (send_email → add_tag → condition → wait → send_sms)
 * through the HTTP API, waits for all of them to finish and prints one table (and JSON with `--json`).
 *
 * Usage: `npm run bench -- [--quick] [--executions N] [--rate PER_S (0: all at once)] [--workers N]
 *   [--worker-concurrency N] [--provider-latency MS] [--wait "2 seconds"] [--clients N] [--accounts N] [--time-limit S] [--json]
 *   [--log-level info] [--worker-node-args="--cpu-prof --cpu-prof-dir=/tmp/prof"] [--api-node-args=…] [--bulk N] [--keep]`
 * (see docs/benchmarks.md). Exits 1 when an execution did not complete or anything failed.
 * `--scenario waiting|spike` runs a scale scenario instead (scripts/bench-scale.ts).
 */
import { execFile, fork, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, createReadStream, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import pg from 'pg';
import { createAccount } from '../src/api/api-keys.ts';
import { createDb } from '../src/db/client.ts';
import { migrate } from '../src/db/migrate.ts';
import { ADMIN_URL, adminQuery, databaseUrl } from '../test/helpers/database.ts';
import { startFakeProvider } from '../test/helpers/fake-provider.ts';
import { freePort, startPrivateRedis } from '../test/helpers/redis-server.ts';

const SELF = fileURLToPath(import.meta.url);
const BIN = path.resolve(import.meta.dirname, '../bin/flowmachine.mjs');
/** The node flags `npm start` runs the engine with (package.json): the engine processes here get them too. */
const ENGINE_NODE_ARGS = /^node (.*)bin\/flowmachine\.mjs /
  .exec(JSON.parse(readFileSync(path.resolve(import.meta.dirname, '../package.json'), 'utf8')).scripts.start)![1]!
  .split(' ')
  .filter(Boolean);
const GET_RATE = 50;
/** USER_HZ of /proc/<pid>/stat times (100 on Linux). */
const CLOCK_TICKS = 100;
const FLOOR_CLIENTS = 8;
const FLOOR_ROWS = 10_000;
const STEP_EVENTS = `('action_completed', 'action_skipped', 'action_failed', 'condition_evaluated', 'wait_completed')`;

/** Options of one benchmark run. */
export interface BenchOptions {
  /** Executions to trigger. @defaultValue 1000 (300 with `quick`) */
  executions: number;
  /** Triggers per second; 0 sends them all at once (limited by `clients`). @defaultValue 500 */
  rate: number;
  /** Worker processes. @defaultValue 2 */
  workers: number;
  /** `WORKER_CONCURRENCY` of each worker. @defaultValue 50 */
  workerConcurrency: number;
  /** How long the fake provider takes to answer, in ms. @defaultValue 5 */
  providerLatency: number;
  /** Duration of the workflow's wait step. @defaultValue "2 seconds" */
  wait: string;
  /** Accounts the executions are spread over, round robin (each with its own workflow). @defaultValue 1 */
  accounts: number;
  /** Concurrent HTTP clients sending triggers. @defaultValue 32 */
  clients: number;
  /** Seconds each floor measurement runs. @defaultValue 5 (2 with `quick`) */
  floorSeconds: number;
  /** `LOG_LEVEL` of the engine processes (their output goes to files). @defaultValue "info" */
  logLevel: string;
  /** Extra node flags for the worker processes, e.g. `--cpu-prof`. */
  workerNodeArgs: string[];
  apiNodeArgs: string[];
  /** Executions enrolled per `POST /workflows/{id}/enrollments` request (0: one trigger each). @defaultValue 0 */
  bulk: number;
  /** Stops triggering and waiting after this many seconds of load (0: no limit); unfinished executions count as errors. @defaultValue 0 */
  timeLimit: number;
  /** Keeps the log directory. */
  keep: boolean;
  /** Also prints the {@link BenchResult} as one JSON line after the table. */
  json: boolean;
  /** CI size: 300 executions and 2-second floors unless given otherwise. */
  quick: boolean;
}

/** Three percentiles, in ms. */
export interface Percentiles {
  p50: number | null;
  p95: number | null;
  p99: number | null;
}

/** Everything one run measured (the `--json` output). */
export interface BenchResult {
  options: Omit<BenchOptions, 'json' | 'keep'>;
  /** The commit measured, and source files changed from it at the start of the run. */
  source: { commit: string; changed: string[] };
  /** 1-minute load average at the start and at the end of the run (others may share the machine). */
  machine: { cpus: number; loadStart: number; loadEnd: number };
  floor: { postgresTxPerSec: number; queueJobsPerSec: number; floorPerSec: number };
  triggers: { requested: number; accepted: number; perSec: number; seconds: number };
  /** `medianPerSec`: the median 5-second bucket of the run, what the engine kept up from ramp-up to the last timers. */
  steps: {
    total: number;
    perSec: number;
    peakPerSec: number;
    medianPerSec: number;
    ofFloor: number;
    jobsStarted: number;
  };
  /** Group commit (src/db/batch.ts): mean requests per statement, and batches that failed and were sent again one by one. */
  batches: { loadsPerStatement: number; commitsPerStatement: number; failed: number };
  executions: {
    completed: number;
    notCompleted: number;
    perSec: number;
    peakRunning: number;
    peakWaiting: number;
    seconds: number;
  };
  latencyMs: {
    triggerToFirstAction: Percentiles;
    providerActionP95: number | null;
    addTagP95: number | null;
    /** From the workers' histograms; `queueP95Beyond` when it lies past the last finite bucket (then `queueP95` is that bound). */
    queueP95: number | null;
    queueP95Beyond: boolean;
    timerLatenessP50: number | null;
    timerLatenessP99: number | null;
    apiTrigger: Percentiles;
    apiGet: Percentiles;
  };
  errors: {
    total: number;
    http: number;
    incomplete: number;
    logErrors: number;
    exits: number;
    duplicateSends: number;
    recovered: number;
  };
  /** Peak RSS during the load, and RSS once started and idle (what the runtime itself takes). */
  memory: {
    workerRssMb: number;
    apiRssMb: number;
    workerIdleRssMb: number;
    apiIdleRssMb: number;
    redisPeakMb: number;
    redisBytesPerInflight: number | null;
    redisBytesPerWaiting: number | null;
  };
  /** Footprint, share of HOT updates of `executions`, and its indexes no query used during the run. */
  postgres: { rowsPerExecution: number; bytesPerExecution: number; hotUpdatePercent: number; unusedIndexes: string[] };
  /**
   * CPU used during the load, per engine step: workers, the Postgres backends, Redis, and the API per
   * trigger; `capacityStepsPerSec` is what `machine.cpus` dedicated cores would sustain if CPU were the only limit.
   */
  cpu: {
    workerMsPerStep: number;
    postgresMsPerStep: number;
    redisMsPerStep: number;
    apiMsPerTrigger: number;
    totalMsPerStep: number;
    capacityStepsPerSec: number;
  };
  seconds: number;
}

// ---------------------------------------------------------------------------------------------------
// Small helpers, shared with scripts/api-bench.ts

/** Resolves after `ms`. */
export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Nearest-rank percentiles of raw samples (ms). */
export function percentiles(samples: number[]): Percentiles {
  if (samples.length === 0) return { p50: null, p95: null, p99: null };
  const sorted = Float64Array.from(samples).sort();
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
  return { p50: at(0.5), p95: at(0.95), p99: at(0.99) };
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });

/** One JSON request to 127.0.0.1:`port` over a keep-alive connection; never throws (status 0 on network errors). */
export function requestJson(
  port: number,
  method: string,
  route: string,
  apiKey?: string,
  body?: unknown,
): Promise<{ status: number; body: any }> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const headers: Record<string, string> = {};
  if (apiKey) headers.authorization = `Bearer ${apiKey}`;
  if (payload)
    Object.assign(headers, {
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(payload)),
    });
  return new Promise((resolve) => {
    const request = http.request({ host: '127.0.0.1', port, method, path: route, headers, agent }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        let parsed: unknown = text;
        try {
          parsed = JSON.parse(text);
        } catch {
          // metrics and other plain-text answers
        }
        resolve({ status: response.statusCode ?? 0, body: parsed });
      });
      response.on('error', () => resolve({ status: 0, body: null }));
    });
    request.on('error', () => resolve({ status: 0, body: null }));
    request.end(payload);
  });
}

/** Environment for engine processes: ours, without inherited engine or tracing settings. */
export function engineEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const key of Object.keys(env))
    if (
      key.startsWith('OTEL_') ||
      ['PORT', 'METRICS_PORT', 'EMAIL_HTTP_URL', 'SMS_HTTP_URL', 'QUEUE_PREFIX'].includes(key)
    )
      delete env[key];
  // A benchmark measures the engine, not the per-key request limit.
  return { ...env, API_RATE_LIMIT: '0', ...extra };
}

/** The error lines in the log files of `processes`, read line by line (a million executions log more than a string holds). */
export async function errorLines(processes: BenchProcess[]): Promise<number> {
  let errors = 0;
  for (const { logFile } of processes)
    for await (const line of createInterface({ input: createReadStream(logFile), crlfDelay: Number.POSITIVE_INFINITY }))
      if (line.includes('"level":"error"')) errors += 1;
  return errors;
}

/** A flowmachine process started by a benchmark; its output goes to `logFile`. */
export interface BenchProcess {
  name: string;
  child: ChildProcess;
  /** The API port, or the worker's METRICS_PORT. */
  port: number;
  logFile: string;
  exited: Promise<number | null>;
  /** SIGTERM, then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<number | null>;
}

/**
 * Starts `flowmachine api|worker` with the node flags of `npm start` (and `nodeArgs`), `/health` on a free
 * port, and resolves once it answers 200.
 */
export async function startEngineProcess(
  role: 'api' | 'worker',
  name: string,
  env: NodeJS.ProcessEnv,
  logDir: string,
  nodeArgs: string[] = [],
): Promise<BenchProcess> {
  const port = await freePort();
  const logFile = path.join(logDir, `${name}.log`);
  const fd = openSync(logFile, 'a');
  const child = spawn(process.execPath, [...ENGINE_NODE_ARGS, ...nodeArgs, BIN, role], {
    env: { ...env, [role === 'api' ? 'PORT' : 'METRICS_PORT']: String(port) },
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code, signal) => resolve((exitCode = code ?? (signal ? -1 : null)))),
  );
  for (const deadline = Date.now() + 90_000; ; ) {
    if (exitCode !== undefined) throw new Error(`${name} exited with ${exitCode} before it was ready; see ${logFile}`);
    if ((await requestJson(port, 'GET', '/health')).status === 200) break;
    if (Date.now() > deadline) throw new Error(`${name} was not ready within 90 s; see ${logFile}`);
    await sleep(100);
  }
  const stop = async (graceMs = 20_000) => {
    if (exitCode !== undefined) return exitCode;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    const code = await exited;
    clearTimeout(timer);
    return code;
  };
  return { name, child, port, logFile, exited, stop };
}

/** Resident memory of a process in MB (0 once it is gone). */
export function rssMb(pid: number | undefined): number {
  try {
    const kb = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return kb ? Number(kb[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/** CPU seconds (user + system) a process has used, from /proc; null once it is gone. */
export function cpuSeconds(pid: number | undefined): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return null;
  }
}

/**
 * CPU used by the Postgres backends (and autovacuum workers) of one database, from /proc: `sample()` it
 * now and then; a backend that exits loses at most what it used since the last sample.
 */
export class PostgresCpu {
  private readonly seen = new Map<number, { first: number; last: number }>();

  constructor(private readonly client: pg.ClientBase | pg.Pool) {}

  /** Reads every backend's CPU; `baseline` marks what they used so far as not counted. */
  async sample(baseline = false): Promise<void> {
    const { rows } = await this.client.query<{ pid: number }>(
      'SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()',
    );
    for (const { pid } of rows) {
      const cpu = cpuSeconds(pid);
      if (cpu === null) continue;
      const entry = this.seen.get(pid);
      if (entry) entry.last = cpu;
      else this.seen.set(pid, { first: baseline ? cpu : 0, last: cpu });
    }
  }

  /** CPU seconds used since the baseline. */
  get seconds(): number {
    return [...this.seen.values()].reduce((sum, { first, last }) => sum + last - first, 0);
  }
}

/** Runs registered clean-up steps once, last registered first, whatever fails. */
export class Cleanup {
  private readonly steps: (() => Promise<unknown> | unknown)[] = [];
  private done: Promise<void> | null = null;

  add(step: () => Promise<unknown> | unknown): void {
    this.steps.push(step);
  }

  run(): Promise<void> {
    this.done ??= (async () => {
      for (const step of this.steps.reverse())
        await Promise.resolve()
          .then(step)
          .catch((error: Error) => console.error(`clean-up: ${error.message}`));
    })();
    return this.done;
  }
}

/** Drops benchmark databases of runs that were killed more than six hours ago (others may be running now). */
async function dropAbandonedDatabases(): Promise<void> {
  const client = new pg.Client({ connectionString: ADMIN_URL });
  await client.connect();
  const { rows } = await client
    .query<{ datname: string }>(`SELECT datname FROM pg_database WHERE datname ~ '^fm_bench_[0-9]+'`)
    .finally(() => client.end());
  for (const { datname } of rows) {
    if (Number(/^fm_bench_(\d+)/.exec(datname)![1]) < Date.now() - 6 * 3_600_000)
      await adminQuery(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`);
  }
}

/** Creates and migrates a fresh database `fm_bench_<timestamp>[suffix]`; dropped by `cleanup`. */
export async function createBenchDatabase(cleanup: Cleanup, suffix = ''): Promise<{ name: string; url: string }> {
  await dropAbandonedDatabases();
  const name = `fm_bench_${Date.now()}${suffix}`;
  await adminQuery(`CREATE DATABASE "${name}"`);
  cleanup.add(() => adminQuery(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
  const url = databaseUrl(name);
  await migrate(url);
  return { name, url };
}

/** Inserts `count` opted-in contacts of `accountId` in one statement per 10,000; returns their ids in order. */
export async function insertContacts(
  client: pg.ClientBase | pg.Pool,
  accountId: string,
  count: number,
): Promise<string[]> {
  const ids: string[] = [];
  for (let from = 1; from <= count; from += 10_000) {
    const to = Math.min(count, from + 9_999);
    const { rows } = await client.query<{ id: string }>(
      `INSERT INTO contacts (id, account_id, email, phone, opted_in, attributes, tags, updated_at)
       SELECT gen_random_uuid(), $1, 'bench' || i || '@example.com', '+1555' || lpad(i::text, 7, '0'), true,
              jsonb_build_object('first_name', 'Bench' || i, 'plan', 'pro'), '{}', now()
       FROM generate_series($2::int, $3::int) AS i ORDER BY i RETURNING id`,
      [accountId, from, to],
    );
    ids.push(...rows.map((row) => row.id));
  }
  return ids;
}

// ---------------------------------------------------------------------------------------------------
// Prometheus text

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const labels = Object.fromEntries(
      [...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1]!, m[2]!]),
    );
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

/**
 * The `q` quantile (seconds) of histogram `name` summed over several processes' scrapes, interpolated
 * within buckets as Prometheus' `histogram_quantile` does; `Infinity` when it lies in the `+Inf` bucket,
 * `null` without observations.
 */
export function histogramQuantile(
  q: number,
  scrapes: string[],
  name: string,
  filter: (labels: Record<string, string>) => boolean = () => true,
): number | null {
  const buckets = new Map<number, number>();
  for (const text of scrapes) {
    for (const sample of parseMetrics(text)) {
      if (sample.name !== `${name}_bucket` || !filter(sample.labels)) continue;
      const le = sample.labels.le === '+Inf' ? Infinity : Number(sample.labels.le);
      buckets.set(le, (buckets.get(le) ?? 0) + sample.value);
    }
  }
  const sorted = [...buckets.entries()].sort((a, b) => a[0] - b[0]);
  const total = sorted.at(-1)?.[1] ?? 0;
  if (total === 0) return null;
  let lower = 0;
  let below = 0;
  for (const [le, cumulative] of sorted) {
    if (cumulative >= q * total) {
      if (le === Infinity) return Infinity;
      return lower + ((le - lower) * (q * total - below)) / Math.max(1, cumulative - below);
    }
    lower = le;
    below = cumulative;
  }
  return lower;
}

const sumOf = (scrapes: string[], name: string, kind?: string) =>
  scrapes
    .flatMap(parseMetrics)
    .filter((s) => s.name === name && (kind === undefined || s.labels.kind === kind))
    .reduce((sum, s) => sum + s.value, 0);
const perBatch = (scrapes: string[], kind: string) =>
  sumOf(scrapes, 'flowmachine_db_batch_size_sum', kind) /
  Math.max(1, sumOf(scrapes, 'flowmachine_db_batch_size_count', kind));

// ---------------------------------------------------------------------------------------------------
// Child roles: the fake provider and the BullMQ floor worker run in their own processes

/** Forks this script in a role; resolves with the child once it sent its first message. */
export async function forkRole(args: string[]): Promise<{ child: ChildProcess; first: any }> {
  const child = fork(SELF, ['--role', ...args], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const first = await new Promise((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code) => reject(new Error(`bench role ${args[0]} exited with ${code}`)));
  });
  return { child, first };
}

/** Sends a message to a role child and resolves with its answer. */
export const ask = (child: ChildProcess, message: string) =>
  new Promise<any>((resolve) => {
    child.once('message', resolve);
    child.send(message);
  });

/** Asks a role child to stop and waits for it to exit (killing it after 5 s). */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.send('stop');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

/** The fake provider (test/helpers/fake-provider.ts) in its own process, counting requests and distinct idempotency keys. */
async function serveProvider(latencyMs: number): Promise<void> {
  const provider = await startFakeProvider();
  provider.setLatency(latencyMs);
  const keys = new Set<string>();
  let requests = 0;
  const drain = () => {
    for (const request of provider.received.splice(0)) {
      requests += 1;
      if (request.idempotencyKey) keys.add(request.idempotencyKey);
    }
  };
  setInterval(drain, 200);
  process.on('message', (message) => {
    drain();
    if (message === 'stats') process.send!({ requests, distinctKeys: keys.size });
    if (message === 'stop') void provider.close().then(() => process.exit(0));
  });
  process.send!({ url: provider.url });
}

const FLOOR_QUEUE = 'floor';
const FLOOR_PREFIX = 'floor';
const floorJobOptions = (jobId: string) => ({
  jobId,
  removeOnComplete: true,
  removeOnFail: true,
  attempts: 5,
  backoff: { type: 'exponential', delay: 500 },
});

/** A no-op BullMQ worker whose processor adds the next job of its chain, as an engine step does. */
async function serveQueueFloor(redisUrl: string, concurrency: number): Promise<void> {
  const queue = new Queue(FLOOR_QUEUE, {
    connection: new Redis(redisUrl, { maxRetriesPerRequest: null }),
    prefix: FLOOR_PREFIX,
  });
  let sequence = 0;
  let completed = 0;
  let counting = false;
  const worker = new Worker(
    FLOOR_QUEUE,
    async (job) => {
      await queue.add(
        'step',
        { executionId: job.data.executionId, version: job.data.version + 1 },
        floorJobOptions(`${process.pid}.${(sequence += 1)}`),
      );
    },
    { connection: new Redis(redisUrl, { maxRetriesPerRequest: null }), prefix: FLOOR_PREFIX, concurrency },
  );
  worker.on('completed', () => (completed += counting ? 1 : 0));
  await worker.waitUntilReady();
  process.on('message', (message) => {
    if (message === 'start') counting = true;
    if (message === 'stop') {
      counting = false;
      process.send!({ completed });
      void worker.close(true).then(() => process.exit(0));
    }
  });
  process.send!({ ready: true });
}

// ---------------------------------------------------------------------------------------------------
// Hardware floor

/** Step-shaped transactions per second: UPDATE executions (version check) + INSERT 2 execution_logs + COMMIT, with pgbench. */
async function measurePostgresFloor(db: { name: string; url: string }, tmp: string, seconds: number): Promise<number> {
  const account = '00000000-0000-4000-8000-00000000f100';
  const workflow = '00000000-0000-4000-8000-00000000f200';
  const version = '00000000-0000-4000-8000-00000000f300';
  const snapshot = '{"value":"welcome","context":{"steps":0,"failedStep":null,"reason":null}}';
  await withClient(db.url, async (client) => {
    await client.query(`INSERT INTO accounts (id, name, admin_email) VALUES ($1, 'floor', 'floor@example.com')`, [
      account,
    ]);
    await client.query(`INSERT INTO workflows (id, account_id, name, status) VALUES ($1, $2, 'floor', 'active')`, [
      workflow,
      account,
    ]);
    await client.query(
      `INSERT INTO workflow_versions (id, workflow_id, version, definition) VALUES ($1, $2, 1, '{}')`,
      [version, workflow],
    );
    await client.query(
      `INSERT INTO contacts (id, account_id, email) SELECT md5('floor-contact' || n)::uuid, $1, 'floor' || n || '@example.com' FROM generate_series(1, ${FLOOR_ROWS}) n`,
      [account],
    );
    await client.query(
      `INSERT INTO executions (id, account_id, workflow_id, workflow_version_id, contact_id, status, snapshot, total_steps)
       SELECT md5('floor' || n)::uuid, $1, $2, $3, md5('floor-contact' || n)::uuid, 'ACTIVE', $4, 5 FROM generate_series(1, ${FLOOR_ROWS}) n`,
      [account, workflow, version, snapshot],
    );
    await client.query('VACUUM ANALYZE executions');
  });
  // JSON goes in through -D variables: pgbench reads ":name" inside literals as a variable.
  const id = `CAST(md5('floor' || :n) AS uuid)`;
  const log = (event: string, status: string, duration: string, details: string) =>
    `(${id}, CAST(:account AS uuid), CAST(:workflow AS uuid), CAST(md5('floor-contact' || :n) AS uuid), '${event}', 1, 'welcome', '${status}', now(), ${duration}, CAST(:${details} AS jsonb))`;
  const script = path.join(tmp, 'step-tx.sql');
  writeFileSync(
    script,
    [
      `\\set n random(1, ${FLOOR_ROWS})`,
      'BEGIN;',
      `UPDATE executions SET status = 'ACTIVE', snapshot = CAST(:snapshot AS jsonb), version = version + 1, current_step_index = 2, total_steps = 5, next_run_at = NULL, completion_reason = NULL, waiting = false, updated_at = now() WHERE id = ${id} AND version >= 0;`,
      `INSERT INTO execution_logs (execution_id, account_id, workflow_id, contact_id, event_type, step_index, step_id, status, timestamp, duration_ms, details) VALUES ${log('action_started', 'STARTED', 'NULL', 'started')}, ${log('action_completed', 'SUCCESS', '5', 'completed')};`,
      'COMMIT;',
      '',
    ].join('\n'),
  );
  const variables = {
    account,
    workflow,
    snapshot: snapshot.replace('"steps":0', '"steps":1').replace('welcome', 'tag'),
    started:
      '{"action_type":"send_email","attempt":1,"action_config":{"to":"b***@example.com","subject":"Hi Bench1","body":"Welcome aboard, Bench1!"}}',
    completed: '{"action_type":"send_email"}',
  };
  const admin = new URL(ADMIN_URL);
  const { stdout } = await promisify(execFile)(
    'pgbench',
    [
      '-h',
      admin.hostname,
      '-p',
      admin.port || '5432',
      '-U',
      decodeURIComponent(admin.username || 'postgres'),
      '-n',
      '-M',
      'prepared',
      '-c',
      String(FLOOR_CLIENTS),
      '-j',
      '2',
      '-T',
      String(seconds),
      ...Object.entries(variables).flatMap(([name, value]) => ['-D', `${name}=${value}`]),
      '-f',
      script,
      db.name,
    ],
    { env: { ...process.env, PGPASSWORD: decodeURIComponent(admin.password) } },
  );
  const tps = /tps = ([\d.]+)/.exec(stdout);
  if (!tps) throw new Error(`pgbench printed no tps:\n${stdout}`);
  return Number(tps[1]);
}

/** BullMQ no-op job round trips per second (add → a worker processes it → completed), workers × concurrency like the engine's. */
async function measureQueueFloor(redisUrl: string, options: BenchOptions): Promise<number> {
  const children = await Promise.all(
    Array.from({ length: options.workers }, () =>
      forkRole(['bullmq-floor', '--redis', redisUrl, '--worker-concurrency', String(options.workerConcurrency)]),
    ),
  );
  const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const queue = new Queue(FLOOR_QUEUE, { connection, prefix: FLOOR_PREFIX });
  try {
    const chains = 2 * options.workers * options.workerConcurrency;
    await queue.addBulk(
      Array.from({ length: chains }, (_, i) => ({
        name: 'step',
        data: { executionId: crypto.randomUUID(), version: 0 },
        opts: floorJobOptions(`seed.${i}`),
      })),
    );
    await sleep(1_000);
    const started = performance.now();
    for (const { child } of children) child.send('start');
    await sleep(options.floorSeconds * 1_000);
    const counts = await Promise.all(children.map(({ child }) => ask(child, 'stop')));
    const seconds = (performance.now() - started) / 1000;
    return counts.reduce((sum, c: { completed: number }) => sum + c.completed, 0) / seconds;
  } finally {
    await Promise.all(
      children.map(
        ({ child }) =>
          new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.once('exit', resolve))),
      ),
    );
    await queue.close();
    connection.disconnect();
  }
}

// ---------------------------------------------------------------------------------------------------
// The run

/** The benchmark workflow: send_email → add_tag → condition(has_tag) → wait → send_sms. */
export const benchDefinition = (wait: string) => ({
  steps: [
    {
      id: 'welcome',
      type: 'send_email',
      config: { subject: 'Hi {{first_name}}', body: 'Welcome aboard, {{first_name}}!' },
    },
    { id: 'tag', type: 'add_tag', config: { tag: 'welcomed' } },
    {
      id: 'welcomed',
      type: 'condition',
      config: { has_tag: 'welcomed' },
      branches: {
        true: [
          { id: 'pause', type: 'wait', config: { duration: wait } },
          { id: 'follow_up', type: 'send_sms', config: { body: 'Still there, {{first_name}}?' } },
        ],
        false: [],
      },
    },
  ],
});

interface Probe {
  statuses: Record<string, number>;
  usedMemory: number;
  inflightJobs: number;
  delayedJobs: number;
}

/**
 * Least-squares fit of Redis memory (above the idle baseline, minus BullMQ's capped event stream)
 * against the jobs in it: bytes per in-flight job (waiting or active) and per delayed job (a waiting execution).
 */
function fitRedisMemory(probes: Probe[]): { perInflight: number | null; perWaiting: number | null } {
  let ii = 0,
    id = 0,
    dd = 0,
    ui = 0,
    ud = 0;
  for (const { usedMemory: u, inflightJobs: i, delayedJobs: d } of probes) {
    ii += i * i;
    id += i * d;
    dd += d * d;
    ui += u * i;
    ud += u * d;
  }
  const det = ii * dd - id * id;
  if (ii > 0 && dd > 0 && det > 0.05 * ii * dd)
    return { perInflight: (ui * dd - ud * id) / det, perWaiting: (ud * ii - ui * id) / det };
  // Collinear samples: attribute everything to the kind of job that dominates.
  if (dd === 0 || ii > dd) return { perInflight: ii > 0 ? ui / ii : null, perWaiting: dd > 0 ? ud / dd : null };
  return { perInflight: null, perWaiting: ud / dd };
}

/** What a run starts: database, Redis, provider, the API and workers, and the accounts with their workflows. */
interface System {
  /** The bench's own connection (a pool of one, so a terminated backend is simply replaced). */
  admin: pg.Pool;
  monitor: Redis;
  provider: ChildProcess;
  api: BenchProcess;
  workers: BenchProcess[];
  tenants: { apiKey: string; contacts: string[]; workflowId: string }[];
  /** Processes that exited before the run stopped them. */
  exits: () => number;
  /** Marks the processes as being stopped on purpose. */
  stopping: () => void;
}

async function startSystem(
  options: BenchOptions,
  db: { url: string },
  redisUrl: string,
  tmp: string,
  cleanup: Cleanup,
  progress: (line: string) => void,
): Promise<System> {
  const admin = new pg.Pool({ connectionString: db.url, max: 1 });
  admin.on('error', (error) => progress(`bench connection lost (${error.message}); reconnecting`));
  cleanup.add(() => admin.end());
  const monitor = new Redis(redisUrl, { maxRetriesPerRequest: null });
  cleanup.add(() => monitor.disconnect());
  await monitor.flushall();

  const provider = await forkRole(['provider', '--provider-latency', String(options.providerLatency)]);
  cleanup.add(() => stopChild(provider.child));
  const providerUrl = (provider.first as { url: string }).url;

  // Accounts with a limit above the run's size (the bench is about throughput), and their contacts.
  const prisma = createDb(db.url, { max: 1 });
  const tenants: System['tenants'] = [];
  try {
    for (let a = 0; a < options.accounts; a += 1) {
      const account = await createAccount(prisma, { name: `Bench ${a + 1}`, adminEmail: 'bench@example.com' });
      await admin.query('UPDATE accounts SET concurrent_executions_per_account = $2 WHERE id = $1', [
        account.account_id,
        options.executions + 1_000,
      ]);
      tenants.push({
        apiKey: account.api_key,
        contacts: await insertContacts(admin, account.account_id, Math.ceil(options.executions / options.accounts)),
        workflowId: '',
      });
    }
  } finally {
    await prisma.$disconnect();
  }

  const env = engineEnv({
    DATABASE_URL: db.url,
    REDIS_URL: redisUrl,
    QUEUE_PREFIX: 'fm',
    EMAIL_HTTP_URL: `${providerUrl}/email`,
    SMS_HTTP_URL: `${providerUrl}/sms`,
    LOG_LEVEL: options.logLevel,
    WORKER_CONCURRENCY: String(options.workerConcurrency),
  });
  progress(`starting the API and ${options.workers} workers…`);
  const processes = await Promise.all([
    startEngineProcess('api', 'api', env, tmp, options.apiNodeArgs),
    ...Array.from({ length: options.workers }, (_, i) =>
      startEngineProcess('worker', `worker-${i + 1}`, env, tmp, options.workerNodeArgs),
    ),
  ]);
  cleanup.add(() => Promise.all(processes.map((p) => p.stop())));
  let exits = 0;
  let stopping = false;
  for (const p of processes) {
    void p.exited.then(() => {
      if (stopping) return;
      exits += 1;
      progress(`${p.name} exited unexpectedly; see ${p.logFile}`);
    });
  }
  const [api, ...workers] = processes as [BenchProcess, ...BenchProcess[]];

  for (const tenant of tenants) {
    const created = await requestJson(api.port, 'POST', '/api/v1/workflows', tenant.apiKey, {
      name: 'Bench',
      status: 'active',
      definition: benchDefinition(options.wait),
    });
    if (created.status !== 201)
      throw new Error(`creating the workflow failed: ${created.status} ${JSON.stringify(created.body)}`);
    tenant.workflowId = created.body.id;
  }
  return {
    admin,
    monitor,
    provider: provider.child,
    api,
    workers,
    tenants,
    exits: () => exits,
    stopping: () => (stopping = true),
  };
}

/** What the load phase observed from outside the engine. */
interface Observed {
  accepted: { id: string; apiKey: string }[];
  triggerMs: number[];
  getMs: number[];
  httpErrors: number;
  triggerSeconds: number;
  probes: Probe[];
  rss: Map<string, number>;
  idleRss: Map<string, number>;
  redisPeak: number;
  cpuUsed: { workers: number; api: number; redis: number; postgres: number };
  scrapes: string[];
}

/**
 * Triggers the executions (paced at `rate`, or as fast as `clients` allow) while 4 readers GET random
 * executions at {@link GET_RATE}/s and a sampler records statuses, Redis memory and jobs, RSS and CPU
 * each second; returns once every accepted execution finished (or the time limit or a long stall).
 */
async function driveLoad(system: System, options: BenchOptions, progress: (line: string) => void): Promise<Observed> {
  const { admin, monitor, api, workers, tenants } = system;
  const stepQueue = new Queue('steps', { connection: monitor, prefix: 'fm' });
  const readRedis = async () => {
    const [info, stream, counts] = await Promise.all([
      monitor.info('memory'),
      monitor.call('MEMORY', 'USAGE', 'fm:steps:events').catch(() => 0),
      stepQueue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'paused'),
    ]);
    const used = Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0);
    // BullMQ's event stream is capped (about 10,000 entries): memory that does not grow with jobs.
    return {
      used,
      jobs: used - Number(stream ?? 0),
      inflight: (counts.waiting ?? 0) + (counts.active ?? 0) + (counts.prioritized ?? 0) + (counts.paused ?? 0),
      delayed: counts.delayed ?? 0,
    };
  };
  const redisCpu = async () => {
    const info = await monitor.info('cpu');
    return Number(/used_cpu_sys:([\d.]+)/.exec(info)?.[1] ?? 0) + Number(/used_cpu_user:([\d.]+)/.exec(info)?.[1] ?? 0);
  };
  const processCpu = (list: BenchProcess[]) => list.reduce((sum, p) => sum + (cpuSeconds(p.child.pid) ?? 0), 0);
  await sleep(500);
  const baseline = await readRedis();
  const postgresCpu = new PostgresCpu(admin);
  await postgresCpu.sample(true);
  const cpuBefore = { workers: processCpu(workers), api: processCpu([api]), redis: await redisCpu() };

  const probes: Probe[] = [];
  const idleRss = new Map([api, ...workers].map((p) => [p.name, rssMb(p.child.pid)]));
  const rss = new Map<string, number>();
  let redisPeak = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const [{ rows }, redis] = await Promise.all([
        admin.query<{ status: string; n: number }>('SELECT status, count(*)::int AS n FROM executions GROUP BY status'),
        readRedis(),
      ]);
      redisPeak = Math.max(redisPeak, redis.used);
      probes.push({
        statuses: Object.fromEntries(rows.map((row) => [row.status, row.n])),
        usedMemory: redis.jobs - baseline.jobs,
        inflightJobs: redis.inflight,
        delayedJobs: redis.delayed,
      });
      for (const p of [api, ...workers]) rss.set(p.name, Math.max(rss.get(p.name) ?? 0, rssMb(p.child.pid)));
      await postgresCpu.sample();
      await sleep(1_000);
    }
  })();

  progress(`triggering ${options.executions} executions at ${options.rate || 'max'}/s…`);
  const accepted: Observed['accepted'] = [];
  const triggerMs: number[] = [];
  const getMs: number[] = [];
  let httpErrors = 0;
  let next = 0;
  let running = true;
  const t0 = performance.now();
  const timeUp = () => options.timeLimit > 0 && performance.now() - t0 > options.timeLimit * 1000;
  let lastAnswer = t0;
  // One unit of work is one trigger, or with --bulk one enrollment request per tenant for `bulk` executions.
  const unit = Math.max(1, options.bulk);
  const client = async () => {
    for (let b = next++; b * unit < options.executions && running && !timeUp() && system.exits() === 0; b = next++) {
      const first = b * unit;
      const wait = options.rate > 0 ? t0 + (first * 1000) / options.rate - performance.now() : 0;
      if (wait > 0) await sleep(wait);
      const byTenant = new Map<number, string[]>();
      for (let i = first; i < Math.min(first + unit, options.executions); i += 1) {
        byTenant.set(i % tenants.length, [
          ...(byTenant.get(i % tenants.length) ?? []),
          tenants[i % tenants.length]!.contacts[Math.floor(i / tenants.length)]!,
        ]);
      }
      for (const [index, contactIds] of byTenant) {
        const tenant = tenants[index]!;
        const sent = performance.now();
        const response =
          options.bulk > 0
            ? await requestJson(api.port, 'POST', `/api/v1/workflows/${tenant.workflowId}/enrollments`, tenant.apiKey, {
                contact_ids: contactIds,
              })
            : await requestJson(api.port, 'POST', `/api/v1/workflows/${tenant.workflowId}/trigger`, tenant.apiKey, {
                contact_id: contactIds[0],
              });
        lastAnswer = performance.now();
        triggerMs.push(lastAnswer - sent);
        if (response.status === 202) accepted.push({ id: response.body.execution_id, apiKey: tenant.apiKey });
        else if (response.status === 200 && options.bulk > 0) {
          for (const result of response.body.results as { outcome: string; execution_id: string }[]) {
            if (result.outcome === 'started') accepted.push({ id: result.execution_id, apiKey: tenant.apiKey });
            else if (httpErrors++ < 5) progress(`enrollment outcome ${result.outcome}`);
          }
        } else if (httpErrors++ < 5) progress(`trigger answered ${response.status}: ${JSON.stringify(response.body)}`);
      }
    }
  };
  const reader = async () => {
    while (running) {
      const target = accepted[Math.floor(Math.random() * accepted.length)];
      if (target) {
        const sent = performance.now();
        const response = await requestJson(api.port, 'GET', `/api/v1/executions/${target.id}`, target.apiKey);
        getMs.push(performance.now() - sent);
        if (response.status !== 200 && httpErrors++ < 5) progress(`GET execution answered ${response.status}`);
      }
      await sleep((4 * 1000) / GET_RATE);
    }
  };
  const readers = Array.from({ length: 4 }, reader);
  let triggered = false;
  const triggering = Promise.all(
    Array.from({ length: Math.min(options.clients, Math.ceil(options.executions / unit)) }, client),
  ).then(() => (triggered = true));

  // Until every execution was triggered and finished; giving up after a long time without any change.
  const stallMs = 120_000 + durationMs(options.wait);
  let [lastKey, lastChange, lastReport] = ['', performance.now(), 0];
  for (;;) {
    await sleep(500);
    const probe = probes.at(-1);
    if (!probe) continue;
    const s = probe.statuses;
    const key = JSON.stringify(s);
    if (key !== lastKey) [lastKey, lastChange] = [key, performance.now()];
    if (performance.now() - lastReport > 5_000) {
      lastReport = performance.now();
      progress(
        `${Math.round((lastReport - t0) / 1000)} s: ${accepted.length} triggered, ${key}; redis jobs ${probe.inflightJobs} + ${probe.delayedJobs} delayed`,
      );
    }
    if (triggered && (s.COMPLETED ?? 0) + (s.FAILED ?? 0) + (s.CANCELLED ?? 0) >= accepted.length) break;
    if (timeUp()) {
      progress(`time limit of ${options.timeLimit} s reached; reporting what finished`);
      break;
    }
    if (system.exits() > 0) {
      progress('an engine process died; stopping the run');
      break;
    }
    if (performance.now() - lastChange > stallMs) {
      progress('no progress for a long time; giving up');
      break;
    }
  }
  running = false;
  sampling = false;
  await Promise.all([triggering, sampler, ...readers]);
  const triggerSeconds = (lastAnswer - t0) / 1000;
  await postgresCpu.sample();
  const cpuUsed = {
    workers: processCpu(workers) - cpuBefore.workers,
    api: processCpu([api]) - cpuBefore.api,
    redis: (await redisCpu()) - cpuBefore.redis,
    postgres: postgresCpu.seconds,
  };
  const scrapes = await Promise.all(
    workers.map(async (w) => String((await requestJson(w.port, 'GET', '/metrics')).body)),
  );
  return { accepted, triggerMs, getMs, httpErrors, triggerSeconds, probes, rss, idleRss, redisPeak, cpuUsed, scrapes };
}

/** Reads what the engine recorded (execution logs, sizes, statistics) and assembles the result. */
async function collectResult(
  system: System,
  observed: Observed,
  context: Pick<BenchResult, 'options' | 'source' | 'floor'> & {
    loadStart: number;
    began: number;
    statsBefore: TableStats;
  },
): Promise<BenchResult> {
  const { admin, api, workers } = system;
  const { accepted, probes, scrapes, rss } = observed;
  const { loadStart, began, statsBefore: before, ...shown } = context;
  const one = async <T>(sql: string): Promise<T> => (await admin.query(sql)).rows[0] as T;
  const firstAction = await one<{ p: number[] | null }>(`
    WITH firsts AS (
      SELECT min(timestamp) FILTER (WHERE event_type = 'execution_started') AS started,
             min(timestamp) FILTER (WHERE event_type = 'action_started') AS acted
      FROM execution_logs GROUP BY execution_id)
    SELECT percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY extract(epoch FROM acted - started) * 1000) AS p
    FROM firsts WHERE acted IS NOT NULL AND started IS NOT NULL`);
  const steps = await one<{ n: number; span: number | null; peak: number | null; median: number | null }>(`
    WITH buckets AS (SELECT count(*)::int AS c FROM execution_logs WHERE event_type IN ${STEP_EVENTS} GROUP BY floor(extract(epoch FROM timestamp) / 5))
    SELECT count(*)::int AS n, extract(epoch FROM max(timestamp) - min(timestamp))::float AS span,
           (SELECT max(c) FROM buckets) AS peak, (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY c) FROM buckets) AS median
    FROM execution_logs WHERE event_type IN ${STEP_EVENTS}`);
  const actions = await one<{ provider: number | null; tag: number | null }>(`
    SELECT percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) FILTER (WHERE details->>'action_type' IN ('send_email', 'send_sms')) AS provider,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) FILTER (WHERE details->>'action_type' = 'add_tag') AS tag
    FROM execution_logs WHERE event_type = 'action_completed'`);
  const timers = await one<{ p: number[] | null }>(`
    SELECT percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP (ORDER BY (details->>'lateness_ms')::float) AS p
    FROM execution_logs WHERE event_type = 'wait_completed'`);
  const executions = await one<{ completed: number; span: number | null; recovered: number }>(`
    SELECT count(*) FILTER (WHERE status = 'COMPLETED')::int AS completed, extract(epoch FROM max(finished_at) - min(created_at))::float AS span,
           (SELECT count(*)::int FROM execution_logs WHERE event_type = 'recovered') AS recovered
    FROM executions`);
  const size = await one<{ executions: number; logs: number; bytes: string }>(`
    SELECT (SELECT count(*)::int FROM executions) AS executions, (SELECT count(*)::int FROM execution_logs) AS logs,
           pg_total_relation_size('executions') + (SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree('execution_logs')) AS bytes`); // every monthly partition
  const stats = await readTableStats(admin);
  const providerStats = (await ask(system.provider, 'stats')) as { requests: number; distinctKeys: number };
  const logErrors = await errorLines([api, ...workers]);

  const perSec = (n: number, seconds: number | null) => (seconds && seconds > 0 ? n / seconds : 0);
  const incomplete = context.options.executions - executions.completed;
  const duplicateSends = Math.max(0, providerStats.requests - providerStats.distinctKeys);
  const stepsPerSec = perSec(steps.n, steps.span);
  const redisFit = fitRedisMemory(probes);
  const queueP95 = histogramQuantile(0.95, scrapes, 'flowmachine_queue_latency_seconds');
  const lastBound = Math.max(
    ...scrapes
      .flatMap(parseMetrics)
      .filter((m) => m.name === 'flowmachine_queue_latency_seconds_bucket' && m.labels.le !== '+Inf')
      .map((m) => Number(m.labels.le)),
  );
  return {
    ...shown,
    machine: { cpus: os.cpus().length, loadStart, loadEnd: os.loadavg()[0]! },
    triggers: {
      requested: context.options.executions,
      accepted: accepted.length,
      perSec: perSec(accepted.length, observed.triggerSeconds),
      seconds: observed.triggerSeconds,
    },
    steps: {
      total: steps.n,
      perSec: stepsPerSec,
      peakPerSec: (steps.peak ?? 0) / 5,
      medianPerSec: (steps.median ?? 0) / 5,
      ofFloor: stepsPerSec / context.floor.floorPerSec,
      jobsStarted: sumOf(scrapes, 'flowmachine_queue_latency_seconds_count'),
    },
    batches: {
      loadsPerStatement: perBatch(scrapes, 'load'),
      commitsPerStatement: perBatch(scrapes, 'commit'),
      failed: sumOf(scrapes, 'flowmachine_db_batch_failures_total'),
    },
    executions: {
      completed: executions.completed,
      notCompleted: incomplete,
      perSec: perSec(executions.completed, executions.span),
      peakRunning: Math.max(
        0,
        ...probes.map((p) => (p.statuses.QUEUED ?? 0) + (p.statuses.ACTIVE ?? 0) + (p.statuses.PAUSED ?? 0)),
      ),
      peakWaiting: Math.max(0, ...probes.map((p) => p.statuses.PAUSED ?? 0)),
      seconds: executions.span ?? 0,
    },
    latencyMs: {
      triggerToFirstAction: {
        p50: firstAction.p?.[0] ?? null,
        p95: firstAction.p?.[1] ?? null,
        p99: firstAction.p?.[2] ?? null,
      },
      providerActionP95: actions.provider,
      addTagP95: actions.tag,
      queueP95: ms(Number.isFinite(queueP95) ? queueP95 : lastBound),
      queueP95Beyond: !Number.isFinite(queueP95 ?? 0),
      timerLatenessP50: timers.p?.[0] ?? null,
      timerLatenessP99: timers.p?.[1] ?? null,
      apiTrigger: percentiles(observed.triggerMs),
      apiGet: percentiles(observed.getMs),
    },
    errors: {
      total: observed.httpErrors + incomplete + logErrors + system.exits() + duplicateSends,
      http: observed.httpErrors,
      incomplete,
      logErrors,
      exits: system.exits(),
      duplicateSends,
      recovered: executions.recovered,
    },
    memory: {
      workerRssMb: Math.max(0, ...workers.map((w) => rss.get(w.name) ?? 0)),
      apiRssMb: rss.get(api.name) ?? 0,
      workerIdleRssMb: Math.max(0, ...workers.map((w) => observed.idleRss.get(w.name) ?? 0)),
      apiIdleRssMb: observed.idleRss.get(api.name) ?? 0,
      redisPeakMb: observed.redisPeak / 2 ** 20,
      redisBytesPerInflight: redisFit.perInflight,
      redisBytesPerWaiting: redisFit.perWaiting,
    },
    postgres: {
      rowsPerExecution: (size.executions + size.logs) / Math.max(1, size.executions),
      bytesPerExecution: Number(size.bytes) / Math.max(1, size.executions),
      hotUpdatePercent: (100 * (stats.hot - before.hot)) / Math.max(1, stats.updates - before.updates),
      unusedIndexes: Object.keys(stats.scans)
        .filter((index) => stats.scans[index] === before.scans[index])
        .sort(),
    },
    cpu: cpuPerStep(observed.cpuUsed, steps.n, accepted.length),
    seconds: (performance.now() - began) / 1000,
  };
}

/**
 * What every bench run stands on: a directory for the processes' logs (kept with `keep`), a fresh
 * migrated database and a private Redis, each stopped by `cleanup`.
 */
export async function benchGround(keep: boolean, cleanup: Cleanup, progress: (line: string) => void) {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'fm-bench-'));
  cleanup.add(() => (keep ? progress(`logs kept in ${tmp}`) : rmSync(tmp, { recursive: true, force: true })));
  const db = await createBenchDatabase(cleanup);
  const redis = await startPrivateRedis();
  cleanup.add(() => redis.stop());
  progress(`database ${db.name}, redis ${redis.url}, logs ${tmp}`);
  return { tmp, db, redis };
}

async function runBench(
  options: BenchOptions,
  cleanup: Cleanup,
  progress: (line: string) => void,
): Promise<BenchResult> {
  const began = performance.now();
  const [source, loadStart] = [sourceState(), os.loadavg()[0]!];
  const { tmp, db, redis } = await benchGround(options.keep, cleanup, progress);

  progress('floor: Postgres step transaction (pgbench)…');
  const postgresTxPerSec = await measurePostgresFloor(db, tmp, options.floorSeconds);
  progress('floor: BullMQ no-op round trip…');
  const queueJobsPerSec = await measureQueueFloor(redis.url, options);
  const statsBefore = await withClient(db.url, async (client) => {
    await client.query('TRUNCATE accounts CASCADE');
    return readTableStats(client);
  });

  const system = await startSystem(options, db, redis.url, tmp, cleanup, progress);
  const observed = await driveLoad(system, options, progress);
  system.stopping();
  await Promise.all([system.api, ...system.workers].map((p) => p.stop()));
  const { json: _json, keep: _keep, ...shown } = options;
  const floor = { postgresTxPerSec, queueJobsPerSec, floorPerSec: Math.min(postgresTxPerSec, queueJobsPerSec) };
  return collectResult(system, observed, { options: shown, source, floor, loadStart, began, statsBefore });
}

interface TableStats {
  updates: number;
  hot: number;
  scans: Record<string, number>;
}

/** Cumulative update counters of `executions` and the scans of each of its indexes. */
async function readTableStats(client: pg.ClientBase | pg.Pool): Promise<TableStats> {
  await client.query('SELECT pg_stat_clear_snapshot()');
  const {
    rows: [table],
  } = await client.query(
    `SELECT n_tup_upd::int AS updates, n_tup_hot_upd::int AS hot FROM pg_stat_user_tables WHERE relname = 'executions'`,
  );
  const { rows } = await client.query<{ name: string; scans: number }>(
    `SELECT indexrelname AS name, idx_scan::int AS scans FROM pg_stat_user_indexes WHERE relname = 'executions'`,
  );
  return {
    updates: table.updates,
    hot: table.hot,
    scans: Object.fromEntries(rows.map((row) => [row.name, row.scans])),
  };
}

/** Runs `fn` with a connection to `url`, closed afterwards. */
export async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined); // a terminated backend fails the pending query, which reports it
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

function cpuPerStep(
  used: { workers: number; api: number; redis: number; postgres: number },
  steps: number,
  triggers: number,
): BenchResult['cpu'] {
  const per = (seconds: number, n: number) => (n > 0 ? (1000 * seconds) / n : 0);
  const totalMsPerStep = per(used.workers + used.api + used.redis + used.postgres, steps);
  return {
    workerMsPerStep: per(used.workers, steps),
    postgresMsPerStep: per(used.postgres, steps),
    redisMsPerStep: per(used.redis, steps),
    apiMsPerTrigger: per(used.api, triggers),
    totalMsPerStep,
    capacityStepsPerSec: totalMsPerStep > 0 ? (os.cpus().length * 1000) / totalMsPerStep : 0,
  };
}

/** HEAD and the files under src/ and prisma/ that differ from it. */
function sourceState(): BenchResult['source'] {
  const git = (...args: string[]) =>
    spawnSync('git', args, { cwd: path.dirname(BIN), encoding: 'utf8' }).stdout?.trimEnd() ?? '';
  return {
    commit: git('rev-parse', '--short', 'HEAD'),
    changed: git('status', '--porcelain', '--', '../src', '../prisma')
      .split('\n')
      .filter(Boolean)
      .map((l) => l.slice(3)),
  };
}

const ms = (seconds: number | null) => (seconds === null ? null : seconds * 1000);

function durationMs(text: string): number {
  const match = /^(\d+)\s*([a-z]+)$/i.exec(text.trim());
  const unit: Record<string, number> = {
    s: 1e3,
    sec: 1e3,
    second: 1e3,
    seconds: 1e3,
    m: 6e4,
    min: 6e4,
    minute: 6e4,
    minutes: 6e4,
    h: 36e5,
    hour: 36e5,
    hours: 36e5,
  };
  return match ? Number(match[1]) * (unit[match[2]!.toLowerCase()] ?? 0) : 0;
}

// ---------------------------------------------------------------------------------------------------
// Output

const num = (value: number | null, digits = 0) =>
  value === null || !Number.isFinite(value)
    ? 'n/a'
    : value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const trio = (p: Percentiles) => `${num(p.p50, 1)} / ${num(p.p95, 1)} / ${num(p.p99, 1)}`;

/** The result as one Markdown table. */
export function formatTable(r: BenchResult): string {
  const o = r.options;
  const rows: [string, string][] = [
    ['floor: Postgres step tx/s (pgbench, 8 clients)', num(r.floor.postgresTxPerSec)],
    ['floor: BullMQ no-op round trips/s', num(r.floor.queueJobsPerSec)],
    ['floor = min of the two, per s', num(r.floor.floorPerSec)],
    [
      'triggers accepted/s',
      `${num(r.triggers.perSec)} (${r.triggers.accepted}/${r.triggers.requested} in ${num(r.triggers.seconds, 1)} s)`,
    ],
    [
      'steps completed/s (mean; median 5 s; best 5 s)',
      `${num(r.steps.perSec)}; ${num(r.steps.medianPerSec)}; ${num(r.steps.peakPerSec)} (${r.steps.total} steps)`,
    ],
    ['engine steps/s ÷ floor', `${num(100 * r.steps.ofFloor, 1)} %`],
    [
      'loads / commits per statement, mean (batches failed)',
      `${num(r.batches.loadsPerStatement, 1)} / ${num(r.batches.commitsPerStatement, 1)} (${r.batches.failed})`,
    ],
    [
      'executions completed/s (first trigger → last completion)',
      `${num(r.executions.perSec, 1)} (${r.executions.completed} in ${num(r.executions.seconds, 1)} s)`,
    ],
    ['peak running / waiting executions', `${r.executions.peakRunning} / ${r.executions.peakWaiting}`],
    ['trigger → first action started p50/p95/p99 ms', trio(r.latencyMs.triggerToFirstAction)],
    [
      `action time p95 ms: provider (latency ${o.providerLatency} ms) / add_tag`,
      `${num(r.latencyMs.providerActionP95, 1)} / ${num(r.latencyMs.addTagP95, 1)}`,
    ],
    [
      'queue latency p95 ms (workers /metrics)',
      `${r.latencyMs.queueP95Beyond ? '> ' : ''}${num(r.latencyMs.queueP95, 1)}`,
    ],
    [
      'timer lateness p50 / p99 ms',
      `${num(r.latencyMs.timerLatenessP50, 1)} / ${num(r.latencyMs.timerLatenessP99, 1)}`,
    ],
    [
      r.options.bulk
        ? `API enrollment request (${r.options.bulk} contacts) p50/p95/p99 ms (client)`
        : 'API trigger p50/p95/p99 ms (client)',
      trio(r.latencyMs.apiTrigger),
    ],
    ['API GET /executions/{id} p50/p95/p99 ms (client)', trio(r.latencyMs.apiGet)],
    [
      'errors (http / incomplete / error logs / exits / duplicate sends)',
      `${r.errors.total} (${r.errors.http} / ${r.errors.incomplete} / ${r.errors.logErrors} / ${r.errors.exits} / ${r.errors.duplicateSends}); recovered ${r.errors.recovered}`,
    ],
    [
      'RSS MB, peak (idle): worker (max) / API',
      `${num(r.memory.workerRssMb)} (${num(r.memory.workerIdleRssMb)}) / ${num(r.memory.apiRssMb)} (${num(r.memory.apiIdleRssMb)})`,
    ],
    [
      'CPU ms per step: workers / Postgres / Redis; API per trigger',
      `${num(r.cpu.workerMsPerStep, 2)} / ${num(r.cpu.postgresMsPerStep, 2)} / ${num(r.cpu.redisMsPerStep, 2)}; ${num(r.cpu.apiMsPerTrigger, 2)}`,
    ],
    [
      `CPU-bound capacity on ${r.machine.cpus} dedicated cores (${num(r.cpu.totalMsPerStep, 2)} CPU ms per step, all included)`,
      `${num(r.cpu.capacityStepsPerSec)} steps/s`,
    ],
    [
      'Postgres rows / bytes per execution (HOT updates)',
      `${num(r.postgres.rowsPerExecution, 1)} / ${num(r.postgres.bytesPerExecution)} (${num(r.postgres.hotUpdatePercent)} %)`,
    ],
    [
      'Redis bytes per in-flight / waiting execution (peak used MB)',
      `${num(r.memory.redisBytesPerInflight)} / ${num(r.memory.redisBytesPerWaiting)} (${num(r.memory.redisPeakMb, 1)})`,
    ],
  ];
  const width = Math.max(...rows.map(([label]) => label.length));
  return [
    `flowmachine bench: ${o.executions} executions, rate ${o.rate || 'all at once'}${o.rate ? '/s' : ''}, ${o.workers} workers × ${o.workerConcurrency}, provider ${o.providerLatency} ms, wait "${o.wait}"${o.accounts > 1 ? `, ${o.accounts} accounts` : ''}${o.bulk ? `, bulk ${o.bulk}` : ''}; ${r.machine.cpus} CPUs, load ${num(r.machine.loadStart, 1)} → ${num(r.machine.loadEnd, 1)}; ${num(r.seconds)} s; source ${r.source.commit}${r.source.changed.length ? ` + changes in ${r.source.changed.join(', ')}` : ''}`,
    '',
    `| ${'metric'.padEnd(width)} | value |`,
    `| ${'-'.repeat(width)} | ----- |`,
    ...rows.map(([label, value]) => `| ${label.padEnd(width)} | ${value} |`),
  ].join('\n');
}

/** Parses the command line (see the file comment). */
export function parseOptions(argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
      executions: { type: 'string' },
      rate: { type: 'string', default: '500' },
      workers: { type: 'string', default: '2' },
      'worker-concurrency': { type: 'string', default: '50' },
      'provider-latency': { type: 'string', default: '5' },
      wait: { type: 'string', default: '2 seconds' },
      clients: { type: 'string', default: '32' },
      accounts: { type: 'string', default: '1' },
      'time-limit': { type: 'string', default: '0' },
      'floor-seconds': { type: 'string' },
      'log-level': { type: 'string', default: 'info' },
      'worker-node-args': { type: 'string', default: '' },
      'api-node-args': { type: 'string', default: '' },
      bulk: { type: 'string', default: '0' },
    },
  });
  const int = (name: string, value: string | undefined, min: number) => {
    const parsed = Number(value);
    if (!Number.isInteger(parsed) || parsed < min) throw new Error(`--${name} must be an integer ≥ ${min}`);
    return parsed;
  };
  if (durationMs(values.wait) <= 0) throw new Error('--wait must look like "2 seconds"');
  return {
    quick: values.quick,
    json: values.json,
    keep: values.keep,
    executions: int('executions', values.executions ?? (values.quick ? '300' : '1000'), 1),
    rate: int('rate', values.rate, 0),
    workers: int('workers', values.workers, 1),
    workerConcurrency: int('worker-concurrency', values['worker-concurrency'], 1),
    providerLatency: int('provider-latency', values['provider-latency'], 0),
    wait: values.wait,
    clients: int('clients', values.clients, 1),
    accounts: int('accounts', values.accounts, 1),
    timeLimit: int('time-limit', values['time-limit'], 0),
    floorSeconds: int('floor-seconds', values['floor-seconds'] ?? (values.quick ? '2' : '5'), 1),
    logLevel: values['log-level'],
    workerNodeArgs: values['worker-node-args'].split(/\s+/).filter(Boolean),
    apiNodeArgs: values['api-node-args'].split(/\s+/).filter(Boolean),
    bulk: int('bulk', values.bulk, 0),
  };
}

async function main(argv: string[]): Promise<void> {
  if (argv[0] === '--role') {
    process.on('disconnect', () => process.exit(0)); // the bench is gone: so is its helper
    const { values } = parseArgs({
      args: argv.slice(2),
      options: {
        redis: { type: 'string' },
        'worker-concurrency': { type: 'string' },
        'provider-latency': { type: 'string' },
      },
    });
    if (argv[1] === 'provider') return serveProvider(Number(values['provider-latency'] ?? 0));
    if (argv[1] === 'bullmq-floor') return serveQueueFloor(values.redis!, Number(values['worker-concurrency']));
    throw new Error(`unknown role ${argv[1]}`);
  }
  const cleanup = new Cleanup();
  const interrupt = () => void cleanup.run().then(() => process.exit(130));
  process.once('SIGINT', interrupt);
  process.once('SIGTERM', interrupt);
  process.once('uncaughtException', (error) => {
    console.error(`bench: ${error.stack ?? error.message}`);
    void cleanup.run().then(() => process.exit(1));
  });
  const progress = (line: string) => console.error(`[bench] ${line}`);
  let ok = false;
  try {
    if (argv.some((arg) => arg.startsWith('--scenario'))) {
      const { runScenario } = await import('./bench-scale.ts'); // the scale scenarios
      ok = await runScenario(argv, cleanup, progress);
    } else {
      const options = parseOptions(argv);
      const result = await runBench(options, cleanup, progress);
      console.log(formatTable(result));
      if (options.json) console.log(JSON.stringify(result));
      ok = result.errors.total === 0;
    }
  } finally {
    await cleanup.run();
  }
  process.exit(ok ? 0 : 1);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).catch((error: Error) => {
    console.error(`bench: ${error.stack ?? error.message}`);
    process.exit(1);
  });
}
