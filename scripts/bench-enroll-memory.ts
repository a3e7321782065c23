/**
 * Memory of the API process while bulk enrollments run: a fresh migrated database, a private Redis and the
 * API as its own process (`flowmachine api`, started as `npm run bench` starts it: with the node flags of
 * `npm start`), then `--requests` requests of `--bulk` contacts, `--clients` at once
 * (`POST /workflows/{id}/enrollments`), into a workflow that waits a week, then `--settle` seconds of quiet.
 * Every `--interval-ms` it reads the API's RSS from /proc (anonymous and file-backed, and the kernel's
 * high-water mark since it started, which catches peaks between samples), and a probe preloaded into the API
 * (scripts/memory-probe.mjs) records its V8 heap, external memory, array buffers and garbage collections.
 * Prints the idle, peak and settled figures (JSON with `--json`).
 *
 * With `--workers 0` (the default) no worker runs: the first jobs stay in Redis, and ENROLL_QUEUE_LIMIT is off
 * so the API does not refuse them; with workers, the quiet starts once every execution waits.
 * `--api-node-args` adds node flags to the API (`--trace-gc`, `--max-old-space-size=2048`).
 *
 * Usage: `npm run bench:memory -- [--requests 40] [--clients 4] [--bulk 1000] [--workers 0] [--interval-ms 100]
 *   [--settle 10] [--api-node-args="…"] [--log-level info] [--keep] [--json]`. Exits 1 on any error.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { createAccount } from '../src/api/api-keys.ts';
import { createDb } from '../src/db/client.ts';
import {
  type BenchProcess,
  benchGround,
  Cleanup,
  cpuSeconds,
  engineEnv,
  insertContacts,
  type Percentiles,
  percentiles,
  requestJson,
  sleep,
  startEngineProcess,
} from './bench.ts';

const PROBE = path.resolve(import.meta.dirname, 'memory-probe.mjs');
const MB = 2 ** 20;

interface Options {
  requests: number;
  clients: number;
  bulk: number;
  workers: number;
  intervalMs: number;
  /** Seconds of quiet after the last answer before the settled figures are read. */
  settle: number;
  apiNodeArgs: string[];
  logLevel: string;
  keep: boolean;
  json: boolean;
}

/** Resident memory of a process from /proc/<pid>/status, in bytes. */
interface RssSample {
  at: number;
  rss: number;
  anon: number;
  file: number;
  /** The kernel's high-water mark of RSS since the process started. */
  hwm: number;
}

/** One line of scripts/memory-probe.mjs. */
interface HeapSample {
  at: number;
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  spaces: Record<string, { used: number; size: number }>;
  /** Garbage collections since the process started: all, and mark-compacts only. */
  gc: { count: number; ms: number; majorCount: number; majorMs: number };
}

function readRss(pid: number): RssSample | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) * 1024;
    return { at: Date.now(), rss: kb('VmRSS'), anon: kb('RssAnon'), file: kb('RssFile'), hwm: kb('VmHWM') };
  } catch {
    return null;
  }
}

const readProbe = (file: string): HeapSample[] =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as HeapSample);

/** Idle, peak and settled figures of one phase of the run, in MB. */
interface Figures {
  rss: number;
  rssAnon: number;
  heapUsed: number;
  heapTotal: number;
  newSpace: number;
  largeObjects: number;
  external: number;
  arrayBuffers: number;
}

export interface EnrollMemoryResult {
  options: Omit<Options, 'json' | 'keep'>;
  /** Executions started and enrollments per second. */
  started: number;
  enrolledPerSec: number;
  requestMs: Percentiles;
  errors: number;
  idle: Figures;
  /** The largest value of each figure while the requests ran (each at its own moment). */
  peak: Figures;
  /** The kernel's RSS high-water mark (MB) after the idle phase and after the requests: a peak between samples. */
  rssHighWaterMark: { idle: number; load: number };
  settled: Figures;
  /** Peak RSS above the idle RSS, per contact of the requests in flight at once. */
  peakBytesPerContactInFlight: number;
  /** Longest gap between two probe samples while the requests ran: how long the event loop was busy. */
  longestProbeGapMs: number;
  /** The API's CPU seconds and its garbage collections (count, pause ms) while the requests ran. */
  apiCpuSeconds: number;
  gc: { count: number; ms: number; majorCount: number; majorMs: number };
  /** RSS of the largest worker (MB): idle, peak while enrolling, settled; null without workers. */
  workerRss: { idle: number; peak: number; settled: number } | null;
  seconds: number;
}

