import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManualClock } from '../../src/clock.ts';
import { startHarness, type Harness } from '../helpers/harness.ts';
import { createJourneyDriver, expectDefinitionIssue, type JourneyDriver } from '../helpers/journeys.ts';
import { startPrivateRedis } from '../helpers/redis-server.ts';

// Journeys I, points 3, 4 and 5 of the Build list (CONTRACT.md "Journeys", Waiting for time and for
// people): wait_until a local time, wait_for_event with a timeout, and workflow send windows. Each block
// runs on its own worker-less harness with its own manual clock, which only moves forward, so every
// instant below is exact: the expected instants are written out in UTC, not computed by the code under
// test. Every timer is kept in Redis (TIMER_HORIZON_MS of 30 days), so `h.step` finds each due job.

const HOUR_MS = 3_600_000;
const env = { TIMER_HORIZON_MS: String(30 * 24 * HOUR_MS) };

const email = (id: string, subject: string = id) => ({ id, type: 'send_email', config: { subject, body: 'Hello' } });
const sms = (id: string) => ({ id, type: 'send_sms', config: { body: 'Hello' } });
const tag = (id: string, name: string) => ({ id, type: 'add_tag', config: { tag: name } });

/** A manual clock that refuses to go back, so the order of the tests below is the order of time. */
function forwardClock(start: string) {
  const clock = createManualClock(new Date(start));
  const moveTo = (iso: string) => {
    const to = new Date(iso);
    if (to.getTime() < clock.now().getTime())
      throw new Error(`the clock would go back from ${clock.now().toISOString()} to ${iso}`);
    clock.set(to);
  };
  return { clock, moveTo };
}

