/**
 * The scale scenarios of `npm run bench` (scripts/bench.ts hands `--scenario` runs to this file), on the
 * same deployment as the step benchmark: a fresh migrated database, a private Redis, the API process,
 * worker processes and the fake HTTP provider.
 *
 * - `waiting`: enrolls `--contacts` contacts (bulk, `--bulk` per request, `--clients` requests at once)
 *   into a workflow that starts with a 7-day wait, in stages (10k, 100k, 1M, up to `--contacts`). After
 *   each stage, once every execution waits, it reports the enrollment rate, Postgres bytes per waiting
 *   execution, Redis memory and jobs, worker and API RSS, and `GET /executions/{id}` and
 *   `GET /workflows/{id}/stats` times at that size.
 * - `spike`: enrolls `--contacts` contacts into `wait_until` (a time of day ~24 h ahead, so the waits stay
 *   in Postgres), then moves their due times into one minute (one UPDATE: the setup) and lets the engine
 *   drain them: the timer release enqueues them, the workers resume them and send an email. Meanwhile other
 *   executions are triggered at `--trigger-rate` per second into another workflow. It reports timer
 *   lateness, steps/s while they drain, the other workflow's trigger → first action, Redis memory during
 *   the spike and errors. With `--enroll N` only N contacts are enrolled through the API and the others
 *   get copies of their waiting executions, made in SQL (a second setup shortcut, for sizes whose setup
 *   through the engine would take an hour here).
 *
 * Usage: `npm run bench -- --scenario waiting|spike [--contacts N] [--bulk N] [--clients N] [--workers N]
 *   [--worker-concurrency N] [--provider-latency MS] [--trigger-rate N] [--ready-target N] [--enroll-queue-limit N]
 *   [--enroll N] [--time-limit S] [--log-level info] [--keep] [--json]` (see docs/benchmarks.md). Exits 1 on any error.
 */
import type { ChildProcess } from 'node:child_process';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import pg from 'pg';
import { createAccount } from '../src/api/api-keys.ts';
import { createDb } from '../src/db/client.ts';
import {
  ask,
  type BenchProcess,
  type Cleanup,
  engineEnv,
  errorLines,
  forkRole,
  insertContacts,
  type Percentiles,
  percentiles,
  requestJson,
  rssMb,
  sleep,
  startEngineProcess,
  stopChild,
  benchGround,
  cpuSeconds,
  PostgresCpu,
} from './bench.ts';

/** Options of one scenario run. */
export interface ScaleOptions {
  scenario: 'waiting' | 'spike';
  /** Contacts enrolled. @defaultValue 10000 */
  contacts: number;
  /** Contacts per enrollment request. @defaultValue 1000 */
  bulk: number;
  /** Enrollment requests in flight at once. @defaultValue 4 */
  clients: number;
  workers: number;
  workerConcurrency: number;
  providerLatency: number;
  /** `spike`: triggers per second into the other workflow while the timers drain. @defaultValue 20 */
  triggerRate: number;
  /** `TIMER_READY_TARGET` of the workers (unset: the default). */
  readyTarget: number | null;
  /** `ENROLL_QUEUE_LIMIT` of the API (unset: the default). */
  enrollQueueLimit: number | null;
  /** `spike`: contacts enrolled through the API; the others get copies of their executions (unset: all). */
  enrollThroughApi: number | null;
  /** Gives up after this many seconds (0: never); what did not finish counts as an error. @defaultValue 0 */
  timeLimit: number;
  logLevel: string;
  keep: boolean;
  json: boolean;
}

/** One sample of Redis and the processes, taken every second. */
interface Sample {
  at: number;
  redisUsed: number;
  delayed: number;
  ready: number;
  rss: Record<string, number>;
}

/** What a scenario starts: the database, Redis, the provider, the API and the workers, and one account. */
interface Scale {
  db: { name: string; url: string };
  admin: pg.Pool;
  monitor: Redis;
  stepQueue: Queue;
  provider: ChildProcess;
  api: BenchProcess;
  workers: BenchProcess[];
  apiKey: string;
  accountId: string;
  exits: () => number;
  stopping: () => void;
  samples: Sample[];
  stopSampling: () => Promise<void>;
  tmp: string;
}

const MB = 2 ** 20;

async function startScale(
  options: ScaleOptions,
  cleanup: Cleanup,
  progress: (line: string) => void,
  extraExecutions: number,
): Promise<Scale> {
  const { tmp, db, redis } = await benchGround(options.keep, cleanup, progress);
  const admin = new pg.Pool({ connectionString: db.url, max: 2 });
  admin.on('error', (error) => progress(`bench connection lost (${error.message})`));
  cleanup.add(() => admin.end());
  const monitor = new Redis(redis.url, { maxRetriesPerRequest: null });
  cleanup.add(() => monitor.disconnect());
  const provider = await forkRole(['provider', '--provider-latency', String(options.providerLatency)]);
  cleanup.add(() => stopChild(provider.child));
  const providerUrl = (provider.first as { url: string }).url;

  const prisma = createDb(db.url, { max: 1 });
  const account = await createAccount(prisma, { name: 'Scale', adminEmail: 'bench@example.com' }).finally(() =>
    prisma.$disconnect(),
  );
  // A limit above the run's size: PAUSED executions hold no slot, resumed ones do while they run.
  await admin.query('UPDATE accounts SET concurrent_executions_per_account = $2 WHERE id = $1', [
    account.account_id,
    options.contacts + extraExecutions + 1_000,
  ]);

  const env = engineEnv({
    DATABASE_URL: db.url,
    REDIS_URL: redis.url,
    QUEUE_PREFIX: 'fm',
    EMAIL_HTTP_URL: `${providerUrl}/email`,
    SMS_HTTP_URL: `${providerUrl}/sms`,
    LOG_LEVEL: options.logLevel,
    WORKER_CONCURRENCY: String(options.workerConcurrency),
    ...(options.readyTarget ? { TIMER_READY_TARGET: String(options.readyTarget) } : {}),
    ...(options.enrollQueueLimit !== null ? { ENROLL_QUEUE_LIMIT: String(options.enrollQueueLimit) } : {}),
  });
  progress(`starting the API and ${options.workers} workers…`);
  const processes = await Promise.all([
    startEngineProcess('api', 'api', env, tmp),
    ...Array.from({ length: options.workers }, (_, i) => startEngineProcess('worker', `worker-${i + 1}`, env, tmp)),
  ]);
  cleanup.add(() => Promise.all(processes.map((p) => p.stop())));
  let exits = 0;
  let stopping = false;
  for (const p of processes)
    void p.exited.then(() => {
      if (stopping) return;
      exits += 1;
      progress(`${p.name} exited unexpectedly; see ${p.logFile}`);
    });
  const [api, ...workers] = processes as [BenchProcess, ...BenchProcess[]];

  const stepQueue = new Queue('steps', { connection: monitor, prefix: 'fm' });
  const samples: Sample[] = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const [info, counts] = await Promise.all([
        monitor.info('memory'),
        stepQueue.getJobCounts('waiting', 'active', 'delayed', 'prioritized'),
      ]);
      samples.push({
        at: Date.now(),
        redisUsed: Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0),
        delayed: counts.delayed ?? 0,
        ready: (counts.waiting ?? 0) + (counts.prioritized ?? 0) + (counts.active ?? 0),
        rss: Object.fromEntries(processes.map((p) => [p.name, rssMb(p.child.pid)])),
      });
      await sleep(1_000);
    }
  })();
  return {
    db,
    admin,
    monitor,
    stepQueue,
    provider: provider.child,
    api,
    workers,
    apiKey: account.api_key,
    accountId: account.account_id,
    exits: () => exits,
    stopping: () => (stopping = true),
    samples,
    stopSampling: async () => {
      sampling = false;
      await sampler;
    },
    tmp,
  };
}

