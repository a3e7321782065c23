import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sequential } from '../fixtures/workflows.ts';
import { startHarness, type Harness } from '../helpers/harness.ts';
import { startProcess, type EngineProcess } from '../helpers/processes.ts';

// With the standard OTEL_* variables set, a real engine process exports, besides its own spans, the
// spans of the standard HTTP, undici, Postgres (pg and Prisma) and Redis instrumentations over OTLP/HTTP.
describe('OpenTelemetry export', () => {
  let h: Harness;
  let receiver: Server;
  let engine: EngineProcess | null = null;
  const spans: {
    scope: string;
    name: string;
    traceId: string;
    spanId: string;
    parentSpanId?: string;
    kind?: number;
    attributes: { key: string; value: { stringValue?: string } }[];
    events?: { name: string; attributes?: { key: string; value: { stringValue?: string; intValue?: number } }[] }[];
  }[] = [];

  beforeAll(async () => {
    h = await startHarness({ worker: false });
    receiver = createServer((request, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => (body += chunk.toString()));
      request.on('end', () => {
        const parsed = JSON.parse(body || '{}') as {
          resourceSpans?: {
            scopeSpans?: {
              scope: { name: string };
              spans: { name: string; traceId: string; spanId: string; attributes: [] }[];
            }[];
          }[];
        };
        for (const resource of parsed.resourceSpans ?? [])
          for (const scope of resource.scopeSpans ?? [])
            for (const span of scope.spans) spans.push({ scope: scope.scope.name, ...span });
        response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  });
  afterAll(async () => {
    engine?.kill('SIGKILL');
    await engine?.exited;
    receiver.closeAllConnections();
    await new Promise((resolve) => receiver.close(resolve));
    await h.stop();
  });

  it('exports HTTP, provider call, Postgres, Prisma and Redis spans with the execution spans', async () => {
    const { port } = receiver.address() as { port: number };
    engine = await startProcess(
      'start',
      {
        PORT: '0',
        DATABASE_URL: h.config.DATABASE_URL,
        QUEUE_PREFIX: h.config.QUEUE_PREFIX,
        EMAIL_HTTP_URL: h.provider.emailUrl,
        SMS_HTTP_URL: h.provider.smsUrl,
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_BSP_SCHEDULE_DELAY: '200',
        OTEL_SERVICE_NAME: 'flowmachine-test',
      },
      60_000,
    );
    // Trigger through the engine process's own API, so its HTTP server spans are exported too.
    const apiPort = Number(/"port":(\d+)/.exec(engine.output.join(''))![1]);
    const workflow = await h.createWorkflow(sequential);
    const contact = await h.createContact();
    const triggered = await fetch(`http://127.0.0.1:${apiPort}/api/v1/workflows/${workflow.id}/trigger`, {
      method: 'POST',
      headers: { authorization: `Bearer ${h.account.api_key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ contact_id: contact.id }),
    });
    const { execution_id: id } = (await triggered.json()) as { execution_id: string };
    // A CRUD read through the same API: those routes query through Prisma (the engine's own statements go to pg).
    const read = await fetch(`http://127.0.0.1:${apiPort}/api/v1/workflows/${workflow.id}`, {
      headers: { authorization: `Bearer ${h.account.api_key}` },
    });
    expect(read.status).toBe(200);
    await h.waitForExecution(id, (e) => e.status === 'COMPLETED', 30_000);
    const deadline = Date.now() + 20_000;
    const scopes = () => new Set(spans.map((s) => s.scope));
    const wanted = [
      '@opentelemetry/instrumentation-http',
      '@opentelemetry/instrumentation-undici',
      '@opentelemetry/instrumentation-pg',
      '@opentelemetry/instrumentation-ioredis',
      'prisma',
      'flowmachine',
    ];
    const actionCount = () => spans.filter((s) => s.scope === 'flowmachine' && s.name.startsWith('action ')).length;
    while ((!wanted.every((scope) => scopes().has(scope)) || actionCount() < 3) && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 100));
    expect([...scopes()]).toEqual(expect.arrayContaining(wanted));
    const actions = spans.filter((s) => s.scope === 'flowmachine' && s.name.startsWith('action '));
    expect(actions.map((s) => s.name).sort()).toEqual(['action add_tag', 'action send_email', 'action send_sms']);
    // The trigger request's server span and the execution's spans share one trace.
    const trigger = spans.find((s) => s.scope === 'flowmachine' && s.name === 'trigger execution')!;
    expect(spans.some((s) => s.scope === '@opentelemetry/instrumentation-http' && s.traceId === trigger.traceId)).toBe(
      true,
    );
    expect(actions.every((a) => a.traceId === trigger.traceId)).toBe(true);
    expect(spans.some((s) => s.scope === '@opentelemetry/instrumentation-pg' && s.traceId === trigger.traceId)).toBe(
      true,
    );
    // Each provider call is a client span under its action's span.
    const calls = spans.filter(
      (s) => s.scope === '@opentelemetry/instrumentation-undici' && s.traceId === trigger.traceId,
    );
    const parentOf = (call: (typeof spans)[number]) => actions.find((a) => a.spanId === call.parentSpanId)?.name;
    expect(calls.map(parentOf).sort()).toEqual(['action send_email', 'action send_sms']);
    expect(calls.every((call) => call.name === 'POST')).toBe(true);
  }, 120_000);

  // A bulk enrollment refused while the queue is full is an event on its request's HTTP server span, and
  // the warning logged for it carries that span's ids.
  it('records a refused bulk enrollment on the request span', async () => {
    engine?.kill('SIGKILL'); // no worker may take the job that fills the queue
    await engine?.exited;
    const { port } = receiver.address() as { port: number };
    engine = await startProcess(
      'api',
      {
        PORT: '0',
        DATABASE_URL: h.config.DATABASE_URL,
        QUEUE_PREFIX: h.config.QUEUE_PREFIX,
        ENROLL_QUEUE_LIMIT: '1',
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_BSP_SCHEDULE_DELAY: '200',
        OTEL_SERVICE_NAME: 'flowmachine-test',
      },
      60_000,
    );
    const apiUrl = `http://127.0.0.1:${/"port":(\d+)/.exec(engine.output.join(''))![1]}`;
    const headers = { authorization: `Bearer ${h.account.api_key}`, 'content-type': 'application/json' };
    const workflow = await h.createWorkflow(sequential);
    const [first, second] = [await h.createContact(), await h.createContact()];
    const triggered = await fetch(`${apiUrl}/api/v1/workflows/${workflow.id}/trigger`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ contact_id: first.id }),
    });
    expect(triggered.status).toBe(202); // its first job is ready, and no worker takes it: the queue is full
    const refused = await fetch(`${apiUrl}/api/v1/workflows/${workflow.id}/enrollments`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ contact_ids: [second.id] }),
    });
    expect(refused.status).toBe(429);
    expect(await (await fetch(`${apiUrl}/metrics`)).text()).toContain(
      'flowmachine_enrollments_refused_total{reason="queue_full"} 1',
    );

    const refusalOf = (span: (typeof spans)[number]) => span.events?.find((e) => e.name === 'bulk enrollment refused');
    const deadline = Date.now() + 20_000;
    while (!spans.some(refusalOf) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
    const request = spans.find(refusalOf)!;
    expect(request).toBeDefined();
    expect(request.scope).toBe('@opentelemetry/instrumentation-http');
    expect(request.kind).toBe(2); // SERVER
    const attributes = Object.fromEntries(
      refusalOf(request)!.attributes!.map(({ key, value }) => [key, value.stringValue ?? Number(value.intValue)]),
    );
    expect(attributes).toEqual({
      'flowmachine.refusal_reason': 'queue_full',
      'flowmachine.ready_jobs': 1,
      'flowmachine.enroll_queue_limit': 1,
      'flowmachine.workflow_id': workflow.id,
    });
    const warning = engine.output
      .join('')
      .split('\n')
      .filter((line) => line.includes('"message":"bulk enrollment refused"'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(warning).toEqual([
      expect.objectContaining({ level: 'warn', trace_id: request.traceId, span_id: request.spanId }),
    ]);
  }, 120_000);
});
