/**
 * API latency benchmark: seeds a fresh database with 100,000 executions (about three log entries each),
 * starts the API process alone (no worker, so triggered executions accumulate), and sends open-loop load
 * (Poisson arrivals at a mean rate, latency from each request's scheduled arrival) to
 * `GET /api/v1/executions/{id}` (random ids), `GET /api/v1/workflows/{id}/stats` (of the seeded workflow,
 * all its executions) and then `POST /api/v1/workflows/{id}/trigger` (a fresh contact per request).
 * Prints p50/p95/p99 and errors per endpoint.
 *
 * Usage: `npm run bench:api -- [--executions 100000] [--rate 500] [--duration 20] [--connections 64] [--json]
 *   [--api-node-args="--cpu-prof --cpu-prof-dir=/tmp/prof"]`
 * (see docs/benchmarks.md). Exits 1 when any request failed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { Pool } from 'undici';
import { createAccount } from '../src/api/api-keys.ts';
import { createDb } from '../src/db/client.ts';
import { startPrivateRedis } from '../test/helpers/redis-server.ts';
import {
  benchDefinition,
  Cleanup,
  cpuSeconds,
  createBenchDatabase,
  engineEnv,
  insertContacts,
  percentiles,
  PostgresCpu,
  rssMb,
  startEngineProcess,
  type Percentiles,
} from './bench.ts';

/** One endpoint's figures. */
export interface EndpointResult {
  endpoint: string;
  requests: number;
  perSec: number;
  latencyMs: Percentiles & { max: number | null };
  errors: number;
  statuses: Record<string, number>;
  /** CPU ms per request of the API process, of the Postgres backends and of this load generator. */
  cpuMs: { api: number; postgres: number; client: number };
}

/**
 * Seeds `count` executions of one workflow, one per contact, as a running system would leave them:
 * 60% COMPLETED, 20% PAUSED on the wait, 10% ACTIVE, 10% FAILED, created over the last 30 days, each with
 * `execution_started`, `action_started` and `action_completed` log entries.
 */