async function createWorkflow(scale: Scale, name: string, definition: unknown): Promise<string> {
  const created = await requestJson(scale.api.port, 'POST', '/api/v1/workflows', scale.apiKey, {
    name,
    status: 'active',
    definition,
  });
  if (created.status !== 201)
    throw new Error(`creating ${name} failed: ${created.status} ${JSON.stringify(created.body)}`);
  return created.body.id;
}

/** Enrolls `contacts` into `workflowId`, `bulk` per request and `clients` requests at once. */
async function enroll(
  scale: Scale,
  options: ScaleOptions,
  workflowId: string,
  contacts: string[],
  progress: (line: string) => void,
): Promise<{ ids: string[]; seconds: number; httpErrors: number; requestMs: number[]; held: number }> {
  const ids: string[] = [];
  const requestMs: number[] = [];
  let httpErrors = 0;
  let held = 0;
  let next = 0;
  const started = performance.now();
  const client = async () => {
    for (let from = next; from < contacts.length && scale.exits() === 0; from = next) {
      next += options.bulk;
      const body = { contact_ids: contacts.slice(from, from + options.bulk) };
      const path = `/api/v1/workflows/${workflowId}/enrollments`;
      let sent = performance.now();
      let response = await requestJson(scale.api.port, 'POST', path, scale.apiKey, body);
      // 429 while the queue holds ENROLL_QUEUE_LIMIT ready jobs: wait its Retry-After (1 s) and ask again.
      while (response.status === 429 && scale.exits() === 0) {
        held += 1;
        await sleep(1_000);
        sent = performance.now();
        response = await requestJson(scale.api.port, 'POST', path, scale.apiKey, body);
      }
      requestMs.push(performance.now() - sent); // the answered attempt
      if (response.status !== 200) {
        if (httpErrors++ < 5) progress(`enrollment answered ${response.status}: ${JSON.stringify(response.body)}`);
        continue;
      }
      for (const result of response.body.results as { outcome: string; execution_id: string }[]) {
        if (result.outcome === 'started') ids.push(result.execution_id);
        else if (httpErrors++ < 5) progress(`enrollment outcome ${result.outcome}`);
      }
    }
  };
  await Promise.all(Array.from({ length: options.clients }, client));
  if (held > 0) progress(`${held} enrollment requests were held back by ENROLL_QUEUE_LIMIT (429) and sent again`);
  return { ids, seconds: (performance.now() - started) / 1000, httpErrors, requestMs, held };
}

/** Resolves once `condition` holds, polling every `everyMs`; false when `deadline` (ms since epoch, 0: none) passed or a process died. */
async function until(
  scale: Scale,
  condition: () => Promise<boolean>,
  deadline: number,
  everyMs = 2_000,
): Promise<boolean> {
  for (;;) {
    if (await condition()) return true;
    if ((deadline && Date.now() > deadline) || scale.exits() > 0) return false;
    await sleep(everyMs);
  }
}

const countOf = async (scale: Scale, sql: string, params: unknown[]) =>
  Number((await scale.admin.query<{ n: string }>(sql, params)).rows[0]!.n);

/**
 * The workflow's executions by status, as `GET /workflows/{id}/stats` reads them from its counters (up to a
 * second behind): progress that, unlike a count over `executions`, reads no more at a million rows.
 */
async function statusCounts(scale: Scale, workflowId: string): Promise<Record<string, number>> {
  const response = await requestJson(scale.api.port, 'GET', `/api/v1/workflows/${workflowId}/stats`, scale.apiKey);
  if (response.status !== 200) throw new Error(`stats answered ${response.status}: ${JSON.stringify(response.body)}`);
  return (response.body as { executions: Record<string, number> }).executions;
}

/** Times `n` sequential GETs of `route(i)`; non-200 answers count as errors. */
async function timeGets(
  scale: Scale,
  n: number,
  route: (i: number) => string,
): Promise<{ ms: Percentiles; errors: number }> {
  const samples: number[] = [];
  let errors = 0;
  for (let i = 0; i < n; i += 1) {
    const sent = performance.now();
    const response = await requestJson(scale.api.port, 'GET', route(i), scale.apiKey);
    samples.push(performance.now() - sent);
    if (response.status !== 200) errors += 1;
  }
  return { ms: percentiles(samples), errors };
}

