import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CallerCache } from '../../src/api/auth.ts';
import { DOCS_CSP } from '../../src/api/docs.ts';
import { startRuntime } from '../../src/runtime.ts';
import { startHarness, type Harness } from '../helpers/harness.ts';

const METRICS_TOKEN = 'metrics-token-0123456789';

// What any caller could do before: read X-Powered-By, mint and revoke keys with any key, raise its own
// account's concurrency to 100,000, scrape /metrics, and send requests without limit.
describe('API security', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ worker: false, env: { MAX_ACCOUNT_CONCURRENCY: '500', METRICS_TOKEN } });
  });
  afterAll(() => h.stop());

  it('sends the usual security headers and no X-Powered-By; HTML pages keep their own policy', async () => {
    for (const path of ['/health', '/api/v1/contacts/x', '/nowhere']) {
      const response = await fetch(`${h.baseUrl}${path}`);
      expect(response.headers.get('x-powered-by'), path).toBeNull();
      expect(response.headers.get('x-content-type-options'), path).toBe('nosniff');
      expect(response.headers.get('content-security-policy'), path).toContain("default-src 'none'");
    }
    const docs = await fetch(`${h.baseUrl}/docs`);
    expect(docs.headers.get('content-security-policy')).toBe(DOCS_CSP);
  });

  it('member keys cannot manage keys or settings; admin keys can, and make member keys', async () => {
    const created = await h.api.post('/api-keys', { name: 'ops', role: 'member' });
    expect(created.status).toBe(201);
    expect(created.body.role).toBe('member');
    const member = created.body.api_key as string;
    const admin = (await h.api.get('/api-keys')).body.data.find((k: { name: string }) => k.name === 'initial');
    for (const [method, path, body] of [
      ['GET', '/api/v1/api-keys', undefined],
      ['POST', '/api/v1/api-keys', {}],
      ['DELETE', `/api/v1/api-keys/${admin.id}`, undefined],
      ['PATCH', '/api/v1/account/settings', { concurrent_executions_per_account: 400 }],
    ] as const) {
      const response = await h.api.raw(method, path, body, {}, member);
      expect(response.status, `${method} ${path}`).toBe(403);
      expect(response.body.error).toMatch(/admin role/);
    }
    expect((await h.api.get('/account/settings', member)).status).toBe(200);
    expect((await h.api.post('/contacts', { email: 'm@example.com', opted_in: true }, member)).status).toBe(201);
    expect((await h.api.get('/account/settings')).body.concurrent_executions_per_account).toBe(100);
    expect((await h.api.post('/api-keys', { role: 'owner' })).status).toBe(400);
  });

  it("caps an account's concurrency at the operator's MAX_ACCOUNT_CONCURRENCY", async () => {
    const refused = await h.api.patch('/account/settings', { concurrent_executions_per_account: 501 });
    expect(refused.status).toBe(400);
    expect(refused.body.issues).toEqual([
      { path: 'body.concurrent_executions_per_account', message: expect.stringMatching(/at most 500/) },
    ]);
    expect((await h.api.get('/account/settings')).body.concurrent_executions_per_account).toBe(100);
    expect((await h.api.patch('/account/settings', { concurrent_executions_per_account: 500 })).status).toBe(200);
  });

  // Found on a last pass: a bulk enrollment stored its payload with each of up to 1,000 executions, so one
  // 100 KB request wrote 100 MB.
  it('bounds what every execution of a trigger stores: payloads and event properties at most 16 KB', async () => {
    const workflow = await h.createWorkflow({ steps: [{ id: 'tag', type: 'add_tag', config: { tag: 't' } }] });
    const contact = await h.createContact();
    const big = { blob: 'x'.repeat(17_000) };
    const before = await h.db.execution.count();
    for (const [path, body, field] of [
      [`/workflows/${workflow.id}/trigger`, { contact_id: contact.id, payload: big }, 'body.payload'],
      [`/workflows/${workflow.id}/enrollments`, { contact_ids: [contact.id], payload: big }, 'body.payload'],
      [`/contacts/${contact.id}/events`, { name: 'signed_up', properties: big }, 'body.properties'],
    ] as const) {
      const response = await h.api.post(path, body);
      expect(response.status, path).toBe(400);
      expect(response.body.issues, path).toEqual([{ path: field, message: expect.stringMatching(/at most 16 KB/) }]);
    }
    expect(await h.db.execution.count()).toBe(before);
    expect(
      (
        await h.api.post(`/workflows/${workflow.id}/trigger`, {
          contact_id: contact.id,
          payload: { blob: 'x'.repeat(15_000) },
        })
      ).status,
    ).toBe(202);
  });

  it('guards /metrics with METRICS_TOKEN', async () => {
    expect((await fetch(`${h.baseUrl}/metrics`)).status).toBe(401);
    expect((await fetch(`${h.baseUrl}/metrics`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    const ok = await fetch(`${h.baseUrl}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain('flowmachine_executions');
  });
});

describe('API rate limits', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ worker: false, env: { API_RATE_LIMIT: '3' } });
  });
  afterAll(() => h.stop());

  it('limits requests per key (API_RATE_LIMIT) with 429 and Retry-After, and failed authentications per address', async () => {
    const answers = await Promise.all(Array.from({ length: 30 }, () => h.api.get('/account/settings')));
    const limited = answers.filter((a) => a.status === 429);
    // At most two one-second windows' worth (3 each) get through, whatever the machine's speed.
    expect(limited.length).toBeGreaterThanOrEqual(24);
    expect(limited[0]!.body.error).toBe('too many requests');
    expect(Number(limited[0]!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    // Failed authentications are counted per address: after 3 in a second the address gets 429, even
    // before its key is looked up.
    const statuses: number[] = [];
    for (let i = 0; i < 10; i += 1) statuses.push((await h.api.get('/account/settings', 'fm_not-a-key')).status);
    expect(statuses.slice(0, 3)).toEqual([401, 401, 401]);
    expect(statuses.filter((status) => status === 429).length).toBeGreaterThanOrEqual(1);
  });

  it('holds the limit across API processes: the count is in Redis', async () => {
    const second = await startRuntime(h.config, { api: true, worker: false });
    try {
      const urls = [h.baseUrl, `http://127.0.0.1:${second.port}`];
      const answers = await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          fetch(`${urls[i % 2]}/api/v1/account/settings`, {
            headers: { authorization: `Bearer ${h.account.api_key}` },
          }),
        ),
      );
      // 3 a second for the key, whichever process answers: at most two windows' worth get through.
      expect(answers.filter((a) => a.status === 200).length).toBeLessThanOrEqual(6);
      expect(answers.filter((a) => a.status === 429).length).toBeGreaterThanOrEqual(24);
    } finally {
      await second.stop();
    }
  });
});