describe('Journeys I: wait_until a local time (issue #18, Build 3)', () => {
  const { clock, moveTo } = forwardClock('2026-03-04T12:00:00.000Z');
  let h: Harness;
  let d: JourneyDriver;
  beforeAll(async () => {
    h = await startHarness({ worker: false, clock, env });
    d = createJourneyDriver(h);
  });
  afterAll(() => h?.stop());

  const morning = (config: Record<string, unknown>) => ({
    reentry: 'always',
    steps: [{ id: 'morning', type: 'wait_until', config }, email('hello')],
  });

  /** Triggers the workflow for the contact and runs it into its wait; returns the execution's id. */
  const startWait = async (workflowId: string, contactId: string) => {
    const id = await h.trigger(workflowId, contactId);
    expect((await d.settle(id)).status).toBe('PAUSED');
    return id;
  };
  const executionOf = async (id: string) => (await h.api.get(`/executions/${id}`)).body;
  const waitStarted = async (id: string) => {
    const [started] = await d.logsOfType(id, 'wait_started');
    expect(started).toBeDefined();
    return (started!.details ?? {}) as Record<string, unknown>;
  };

  it("is PAUSED until 09:00 in each contact's own zone: New York, Berlin, Kolkata; then the next step runs", async () => {
    // Wednesday 2026-03-04 12:00 UTC: 07:00 in New York (EST), 13:00 in Berlin (CET), 17:30 in Kolkata.
    const workflow = await h.createWorkflow(morning({ time: '09:00', timezone: 'contact' }));
    const expected = {
      'America/New_York': '2026-03-04T14:00:00.000Z', // 09:00 EST today
      'Europe/Berlin': '2026-03-05T08:00:00.000Z', // 09:00 CET tomorrow
      'Asia/Kolkata': '2026-03-05T03:30:00.000Z', // 09:00 IST tomorrow (UTC+05:30)
    };
    const ids: Record<string, string> = {};
    for (const [zone, at] of Object.entries(expected)) {
      const contact = await h.createContact({ timezone: zone });
      const id = await startWait(workflow.id, contact.id);
      ids[zone] = id;
      expect(await executionOf(id)).toMatchObject({ status: 'PAUSED', next_run_at: at });
      expect(await d.eventTypes(id)).toContain('wait_started');
      expect((await waitStarted(id)).timezone_fallback ?? false).toBeFalsy();
      expect(d.messagesOf(id)).toEqual([]);
    }

    // An early job leaves the wait alone.
    moveTo('2026-03-04T13:59:00.000Z');
    await h.step(ids['America/New_York']!);
    expect(await executionOf(ids['America/New_York']!)).toMatchObject({ status: 'PAUSED' });
    expect(d.messagesOf(ids['America/New_York']!)).toEqual([]);

    // In order of their instants: at each, that contact's wait ends and its email goes out.
    for (const [zone, at] of Object.entries(expected).sort((a, b) => a[1].localeCompare(b[1]))) {
      moveTo(at);
      const id = ids[zone]!;
      expect((await d.finish(id)).status).toBe('COMPLETED');
      expect(d.messagesOf(id, 'hello')).toHaveLength(1);
      const types = await d.eventTypes(id);
      expect(types.indexOf('wait_completed')).toBeGreaterThan(types.indexOf('wait_started'));
    }
  });

  it('waits in the zone the step names, whatever the contact lives in', async () => {
    moveTo('2026-03-05T12:00:00.000Z'); // 17:30 in Kolkata
    const workflow = await h.createWorkflow(morning({ time: '09:00', timezone: 'Asia/Kolkata' }));
    const contact = await h.createContact({ timezone: 'America/New_York' });
    const id = await startWait(workflow.id, contact.id);
    expect((await executionOf(id)).next_run_at).toBe('2026-03-06T03:30:00.000Z');
  });

  it('waits for one of the chosen weekdays: Friday afternoon waits until Monday, across a DST change', async () => {
    moveTo('2026-03-06T12:00:00.000Z'); // Friday: 13:00 in Berlin, 07:00 in New York
    const weekdays = await h.createWorkflow(
      morning({ time: '09:00', days: ['mon', 'tue', 'wed', 'thu', 'fri'], timezone: 'Europe/Berlin' }),
    );
    const berlin = await startWait(weekdays.id, (await h.createContact()).id);
    expect((await executionOf(berlin)).next_run_at).toBe('2026-03-09T08:00:00.000Z'); // Monday 09:00 CET

    // New York moves to EDT (UTC-4) on Sunday 2026-03-08: Monday 09:00 is 13:00 UTC, not 14:00.
    const mondays = await h.createWorkflow(morning({ time: '09:00', days: ['mon'] }));
    const newYork = await startWait(mondays.id, (await h.createContact({ timezone: 'America/New_York' })).id);
    expect((await executionOf(newYork)).next_run_at).toBe('2026-03-09T13:00:00.000Z');

    // Friday itself is the chosen day, and 09:00 has not passed in New York yet: today.
    const fridays = await h.createWorkflow(morning({ time: '09:00', days: ['fri'], timezone: 'America/New_York' }));
    const today = await startWait(fridays.id, (await h.createContact()).id);
    expect((await executionOf(today)).next_run_at).toBe('2026-03-06T14:00:00.000Z');
  });

  it("falls back from an invalid contact zone to the account's default_timezone, then UTC, and logs it", async () => {
    // Saturday 2026-03-07 11:00 UTC: 12:00 in Berlin, so the next 09:00 there is Sunday's.
    moveTo('2026-03-07T11:00:00.000Z');
    const workflow = await h.createWorkflow(morning({ time: '09:00' })); // timezone "contact" by default
    expect((await h.api.patch('/account/settings', { default_timezone: 'Europe/Berlin' })).status).toBe(200);
    try {
      const typo = await h.createContact();
      // Stored as an import or an older client may have left it; the engine must not trust it.
      await h.db.contact.update({ where: { id: typo.id }, data: { timezone: 'Mars/Olympus_Mons' } });
      const fallback = await startWait(workflow.id, typo.id);
      expect(await executionOf(fallback)).toMatchObject({
        status: 'PAUSED',
        next_run_at: '2026-03-08T08:00:00.000Z', // 09:00 CET
      });
      expect((await waitStarted(fallback)).timezone_fallback).toBeTruthy();

      // No zone at all: the account's default, and nothing to report.
      const unset = await startWait(workflow.id, (await h.createContact()).id);
      expect((await executionOf(unset)).next_run_at).toBe('2026-03-08T08:00:00.000Z');

      // The account's default back at UTC: the invalid zone falls back to it.
      await h.api.patch('/account/settings', { default_timezone: 'UTC' });
      // Another contact with the same typo (the first one is still enrolled: a second trigger would be a duplicate).
      const typo2 = await h.createContact();
      await h.db.contact.update({ where: { id: typo2.id }, data: { timezone: 'Mars/Olympus_Mons' } });
      const utc = await startWait(workflow.id, typo2.id);
      expect((await executionOf(utc)).next_run_at).toBe('2026-03-08T09:00:00.000Z');
      expect((await waitStarted(utc)).timezone_fallback).toBeTruthy();
    } finally {
      await h.api.patch('/account/settings', { default_timezone: 'UTC' });
    }
  });

  it('runs a local time that DST skips (02:30 on spring-forward day in New York) at 03:00 local', async () => {
    // Sunday 2026-03-08 00:00 EST; at 02:00 EST the clocks jump to 03:00 EDT (07:00 UTC).
    moveTo('2026-03-08T05:00:00.000Z');
    const workflow = await h.createWorkflow(morning({ time: '02:30', timezone: 'America/New_York' }));
    const id = await startWait(workflow.id, (await h.createContact()).id);
    expect(await executionOf(id)).toMatchObject({ status: 'PAUSED', next_run_at: '2026-03-08T07:00:00.000Z' });
    moveTo('2026-03-08T06:59:59.000Z');
    await h.step(id);
    expect(d.messagesOf(id)).toEqual([]);
    moveTo('2026-03-08T07:00:00.000Z');
    expect((await d.finish(id)).status).toBe('COMPLETED');
    expect(d.messagesOf(id, 'hello')).toHaveLength(1);
  });

  it('runs a local time that happens twice (01:30 on fall-back day in New York) at its first occurrence', async () => {
    // Sunday 2026-11-01 00:00 EDT; 01:30 happens at 05:30 UTC (EDT) and again at 06:30 UTC (EST).
    moveTo('2026-11-01T04:00:00.000Z');
    const workflow = await h.createWorkflow(morning({ time: '01:30', timezone: 'America/New_York' }));
    const id = await startWait(workflow.id, (await h.createContact()).id);
    expect((await executionOf(id)).next_run_at).toBe('2026-11-01T05:30:00.000Z');
  });
});