const errorLogs = (scale: Scale) => errorLines([scale.api, ...scale.workers]);

const peak = (samples: Sample[], pick: (s: Sample) => number) => Math.max(0, ...samples.map(pick));
const workerRss = (s: Sample) =>
  Math.max(
    0,
    ...Object.entries(s.rss)
      .filter(([n]) => n !== 'api')
      .map(([, v]) => v),
  );

// ---------------------------------------------------------------------------------------------------
// waiting

/** The figures of one stage of the `waiting` scenario, once all its executions wait. */
export interface WaitingStage {
  waiting: number;
  /** Enrollment requests of this stage: executions accepted per second, and until all of them waited. */
  enrolledPerSec: number;
  waitingPerSec: number;
  enrollRequestMs: Percentiles;
  postgres: { executionsBytes: number; logsBytes: number; bytesPerWaiting: number; databaseBytesPerWaiting: number };
  redis: { usedMb: number; peakMb: number; delayedJobs: number; readyJobs: number };
  rssMb: { worker: number; api: number; workerPeak: number; apiPeak: number };
  getExecutionMs: Percentiles;
  statsMs: Percentiles;
}

export interface WaitingResult {
  scenario: 'waiting';
  options: Omit<ScaleOptions, 'json' | 'keep'>;
  machine: { cpus: number; loadStart: number; loadEnd: number };
  stages: WaitingStage[];
  errors: { total: number; http: number; notWaiting: number; logErrors: number; exits: number };
  seconds: number;
}

/** The `waiting` workflow: a week's wait, then an email. */
const waitingDefinition = {
  steps: [
    { id: 'week', type: 'wait', config: { duration: '168 hours' } },
    {
      id: 'hello',
      type: 'send_email',
      config: { subject: 'Hi {{first_name}}', body: 'A week later, {{first_name}}.' },
    },
  ],
};

async function runWaiting(options: ScaleOptions, cleanup: Cleanup, progress: (line: string) => void) {
  const began = performance.now();
  const loadStart = os.loadavg()[0]!;
  const scale = await startScale(options, cleanup, progress, 0);
  progress(`inserting ${options.contacts} contacts…`);
  const contacts = await insertContacts(scale.admin, scale.accountId, options.contacts);
  const workflowId = await createWorkflow(scale, 'Waiting', waitingDefinition);
  const sizes = [10_000, 100_000, 1_000_000].filter((n) => n < options.contacts).concat(options.contacts);
  const deadline = options.timeLimit ? Date.now() + options.timeLimit * 1000 : 0;
  const stages: WaitingStage[] = [];
  const accepted: string[] = [];
  let httpErrors = 0;
  let notWaiting = 0;
  for (const size of sizes) {
    const from = accepted.length;
    const stageStart = Date.now();
    progress(`enrolling contacts ${from + 1}–${size}…`);
    const enrolled = await enroll(scale, options, workflowId, contacts.slice(from, size), progress);
    for (const id of enrolled.ids) accepted.push(id); // a spread of 900,000 arguments overflows the stack
    httpErrors += enrolled.httpErrors;
    const settled = await until(
      scale,
      async () => {
        const paused = await countOf(
          scale,
          `SELECT count(*) AS n FROM executions WHERE status = 'PAUSED' AND workflow_id = $1`,
          [workflowId],
        );
        progress(`${accepted.length} enrolled, ${paused} waiting`);
        return paused >= accepted.length;
      },
      deadline,
    );
    const waitingSeconds = (Date.now() - stageStart) / 1000;
    if (!settled) {
      notWaiting =
        accepted.length - (await countOf(scale, `SELECT count(*) AS n FROM executions WHERE status = 'PAUSED'`, []));
      progress('gave up waiting for the stage to settle');
    }
    await sleep(3_000); // a few samples of the settled system
    const stageSamples = scale.samples.filter((s) => s.at >= stageStart);
    const last = scale.samples.at(-1)!;
    const sizes = (
      await scale.admin.query<{ executions: string; logs: string; database: string }>(
        `SELECT pg_total_relation_size('executions') AS executions,
                (SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree('execution_logs')) AS logs,
                pg_database_size(current_database()) AS database`,
      )
    ).rows[0]!;
    progress(`timing GET /executions/{id} and GET /workflows/{id}/stats at ${accepted.length} waiting…`);
    const gets = await timeGets(
      scale,
      200,
      () => `/api/v1/executions/${accepted[Math.floor(Math.random() * accepted.length)]}`,
    );
    const stats = await timeGets(scale, 5, () => `/api/v1/workflows/${workflowId}/stats`);
    httpErrors += gets.errors + stats.errors;
    const n = accepted.length;
    stages.push({
      waiting: n,
      enrolledPerSec: enrolled.ids.length / enrolled.seconds,
      waitingPerSec: enrolled.ids.length / waitingSeconds,
      enrollRequestMs: percentiles(enrolled.requestMs),
      postgres: {
        executionsBytes: Number(sizes.executions),
        logsBytes: Number(sizes.logs),
        bytesPerWaiting: (Number(sizes.executions) + Number(sizes.logs)) / n,
        databaseBytesPerWaiting: Number(sizes.database) / n,
      },
      redis: {
        usedMb: last.redisUsed / MB,
        peakMb: peak(stageSamples, (s) => s.redisUsed) / MB,
        delayedJobs: last.delayed,
        readyJobs: last.ready,
      },
      rssMb: {
        worker: workerRss(last),
        api: last.rss.api ?? 0,
        workerPeak: peak(stageSamples, workerRss),
        apiPeak: peak(stageSamples, (s) => s.rss.api ?? 0),
      },
      getExecutionMs: gets.ms,
      statsMs: stats.ms,
    });
    progress(JSON.stringify(stages.at(-1)));
    if (!settled) break;
  }
  await scale.stopSampling();
  const logErrors = await errorLogs(scale);
  const exits = scale.exits();
  scale.stopping();
  const { json: _j, keep: _k, ...shown } = options;
  const result: WaitingResult = {
    scenario: 'waiting',
    options: shown,
    machine: { cpus: os.cpus().length, loadStart, loadEnd: os.loadavg()[0]! },
    stages,
    errors: {
      total: httpErrors + notWaiting + logErrors + exits + (options.contacts - accepted.length),
      http: httpErrors,
      notWaiting: notWaiting + (options.contacts - accepted.length),
      logErrors,
      exits,
    },
    seconds: (performance.now() - began) / 1000,
  };
  return result;
}

