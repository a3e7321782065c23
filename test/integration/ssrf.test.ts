import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.ts';
import { sendProviderRequest } from '../../src/providers/http-provider.ts';
import type { HostResolver } from '../../src/providers/webhook-guard.ts';
import { startFakeProvider, type FakeProvider } from '../helpers/fake-provider.ts';
import { startHarness, type Harness } from '../helpers/harness.ts';

// Network rule of these tests: traffic goes to loopback only. Non-public addresses are refused by
// literal checks and by a resolver that maps the made-up name `rebind.test` to 127.0.0.1, never by
// trying to connect anywhere else.
const resolveHost: HostResolver = async (hostname) => {
  if (hostname === 'rebind.test') return [{ address: '127.0.0.1', family: 4 }];
  throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
};

const hookThenTag = (url: string) => ({
  steps: [
    { id: 'hook', type: 'webhook', config: { url, method: 'POST', body: { hello: 'world' } } },
    { id: 'tag', type: 'add_tag', config: { tag: 'after_hook' } },
  ],
});
const finished = (e: { status: string }) => e.status === 'COMPLETED' || e.status === 'FAILED';

describe('webhook address guard', () => {
  let h: Harness;
  let port: string;

  beforeAll(async () => {
    h = await startHarness({ resolveHost });
    port = new URL(h.provider.url).port;
  });
  afterAll(() => h?.stop());

  it.each([
    'http://169.254.169.254/latest/meta-data/',
    'http://localhost:3000/',
    'http://2130706433/',
    'http://0177.0.0.1/',
    'http://0x7f.1/',
    'http://[::1]/',
    'http://[::ffff:127.0.0.1]/',
    'http://10.0.0.1/',
    'http://metadata.google.internal/computeMetadata/v1/',
  ])('POST /workflows refuses %s with 400 and the path', async (url) => {
    const response = await h.api.post('/workflows', {
      name: 'SSRF',
      definition: {
        steps: [
          { id: 'a', type: 'add_tag', config: { tag: 'x' } },
          { id: 'hook', type: 'webhook', config: { url } },
        ],
      },
    });
    expect(response.status).toBe(400);
    expect(response.body.issues).toEqual([
      { path: 'definition.steps.1.config.url', message: expect.stringContaining('must not point to') },
    ]);
  });

  it('a loopback port other than the allow-listed one is refused, PUT /definition too', async () => {
    const workflow = await h.createWorkflow(hookThenTag(`${h.provider.url}/hook`));
    const response = await h.api.put(`/workflows/${workflow.id}/definition`, {
      definition: hookThenTag('http://127.0.0.1:1/hook'),
    });
    expect(response.status).toBe(400);
    expect(response.body.issues).toEqual([
      { path: 'definition.steps.0.config.url', message: expect.stringContaining('loopback address (127.0.0.1)') },
    ]);
  });

  it('a name that resolves to loopback is refused at send time: no request, a permanent failure, the execution goes on', async () => {
    const before = h.provider.received.length;
    const workflow = await h.createWorkflow(hookThenTag(`http://rebind.test:${port}/hook`));
    const id = await h.trigger(workflow.id, (await h.createContact()).id);
    const execution = await h.waitForExecution(id, finished);
    expect(execution.status).toBe('COMPLETED');
    expect(h.provider.received.length).toBe(before);
    const logs = await h.logsOf(id);
    const skipped = logs.find((l) => l.eventType === 'skipped_non_retryable_error');
    expect(skipped?.details).toEqual({
      error: 'webhook address not allowed: rebind.test resolves to 127.0.0.1, which is loopback',
    });
    expect(logs.filter((l) => l.eventType === 'action_failed')).toHaveLength(1);
    expect(logs.some((l) => l.eventType === 'retry_scheduled')).toBe(false);
    expect((await h.db.contact.findFirstOrThrow({ where: { id: execution.contact_id } })).tags).toContain('after_hook');
  });

  it('the allow-listed fake provider is delivered to', async () => {
    const before = h.provider.requestsTo('/hook').length;
    const id = await h.trigger(
      (await h.createWorkflow(hookThenTag(`${h.provider.url}/hook`))).id,
      (await h.createContact()).id,
    );
    expect((await h.waitForExecution(id, finished)).status).toBe('COMPLETED');
    expect(h.provider.requestsTo('/hook')).toHaveLength(before + 1);
  });

  it('a 302 to another loopback address is not followed: a non-2xx answer, skipped', async () => {
    const other: FakeProvider = await startFakeProvider();
    try {
      h.provider.script({ status: 302, headers: { location: `${other.url}/stolen` } });
      const id = await h.trigger(
        (await h.createWorkflow(hookThenTag(`${h.provider.url}/hook`))).id,
        (await h.createContact()).id,
      );
      expect((await h.waitForExecution(id, finished)).status).toBe('COMPLETED');
      const failed = (await h.logsOf(id)).find((l) => l.eventType === 'action_failed');
      expect(failed?.details).toMatchObject({ http_status: 302, retryable: false });
      expect(other.received).toHaveLength(0);
    } finally {
      await other.close();
    }
  });
});

