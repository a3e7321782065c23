import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { createAccount } from '../../src/api/api-keys.ts';
import type { Clock } from '../../src/clock.ts';
import { loadConfig, type Config } from '../../src/config.ts';
import { processStep } from '../../src/engine/process-step.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { stepJobId } from '../../src/queue/step-queue.ts';
import type { HostResolver } from '../../src/providers/webhook-guard.ts';
import { startRuntime, type Runtime } from '../../src/runtime.ts';
import { createTestDatabase } from './database.ts';
import { startFakeProvider, type FakeProvider } from './fake-provider.ts';

/** Options of {@link startHarness}. */
export interface HarnessOptions {
  worker?: boolean;
  clock?: Clock;
  env?: Record<string, string>;
  /** Resolver of webhook host names (the runtime's `resolveHost`); the system's by default. */
  resolveHost?: HostResolver;
}

/** A JSON response as the tests see it. */
export interface ApiResponse<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

/**
 * Everything an integration test needs, all real: a fresh Postgres database cloned from the
 * migrated template, a fresh queue prefix on the real Redis, the API and (optionally) a worker in
 * this process, a fake HTTP provider, and an account with its API key.
 */
export async function startHarness(options: HarnessOptions = {}) {
  const database = await createTestDatabase();
  const provider = await startFakeProvider();
  const logLines: string[] = [];
  const config: Config = loadConfig({
    ...process.env,
    DATABASE_URL: database.url,
    QUEUE_PREFIX: `fmtest-${randomBytes(5).toString('hex')}`,
    PORT: '0',
    EMAIL_HTTP_URL: provider.emailUrl,
    SMS_HTTP_URL: provider.smsUrl,
    PROVIDER_TIMEOUT_MS: '1000',
    WORKER_LOCK_MS: '5000',
    SWEEP_INTERVAL_MS: '200',
    LOG_LEVEL: 'debug',
    // Webhooks to the fake provider (a loopback address) are allowed; other loopback ports are not.
    WEBHOOK_ALLOWED_HOSTS: new URL(provider.url).host,
    ...options.env,
  });
  const logger = createLogger({
    level: 'debug',
    stream: new Writable({
      write(chunk, _enc, done) {
        logLines.push(String(chunk));
        done();
      },
    }),
  });
  const runtime: Runtime = await startRuntime(
    config,
    { api: true, worker: options.worker ?? true },
    { clock: options.clock, logger, resolveHost: options.resolveHost },
  );
  const baseUrl = `http://127.0.0.1:${runtime.port}`;
  const account = await createAccount(runtime.deps.db, { name: 'Test account', adminEmail: 'admin@example.com' });

  const request = async <T = any>(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
    apiKey = account.api_key,
  ): Promise<ApiResponse<T>> => {
    const response = await fetch(`${baseUrl}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${apiKey}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...headers,
      },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      /* not JSON */
    }
    return { status: response.status, body: parsed as T, headers: response.headers };
  };

  const api = {
    get: <T = any>(path: string, apiKey?: string) => request<T>('GET', `/api/v1${path}`, undefined, {}, apiKey),
    post: <T = any>(path: string, body?: unknown, apiKey?: string) =>
      request<T>('POST', `/api/v1${path}`, body ?? {}, {}, apiKey),
    patch: <T = any>(path: string, body?: unknown, apiKey?: string) =>
      request<T>('PATCH', `/api/v1${path}`, body ?? {}, {}, apiKey),
    put: <T = any>(path: string, body?: unknown, apiKey?: string) =>
      request<T>('PUT', `/api/v1${path}`, body ?? {}, {}, apiKey),
    delete: <T = any>(path: string, apiKey?: string) => request<T>('DELETE', `/api/v1${path}`, undefined, {}, apiKey),
    raw: request,
  };

  /** Creates a contact through the API. */
  const createContact = async (overrides: Record<string, unknown> = {}) => {
    const response = await api.post('/contacts', {
      email: `c${randomBytes(4).toString('hex')}@example.com`,
      phone: '+15551234567',
      opted_in: true,
      ...overrides,
    });
    if (response.status !== 201) throw new Error(`contact not created: ${JSON.stringify(response.body)}`);
    return response.body as { id: string; email: string };
  };

  /** Creates an active workflow through the API. */
  const createWorkflow = async (definition: unknown, name = 'Welcome Sequence', status = 'active') => {
    const response = await api.post('/workflows', { name, definition, status });
    if (response.status !== 201) throw new Error(`workflow not created: ${JSON.stringify(response.body)}`);
    return response.body as { id: string };
  };

  /** Triggers and returns the execution id. */
  const trigger = async (workflowId: string, contactId: string) => {
    const response = await api.post(`/workflows/${workflowId}/trigger`, { contact_id: contactId });
    if (response.status !== 202) throw new Error(`trigger failed: ${response.status} ${JSON.stringify(response.body)}`);
    return (response.body as { execution_id: string }).execution_id;
  };

  /** Creates `n` contacts in one statement and enrolls them; returns the QUEUED executions' ids, each with its first job. */
  const enrollNew = async (workflowId: string, n: number) => {
    const { rows } = await runtime.deps.pool.query<{ id: string }>(
      `INSERT INTO contacts (id, account_id, email, updated_at) SELECT gen_random_uuid(), $1, 'c-' || gen_random_uuid() || '@example.com', now() FROM generate_series(1, $2) RETURNING id`,
      [account.account_id, n],
    );
    const response = await api.post(`/workflows/${workflowId}/enrollments`, { contact_ids: rows.map((r) => r.id) });
    if (response.status !== 200)
      throw new Error(`enrollment failed: ${response.status} ${JSON.stringify(response.body)}`);
    return (response.body.results as { execution_id: string }[]).map((r) => r.execution_id);
  };

  /** Polls the execution until `predicate` holds (an awaited condition, never a fixed sleep). */
  const waitForExecution = async (id: string, predicate: (e: any) => boolean, timeoutMs = 20_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const { body } = await api.get(`/executions/${id}`);
      if (predicate(body)) return body;
      if (Date.now() > deadline)
        throw new Error(`execution ${id} did not reach the expected state; last: ${JSON.stringify(body)}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  };

  /**
   * For worker-less harnesses: takes the job the engine enqueued for the execution's current version
   * out of Redis (failing if there is none) and runs it as a worker would. Returns the job, so tests
   * can check its delay.
   */
  const step = async (executionId: string) => {
    const row = await runtime.deps.db.execution.findUniqueOrThrow({ where: { id: executionId } });
    const job = await runtime.deps.queue.queue.getJob(stepJobId(executionId, row.version));
    if (!job)
      throw new Error(`no job in Redis for execution ${executionId} at version ${row.version} (status ${row.status})`);
    const delayMs = job.opts.delay ?? 0;
    await job.remove();
    const outcome = await processStep(runtime.deps, runtime.deps.cache, job.data);
    return { outcome, delayMs, job };
  };

  /** ACTIVE executions the account's slot shards count. */
  const activeSlots = async (accountId = account.account_id) =>
    (await runtime.deps.db.accountSlot.aggregate({ where: { accountId }, _sum: { used: true } }))._sum.used ?? 0;

  /**
   * The value `GET /metrics` gives the sample of `name` whose labels include `labels` (e.g.
   * `reason="queue_full"`), NaN when it has none.
   */
  const metric = async (name: string, labels = '') => {
    const text = await (await fetch(`${baseUrl}/metrics`)).text();
    const line = text
      .split('\n')
      .find((l) => (l.startsWith(`${name}{`) || l.startsWith(`${name} `)) && l.includes(labels));
    return line ? Number(line.split(' ').at(-1)) : Number.NaN;
  };

  const logsOf = async (executionId: string) =>
    runtime.deps.db.executionLog.findMany({ where: { executionId }, orderBy: { id: 'asc' } });

  return {
    config,
    runtime,
    deps: runtime.deps,
    db: runtime.deps.db,
    provider,
    account,
    api,
    baseUrl,
    logLines,
    createContact,
    createWorkflow,
    enrollNew,
    trigger,
    waitForExecution,
    logsOf,
    metric,
    activeSlots,
    step,
    async stop() {
      await runtime.stop();
      await provider.close();
      await database.drop();
    },
  };
}

export type Harness = Awaited<ReturnType<typeof startHarness>>;
export type { FakeProvider };