const num = (value: number | null, digits = 0) =>
  value === null || !Number.isFinite(value)
    ? 'n/a'
    : value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const trio = (p: Percentiles) => `${num(p.p50, 1)} / ${num(p.p95, 1)} / ${num(p.p99, 1)}`;

function table(title: string, header: string[], rows: [string, ...string[]][]): string {
  return [
    title,
    '',
    `| ${header.join(' | ')} |`,
    `| ${header.map(() => '---').join(' | ')} |`,
    ...rows.map((row) => `| ${row.join(' | ')} |`),
  ].join('\n');
}

export function formatWaiting(r: WaitingResult): string {
  const col = (f: (s: WaitingStage) => string): [string, ...string[]] => ['', ...r.stages.map(f)] as never;
  const row = (label: string, f: (s: WaitingStage) => string): [string, ...string[]] => {
    const cells = col(f);
    cells[0] = label;
    return cells;
  };
  return table(
    `flowmachine bench --scenario waiting: ${r.options.contacts} contacts, bulk ${r.options.bulk} × ${r.options.clients} clients, ${r.options.workers} workers × ${r.options.workerConcurrency}; ${r.machine.cpus} CPUs, load ${num(r.machine.loadStart, 1)} → ${num(r.machine.loadEnd, 1)}; ${num(r.seconds)} s; errors ${r.errors.total} (http ${r.errors.http}, not waiting ${r.errors.notWaiting}, error logs ${r.errors.logErrors}, exits ${r.errors.exits})`,
    ['waiting executions', ...r.stages.map((s) => num(s.waiting))],
    [
      row('enrolled/s (accepted; until all waited)', (s) => `${num(s.enrolledPerSec)}; ${num(s.waitingPerSec)}`),
      row('enrollment request p50/p95/p99 ms', (s) => trio(s.enrollRequestMs)),
      row(
        'Postgres bytes per waiting execution (executions + logs; whole database)',
        (s) => `${num(s.postgres.bytesPerWaiting)}; ${num(s.postgres.databaseBytesPerWaiting)}`,
      ),
      row(
        'Redis used MB now (peak in stage); delayed / ready jobs',
        (s) => `${num(s.redis.usedMb, 1)} (${num(s.redis.peakMb, 1)}); ${s.redis.delayedJobs} / ${s.redis.readyJobs}`,
      ),
      row(
        'RSS MB settled (peak in stage): worker / API',
        (s) => `${num(s.rssMb.worker)} (${num(s.rssMb.workerPeak)}) / ${num(s.rssMb.api)} (${num(s.rssMb.apiPeak)})`,
      ),
      row('GET /executions/{id} p50/p95/p99 ms', (s) => trio(s.getExecutionMs)),
      row('GET /workflows/{id}/stats p50/p95/p99 ms (5 calls)', (s) => trio(s.statsMs)),
    ],
  );
}

// ---------------------------------------------------------------------------------------------------
// spike

export interface SpikeResult {
  scenario: 'spike';
  options: Omit<ScaleOptions, 'json' | 'keep'>;
  machine: { cpus: number; loadStart: number; loadEnd: number };
  setup: {
    enrolledPerSec: number;
    waitingSeconds: number;
    /** Executions copied in SQL from one enrolled through the API (`--enroll`), and the seconds it took. */
    copied: number;
    copySeconds: number;
    redisDelayedBefore: number;
  };
  spike: {
    timers: number;
    /** From the first due time to the last resumed execution's completion. */
    drainSeconds: number;
    timersPerSec: number;
    stepsPerSec: number;
    peakStepsPerSec: number;
    latenessMs: { p50: number | null; p99: number | null; max: number | null };
    cost: DrainCost;
  };
  others: { triggered: number; triggerToFirstActionMs: Percentiles; apiTriggerMs: Percentiles };
  redis: { peakMb: number; beforeMb: number; peakDelayed: number; peakReady: number };
  rssMb: { workerPeak: number; apiPeak: number };
  errors: { total: number; http: number; incomplete: number; logErrors: number; exits: number; duplicateSends: number };
  seconds: number;
}

/** Rows per statement of {@link copyWaiting}. */
const COPY_CHUNK = 10_000;

/**
 * The `--enroll` setup: gives each of `contacts` a copy of one execution of `workflowId` waiting at its
 * first step, as the engine left it (row, snapshot, log rows; new ids, created now), {@link COPY_CHUNK}
 * per statement. The counters' triggers count the copies as they count enrollments. Returns how many.
 */
async function copyWaiting(admin: pg.Pool, workflowId: string, contacts: string[], progress: (line: string) => void) {
  if (contacts.length === 0) return 0;
  const { rows } = await admin.query<{ id: string }>(
    `SELECT id FROM executions WHERE workflow_id = $1 AND status = 'PAUSED' ORDER BY created_at LIMIT 1`,
    [workflowId],
  );
  const template = rows[0]!.id;
  let copied = 0;
  for (let from = 0; from < contacts.length; from += COPY_CHUNK) {
    const result = await admin.query(
      `WITH copies AS (
         INSERT INTO executions (id, account_id, workflow_id, workflow_version_id, contact_id, status, snapshot, version,
                                 current_step_index, total_steps, retry_count, goal_event, next_run_at, waiting, payload,
                                 trace_context, slot_shard, waiting_event, created_at, updated_at)
         SELECT gen_random_uuid(), t.account_id, t.workflow_id, t.workflow_version_id, c.id, t.status, t.snapshot, t.version,
                t.current_step_index, t.total_steps, t.retry_count, t.goal_event, t.next_run_at, t.waiting, t.payload,
                t.trace_context, t.slot_shard, t.waiting_event, now(), now()
         FROM executions t, unnest($2::uuid[]) AS c(id) WHERE t.id = $1
         RETURNING id, contact_id)
       INSERT INTO execution_logs (execution_id, account_id, workflow_id, contact_id, event_type, step_index, step_id,
                                   status, timestamp, duration_ms, details)
       SELECT c.id, l.account_id, l.workflow_id, c.contact_id, l.event_type, l.step_index, l.step_id,
              l.status, now(), l.duration_ms, l.details
       FROM copies c, execution_logs l WHERE l.execution_id = $1`,
      [template, contacts.slice(from, from + COPY_CHUNK)],
    );
    copied += Math.min(COPY_CHUNK, contacts.length - from);
    if (result.rowCount === 0) throw new Error(`copying execution ${template} inserted no log rows`);
    if (copied % 100_000 === 0 || copied === contacts.length) progress(`${copied} executions copied`);
  }
  return copied;
}