async function seedExecutions(
  client: pg.ClientBase,
  accountId: string,
  workflowId: string,
  versionId: string,
): Promise<void> {
  await client.query(
    `WITH shaped AS (
       SELECT c.id AS contact_id, n, now() - (n % 43200) * interval '1 minute' AS created,
              CASE WHEN n % 10 < 6 THEN 'COMPLETED' WHEN n % 10 < 8 THEN 'PAUSED' WHEN n % 10 = 8 THEN 'ACTIVE' ELSE 'FAILED' END AS status
       FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM contacts WHERE account_id = $1) AS c)
     INSERT INTO executions (id, account_id, workflow_id, workflow_version_id, contact_id, status, snapshot, version, current_step_index,
                             total_steps, retry_count, completion_reason, last_error, next_run_at, payload, created_at, updated_at, finished_at)
     SELECT gen_random_uuid(), $1, $2, $3, contact_id, status,
            jsonb_build_object('value', CASE status WHEN 'COMPLETED' THEN 'completed' WHEN 'PAUSED' THEN 'pause' WHEN 'ACTIVE' THEN 'follow_up' ELSE 'failed' END,
                               'context', jsonb_build_object('steps', CASE status WHEN 'COMPLETED' THEN 5 WHEN 'PAUSED' THEN 3 ELSE 4 END,
                                                             'failedStep', CASE WHEN status = 'FAILED' THEN 'follow_up' END, 'reason', NULL)),
            CASE status WHEN 'COMPLETED' THEN 7 WHEN 'PAUSED' THEN 5 WHEN 'ACTIVE' THEN 6 ELSE 9 END,
            CASE status WHEN 'COMPLETED' THEN 5 WHEN 'PAUSED' THEN 4 ELSE 5 END, 5,
            CASE WHEN status = 'FAILED' THEN 3 ELSE 0 END,
            CASE status WHEN 'COMPLETED' THEN 'completed' WHEN 'FAILED' THEN 'max_retries_exhausted' END,
            CASE WHEN status = 'FAILED' THEN 'provider answered 503' END,
            CASE WHEN status = 'PAUSED' THEN created + interval '2 days' END,
            '{"source": "api-bench"}', created, created + interval '3 minutes',
            CASE WHEN status IN ('COMPLETED', 'FAILED') THEN created + interval '3 minutes' END
     FROM shaped`,
    [accountId, workflowId, versionId],
  );
  await client.query(
    `INSERT INTO execution_logs (execution_id, account_id, workflow_id, contact_id, event_type, step_index, step_id, status, timestamp, duration_ms, details)
     SELECT e.id, e.account_id, e.workflow_id, e.contact_id, l.event_type, CASE WHEN l.step_id IS NULL THEN 0 ELSE 1 END, l.step_id, l.status, e.created_at + l.after, l.duration_ms, l.details
     FROM executions e CROSS JOIN (VALUES
       ('execution_started', NULL, 'QUEUED', interval '0', NULL::int, '{"workflow_version": 1}'::jsonb),
       ('action_started', 'welcome', 'STARTED', interval '20 milliseconds', NULL,
        '{"action_type": "send_email", "attempt": 1, "action_config": {"to": "b***@example.com", "subject": "Hi Bench", "body": "Welcome aboard, Bench!"}}'),
       ('action_completed', 'welcome', 'SUCCESS', interval '45 milliseconds', 25, '{"action_type": "send_email"}')
     ) AS l(event_type, step_id, status, after, duration_ms, details)`,
  );
  // The triggers counted the seeded rows as deltas; a worker would fold them within a second.
  for (let folded = 1; folded > 0; )
    folded = (await client.query<{ n: number }>('SELECT flowmachine_fold_counts(100000) AS n')).rows[0]!.n;
  await client.query('VACUUM ANALYZE');
}

/**
 * Open-loop load: requests arrive as a Poisson process of mean `rate` per second (exponential gaps), whatever
 * the server's speed, over at most `connections` keep-alive connections. Each latency runs from the request's
 * scheduled arrival to the end of its response, so a server that falls behind is charged for the time its
 * requests waited (no coordinated omission). `next` gives each request's method, path and body.
 */
async function load(
  name: string,
  target: { port: number; apiKey: string; pid: number | undefined; client: pg.ClientBase },
  options: { rate: number; duration: number; connections: number },
  next: () => { method: 'GET' | 'POST'; path: string; body?: string },
): Promise<EndpointResult> {
  const pool = new Pool(`http://127.0.0.1:${target.port}`, { connections: options.connections, pipelining: 1 });
  const headers = { authorization: `Bearer ${target.apiKey}`, 'content-type': 'application/json' };
  const samples: number[] = [];
  const statuses: Record<string, number> = {};
  let failures = 0;
  const inFlight = new Set<Promise<void>>();
  const send = (scheduled: number) => {
    const sent = pool
      .request({ ...next(), headers })
      .then(async (response) => {
        await response.body.dump();
        samples.push(performance.now() - scheduled);
        statuses[response.statusCode] = (statuses[response.statusCode] ?? 0) + 1;
      })
      .catch(() => void failures++)
      .finally(() => inFlight.delete(sent));
    inFlight.add(sent);
  };
  const postgres = new PostgresCpu(target.client);
  await postgres.sample(true);
  const apiBefore = cpuSeconds(target.pid) ?? 0;
  const clientBefore = process.cpuUsage();
  const began = performance.now();
  const end = began + options.duration * 1000;
  for (let due = began; due < end; ) {
    for (
      const now = performance.now();
      due <= now && due < end;
      due += (-Math.log(1 - Math.random()) * 1000) / options.rate
    )
      send(due);
    await sleep(Math.max(0, Math.min(due, end) - performance.now()));
  }
  await Promise.all(inFlight);
  const seconds = (performance.now() - began) / 1000;
  const client = process.cpuUsage(clientBefore);
  await pool.close();
  await postgres.sample();
  const perRequest = (cpu: number) => (samples.length ? (1000 * cpu) / samples.length : 0);
  const non2xx = Object.entries(statuses).reduce((sum, [code, count]) => sum + (code.startsWith('2') ? 0 : count), 0);
  return {
    endpoint: name,
    requests: samples.length,
    perSec: samples.length / seconds,
    latencyMs: { ...percentiles(samples), max: samples.length ? Math.max(...samples) : null },
    errors: failures + non2xx,
    statuses,
    cpuMs: {
      api: perRequest((cpuSeconds(target.pid) ?? 0) - apiBefore),
      postgres: perRequest(postgres.seconds),
      client: perRequest((client.user + client.system) / 1e6),
    },
  };
}

