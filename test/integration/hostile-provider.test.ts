import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createAccount } from '../../src/api/api-keys.ts';
import { createManualClock } from '../../src/clock.ts';
import { sequential } from '../fixtures/workflows.ts';
import { startHarness, type Harness } from '../helpers/harness.ts';

// A provider that answers 429 with a Retry-After no engine should take at its word (issue: Retry-After
// 0 made 1,473 calls in 3 s; 10000000000000 gave an Invalid Date and a 317-year hold for every tenant).
describe('hostile provider answers', () => {
  let h: Harness;
  const clock = createManualClock(new Date('2026-04-01T12:00:00.000Z'));
  beforeAll(async () => {
    h = await startHarness({ worker: false, clock, env: { MAX_RETRY_DELAY_SECONDS: '7200' } });
  });
  afterAll(() => h.stop());
  beforeEach(async () => {
    await h.deps.redis.del(`${h.config.QUEUE_PREFIX}:rate-limit:email`);
    await h.api.patch('/account/settings', { max_retry_attempts: 3, retry_base_delay_seconds: 60 });
  });

  const start = async (definition: unknown = sequential) =>
    h.trigger((await h.createWorkflow(definition)).id, (await h.createContact()).id);
  const waitOf = async (id: string) => {
    const row = await h.db.execution.findUniqueOrThrow({ where: { id } });
    return row.nextRunAt!.getTime() - clock.now().getTime();
  };
  const limitLog = async (id: string) =>
    (await h.logsOf(id)).find((l) => l.eventType === 'rate_limit_hit')?.details as Record<string, unknown>;

  it.each([
    ['0', 60],
    ['-5', 60],
    ['soon', 60],
    ['Thu, 01 Jan 1970 00:00:00 GMT', 60],
  ])('Retry-After %j gets the normal back-off, never an immediate repeat', async (header, seconds) => {
    const id = await start();
    h.provider.script({ status: 429, retryAfter: header });
    const calls = h.provider.requestsTo('/email').length;
    const { outcome } = await h.step(id);
    expect(outcome).toBe('committed');
    expect(h.provider.requestsTo('/email').length).toBe(calls + 1);
    expect(await waitOf(id)).toBe(seconds * 1000);
    expect(await limitLog(id)).toMatchObject({ retry_after_seconds: seconds });
    // The next job waits the back-off too: no provider call can follow at once.
    const next = await h.step(id);
    expect(next.delayMs).toBe(seconds * 1000);
  });

  it.each(['10000000000000', '3000000000', 'Fri, 31 Dec 9999 23:59:59 GMT', '9'.repeat(400)])(
    'Retry-After %j waits at most MAX_RETRY_AFTER_SECONDS, and holds the provider no longer',
    async (header) => {
      const id = await start();
      h.provider.script({ status: 429, retryAfter: header });
      await h.step(id);
      expect(await waitOf(id)).toBe(3_600_000);
      const log = await limitLog(id);
      expect(log).toMatchObject({ retry_after_seconds: 3_600 });
      expect(new Date(log.resume_at as string).toISOString()).toBe(
        new Date(clock.now().getTime() + 3_600_000).toISOString(),
      );
      const hold = await h.deps.redis.pttl(`${h.config.QUEUE_PREFIX}:rate-limit:email`);
      expect(hold).toBeGreaterThan(0);
      expect(hold).toBeLessThanOrEqual(3_600_000);
      // Another execution's email is held for the same bounded time and logged, not failed.
      const other = await start();
      await h.step(other);
      expect(await waitOf(other)).toBeLessThanOrEqual(3_600_000);
      expect((await h.logsOf(other)).map((l) => l.eventType)).toContain('action_delayed');
    },
  );

  it('retry back-off is capped by MAX_RETRY_DELAY_SECONDS whatever the account settings', async () => {
    await h.api.patch('/account/settings', { max_retry_attempts: 20, retry_base_delay_seconds: 86_400 });
    const id = await start();
    h.provider.script({ status: 503 });
    await h.step(id);
    expect(await waitOf(id)).toBe(7_200_000);
    const scheduled = (await h.logsOf(id)).find((l) => l.eventType === 'retry_scheduled');
    expect(scheduled?.details).toMatchObject({ delay_seconds: 7_200 });
  });

  it("one account's webhook endpoint answering 429 does not hold another account's calls to the same host", async () => {
    const hook = {
      steps: [
        { id: 'hook', type: 'webhook', config: { url: `${h.provider.url}/hook`, method: 'POST', body: { ok: true } } },
      ],
    };
    const a = await start(hook);
    h.provider.script({ status: 429, retryAfter: '30' });
    await h.step(a);
    expect(await waitOf(a)).toBe(30_000);

    const other = await createAccount(h.db, { name: 'Other tenant', adminEmail: 'other@example.com' });
    const created = await h.api.post(
      '/workflows',
      { name: 'B hook', status: 'active', definition: hook },
      other.api_key,
    );
    const contact = await h.api.post('/contacts', { email: 'b@example.com', opted_in: true }, other.api_key);
    const triggered = await h.api.post(
      `/workflows/${created.body.id}/trigger`,
      { contact_id: contact.body.id },
      other.api_key,
    );
    const calls = h.provider.requestsTo('/hook').length;
    await h.step(triggered.body.execution_id);
    expect(h.provider.requestsTo('/hook').length).toBe(calls + 1);
    expect((await h.db.execution.findUniqueOrThrow({ where: { id: triggered.body.execution_id } })).status).toBe(
      'COMPLETED',
    );

    // The same account's next call to that host is held back.
    const again = await start(hook);
    await h.step(again);
    expect(h.provider.requestsTo('/hook').length).toBe(calls + 1);
    expect((await h.logsOf(again)).map((l) => l.eventType)).toContain('action_delayed');
    // The metric label is the provider's kind, not the tenant's host.
    expect(await h.deps.metrics.registry.getSingleMetricAsString('flowmachine_rate_limit_hits_total')).toMatch(
      /provider="webhook"/,
    );
  });
});