describe('Journeys I: wait_for_event with a timeout (issue #18, Build 4)', () => {
  const { clock, moveTo } = forwardClock('2026-05-04T10:00:00.000Z');
  let h: Harness;
  let d: JourneyDriver;
  beforeAll(async () => {
    h = await startHarness({ worker: false, clock, env });
    d = createJourneyDriver(h);
  });
  afterAll(() => h?.stop());

  const ORDER = 'order_placed';
  const awaitOrder = (thanks = 'Thanks') => ({
    reentry: 'always',
    steps: [
      email('intro'),
      {
        id: 'await_order',
        type: 'wait_for_event',
        config: {
          event: ORDER,
          where: { field: 'payload.total', operator: 'greater_than', value: 10 },
          timeout: '2 hours',
        },
        branches: { received: [email('thanks', thanks)], timeout: [email('reminder')] },
      },
      tag('after', 'journey_done'),
    ],
  });
  let shared: Promise<string> | undefined;
  /** The workflow most tests share, created by the first that needs it. */
  const sharedWorkflow = () => (shared ??= h.createWorkflow(awaitOrder()).then((w) => w.id));

  /** A new contact enrolled and run into the wait; its execution id, the contact id and when the wait started. */
  const startWait = async (workflow?: string) => {
    workflow ??= await sharedWorkflow();
    const contact = await h.createContact();
    const id = await h.trigger(workflow, contact.id);
    const startedAt = clock.now().getTime();
    expect((await d.settle(id)).status).toBe('PAUSED');
    expect(d.messagesOf(id, 'intro')).toHaveLength(1);
    return { id, contactId: contact.id, startedAt };
  };
  const tagsOf = async (contactId: string) => (await h.api.get(`/contacts/${contactId}`)).body.tags as string[];

  it('takes the received branch on a matching event after the wait started, and lists it as resumed', async () => {
    const { id, contactId, startedAt } = await startWait();
    expect((await h.api.get(`/executions/${id}`)).body).toMatchObject({
      status: 'PAUSED',
      next_run_at: new Date(startedAt + 2 * HOUR_MS).toISOString(),
    });
    clock.advance(60_000);
    const answer = await d.event(contactId, ORDER, { total: 50 });
    expect(answer.resumed).toEqual([id]);
    expect((await d.finish(id)).status).toBe('COMPLETED');
    const types = await d.eventTypes(id);
    expect(types).toContain('event_received');
    expect(types).not.toContain('wait_timed_out');
    expect(d.messagesOf(id, 'thanks')).toHaveLength(1);
    expect(d.messagesOf(id, 'reminder')).toEqual([]);
    expect(await tagsOf(contactId)).toContain('journey_done'); // the steps after the wait ran
    // The entry is the wait's (step 2), not the step the event moves it to (found by the chaos run, seed 7).
    const logs = (await h.api.get(`/executions/${id}/logs?limit=50`)).body.data as { event_type: string }[];
    expect(logs.find((log) => log.event_type === 'event_received')).toMatchObject({
      step_id: 'await_order',
      step_index: 2,
    });
  });

  it('keeps waiting for an event whose where does not hold, another event, or another contact', async () => {
    const { id, contactId } = await startWait();
    const other = await startWait();
    clock.advance(60_000);
    expect((await d.event(contactId, ORDER, { total: 5 })).resumed).toEqual([]);
    expect((await d.event(contactId, ORDER)).resumed).toEqual([]);
    expect((await d.event(contactId, 'order_cancelled', { total: 50 })).resumed).toEqual([]);
    expect((await d.event(other.contactId, ORDER, { total: 50 })).resumed).toEqual([other.id]);
    expect((await d.rowOf(id)).status).toBe('PAUSED');
    expect(await d.eventTypes(id)).not.toContain('event_received');
    expect((await d.event(contactId, ORDER, { total: 11 })).resumed).toEqual([id]);
  });

  it('does not count an event that arrived before the wait started', async () => {
    const contact = await h.createContact();
    const id = await h.trigger(await sharedWorkflow(), contact.id); // QUEUED: the wait has not started
    expect((await d.event(contact.id, ORDER, { total: 50 })).resumed).toEqual([]);
    clock.advance(1_000);
    const startedAt = clock.now().getTime();
    expect((await d.settle(id)).status).toBe('PAUSED');
    expect(await d.eventTypes(id)).not.toContain('event_received');
    moveTo(new Date(startedAt + 2 * HOUR_MS).toISOString());
    expect((await d.finish(id)).status).toBe('COMPLETED');
    expect(await d.eventTypes(id)).toContain('wait_timed_out');
    expect(d.messagesOf(id, 'thanks')).toEqual([]);
  });

  it('takes the timeout branch when no event comes, and a later event changes nothing', async () => {
    const { id, contactId, startedAt } = await startWait();
    moveTo(new Date(startedAt + 2 * HOUR_MS - 1_000).toISOString());
    await h.step(id); // the timer, one second early
    expect((await d.rowOf(id)).status).toBe('PAUSED');
    expect(d.messagesOf(id, 'reminder')).toEqual([]);
    moveTo(new Date(startedAt + 2 * HOUR_MS).toISOString());
    expect((await d.finish(id)).status).toBe('COMPLETED');
    const types = await d.eventTypes(id);
    expect(types).toContain('wait_timed_out');
    expect(types).not.toContain('event_received');
    expect(d.messagesOf(id, 'reminder')).toHaveLength(1);
    expect(d.messagesOf(id, 'thanks')).toEqual([]);
    expect(await tagsOf(contactId)).toContain('journey_done');

    clock.advance(60_000);
    expect((await d.event(contactId, ORDER, { total: 50 })).resumed).toEqual([]);
    expect(d.messagesOf(id)).toHaveLength(2); // intro and reminder, nothing more
  });

  it('takes exactly one branch when an event and the due timeout race', async () => {
    for (let round = 0; round < 6; round += 1) {
      const { id, contactId, startedAt } = await startWait();
      moveTo(new Date(startedAt + 2 * HOUR_MS).toISOString());
      const timer = await d.takeJob(id);
      // The timer's job, run by a worker, and the event, taken by the API, at the same moment.
      const [, answer] = await Promise.all([timer.run(), d.event(contactId, ORDER, { total: 50 })]);
      expect((await d.finish(id)).status).toBe('COMPLETED');
      const thanks = d.messagesOf(id, 'thanks');
      const reminder = d.messagesOf(id, 'reminder');
      expect(thanks.length + reminder.length, `round ${round}`).toBe(1);
      const types = await d.eventTypes(id);
      const received = types.filter((t) => t === 'event_received').length;
      const timedOut = types.filter((t) => t === 'wait_timed_out').length;
      expect([received, timedOut]).toEqual(thanks.length === 1 ? [1, 0] : [0, 1]);
      // The answer says "resumed" exactly when the event won.
      expect(answer.resumed.includes(id)).toBe(thanks.length === 1);
      expect((await tagsOf(contactId)).filter((t) => t === 'journey_done')).toHaveLength(1);
      clock.advance(60_000);
    }
  });

  it('keeps its version across PUT /workflows/{id}/definition, and resumes on it', async () => {
    const workflow = await h.createWorkflow(awaitOrder('Thanks v1'), 'Versioned');
    const { id, contactId } = await startWait(workflow.id);
    const before = (await h.api.get(`/executions/${id}`)).body.workflow_version_id;
    const put = await h.api.put(`/workflows/${workflow.id}/definition`, { definition: awaitOrder('Thanks v2') });
    expect(put.status).toBe(200);
    const newer = await startWait(workflow.id);
    expect((await h.api.get(`/executions/${newer.id}`)).body.workflow_version_id).not.toBe(before);

    clock.advance(60_000);
    expect((await d.event(contactId, ORDER, { total: 50 })).resumed).toEqual([id]);
    expect((await d.finish(id)).status).toBe('COMPLETED');
    expect((await h.api.get(`/executions/${id}`)).body.workflow_version_id).toBe(before);
    expect(d.messagesOf(id, 'thanks').map((m) => m.body.subject)).toEqual(['Thanks v1']);

    expect((await d.event(newer.contactId, ORDER, { total: 50 })).resumed).toEqual([newer.id]);
    await d.finish(newer.id);
    expect(d.messagesOf(newer.id, 'thanks').map((m) => m.body.subject)).toEqual(['Thanks v2']);
  });
});