async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      executions: { type: 'string', default: '100000' },
      rate: { type: 'string', default: '500' },
      duration: { type: 'string', default: '20' },
      connections: { type: 'string', default: '64' },
      json: { type: 'boolean', default: false },
      'api-node-args': { type: 'string', default: '' },
    },
  });
  const [executions, rate, duration, connections] = [
    values.executions,
    values.rate,
    values.duration,
    values.connections,
  ].map(Number) as [number, number, number, number];
  const progress = (line: string) => console.error(`[api-bench] ${line}`);
  const cleanup = new Cleanup();
  const interrupt = () => void cleanup.run().then(() => process.exit(130));
  process.once('SIGINT', interrupt);
  process.once('SIGTERM', interrupt);
  process.once('uncaughtException', (error) => {
    console.error(`api-bench: ${error.stack ?? error.message}`);
    void cleanup.run().then(() => process.exit(1));
  });
  let errors = 0;
  try {
    const began = performance.now();
    const tmp = mkdtempSync(path.join(os.tmpdir(), 'fm-api-bench-'));
    cleanup.add(() => rmSync(tmp, { recursive: true, force: true }));
    const db = await createBenchDatabase(cleanup, '_api');
    const redis = await startPrivateRedis();
    cleanup.add(() => redis.stop());

    progress(`seeding ${executions} executions into ${db.name}…`);
    const prisma = createDb(db.url, { max: 1 });
    const account = await createAccount(prisma, { name: 'API bench', adminEmail: 'bench@example.com' }).finally(() =>
      prisma.$disconnect(),
    );
    const client = new pg.Client({ connectionString: db.url });
    client.on('error', (error) => progress(`bench connection lost: ${error.message}`));
    await client.connect();
    cleanup.add(() => client.end());
    const workflowId = crypto.randomUUID();
    const versionId = crypto.randomUUID();
    await client.query(`UPDATE accounts SET concurrent_executions_per_account = 1000000 WHERE id = $1`, [
      account.account_id,
    ]);
    await client.query(`INSERT INTO workflows (id, account_id, name, status) VALUES ($1, $2, 'API bench', 'active')`, [
      workflowId,
      account.account_id,
    ]);
    await client.query(`INSERT INTO workflow_versions (id, workflow_id, version, definition) VALUES ($1, $2, 1, $3)`, [
      versionId,
      workflowId,
      JSON.stringify(benchDefinition('2 days')),
    ]);
    await insertContacts(client, account.account_id, executions);
    const seeding = performance.now();
    await seedExecutions(client, account.account_id, workflowId, versionId);
    const ids = (await client.query<{ id: string }>('SELECT id FROM executions')).rows.map((row) => row.id);
    const fresh = await insertContacts(client, account.account_id, Math.ceil(rate * duration * 1.5));
    const size = (
      await client.query<{ logs: number; mb: number }>(
        `SELECT (SELECT count(*)::int FROM execution_logs) AS logs,
              ((pg_total_relation_size('executions') + (SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree('execution_logs'))) / 1048576.0)::float AS mb`,
      )
    ).rows[0]!;
    progress(
      `seeded ${ids.length} executions and ${size.logs} logs (${Math.round(size.mb)} MB) in ${((performance.now() - seeding) / 1000).toFixed(1)} s`,
    );

    const api = await startEngineProcess(
      'api',
      'api',
      engineEnv({ DATABASE_URL: db.url, REDIS_URL: redis.url, QUEUE_PREFIX: 'fm', LOG_LEVEL: 'info' }),
      tmp,
      values['api-node-args'].split(/\s+/).filter(Boolean),
    );
    cleanup.add(() => api.stop());
    const settings = { rate, duration, connections };
    const warm = { ...settings, duration: 2 };
    const read = () => ({
      method: 'GET' as const,
      path: `/api/v1/executions/${ids[Math.floor(Math.random() * ids.length)]}`,
    });
    let nextContact = 0;
    const trigger = () => ({
      method: 'POST' as const,
      path: `/api/v1/workflows/${workflowId}/trigger`,
      body: JSON.stringify({ contact_id: fresh[nextContact++ % fresh.length] }),
    });

    progress(`GET /executions/{id} at ${rate}/s for ${duration} s…`);
    const target = { port: api.port, apiKey: account.api_key, pid: api.child.pid, client };
    await load('warm-up', target, warm, read);
    const get = await load('GET /api/v1/executions/{id}', target, settings, read);
    progress(`GET /workflows/{id}/stats at ${rate}/s for ${duration} s…`);
    const stats = () => ({ method: 'GET' as const, path: `/api/v1/workflows/${workflowId}/stats` });
    await load('warm-up', target, warm, stats);
    const counted = await load('GET /api/v1/workflows/{id}/stats', target, settings, stats);
    progress(`POST /workflows/{id}/trigger at ${rate}/s for ${duration} s…`);
    await load('warm-up', target, warm, trigger);
    const post = await load('POST /api/v1/workflows/{id}/trigger', target, settings, trigger);
    const apiRss = rssMb(api.child.pid);
    const results = [get, counted, post];
    errors = get.errors + counted.errors + post.errors;

    const f = (value: number | null) => (value === null ? 'n/a' : value.toFixed(1));
    console.log(
      `flowmachine api-bench: ${ids.length} executions (${size.logs} logs, ${Math.round(size.mb)} MB), ${rate} requests/s for ${duration} s each, ${connections} connections; API RSS ${Math.round(apiRss)} MB; ${os.cpus().length} CPUs, load ${os.loadavg()[0]!.toFixed(1)}; ${Math.round((performance.now() - began) / 1000)} s\n`,
    );
    console.log(
      '| endpoint | requests | achieved req/s | p50 ms | p95 ms | p99 ms | max ms | errors | CPU ms/request: API / Postgres / load generator |',
    );
    console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
    for (const r of results) {
      console.log(
        `| ${r.endpoint} | ${r.requests} | ${r.perSec.toFixed(0)} | ${f(r.latencyMs.p50)} | ${f(r.latencyMs.p95)} | ${f(r.latencyMs.p99)} | ${f(r.latencyMs.max)} | ${r.errors} | ${r.cpuMs.api.toFixed(2)} / ${r.cpuMs.postgres.toFixed(2)} / ${r.cpuMs.client.toFixed(2)} |`,
      );
    }
    if (values.json)
      console.log(
        JSON.stringify({
          executions: ids.length,
          logs: size.logs,
          databaseMb: size.mb,
          rate,
          duration,
          connections,
          apiRssMb: apiRss,
          results,
        }),
      );
  } finally {
    await cleanup.run();
  }
  process.exit(errors === 0 ? 0 : 1);
}

main(process.argv.slice(2)).catch((error: Error) => {
  console.error(`api-bench: ${error.stack ?? error.message}`);
  process.exit(1);
});