const SPIKE_STEPS = `('action_completed', 'action_skipped', 'action_failed', 'wait_completed')`;

/** What the engine's processes and Postgres have used so far, for {@link drainCost}. */
interface CostReading {
  at: number;
  cpu: { workers: number; api: number; redis: number };
  /** pg_stat_wal, pg_stat_bgwriter and the database's pg_stat_database row. */
  pg: Record<
    'walRecords' | 'walFpi' | 'walBytes' | 'checkpoints' | 'backendWrites' | 'hit' | 'read' | 'commits',
    number
  >;
  /** Per table (log partitions as their table): sequential scans, the rows they read, blocks read from outside shared buffers. */
  tables: Map<string, TableReads>;
}

interface TableReads {
  seqScans: number;
  seqRows: number;
  blocksRead: number;
}

async function readCost(scale: Scale): Promise<CostReading> {
  const info = await scale.monitor.info('cpu');
  const redis =
    Number(/used_cpu_sys:([\d.]+)/.exec(info)?.[1] ?? 0) + Number(/used_cpu_user:([\d.]+)/.exec(info)?.[1] ?? 0);
  const { rows } = await scale.admin.query<CostReading['pg']>(
    `SELECT w.wal_records::float8 AS "walRecords", w.wal_fpi::float8 AS "walFpi", w.wal_bytes::float8 AS "walBytes",
            (b.checkpoints_timed + b.checkpoints_req)::float8 AS checkpoints, b.buffers_backend::float8 AS "backendWrites",
            d.blks_hit::float8 AS hit, d.blks_read::float8 AS read, d.xact_commit::float8 AS commits
       FROM pg_stat_wal w, pg_stat_bgwriter b, pg_stat_database d WHERE d.datname = current_database()`,
  );
  const tables = await scale.admin.query<TableReads & { name: string }>(
    `SELECT coalesce(parent.relname, t.relname) AS name, sum(t.seq_scan)::float8 AS "seqScans",
            sum(t.seq_tup_read)::float8 AS "seqRows",
            sum(coalesce(io.heap_blks_read, 0) + coalesce(io.idx_blks_read, 0) + coalesce(io.toast_blks_read, 0))::float8 AS "blocksRead"
       FROM pg_stat_user_tables t JOIN pg_statio_user_tables io USING (relid)
       LEFT JOIN pg_inherits i ON i.inhrelid = t.relid LEFT JOIN pg_class parent ON parent.oid = i.inhparent
      GROUP BY 1`,
  );
  const cpuOf = (list: BenchProcess[]) => list.reduce((sum, p) => sum + (cpuSeconds(p.child.pid) ?? 0), 0);
  return {
    at: Date.now(),
    cpu: { workers: cpuOf(scale.workers), api: cpuOf([scale.api]), redis },
    pg: rows[0]!,
    tables: new Map(tables.rows.map(({ name, ...reads }) => [name, reads])),
  };
}

/** The drain's cost per step (every workflow's steps in the window), from two readings. */
export interface DrainCost {
  steps: number;
  /** CPU ms per step: the workers, the API, the database's backends, Redis; and all of them per second. */
  cpuMsPerStep: { workers: number; api: number; postgres: number; redis: number };
  cpuCoresBusy: number;
  /** Postgres per step: WAL bytes, WAL records, full-page images, committed transactions, blocks read from outside shared buffers. */
  perStep: {
    walBytes: number;
    walRecords: number;
    walFpi: number;
    commits: number;
    blocksRead: number;
    backendWrites: number;
  };
  /** Share of block requests served from shared buffers; checkpoints in the window. */
  bufferHitRatio: number;
  checkpoints: number;
  /** The tables that read the most blocks from outside shared buffers in the window, with their sequential scans. */
  tables: (TableReads & { name: string })[];
}

function drainCost(from: CostReading, to: CostReading, postgresCpu: number, steps: number): DrainCost {
  const per = (n: number) => (steps > 0 ? n / steps : 0);
  const d = (key: keyof CostReading['pg']) => to.pg[key] - from.pg[key];
  const cpu = {
    workers: to.cpu.workers - from.cpu.workers,
    api: to.cpu.api - from.cpu.api,
    postgres: postgresCpu,
    redis: to.cpu.redis - from.cpu.redis,
  };
  const total = cpu.workers + cpu.api + cpu.postgres + cpu.redis;
  return {
    steps,
    cpuMsPerStep: {
      workers: per(cpu.workers * 1000),
      api: per(cpu.api * 1000),
      postgres: per(cpu.postgres * 1000),
      redis: per(cpu.redis * 1000),
    },
    cpuCoresBusy: total / Math.max(1, (to.at - from.at) / 1000),
    perStep: {
      walBytes: per(d('walBytes')),
      walRecords: per(d('walRecords')),
      walFpi: per(d('walFpi')),
      commits: per(d('commits')),
      blocksRead: per(d('read')),
      backendWrites: per(d('backendWrites')),
    },
    bufferHitRatio: d('hit') / Math.max(1, d('hit') + d('read')),
    checkpoints: d('checkpoints'),
    tables: [...to.tables]
      .map(([name, t]) => {
        const f = from.tables.get(name) ?? { seqScans: 0, seqRows: 0, blocksRead: 0 };
        return {
          name,
          seqScans: t.seqScans - f.seqScans,
          seqRows: t.seqRows - f.seqRows,
          blocksRead: t.blocksRead - f.blocksRead,
        };
      })
      .sort((a, b) => b.blocksRead - a.blocksRead)
      .slice(0, 4),
  };
}