/** Each figure's median over the samples (a quiet phase) or its maximum (the load). */
function figures(rss: RssSample[], heap: HeapSample[], pick: (values: number[]) => number): Figures {
  const of = <T>(samples: T[], f: (s: T) => number) => (samples.length ? pick(samples.map(f)) / MB : Number.NaN);
  return {
    rss: of(rss, (s) => s.rss),
    rssAnon: of(rss, (s) => s.anon),
    heapUsed: of(heap, (s) => s.heapUsed),
    heapTotal: of(heap, (s) => s.heapTotal),
    newSpace: of(heap, (s) => s.spaces.new_space?.size ?? 0),
    largeObjects: of(heap, (s) => s.spaces.large_object_space?.size ?? 0),
    external: of(heap, (s) => s.external),
    arrayBuffers: of(heap, (s) => s.arrayBuffers),
  };
}
const median = (values: number[]) => Float64Array.from(values).sort()[Math.floor(values.length / 2)]!;
const max = (values: number[]) => Math.max(...values);

async function run(options: Options, cleanup: Cleanup, progress: (line: string) => void) {
  const began = performance.now();
  const { tmp, db, redis } = await benchGround(options.keep, cleanup, progress);
  const admin = new pg.Pool({ connectionString: db.url, max: 2 });
  cleanup.add(() => admin.end());
  const prisma = createDb(db.url, { max: 1 });
  const account = await createAccount(prisma, { name: 'Memory', adminEmail: 'bench@example.com' }).finally(() =>
    prisma.$disconnect(),
  );
  const contactCount = options.requests * options.bulk;
  await admin.query('UPDATE accounts SET concurrent_executions_per_account = $2 WHERE id = $1', [
    account.account_id,
    contactCount + 1_000,
  ]);
  progress(`inserting ${contactCount} contacts…`);
  const contacts = await insertContacts(admin, account.account_id, contactCount);

  const probeFile = path.join(tmp, 'api-memory.jsonl');
  const env = engineEnv({
    DATABASE_URL: db.url,
    REDIS_URL: redis.url,
    QUEUE_PREFIX: 'fm',
    EMAIL_HTTP_URL: 'http://127.0.0.1:9/email',
    SMS_HTTP_URL: 'http://127.0.0.1:9/sms',
    LOG_LEVEL: options.logLevel,
    ENROLL_QUEUE_LIMIT: '0',
  });
  progress(`starting the API${options.workers ? ` and ${options.workers} workers` : ''}…`);
  const api = await startEngineProcess(
    'api',
    'api',
    { ...env, MEMORY_PROBE_FILE: probeFile, MEMORY_PROBE_MS: String(options.intervalMs) },
    tmp,
    ['--import', PROBE, ...options.apiNodeArgs],
  );
  cleanup.add(() => api.stop());
  const workers: BenchProcess[] = [];
  for (let i = 0; i < options.workers; i += 1) {
    const worker = await startEngineProcess('worker', `worker-${i + 1}`, env, tmp);
    cleanup.add(() => worker.stop());
    workers.push(worker);
  }
  const created = await requestJson(api.port, 'POST', '/api/v1/workflows', account.api_key, {
    name: 'Waiting',
    status: 'active',
    definition: { steps: [{ id: 'week', type: 'wait', config: { duration: '168 hours' } }] },
  });
  if (created.status !== 201) throw new Error(`creating the workflow failed: ${created.status}`);
  const workflowId = created.body.id as string;

  const rss: RssSample[] = [];
  const workerRss: { at: number; mb: number }[] = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const sample = readRss(api.child.pid!);
      if (sample) rss.push(sample);
      const workers_ = workers.map((w) => readRss(w.child.pid!)?.rss ?? 0);
      if (workers_.length) workerRss.push({ at: Date.now(), mb: Math.max(...workers_) / MB });
      await sleep(options.intervalMs);
    }
  })();
  const between = (from: number, to: number) => ({
    rss: rss.filter((s) => s.at >= from && s.at <= to),
    heap: readProbe(probeFile).filter((s) => s.at >= from && s.at <= to),
    workers: workerRss.filter((s) => s.at >= from && s.at <= to).map((s) => s.mb),
  });

  const idleFrom = Date.now();
  await sleep(3_000);
  const idle = between(idleFrom, Date.now());

  progress(`${options.requests} requests of ${options.bulk}, ${options.clients} at once…`);
  const loadFrom = Date.now();
  const cpuFrom = cpuSeconds(api.child.pid) ?? 0;
  const requestMs: number[] = [];
  let started = 0;
  let errors = 0;
  let next = 0;
  const client = async () => {
    while (next < options.requests) {
      const from = next++ * options.bulk;
      const sent = performance.now();
      const response = await requestJson(
        api.port,
        'POST',
        `/api/v1/workflows/${workflowId}/enrollments`,
        account.api_key,
        { contact_ids: contacts.slice(from, from + options.bulk) },
      );
      requestMs.push(performance.now() - sent);
      if (response.status === 200) started += response.body.started as number;
      else if (errors++ < 5) progress(`enrollment answered ${response.status}: ${JSON.stringify(response.body)}`);
    }
  };
  await Promise.all(Array.from({ length: options.clients }, client));
  const loadTo = Date.now();
  const apiCpuSeconds = (cpuSeconds(api.child.pid) ?? 0) - cpuFrom;
  const load = between(loadFrom, loadTo);
  progress(`answered in ${((loadTo - loadFrom) / 1000).toFixed(1)} s`);
  // With workers, the quiet starts once every execution waits.
  for (let paused = 0; workers.length > 0 && paused < started; await sleep(2_000)) {
    const { rows } = await admin.query<{ n: string }>(`SELECT count(*) AS n FROM executions WHERE status = 'PAUSED'`);
    paused = Number(rows[0]!.n);
    progress(`${paused} of ${started} waiting`);
  }
  const drained = between(loadFrom, Date.now());
  progress(`${options.settle} s of quiet…`);
  await sleep(options.settle * 1000);
  const settledTo = Date.now();
  const settled = between(settledTo - 2_000, settledTo);
  sampling = false;
  await sampler;

  const idleFigures = figures(idle.rss, idle.heap, median);
  const settledFigures = figures(settled.rss, settled.heap, median);
  const peakFigures = figures(load.rss, load.heap, max);
  const gaps = load.heap.slice(1).map((s, i) => s.at - load.heap[i]!.at);
  const gcOf = (samples: HeapSample[]) => samples.at(-1)?.gc ?? { count: 0, ms: 0, majorCount: 0, majorMs: 0 };
  const [gcFrom, gcTo] = [gcOf(idle.heap), gcOf(load.heap)];
  const { json: _j, keep: _k, ...shown } = options;
  const result: EnrollMemoryResult = {
    options: shown,
    started,
    enrolledPerSec: started / ((loadTo - loadFrom) / 1000),
    requestMs: percentiles(requestMs),
    errors: errors + contactCount - started,
    idle: idleFigures,
    peak: peakFigures,
    rssHighWaterMark: { idle: (idle.rss.at(-1)?.hwm ?? 0) / MB, load: (load.rss.at(-1)?.hwm ?? 0) / MB },
    settled: settledFigures,
    peakBytesPerContactInFlight:
      ((peakFigures.rss - idleFigures.rss) * MB) / (Math.min(options.clients, options.requests) * options.bulk),
    longestProbeGapMs: gaps.length ? max(gaps) : 0,
    apiCpuSeconds,
    gc: {
      count: gcTo.count - gcFrom.count,
      ms: gcTo.ms - gcFrom.ms,
      majorCount: gcTo.majorCount - gcFrom.majorCount,
      majorMs: gcTo.majorMs - gcFrom.majorMs,
    },
    workerRss: workers.length
      ? { idle: median(idle.workers), peak: max(drained.workers), settled: median(settled.workers) }
      : null,
    seconds: (performance.now() - began) / 1000,
  };
  return result;
}