describe('Journeys I: wait_for_event after Redis lost everything (issue #18, Build 4)', () => {
  const clock = createManualClock(new Date('2026-05-04T10:00:00.000Z'));
  let redis: Awaited<ReturnType<typeof startPrivateRedis>>;
  let h: Harness;
  let d: JourneyDriver;
  beforeAll(async () => {
    // A private Redis: FLUSHALL must not touch the queues of test files running beside this one.
    redis = await startPrivateRedis();
    h = await startHarness({ worker: false, clock, env: { REDIS_URL: redis.url } });
    d = createJourneyDriver(h);
  });
  afterAll(async () => {
    await h?.stop();
    await redis?.stop();
  });

  it('an execution waiting for an event keeps waiting through a FLUSHALL and resumes when the event arrives', async () => {
    const workflow = await h.createWorkflow({
      steps: [
        email('intro'),
        {
          id: 'await_order',
          type: 'wait_for_event',
          config: { event: 'order_placed', timeout: '3 days' },
          branches: { received: [email('thanks')], timeout: [email('reminder')] },
        },
      ],
    });
    const contact = await h.createContact();
    const id = await h.trigger(workflow.id, contact.id);
    expect((await d.settle(id)).status).toBe('PAUSED');
    await h.deps.redis.flushall();
    expect(await h.deps.redis.dbsize()).toBe(0);
    expect((await d.rowOf(id)).status).toBe('PAUSED');

    clock.advance(HOUR_MS);
    const answer = await d.event(contact.id, 'order_placed', { total: 1 });
    expect(answer.resumed).toEqual([id]);
    expect((await d.finish(id)).status).toBe('COMPLETED');
    expect(await d.eventTypes(id)).toContain('event_received');
    expect(d.messagesOf(id, 'thanks')).toHaveLength(1);
    expect(d.messagesOf(id, 'reminder')).toEqual([]);
  });
});