async function runSpike(options: ScaleOptions, cleanup: Cleanup, progress: (line: string) => void) {
  const began = performance.now();
  const loadStart = os.loadavg()[0]!;
  const othersMax = options.triggerRate * 1_800; // contacts for 30 minutes of other triggers
  const scale = await startScale(options, cleanup, progress, othersMax);
  progress(`inserting ${options.contacts} contacts…`);
  const contacts = await insertContacts(scale.admin, scale.accountId, options.contacts);
  // A time of day a few minutes ago: its next occurrence is ~24 h away, beyond TIMER_HORIZON_MS.
  const ago = new Date(Date.now() - 5 * 60_000);
  const time = `${String(ago.getUTCHours()).padStart(2, '0')}:${String(ago.getUTCMinutes()).padStart(2, '0')}`;
  const spikeId = await createWorkflow(scale, 'Nine o’clock', {
    steps: [
      { id: 'nine', type: 'wait_until', config: { time, timezone: 'UTC' } },
      { id: 'hello', type: 'send_email', config: { subject: 'Good morning {{first_name}}', body: 'It is time.' } },
    ],
  });
  const otherId = await createWorkflow(scale, 'Welcome', {
    steps: [{ id: 'welcome', type: 'send_email', config: { subject: 'Hi {{first_name}}', body: 'Welcome!' } }],
  });
  const deadline = options.timeLimit ? Date.now() + options.timeLimit * 1000 : 0;

  const throughApi = Math.min(options.enrollThroughApi ?? contacts.length, contacts.length);
  progress(`enrolling ${throughApi} contacts into wait_until ${time} UTC…`);
  const setupStart = Date.now();
  const enrolled = await enroll(scale, options, spikeId, contacts.slice(0, throughApi), progress);
  let httpErrors = enrolled.httpErrors;
  await until(
    scale,
    async () => {
      const paused = (await statusCounts(scale, spikeId)).PAUSED ?? 0;
      progress(`${enrolled.ids.length} enrolled, ${paused} waiting`);
      return paused >= enrolled.ids.length;
    },
    deadline,
  );
  const waitingSeconds = (Date.now() - setupStart) / 1000;
  const copyStart = Date.now();
  const copied = await copyWaiting(scale.admin, spikeId, contacts.slice(throughApi), progress);
  const copySeconds = (Date.now() - copyStart) / 1000;
  const timers = enrolled.ids.length + copied;
  await sleep(2_000);
  const before = scale.samples.at(-1)!;

  // The setup's shortcut: the waits, due tomorrow, are made due within one minute starting 75 s from now
  // (plus the time the UPDATE takes, ~40 µs a row here, so that it has committed before the first is due).
  const dueFrom = new Date(Date.now() + 75_000 + timers * 0.04);
  progress(`moving the ${timers} due times into the minute from ${dueFrom.toISOString()}…`);
  await scale.admin.query(
    `UPDATE executions SET next_run_at = $2::timestamptz + random() * interval '60 seconds'
     WHERE workflow_id = $1 AND status = 'PAUSED'`,
    [spikeId, dueFrom],
  );
  if (Date.now() > dueFrom.getTime()) progress(`the due times were moved only after ${dueFrom.toISOString()}`);
  const spikeStart = Date.now();
  const postgresCpu = new PostgresCpu(scale.admin);
  await postgresCpu.sample(true);
  const costFrom = await readCost(scale);

  // Other executions, triggered at a steady rate through the spike.
  const triggerMs: number[] = [];
  let triggering = true;
  let triggered = 0;
  const otherContacts = await (async () => {
    const { rows } = await scale.admin.query<{ id: string }>(
      `INSERT INTO contacts (id, account_id, email, opted_in, attributes, tags, updated_at)
       SELECT gen_random_uuid(), $1, 'other' || i || '@example.com', true, '{"first_name": "Other"}', '{}', now()
       FROM generate_series(1, $2::int) AS i RETURNING id`,
      [scale.accountId, othersMax],
    );
    return rows.map((r) => r.id);
  })();
  const t0 = performance.now();
  const trigger = async (contactId: string) => {
    const sent = performance.now();
    const response = await requestJson(scale.api.port, 'POST', `/api/v1/workflows/${otherId}/trigger`, scale.apiKey, {
      contact_id: contactId,
    });
    triggerMs.push(performance.now() - sent);
    if (response.status !== 202 && httpErrors++ < 5) progress(`trigger answered ${response.status}`);
  };
  const triggers = (async () => {
    const pending: Promise<void>[] = [];
    while (triggering && triggered < otherContacts.length) {
      const wait = t0 + (triggered * 1000) / options.triggerRate - performance.now();
      if (wait > 0) await sleep(wait);
      pending.push(trigger(otherContacts[triggered++]!));
    }
    await Promise.all(pending);
  })();

  await until(
    scale,
    async () => {
      const counts = await statusCounts(scale, spikeId);
      const done = (counts.COMPLETED ?? 0) + (counts.FAILED ?? 0) + (counts.CANCELLED ?? 0);
      const last = scale.samples.at(-1)!;
      progress(
        `${Math.round((Date.now() - spikeStart) / 1000)} s: spike ${done} done, ${counts.PAUSED ?? 0} waiting; redis ${num(last.redisUsed / MB, 1)} MB, ${last.delayed} delayed, ${last.ready} ready; ${triggered} others triggered`,
      );
      await postgresCpu.sample();
      return done >= timers;
    },
    deadline,
    5_000,
  );
  await postgresCpu.sample();
  const costTo = await readCost(scale);
  triggering = false;
  await triggers;
  await until(
    scale,
    async () =>
      (await countOf(
        scale,
        `SELECT count(*) AS n FROM executions WHERE workflow_id = $1 AND status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED')`,
        [otherId],
      )) === 0,
    Date.now() + 120_000,
  );
  await sleep(2_000);
  await scale.stopSampling();
  const spikeSamples = scale.samples.filter((s) => s.at >= spikeStart);

  const one = async <T>(sql: string, params: unknown[]): Promise<T> =>
    (await scale.admin.query(sql, params)).rows[0] as T;
  const lateness = await one<{ p: number[] | null; max: number | null; n: number }>(
    `SELECT percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP (ORDER BY (details->>'lateness_ms')::float) AS p,
            max((details->>'lateness_ms')::float) AS max, count(*)::int AS n
     FROM execution_logs WHERE workflow_id = $1 AND event_type = 'wait_completed'`,
    [spikeId],
  );
  const steps = await one<{ n: number; peak: number | null; last: Date | null }>(
    `WITH s AS (SELECT timestamp FROM execution_logs WHERE workflow_id = $1 AND event_type IN ${SPIKE_STEPS} AND timestamp >= $2)
     SELECT count(*)::int AS n, max(timestamp) AS last,
            (SELECT max(c) FROM (SELECT count(*) AS c FROM s GROUP BY floor(extract(epoch FROM timestamp) / 5)) b)::int AS peak
     FROM s`,
    [spikeId, dueFrom],
  );
  const windowSteps = await countOf(
    scale,
    `SELECT count(*) AS n FROM execution_logs WHERE event_type IN ${SPIKE_STEPS} AND timestamp >= $1 AND timestamp <= $2`,
    [new Date(costFrom.at), new Date(costTo.at)],
  );
  const completed = await countOf(
    scale,
    `SELECT count(*) AS n FROM executions WHERE workflow_id = $1 AND status = 'COMPLETED'`,
    [spikeId],
  );
  const firstAction = await one<{ p: number[] | null; n: number }>(
    `WITH firsts AS (
       SELECT min(timestamp) FILTER (WHERE event_type = 'execution_started') AS started,
              min(timestamp) FILTER (WHERE event_type = 'action_started') AS acted
       FROM execution_logs WHERE workflow_id = $1 GROUP BY execution_id)
     SELECT percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY extract(epoch FROM acted - started) * 1000) AS p,
            count(*)::int AS n
     FROM firsts WHERE started >= $2 AND started <= $3`,
    [otherId, dueFrom, steps.last ?? new Date()],
  );
  const otherIncomplete = await countOf(
    scale,
    `SELECT count(*) AS n FROM executions WHERE workflow_id = $1 AND status <> 'COMPLETED'`,
    [otherId],
  );
  const providerStats = (await ask(scale.provider, 'stats')) as { requests: number; distinctKeys: number };
  const logErrors = await errorLogs(scale);
  const exits = scale.exits();
  scale.stopping();
  const drainSeconds = steps.last ? (steps.last.getTime() - dueFrom.getTime()) / 1000 : 0;
  const incomplete = options.contacts - completed + otherIncomplete;
  const duplicateSends = Math.max(0, providerStats.requests - providerStats.distinctKeys);
  const { json: _j, keep: _k, ...shown } = options;
  const result: SpikeResult = {
    scenario: 'spike',
    options: shown,
    machine: { cpus: os.cpus().length, loadStart, loadEnd: os.loadavg()[0]! },
    setup: {
      enrolledPerSec: enrolled.ids.length / enrolled.seconds,
      waitingSeconds,
      copied,
      copySeconds,
      redisDelayedBefore: before.delayed,
    },
    spike: {
      timers: lateness.n,
      drainSeconds,
      timersPerSec: drainSeconds > 0 ? lateness.n / drainSeconds : 0,
      stepsPerSec: drainSeconds > 0 ? steps.n / drainSeconds : 0,
      peakStepsPerSec: (steps.peak ?? 0) / 5,
      latenessMs: { p50: lateness.p?.[0] ?? null, p99: lateness.p?.[1] ?? null, max: lateness.max },
      cost: drainCost(costFrom, costTo, postgresCpu.seconds, windowSteps),
    },
    others: {
      triggered,
      triggerToFirstActionMs: {
        p50: firstAction.p?.[0] ?? null,
        p95: firstAction.p?.[1] ?? null,
        p99: firstAction.p?.[2] ?? null,
      },
      apiTriggerMs: percentiles(triggerMs),
    },
    redis: {
      peakMb: peak(spikeSamples, (s) => s.redisUsed) / MB,
      beforeMb: before.redisUsed / MB,
      peakDelayed: peak(spikeSamples, (s) => s.delayed),
      peakReady: peak(spikeSamples, (s) => s.ready),
    },
    rssMb: { workerPeak: peak(scale.samples, workerRss), apiPeak: peak(scale.samples, (s) => s.rss.api ?? 0) },
    errors: {
      total: httpErrors + incomplete + logErrors + exits + duplicateSends,
      http: httpErrors,
      incomplete,
      logErrors,
      exits,
      duplicateSends,
    },
    seconds: (performance.now() - began) / 1000,
  };
  return result;
}