describe('caller cache', () => {
  it('a flood of unknown keys cannot push a valid caller out', () => {
    const cache = new CallerCache(60_000, 10, 100);
    const caller = { accountId: 'a', userId: 'u', apiKeyId: 'k', role: 'admin' as const };
    cache.set('valid', caller, 0);
    for (let i = 0; i < 5_000; i += 1) cache.set(`unknown-${i}`, null, 1);
    expect(cache.get('valid', 2)).toEqual(caller);
    expect(cache.get('unknown-4999', 2)).toBeNull();
    expect(cache.get('unknown-0', 2)).toBeUndefined();
  });
});

describe('rate limits without Redis', () => {
  it('fail open, and say so in the log', async () => {
    const { createRedis } = await import('../../src/queue/redis.ts');
    const { ApiRateLimits } = await import('../../src/api/rate-limit.ts');
    // Nothing listens on port 1: every command waits for a connection that never comes.
    const redis = createRedis({ mode: 'single', url: 'redis://127.0.0.1:1' });
    redis.on('error', () => undefined);
    const warnings: string[] = [];
    const logger = { warn: (message: string) => warnings.push(message) } as never;
    const limits = new ApiRateLimits(redis, 'fmtest', 1, logger);
    try {
      for (let i = 0; i < 3; i += 1) await limits.request('key');
      await limits.checkAddress('127.0.0.1');
      expect(warnings).toEqual(['rate limiter unavailable; requests are not limited']);
    } finally {
      redis.disconnect();
    }
  });
});