describe('Journeys I: workflow send_window (issue #18, Build 5)', () => {
  const { clock, moveTo } = forwardClock('2026-03-04T21:00:00.000Z');
  let h: Harness;
  let d: JourneyDriver;
  beforeAll(async () => {
    h = await startHarness({ worker: false, clock, env });
    d = createJourneyDriver(h);
  });
  afterAll(() => h?.stop());

  const berlin = { start: '09:00', end: '20:00', timezone: 'Europe/Berlin' };
  const windowed = (steps: unknown[], sendWindow: Record<string, unknown> = berlin) => ({
    reentry: 'always',
    send_window: sendWindow,
    steps,
  });
  const deferral = async (id: string) => {
    const deferred = await d.logsOfType(id, 'send_deferred');
    expect(deferred).toHaveLength(1);
    const resumeAt = (deferred[0]!.details as { resume_at?: string } | null)?.resume_at;
    expect(resumeAt).toEqual(expect.any(String));
    return new Date(resumeAt!).toISOString();
  };

  it('holds an email due at 22:00 Berlin until 09:00 Berlin (send_deferred, resume_at), then sends it', async () => {
    // 2026-03-04 21:00 UTC is 22:00 in Berlin (CET).
    const workflow = await h.createWorkflow(windowed([email('promo')]));
    const id = await h.trigger(workflow.id, (await h.createContact()).id);
    expect((await d.settle(id)).status).toBe('PAUSED');
    expect(await deferral(id)).toBe('2026-03-05T08:00:00.000Z');
    expect((await h.api.get(`/executions/${id}`)).body).toMatchObject({
      status: 'PAUSED',
      next_run_at: '2026-03-05T08:00:00.000Z',
    });
    expect(d.messagesOf(id)).toEqual([]);

    moveTo('2026-03-05T07:59:00.000Z');
    await h.step(id);
    expect(d.messagesOf(id)).toEqual([]);
    moveTo('2026-03-05T08:00:00.000Z');
    expect((await d.finish(id)).status).toBe('COMPLETED');
    expect(d.messagesOf(id, 'promo')).toHaveLength(1);
  });

  it('sends at once inside the window', async () => {
    moveTo('2026-03-05T09:00:00.000Z'); // 10:00 in Berlin
    const workflow = await h.createWorkflow(windowed([email('promo')]));
    const id = await h.trigger(workflow.id, (await h.createContact()).id);
    expect((await d.finish(id)).status).toBe('COMPLETED');
    expect(d.messagesOf(id, 'promo')).toHaveLength(1);
    expect(await d.eventTypes(id)).not.toContain('send_deferred');
  });

  it('sends a "transactional": true step at once outside the window', async () => {
    moveTo('2026-03-05T21:00:00.000Z'); // 22:00 in Berlin
    const receipt = {
      id: 'receipt',
      type: 'send_email',
      config: { subject: 'Receipt', body: 'Paid', transactional: true },
    };
    const workflow = await h.createWorkflow(windowed([receipt, email('promo')]));
    const id = await h.trigger(workflow.id, (await h.createContact()).id);
    expect((await d.settle(id)).status).toBe('PAUSED'); // the receipt went out; the promo waits
    expect(d.messagesOf(id, 'receipt')).toHaveLength(1);
    expect(d.messagesOf(id, 'promo')).toEqual([]);
    expect(await deferral(id)).toBe('2026-03-06T08:00:00.000Z');
  });

  it("opens in the contact's zone on the chosen days: Friday 21:00 in New York waits for Monday 09:00", async () => {
    // Friday 2026-03-06 21:00 EST; New York is on EDT (UTC-4) from Sunday, so Monday 09:00 is 13:00 UTC.
    moveTo('2026-03-07T02:00:00.000Z');
    const workflow = await h.createWorkflow(
      windowed([sms('text')], { start: '09:00', end: '20:00', days: ['mon', 'tue', 'wed', 'thu', 'fri'] }),
    );
    const id = await h.trigger(workflow.id, (await h.createContact({ timezone: 'America/New_York' })).id);
    expect((await d.settle(id)).status).toBe('PAUSED');
    expect(await deferral(id)).toBe('2026-03-09T13:00:00.000Z');
    expect(h.provider.requestsTo('/sms').filter((r) => r.body.execution_id === id)).toEqual([]);
  });

  it('holds webhooks and SMS too, but not tag steps', async () => {
    moveTo('2026-03-07T21:00:00.000Z'); // Saturday 22:00 in Berlin
    const hook = {
      id: 'hook',
      type: 'webhook',
      config: { url: `${h.provider.url}/hook-window`, method: 'POST', body: { contact: '{{email}}' } },
    };
    const workflow = await h.createWorkflow(windowed([tag('seen', 'window_seen'), hook, sms('text')]));
    const contact = await h.createContact();
    const id = await h.trigger(workflow.id, contact.id);
    expect((await d.settle(id)).status).toBe('PAUSED');
    expect((await h.api.get(`/contacts/${contact.id}`)).body.tags).toContain('window_seen');
    expect(await deferral(id)).toBe('2026-03-08T08:00:00.000Z');
    expect(h.provider.requestsTo('/hook-window')).toEqual([]);

    moveTo('2026-03-08T08:00:00.000Z');
    expect((await d.finish(id)).status).toBe('COMPLETED');
    expect(h.provider.requestsTo('/hook-window')).toHaveLength(1);
    expect(d.messagesOf(id, 'text')).toHaveLength(1);
  });
});