export function formatSpike(r: SpikeResult): string {
  return table(
    `flowmachine bench --scenario spike: ${r.options.contacts} timers due within one minute, others triggered at ${r.options.triggerRate}/s, ${r.options.workers} workers × ${r.options.workerConcurrency}${r.options.readyTarget ? `, TIMER_READY_TARGET ${r.options.readyTarget}` : ''}; ${r.machine.cpus} CPUs, load ${num(r.machine.loadStart, 1)} → ${num(r.machine.loadEnd, 1)}; ${num(r.seconds)} s`,
    ['metric', 'value'],
    [
      [
        'setup: enrolled/s; seconds until all waited; delayed jobs in Redis then',
        `${num(r.setup.enrolledPerSec)}; ${num(r.setup.waitingSeconds)}; ${r.setup.redisDelayedBefore}`,
      ],
      ...(r.setup.copied > 0
        ? [
            [
              'setup: executions copied in SQL from those enrolled; seconds',
              `${num(r.setup.copied)}; ${num(r.setup.copySeconds)}`,
            ] as [string, string],
          ]
        : []),
      [
        'spike: timers resumed; seconds from the first due time to the last completion',
        `${num(r.spike.timers)}; ${num(r.spike.drainSeconds)}`,
      ],
      [
        'timers resumed/s; steps/s while they drain (best 5 s)',
        `${num(r.spike.timersPerSec)}; ${num(r.spike.stepsPerSec)} (${num(r.spike.peakStepsPerSec)})`,
      ],
      [
        'drain cost: CPU ms/step worker / API / Postgres / Redis; cores busy',
        `${num(r.spike.cost.cpuMsPerStep.workers, 2)} / ${num(r.spike.cost.cpuMsPerStep.api, 2)} / ${num(r.spike.cost.cpuMsPerStep.postgres, 2)} / ${num(r.spike.cost.cpuMsPerStep.redis, 2)}; ${num(r.spike.cost.cpuCoresBusy, 2)}`,
      ],
      [
        'drain cost per step: WAL bytes / records / full pages; commits; blocks read (hit ratio); backend writes; checkpoints',
        `${num(r.spike.cost.perStep.walBytes)} / ${num(r.spike.cost.perStep.walRecords, 1)} / ${num(r.spike.cost.perStep.walFpi, 2)}; ${num(r.spike.cost.perStep.commits, 2)}; ${num(r.spike.cost.perStep.blocksRead, 2)} (${num(r.spike.cost.bufferHitRatio * 100, 1)} %); ${num(r.spike.cost.perStep.backendWrites, 2)}; ${r.spike.cost.checkpoints}`,
      ],
      [
        'drain: blocks read from outside shared buffers by table (sequential scans, rows they read)',
        r.spike.cost.tables
          .map((t) => `${t.name} ${num(t.blocksRead)} (${num(t.seqScans)}, ${num(t.seqRows)})`)
          .join('; '),
      ],
      [
        'timer lateness p50 / p99 / max ms',
        `${num(r.spike.latenessMs.p50)} / ${num(r.spike.latenessMs.p99)} / ${num(r.spike.latenessMs.max)}`,
      ],
      [
        `other workflow (${r.others.triggered} triggered): trigger → first action p50/p95/p99 ms`,
        trio(r.others.triggerToFirstActionMs),
      ],
      ['other workflow: API trigger p50/p95/p99 ms', trio(r.others.apiTriggerMs)],
      [
        'Redis used MB before → peak during the spike; peak delayed / ready jobs',
        `${num(r.redis.beforeMb, 1)} → ${num(r.redis.peakMb, 1)}; ${r.redis.peakDelayed} / ${r.redis.peakReady}`,
      ],
      ['RSS MB peak: worker / API', `${num(r.rssMb.workerPeak)} / ${num(r.rssMb.apiPeak)}`],
      [
        'errors (http / incomplete / error logs / exits / duplicate sends)',
        `${r.errors.total} (${r.errors.http} / ${r.errors.incomplete} / ${r.errors.logErrors} / ${r.errors.exits} / ${r.errors.duplicateSends})`,
      ],
    ],
  );
}