const num = (value: number, digits = 0) =>
  Number.isFinite(value)
    ? value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : 'n/a';
const trio = (p: Percentiles) => [p.p50, p.p95, p.p99].map((v) => num(v ?? Number.NaN)).join(' / ');

function format(r: EnrollMemoryResult): string {
  const o = r.options;
  const row = (label: string, pick: (f: Figures) => number) =>
    `| ${label} | ${num(pick(r.idle))} | ${num(pick(r.peak))} | ${num(pick(r.settled))} |`;
  return [
    `API memory during bulk enrollments: ${o.requests} requests of ${o.bulk}, ${o.clients} at once, ${o.workers} workers` +
      `${o.apiNodeArgs.length ? `, API node ${o.apiNodeArgs.join(' ')}` : ''}; ${num(r.seconds)} s`,
    '',
    '| MB | idle | peak while enrolling | settled |',
    '| --- | --- | --- | --- |',
    row('RSS', (f) => f.rss),
    row('RSS anonymous', (f) => f.rssAnon),
    row('V8 heap used', (f) => f.heapUsed),
    row('V8 heap total', (f) => f.heapTotal),
    row('new space', (f) => f.newSpace),
    row('large objects', (f) => f.largeObjects),
    row('external', (f) => f.external),
    row('array buffers', (f) => f.arrayBuffers),
    '',
    `RSS high-water mark ${num(r.rssHighWaterMark.idle)} MB after idle, ${num(r.rssHighWaterMark.load)} MB after enrolling; peak RSS above idle ${num(r.peakBytesPerContactInFlight)} bytes per contact in flight` +
      (r.workerRss
        ? `; largest worker RSS ${num(r.workerRss.idle)} idle, ${num(r.workerRss.peak)} peak, ${num(r.workerRss.settled)} settled MB`
        : ''),
    `API while enrolling: ${num(r.apiCpuSeconds, 1)} CPU s, ${r.gc.count} GCs (${num(r.gc.ms)} ms), of which ${r.gc.majorCount} mark-compacts (${num(r.gc.majorMs)} ms); ` +
      `longest probe gap ${num(r.longestProbeGapMs)} ms`,
    `${num(r.started)} started, ${num(r.enrolledPerSec)}/s, request p50 / p95 / p99 ${trio(r.requestMs)} ms; ${r.errors} errors`,
  ].join('\n');
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      requests: { type: 'string', default: '40' },
      clients: { type: 'string', default: '4' },
      bulk: { type: 'string', default: '1000' },
      workers: { type: 'string', default: '0' },
      'interval-ms': { type: 'string', default: '100' },
      settle: { type: 'string', default: '10' },
      'api-node-args': { type: 'string', default: '' },
      'log-level': { type: 'string', default: 'info' },
      keep: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  const int = (name: string, value: string, min: number) => {
    const parsed = Number(value);
    if (!Number.isInteger(parsed) || parsed < min) throw new Error(`--${name} must be an integer ≥ ${min}`);
    return parsed;
  };
  return {
    requests: int('requests', values.requests, 1),
    clients: int('clients', values.clients, 1),
    bulk: int('bulk', values.bulk, 1),
    workers: int('workers', values.workers, 0),
    intervalMs: int('interval-ms', values['interval-ms'], 10),
    settle: int('settle', values.settle, 2),
    apiNodeArgs: values['api-node-args'].split(/\s+/).filter(Boolean),
    logLevel: values['log-level'],
    keep: values.keep,
    json: values.json,
  };
}

async function main(argv: string[]) {
  const options = parseOptions(argv);
  const cleanup = new Cleanup();
  const interrupt = () => void cleanup.run().then(() => process.exit(130));
  process.once('SIGINT', interrupt);
  process.once('SIGTERM', interrupt);
  const progress = (line: string) => console.error(`[memory] ${line}`);
  let ok = false;
  try {
    const result = await run(options, cleanup, progress);
    console.log(format(result));
    if (options.json) console.log(JSON.stringify(result));
    ok = result.errors === 0;
  } finally {
    await cleanup.run();
  }
  process.exit(ok ? 0 : 1);
}

main(process.argv.slice(2)).catch((error: Error) => {
  console.error(`bench-enroll-memory: ${error.stack ?? error.message}`);
  process.exit(1);
});