describe('Journeys I: bad input for waits and windows is a 400 with the path of the field (issue #18)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ worker: false, clock: createManualClock() });
  });
  afterAll(() => h?.stop());

  const refused = async (definition: unknown, path: string) => {
    const before = await h.db.workflow.count();
    expectDefinitionIssue(await h.api.post('/workflows', { name: 'Bad', definition }), path);
    expect(await h.db.workflow.count()).toBe(before);
  };
  const until = (config: Record<string, unknown>) => ({
    steps: [{ id: 'morning', type: 'wait_until', config }, email('hello')],
  });
  const forEvent = (config: Record<string, unknown>, branches?: Record<string, unknown>) => ({
    steps: [{ id: 'await', type: 'wait_for_event', config, ...(branches ? { branches } : {}) }],
  });
  const bothBranches = { received: [email('thanks')], timeout: [email('reminder')] };

  it('wait_until "time": "25:00"', async () => {
    await refused(until({ time: '25:00' }), 'definition.steps.0.config.time');
    await refused(until({ time: '9am' }), 'definition.steps.0.config.time');
  });

  it('wait_until with empty days, or a day that does not exist', async () => {
    await refused(until({ time: '09:00', days: [] }), 'definition.steps.0.config.days');
    await refused(until({ time: '09:00', days: ['mon', 'funday'] }), 'definition.steps.0.config.days.1');
  });

  it('wait_until with an unknown zone', async () => {
    await refused(until({ time: '09:00', timezone: 'Europe/Atlantis' }), 'definition.steps.0.config.timezone');
  });

  it('wait_for_event with a timeout that is not a duration, or none', async () => {
    await refused(
      forEvent({ event: 'order_placed', timeout: 'soon' }, bothBranches),
      'definition.steps.0.config.timeout',
    );
    await refused(forEvent({ event: 'order_placed' }, bothBranches), 'definition.steps.0.config.timeout');
  });

  it('wait_for_event with an event name over the limit (100 characters)', async () => {
    await refused(
      forEvent({ event: 'e'.repeat(101), timeout: '1 day' }, bothBranches),
      'definition.steps.0.config.event',
    );
  });

  it('wait_for_event without its branches, or without one of them', async () => {
    await refused(forEvent({ event: 'order_placed', timeout: '1 day' }), 'definition.steps.0.branches');
    await refused(
      forEvent({ event: 'order_placed', timeout: '1 day' }, { received: [] }),
      'definition.steps.0.branches.timeout',
    );
  });

  it('a bad step inside a wait_for_event branch, at its full path', async () => {
    await refused(
      forEvent(
        { event: 'order_placed', timeout: '1 day' },
        { received: [{ id: 'pause', type: 'wait', config: { duration: 'soon' } }], timeout: [] },
      ),
      'definition.steps.0.branches.received.0.config.duration',
    );
  });

  it('a send_window with an unknown zone, a bad time, or empty days', async () => {
    const steps = [email('hello')];
    const window = { start: '09:00', end: '20:00' };
    await refused(
      { send_window: { ...window, timezone: 'Mars/Olympus_Mons' }, steps },
      'definition.send_window.timezone',
    );
    await refused({ send_window: { ...window, start: '25:00' }, steps }, 'definition.send_window.start');
    await refused({ send_window: { ...window, days: [] }, steps }, 'definition.send_window.days');
  });
});