describe('webhook address guard with the name allow-listed', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ resolveHost, env: { WEBHOOK_ALLOWED_HOSTS: 'rebind.test' } });
  });
  afterAll(() => h?.stop());

  it('the same webhook is delivered', async () => {
    const port = new URL(h.provider.url).port;
    const id = await h.trigger(
      (await h.createWorkflow(hookThenTag(`http://rebind.test:${port}/hook`))).id,
      (await h.createContact()).id,
    );
    expect((await h.waitForExecution(id, finished)).status).toBe('COMPLETED');
    expect(h.provider.requestsTo('/hook')).toHaveLength(1);
    expect(h.provider.requestsTo('/hook')[0]!.body).toEqual({ hello: 'world' });
  });
});

describe('bounded reads of answers', () => {
  const BODY_BYTES = 200 * 1024 * 1024;
  let server: Server;
  let url: string;
  const sent = { bytes: 0, closedEarly: false };

  beforeAll(async () => {
    // 500 with a 200 MB body, generated chunk by chunk as the socket drains (never held at once).
    server = createServer((request, response) => {
      request.resume();
      const chunk = Buffer.alloc(64 * 1024, 'x');
      response.writeHead(500, { 'content-type': 'text/plain', 'content-length': String(BODY_BYTES) });
      response.on('close', () => (sent.closedEarly = !response.writableFinished));
      const pump = () => {
        while (sent.bytes < BODY_BYTES && !response.destroyed) {
          sent.bytes += chunk.length;
          if (!response.write(chunk)) return void response.once('drain', pump);
        }
        response.end();
      };
      pump();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}/huge`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('a 500 with a 200 MB body is transient with a short error, read only in part', async () => {
    global.gc?.();
    const rssBefore = process.memoryUsage().rss;
    const outcome = await sendProviderRequest(
      { url, method: 'POST', body: {}, idempotencyKey: 'k', timeoutMs: 10_000 },
      systemClock,
    );
    const grownBy = process.memoryUsage().rss - rssBefore;
    expect(outcome).toMatchObject({ kind: 'transient', status: 500 });
    expect((outcome as { error: string }).error).toMatch(/^HTTP 500: x{300}$/);
    expect(grownBy).toBeLessThan(50 * 1024 * 1024);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(sent.closedEarly).toBe(true);
    expect(sent.bytes).toBeLessThan(BODY_BYTES / 4);
  });

  it('keeps up to 4 KB of a success body', async () => {
    const provider = await startFakeProvider();
    try {
      provider.script({ status: 200, body: { id: 'abc', pad: 'y'.repeat(10_000) } });
      const outcome = await sendProviderRequest(
        { url: `${provider.url}/ok`, idempotencyKey: 'k', timeoutMs: 5_000 },
        systemClock,
      );
      expect(outcome).toMatchObject({ kind: 'success', status: 200 });
      const body = (outcome as { body?: string }).body!;
      expect(body.startsWith('{"id":"abc","pad":"yyy')).toBe(true);
      expect(Buffer.byteLength(body)).toBe(4096);
    } finally {
      await provider.close();
    }
  });
});
