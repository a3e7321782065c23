import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createManualClock } from '../../src/clock.ts';
import { commitChange } from '../../src/engine/commit.ts';
import { loadExecution, loadForJob } from '../../src/engine/load.ts';
import { notifyFailure } from '../../src/engine/notify.ts';
import { createSweeper } from '../../src/engine/sweeper.ts';
import { emails, sequential, withWait } from '../fixtures/workflows.ts';
import { startHarness, type Harness } from '../helpers/harness.ts';

// Failure handling through the real engine and a real HTTP fake provider. Delays are checked on the
// scheduled job and on next_run_at (manual clock), never by sleeping.
describe('Feature: Error Handling and Retry Logic', () => {
  let h: Harness;
  const clock = createManualClock(new Date('2026-04-01T12:00:00.000Z'));
  beforeAll(async () => {
    // A webhook to a closed loopback port (127.0.0.1:1) is one of the scenarios: allow loopback on any port.
    h = await startHarness({ worker: false, clock, env: { WEBHOOK_ALLOWED_HOSTS: '127.0.0.1' } });
  });
  afterAll(() => h.stop());
  beforeEach(async () => {
    h.provider.setDefault({ status: 200 });
    await h.api.patch('/account/settings', {
      max_retry_attempts: 3,
      retry_base_delay_seconds: 60,
      error_notification: true,
    });
  });

  const start = async (definition: unknown = sequential) =>
    h.trigger((await h.createWorkflow(definition)).id, (await h.createContact()).id);
  const row = (id: string) => h.db.execution.findUniqueOrThrow({ where: { id } });
  const notificationsOf = (id: string) =>
    h.provider.received.filter((r) => r.body.step_id === 'error_notification' && r.body.execution_id === id);

  it('Scenario: Retry action on transient error', async () => {
    const id = await start();
    h.provider.script({ status: 503 });
    await h.step(id);
    const execution = await row(id);
    expect(execution.retryCount).toBe(1);
    // Still at step 1 during the back-off.
    expect(execution).toMatchObject({ status: 'ACTIVE', currentStepIndex: 1 });
    expect(execution.nextRunAt?.getTime()).toBe(clock.now().getTime() + 60_000);
    const logs = await h.logsOf(id);
    const failed = logs.find((l) => l.eventType === 'action_failed');
    expect(failed).toMatchObject({ status: 'FAILED', stepId: 'welcome', stepIndex: 1 });
    expect(failed!.details).toMatchObject({ http_status: 503, retryable: true });
    expect(String((failed!.details as { error: string }).error)).toContain('HTTP 503');
    expect(logs.find((l) => l.eventType === 'retry_scheduled')!.details).toMatchObject({
      delay_seconds: 60,
      retry_count: 1,
    });

    clock.advance(60_000);
    const retry = await h.step(id);
    expect(retry.delayMs).toBe(60_000);
    const sent = h.provider.received.filter((r) => r.body.execution_id === id && r.path === '/email');
    expect(sent).toHaveLength(2);
    expect(new Set(sent.map((r) => r.idempotencyKey))).toEqual(new Set([`${id}:welcome`]));
    expect((await row(id)).retryCount).toBe(0);
  });

  it('Scenario: Exponential backoff on repeated failures', async () => {
    const id = await start();
    h.provider.script({ status: 503 }, { status: 503 }, { status: 503 });
    const delays: number[] = [];
    for (let attempt = 0; attempt < 3; attempt += 1) {
      await h.step(id);
      const execution = await row(id);
      delays.push(execution.nextRunAt!.getTime() - clock.now().getTime());
      clock.advance(execution.nextRunAt!.getTime() - clock.now().getTime());
    }
    expect(delays).toEqual([60_000, 120_000, 240_000]);
    const scheduled = (await h.logsOf(id))
      .filter((l) => l.eventType === 'retry_scheduled')
      .map((l) => (l.details as { delay_seconds: number }).delay_seconds);
    expect(scheduled).toEqual([60, 120, 240]);
    const last = await h.step(id); // the job of the third retry carries the 240 s delay
    expect(last.delayMs).toBe(240_000);
  });

  it('Scenario: Mark execution as failed after max retries', async () => {
    const id = await start();
    h.provider.script({ status: 503 }, { status: 503 }, { status: 503 }, { status: 503 });
    for (let attempt = 0; attempt <= 3; attempt += 1) {
      await h.step(id);
      const execution = await row(id);
      if (execution.nextRunAt) clock.advance(execution.nextRunAt.getTime() - clock.now().getTime());
    }
    const failed = await row(id);
    // It keeps the position of the step that failed: step 1.
    expect(failed).toMatchObject({
      status: 'FAILED',
      retryCount: 3,
      completionReason: 'max_retries_exhausted',
      currentStepIndex: 1,
    });
    const types = (await h.logsOf(id)).map((l) => l.eventType);
    expect(types).toContain('max_retries_exhausted');
    expect(types).toContain('execution_failed');
    expect(types).toContain('notification_sent');
    await expect(h.step(id)).rejects.toThrow(/no job in Redis/);
    const notification = h.provider.received.find(
      (r) => r.body.step_id === 'error_notification' && r.body.execution_id === id,
    );
    expect(notification?.body.to).toBe('admin@example.com');
  });

  it('Scenario: Handle non-retryable error', async () => {
    const id = await start();
    h.provider.script({ status: 400, body: { error: 'invalid email format' } });
    await h.step(id);
    const execution = await row(id);
    expect(execution.retryCount).toBe(0);
    expect(execution.currentStepIndex).toBe(2); // on to step 2
    expect(execution.nextRunAt).toBeNull();
    const logs = await h.logsOf(id);
    expect(logs.find((l) => l.eventType === 'action_failed')).toMatchObject({ status: 'FAILED' });
    expect(logs.map((l) => l.eventType)).toContain('skipped_non_retryable_error');
    expect(logs.map((l) => l.eventType)).not.toContain('retry_scheduled');
    await h.step(id);
    await h.step(id);
    expect((await row(id)).status).toBe('COMPLETED');
  });

  it('Scenario: Send error notification on failure', async () => {
    await h.api.patch('/account/settings', { max_retry_attempts: 0, admin_email: 'ops@example.com' });
    const workflow = await h.createWorkflow(sequential, 'Onboarding');
    const id = await h.trigger(workflow.id, (await h.createContact()).id);
    h.provider.script({ status: 503 });
    await h.step(id);
    expect((await row(id)).status).toBe('FAILED');
    const notification = h.provider.received.find(
      (r) => r.body.step_id === 'error_notification' && r.body.execution_id === id,
    )!;
    expect(notification.body).toMatchObject({ to: 'ops@example.com', workflow_name: 'Onboarding', execution_id: id });
    expect(String(notification.body.error_message)).toContain('HTTP 503');
    expect(String(notification.body.body)).toContain(id);
    const sent = (await h.logsOf(id)).find((l) => l.eventType === 'notification_sent');
    expect(sent?.details).toMatchObject({ workflow_name: 'Onboarding', to: 'o***@example.com' });
  });

  it('a failing notification never loses the failed execution, and is retried: 503 then 200 is logged failed once, sent once', async () => {
    await h.api.patch('/account/settings', { max_retry_attempts: 0 });
    const id = await start();
    h.provider.script({ status: 503 }, { status: 503 });
    await h.step(id);
    expect(await row(id)).toMatchObject({
      status: 'FAILED',
      notifyPending: true,
      notifyAttempts: 1,
      notifyAfter: new Date(clock.now().getTime() + 30_000),
    });
    const failed = (await h.logsOf(id)).filter((l) => l.eventType === 'notification_failed');
    expect(failed.map((l) => l.details)).toEqual([
      {
        to: expect.stringMatching(/\*\*\*@example\.com$/),
        attempt: 1,
        error: expect.stringContaining('HTTP 503'),
        next_attempt_at: new Date(clock.now().getTime() + 30_000).toISOString(),
      },
    ]);
    const sweep = createSweeper(h.deps);
    await sweep();
    expect(notificationsOf(id)).toHaveLength(1); // not due yet
    clock.advance(30_000);
    await sweep(); // the provider answers 200 now
    await sweep();
    const notifications = (await h.logsOf(id)).filter((l) => l.eventType.startsWith('notification_'));
    expect(notifications.map((l) => l.eventType)).toEqual(['notification_failed', 'notification_sent']);
    expect(notifications[1]!.details).toMatchObject({ attempt: 2 });
    const key = `${id}:error_notification:${(await row(id)).version}`;
    expect(notificationsOf(id).map((r) => r.idempotencyKey)).toEqual([key, key]); // delivered once, on the second attempt
    expect(await row(id)).toMatchObject({ status: 'FAILED', notifyPending: false });
  });

  it('no notification when error_notification is off', async () => {
    await h.api.patch('/account/settings', { max_retry_attempts: 0, error_notification: false });
    const id = await start();
    h.provider.script({ status: 503 });
    await h.step(id);
    expect((await row(id)).status).toBe('FAILED');
    expect((await h.logsOf(id)).map((l) => l.eventType)).not.toContain('notification_sent');
  });

  it('a failure whose worker died before notifying is notified by the sweeper, once, with the same idempotency key', async () => {
    await h.api.patch('/account/settings', { max_retry_attempts: 0, admin_email: 'ops@example.com' });
    const id = await start();
    await loadForJob(h.deps, h.deps.cache, { executionId: id, version: 0 }); // admitted
    // The worker commits the failure as processStep does, then dies before notifying.
    const committed = await commitChange(h.deps, (await loadExecution(h.deps, h.deps.cache, id))!, {
      event: { type: 'STEP_FAILED' },
      lastError: 'HTTP 503',
      failure: 'HTTP 503',
      logs: [],
    });
    expect(committed?.finished).toBe('failed');
    expect(await row(id)).toMatchObject({ status: 'FAILED', notifyPending: true });
    const notifications = () =>
      h.provider.received.filter((r) => r.body.step_id === 'error_notification' && r.body.execution_id === id);
    const sweep = createSweeper(h.deps);
    expect((await sweep()).notified).toBe(0); // a live worker may still be notifying
    clock.advance(h.config.STALE_AFTER_MS + h.config.PROVIDER_TIMEOUT_MS + 1);
    expect((await sweep()).notified).toBe(1);
    expect(notifications()).toHaveLength(1);
    expect(notifications()[0]!.idempotencyKey).toBe(`${id}:error_notification:${committed!.version}`);
    expect(notifications()[0]!.body).toMatchObject({ to: 'ops@example.com', error_message: 'HTTP 503' });
    expect((await sweep()).notified).toBe(0);
    expect((await h.logsOf(id)).filter((l) => l.eventType === 'notification_sent')).toHaveLength(1);
    expect((await row(id)).notifyPending).toBe(false);
  });

  it('a failure notified twice at once (a slow worker and the sweeper) is logged once', async () => {
    await h.api.patch('/account/settings', { max_retry_attempts: 0 });
    const id = await start();
    h.provider.script({ status: 503 }, { status: 200 });
    await h.step(id); // fails and notifies
    const failed = await row(id);
    const notice = {
      executionId: id,
      accountId: failed.accountId,
      version: failed.version,
      adminEmail: 'admin@example.com',
      workflowName: 'W',
      error: 'HTTP 503',
    };
    await h.db.execution.update({ where: { id }, data: { notifyPending: true } }); // as if the first had not logged yet
    await Promise.all([notifyFailure(h.deps, notice), notifyFailure(h.deps, notice)]);
    expect((await h.logsOf(id)).filter((l) => l.eventType.startsWith('notification_'))).toHaveLength(2); // the worker's and one of the two
    const keys = new Set(
      h.provider.received
        .filter((r) => r.body.step_id === 'error_notification' && r.body.execution_id === id)
        .map((r) => r.idempotencyKey),
    );
    expect([...keys]).toEqual([`${id}:error_notification:${failed.version}`]);
  });

  it('retries a notification with back-off (30 s doubling, at most 1 h) up to NOTIFY_MAX_ATTEMPTS, then gives up', async () => {
    await h.api.patch('/account/settings', { max_retry_attempts: 0 });
    const id = await start();
    h.provider.setDefault({ status: 503 });
    await h.step(id); // the step fails, and so does the first attempt at notifying
    const sweep = createSweeper(h.deps);
    const delays: number[] = [];
    for (let guard = 0; guard < 20; guard += 1) {
      const { notifyPending, notifyAfter } = await row(id);
      if (!notifyPending) break;
      delays.push(notifyAfter!.getTime() - clock.now().getTime());
      clock.set(notifyAfter!);
      await sweep();
    }
    expect(delays).toEqual([30, 60, 120, 240, 480, 960, 1920, 3600, 3600].map((seconds) => seconds * 1000));
    const failed = (await h.logsOf(id))
      .filter((l) => l.eventType === 'notification_failed')
      .map((l) => l.details as Record<string, unknown>);
    expect(failed.map((d) => d.attempt)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(h.config.NOTIFY_MAX_ATTEMPTS).toBe(10);
    expect(failed.slice(0, -1).every((d) => typeof d.next_attempt_at === 'string' && d.final === undefined)).toBe(true);
    expect(failed.at(-1)).toMatchObject({ final: true });
    expect(failed.at(-1)!.next_attempt_at).toBeUndefined();
    clock.advance(3_600_000);
    await sweep();
    expect(notificationsOf(id)).toHaveLength(10);
    expect(new Set(notificationsOf(id).map((r) => r.idempotencyKey))).toEqual(
      new Set([`${id}:error_notification:${(await row(id)).version}`]),
    );
    expect((await h.logsOf(id)).map((l) => l.eventType)).not.toContain('notification_sent');
  });

  it('a notification refused permanently (4xx) is not retried', async () => {
    await h.api.patch('/account/settings', { max_retry_attempts: 0 });
    const id = await start();
    h.provider.script({ status: 503 }, { status: 400 });
    await h.step(id);
    expect(await row(id)).toMatchObject({
      status: 'FAILED',
      notifyPending: false,
      notifyAttempts: 1,
      notifyAfter: null,
    });
    const failed = (await h.logsOf(id)).filter((l) => l.eventType === 'notification_failed');
    expect(failed.map((l) => l.details)).toEqual([
      {
        to: expect.stringMatching(/\*\*\*@example\.com$/),
        attempt: 1,
        error: expect.stringContaining('HTTP 400'),
        final: true,
      },
    ]);
    clock.advance(3_600_000);
    await createSweeper(h.deps)();
    expect(notificationsOf(id)).toHaveLength(1);
  });

  it('two senders making the same attempt log it once, attempt after attempt', async () => {
    await h.api.patch('/account/settings', { max_retry_attempts: 0 });
    const id = await start();
    h.provider.script({ status: 503 }, { status: 503 }, { status: 503 }, { status: 503 });
    await h.step(id); // attempt 1 fails
    const failed = await row(id);
    const notice = {
      executionId: id,
      accountId: failed.accountId,
      version: failed.version,
      adminEmail: 'admin@example.com',
      workflowName: 'W',
      error: 'HTTP 503',
      attempt: 1,
    };
    // A slow sweeper and another one both make attempt 2; both fail.
    expect((await Promise.all([notifyFailure(h.deps, notice), notifyFailure(h.deps, notice)])).sort()).toEqual([
      false,
      true,
    ]);
    const due = (await row(id)).notifyAfter!;
    expect(due.getTime() - clock.now().getTime()).toBe(60_000);
    clock.set(due);
    // Two worker processes' sweepers make attempt 3 at once; it succeeds.
    await Promise.all([createSweeper(h.deps)(), createSweeper(h.deps)()]);
    const logged = (await h.logsOf(id)).filter((l) => l.eventType.startsWith('notification_'));
    expect(logged.map((l) => [l.eventType, (l.details as { attempt: number }).attempt])).toEqual([
      ['notification_failed', 1],
      ['notification_failed', 2],
      ['notification_sent', 3],
    ]);
    expect(await row(id)).toMatchObject({ notifyPending: false, notifyAttempts: 3 });
    expect(new Set(notificationsOf(id).map((r) => r.idempotencyKey))).toEqual(
      new Set([`${id}:error_notification:${failed.version}`]),
    );
  });

  it('a new failure after a manual retry starts its notification afresh, with its own key', async () => {
    await h.api.patch('/account/settings', { max_retry_attempts: 0 });
    const id = await start();
    h.provider.script({ status: 503 }, { status: 503 }, { status: 503 });
    await h.step(id); // fails; its notification fails transiently and stays pending
    const first = await row(id);
    expect(first).toMatchObject({ notifyPending: true, notifyAttempts: 1 });
    expect((await h.api.post(`/executions/${id}/retry`)).status).toBe(200);
    expect(await row(id)).toMatchObject({ notifyPending: false }); // the old failure is no longer notified
    await h.step(id); // fails again; this notification is answered 200
    const second = await row(id);
    expect(second).toMatchObject({ status: 'FAILED', notifyPending: false, notifyAttempts: 1, notifyAfter: null });
    const logged = (await h.logsOf(id)).filter((l) => l.eventType.startsWith('notification_'));
    expect(logged.map((l) => [l.eventType, (l.details as { attempt: number }).attempt])).toEqual([
      ['notification_failed', 1],
      ['notification_sent', 1],
    ]);
    expect(notificationsOf(id).map((r) => r.idempotencyKey)).toEqual([
      `${id}:error_notification:${first.version}`,
      `${id}:error_notification:${second.version}`,
    ]);
  });

  it('a provider that hangs past the timeout is a transient failure', async () => {
    const id = await start();
    h.provider.script({ hang: true });
    await h.step(id);
    const failed = (await h.logsOf(id)).find((l) => l.eventType === 'action_failed');
    expect(String((failed!.details as { error: string }).error)).toContain('timeout');
    expect((await row(id)).retryCount).toBe(1);
  });

  it('a refused connection is a transient failure', async () => {
    await h.api.patch('/account/settings', { max_retry_attempts: 3 });
    const workflow = await h.createWorkflow({
      steps: [
        { id: 'hook', type: 'webhook', config: { url: 'http://127.0.0.1:1/hook', method: 'POST', body: { a: 1 } } },
      ],
    });
    const id = await h.trigger(workflow.id, (await h.createContact()).id);
    await h.step(id);
    expect((await row(id)).retryCount).toBe(1);
  });

  it('Scenario: Retry failed execution', async () => {
    await h.api.patch('/account/settings', { max_retry_attempts: 3 });
    const id = await start(emails(3));
    await h.step(id);
    h.provider.setDefault({ status: 503 });
    for (let attempt = 0; attempt <= 3; attempt += 1) {
      await h.step(id);
      const execution = await row(id);
      if (execution.nextRunAt) clock.advance(execution.nextRunAt.getTime() - clock.now().getTime());
    }
    expect(await row(id)).toMatchObject({ status: 'FAILED', retryCount: 3 });
    h.provider.setDefault({ status: 200 });
    const response = await h.api.post(`/executions/${id}/retry`);
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({
      status: 'QUEUED',
      retry_count: 0,
      current_step: 'email_2',
      current_step_index: 2,
    });
    expect((await h.logsOf(id)).map((l) => l.eventType)).toContain('manual_retry');
    await h.step(id);
    await h.step(id);
    expect(await row(id)).toMatchObject({ status: 'COMPLETED' });
    const stepTwo = h.provider.received.filter((r) => r.body.execution_id === id && r.body.step_id === 'email_2');
    expect(new Set(stepTwo.map((r) => r.idempotencyKey))).toEqual(new Set([`${id}:email_2`]));
    expect((await h.api.post(`/executions/${id}/retry`)).status).toBe(409);
  });
});

describe('Feature: Rate Limiting and Throttling', () => {
  let h: Harness;
  const clock = createManualClock(new Date('2026-04-01T12:00:00.000Z'));
  beforeAll(async () => {
    h = await startHarness({ worker: false, clock });
  });
  afterAll(() => h.stop());

  it('Scenario: Respect external API rate limits', async () => {
    const workflow = await h.createWorkflow(sequential);
    const first = await h.trigger(workflow.id, (await h.createContact()).id);
    const second = await h.trigger(workflow.id, (await h.createContact()).id);
    h.provider.script({ status: 429, retryAfter: '30' });
    await h.step(first);
    const limited = await h.db.execution.findUniqueOrThrow({ where: { id: first } });
    expect(limited.nextRunAt!.getTime() - clock.now().getTime()).toBe(30_000);
    expect(limited.retryCount).toBe(0);
    const hit = (await h.logsOf(first)).find((l) => l.eventType === 'rate_limit_hit');
    expect(hit?.details).toMatchObject({ retry_after_seconds: 30, provider: 'email' });

    // Another execution's call to the same provider is held back (shared through Redis), not sent.
    const before = h.provider.requestsTo('/email').length;
    await h.step(second);
    expect(h.provider.requestsTo('/email').length).toBe(before);
    const held = await h.db.execution.findUniqueOrThrow({ where: { id: second } });
    expect(held.nextRunAt).not.toBeNull();
    expect((await h.logsOf(second)).map((l) => l.eventType)).toContain('action_delayed');

    // The retry of the first happens after exactly 30 s.
    const retry = await h.step(first);
    expect(retry.delayMs).toBe(30_000);
  });

  it('Retry-After as an HTTP date', async () => {
    await h.deps.redis.del(`${h.config.QUEUE_PREFIX}:rate-limit:email`);
    const workflow = await h.createWorkflow(sequential);
    const id = await h.trigger(workflow.id, (await h.createContact()).id);
    h.provider.script({ status: 429, retryAfter: new Date(clock.now().getTime() + 45_000).toUTCString() });
    await h.step(id);
    const limited = await h.db.execution.findUniqueOrThrow({ where: { id } });
    expect(limited.nextRunAt!.getTime() - clock.now().getTime()).toBe(45_000);
  });

  it('Scenario: Enforce account concurrent execution limit', async () => {
    for (const running of await h.db.execution.findMany({
      where: { status: { in: ['QUEUED', 'ACTIVE', 'PAUSED'] } },
    })) {
      expect((await h.api.post(`/executions/${running.id}/cancel`)).status).toBe(200);
    }
    expect(await h.activeSlots()).toBe(0);
    await h.api.patch('/account/settings', { concurrent_executions_per_account: 2 });
    const workflow = await h.createWorkflow(emails(2));
    const ids: string[] = [];
    for (let i = 0; i < 4; i += 1) ids.push(await h.trigger(workflow.id, (await h.createContact()).id));
    await h.deps.redis.del(`${h.config.QUEUE_PREFIX}:rate-limit:email`);
    for (const id of ids) await h.step(id); // admission: two start, two wait in line
    const statuses = async () =>
      (await h.db.execution.findMany({ where: { id: { in: ids } } }))
        .sort((a, b) => ids.indexOf(a.id) - ids.indexOf(b.id))
        .map((e) => e.status);
    expect(await statuses()).toEqual(['ACTIVE', 'ACTIVE', 'QUEUED', 'QUEUED']);
    expect(await h.activeSlots()).toBe(2);
    await h.step(ids[0]!);
    expect(await statuses()).toEqual(['COMPLETED', 'ACTIVE', 'ACTIVE', 'QUEUED']); // first come, first served
    await h.step(ids[1]!);
    expect(await statuses()).toEqual(['COMPLETED', 'COMPLETED', 'ACTIVE', 'ACTIVE']);
    for (const id of ids.slice(2)) {
      await h.step(id);
      await h.step(id);
    }
    expect(await statuses()).toEqual(['COMPLETED', 'COMPLETED', 'COMPLETED', 'COMPLETED']);
    expect(await h.activeSlots()).toBe(0);
  });

  it('a wait that ends while the account is at its limit waits in line, then resumes in turn', async () => {
    for (const running of await h.db.execution.findMany({
      where: { status: { in: ['QUEUED', 'ACTIVE', 'PAUSED'] } },
    })) {
      expect((await h.api.post(`/executions/${running.id}/cancel`)).status).toBe(200);
    }
    await h.api.patch('/account/settings', { concurrent_executions_per_account: 1 });
    await h.deps.redis.del(`${h.config.QUEUE_PREFIX}:rate-limit:email`, `${h.config.QUEUE_PREFIX}:rate-limit:sms`);
    const waiting = await h.trigger((await h.createWorkflow(withWait('1 minute'))).id, (await h.createContact()).id);
    await h.step(waiting); // admission and the email
    await h.step(waiting); // the wait starts: its slot is released
    const row = () => h.db.execution.findUniqueOrThrow({ where: { id: waiting } });
    const due = (await row()).nextRunAt;
    const busy = await h.trigger((await h.createWorkflow(emails(2))).id, (await h.createContact()).id);
    await h.step(busy); // admission (the one slot) and the first email
    clock.advance(60_000);
    await h.step(waiting); // the wait ends with no free slot: the execution waits in line, its timer kept
    expect(await row()).toMatchObject({ status: 'QUEUED', waiting: true, nextRunAt: due });
    expect((await h.logsOf(waiting)).map((l) => l.eventType).at(-1)).toBe('wait_started');
    expect(await h.activeSlots()).toBe(1);
    await h.step(busy); // the second email finishes it: its slot goes to the execution in line
    expect(await row()).toMatchObject({ status: 'ACTIVE', waiting: false, nextRunAt: due });
    clock.advance(1_500);
    await h.step(waiting); // the timer fires now, late by the time spent in line
    await h.step(waiting); // the SMS
    expect((await row()).status).toBe('COMPLETED');
    const completed = (await h.logsOf(waiting)).find((l) => l.eventType === 'wait_completed');
    expect(completed?.details).toEqual({ lateness_ms: 1_500 });
    expect(await h.activeSlots()).toBe(0);
  });

  it("the limit holds at the SPEC's 100 active executions", async () => {
    await h.api.patch('/account/settings', { concurrent_executions_per_account: 100 });
    const workflow = await h.createWorkflow(emails(2));
    const ids: string[] = [];
    for (let i = 0; i < 101; i += 1) ids.push(await h.trigger(workflow.id, (await h.createContact()).id));
    for (const id of ids) await h.step(id);
    const last = ids.at(-1)!;
    expect(await h.db.execution.count({ where: { id: { in: ids }, status: 'ACTIVE' } })).toBe(100);
    expect(await h.db.execution.findUniqueOrThrow({ where: { id: last } })).toMatchObject({
      status: 'QUEUED',
      waiting: true,
    });
    await h.step(ids[0]!);
    expect((await h.db.execution.findUniqueOrThrow({ where: { id: last } })).status).toBe('ACTIVE');
    await h.step(last);
    expect(h.provider.received.filter((r) => r.body.execution_id === last)).toHaveLength(1);
  }, 120_000);
});