// ---------------------------------------------------------------------------------------------------

/** Parses a scenario's command line (see the file comment). */
export function parseScaleOptions(argv: string[]): ScaleOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      scenario: { type: 'string' },
      contacts: { type: 'string', default: '10000' },
      bulk: { type: 'string', default: '1000' },
      clients: { type: 'string', default: '4' },
      workers: { type: 'string', default: '2' },
      'worker-concurrency': { type: 'string', default: '50' },
      'provider-latency': { type: 'string', default: '5' },
      'trigger-rate': { type: 'string', default: '20' },
      'ready-target': { type: 'string' },
      'enroll-queue-limit': { type: 'string' },
      enroll: { type: 'string' },
      'time-limit': { type: 'string', default: '0' },
      'log-level': { type: 'string', default: 'info' },
      keep: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  if (values.scenario !== 'waiting' && values.scenario !== 'spike')
    throw new Error('--scenario must be waiting or spike');
  const int = (name: string, value: string | undefined, min: number) => {
    const parsed = Number(value);
    if (!Number.isInteger(parsed) || parsed < min) throw new Error(`--${name} must be an integer ≥ ${min}`);
    return parsed;
  };
  return {
    scenario: values.scenario,
    contacts: int('contacts', values.contacts, 1),
    bulk: int('bulk', values.bulk, 1),
    clients: int('clients', values.clients, 1),
    workers: int('workers', values.workers, 1),
    workerConcurrency: int('worker-concurrency', values['worker-concurrency'], 1),
    providerLatency: int('provider-latency', values['provider-latency'], 0),
    triggerRate: int('trigger-rate', values['trigger-rate'], 1),
    readyTarget: values['ready-target'] ? int('ready-target', values['ready-target'], 1) : null,
    enrollQueueLimit: values['enroll-queue-limit'] ? int('enroll-queue-limit', values['enroll-queue-limit'], 0) : null,
    enrollThroughApi: values.enroll ? int('enroll', values.enroll, 1) : null,
    timeLimit: int('time-limit', values['time-limit'], 0),
    logLevel: values['log-level'],
    keep: values.keep,
    json: values.json,
  };
}

/** Runs one scenario, prints its table (and JSON with `--json`); resolves with whether it had no error. */
export async function runScenario(
  argv: string[],
  cleanup: Cleanup,
  progress: (line: string) => void,
): Promise<boolean> {
  const options = parseScaleOptions(argv);
  if (options.scenario === 'waiting') {
    const result = await runWaiting(options, cleanup, progress);
    console.log(formatWaiting(result));
    if (options.json) console.log(JSON.stringify(result));
    return result.errors.total === 0;
  }
  const result = await runSpike(options, cleanup, progress);
  console.log(formatSpike(result));
  if (options.json) console.log(JSON.stringify(result));
  return result.errors.total === 0;
}
