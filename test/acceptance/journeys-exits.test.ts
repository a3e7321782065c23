import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManualClock } from '../../src/clock.ts';
import { processStep } from '../../src/engine/process-step.ts';
import { stepJobId } from '../../src/queue/step-queue.ts';
import { startHarness, type Harness } from '../helpers/harness.ts';
import { createJourneyDriver, expectDefinitionIssue, type JourneyDriver } from '../helpers/journeys.ts';

// Journeys I, points 6 and 7 of the Build list (CONTRACT.md "Journeys", Limits on messages: the opt-out
// and exit items): a contact that opts out mid-journey hears nothing more, and a workflow's exit event
// ends the contact's executions of it. Worker-less with a manual clock, then once more with real workers.

const HOUR_MS = 3_600_000;
/** Past the 5 s deduplication window of `POST /trigger`. */
const PAST_DEDUP_WINDOW_MS = 6_000;

const email = (id: string) => ({ id, type: 'send_email', config: { subject: id, body: 'Hello' } });
const sms = (id: string) => ({ id, type: 'send_sms', config: { body: 'Hello' } });
const tag = (id: string, name: string) => ({ id, type: 'add_tag', config: { tag: name } });
const wait = (id: string, duration = '1 hour') => ({ id, type: 'wait', config: { duration } });

describe('Journeys I: opt-out mid-journey and exit events (issue #18, Build 6 and 7)', () => {
  const clock = createManualClock(new Date('2026-06-01T10:00:00.000Z'));
  let h: Harness;
  let d: JourneyDriver;
  beforeAll(async () => {
    // Every timer keeps its job in Redis (TIMER_HORIZON_MS of 30 days), so `h.step` finds each due job.
    h = await startHarness({ worker: false, clock, env: { TIMER_HORIZON_MS: String(30 * 86_400_000) } });
    d = createJourneyDriver(h);
  });
  afterAll(() => h?.stop());

  const optOut = async (contactId: string, optedIn = false) =>
    expect((await h.api.patch(`/contacts/${contactId}`, { opted_in: optedIn })).status).toBe(200);
  const skippedSteps = async (id: string) => (await d.logsOfType(id, 'skipped_opted_out')).map((log) => log.stepId);
  const tagsOf = async (contactId: string) => (await h.api.get(`/contacts/${contactId}`)).body.tags as string[];

  describe('6. a contact that opts out gets no further email or SMS', () => {
    const journey = {
      reentry: 'always',
      steps: [email('first'), wait('pause'), email('second'), sms('third'), tag('done', 'journey_finished')],
    };

    it('skips every later message step of every running execution (skipped_opted_out), which go on', async () => {
      const one = await h.createWorkflow(journey, 'One');
      const two = await h.createWorkflow(journey, 'Two');
      const contact = await h.createContact();
      const ids = [await h.trigger(one.id, contact.id), await h.trigger(two.id, contact.id)];
      for (const id of ids) {
        expect((await d.settle(id)).status).toBe('PAUSED');
        expect(d.messagesOf(id, 'first')).toHaveLength(1);
      }
      await optOut(contact.id);
      clock.advance(HOUR_MS);
      for (const id of ids) {
        expect((await d.finish(id)).status).toBe('COMPLETED');
        expect(await skippedSteps(id)).toEqual(['second', 'third']);
        expect(d.messagesOf(id).map((m) => m.body.step_id)).toEqual(['first']);
      }
      expect(await tagsOf(contact.id)).toContain('journey_finished'); // the steps that are not messages ran
    });

    it('skips the first message too when the contact opts out before it runs', async () => {
      const workflow = await h.createWorkflow(journey);
      const contact = await h.createContact();
      const id = await h.trigger(workflow.id, contact.id);
      await optOut(contact.id);
      await d.settle(id);
      clock.advance(HOUR_MS);
      expect((await d.finish(id)).status).toBe('COMPLETED');
      expect(await skippedSteps(id)).toEqual(['first', 'second', 'third']);
      expect(d.messagesOf(id)).toEqual([]);
    });

    it('decides at send time: a contact that opts in again before the next message gets it', async () => {
      const workflow = await h.createWorkflow(journey);
      const contact = await h.createContact();
      const id = await h.trigger(workflow.id, contact.id);
      await d.settle(id);
      await optOut(contact.id);
      await optOut(contact.id, true);
      clock.advance(HOUR_MS);
      expect((await d.finish(id)).status).toBe('COMPLETED');
      expect(await skippedSteps(id)).toEqual([]);
      expect(d.messagesOf(id).map((m) => m.body.step_id)).toEqual(['first', 'second', 'third']);
    });

    it('skips a message held by a send window when the contact opted out before the window opened', async () => {
      // 2026-06-01 is summer time in Berlin (CEST, UTC+2): the window opens at 07:00 UTC.
      clock.set(new Date('2026-06-01T21:00:00.000Z')); // 23:00 in Berlin
      const workflow = await h.createWorkflow({
        send_window: { start: '09:00', end: '20:00', timezone: 'Europe/Berlin' },
        steps: [email('promo')],
      });
      const contact = await h.createContact();
      const id = await h.trigger(workflow.id, contact.id);
      expect((await d.settle(id)).status).toBe('PAUSED');
      expect(await d.eventTypes(id)).toContain('send_deferred');
      await optOut(contact.id);
      clock.set(new Date('2026-06-02T07:00:00.000Z'));
      expect((await d.finish(id)).status).toBe('COMPLETED');
      expect(await skippedSteps(id)).toEqual(['promo']);
      expect(d.messagesOf(id)).toEqual([]);
    });
  });

  describe("7. a workflow exit event ends the contact's running executions of that workflow", () => {
    const exiting = (event = 'unsubscribed') => ({
      exit: { event },
      reentry: 'always',
      steps: [email('one'), wait('pause'), email('two')],
    });

    it('cancels a waiting execution: CANCELLED, completion_reason exit_event, exited logged, nothing more sent', async () => {
      const workflow = await h.createWorkflow(exiting());
      const contact = await h.createContact();
      const id = await h.trigger(workflow.id, contact.id);
      expect((await d.settle(id)).status).toBe('PAUSED');
      const waiting = await d.rowOf(id);
      const timer = await h.deps.queue.queue.getJob(stepJobId(id, waiting.version));
      expect(timer).toBeDefined();

      expect((await d.sendEvent(contact.id, 'unsubscribed')).status).toBe(202);
      expect((await h.api.get(`/executions/${id}`)).body).toMatchObject({
        status: 'CANCELLED',
        completion_reason: 'exit_event',
      });
      expect(await d.eventTypes(id)).toContain('exited');

      // The wait's timer, had a worker taken it already, finds a newer version and sends nothing.
      clock.advance(HOUR_MS);
      expect(await processStep(h.deps, h.deps.cache, timer!.data)).toBe('stale');
      expect((await d.rowOf(id)).status).toBe('CANCELLED');
      expect(d.messagesOf(id).map((m) => m.body.step_id)).toEqual(['one']);
    });

    it('ends every running execution of that contact and workflow, and leaves everything else alone', async () => {
      const workflow = await h.createWorkflow(exiting());
      const otherExit = await h.createWorkflow(exiting('churned'), 'Other exit');
      const noExit = await h.createWorkflow({ reentry: 'always', steps: [email('one'), wait('pause'), email('two')] });
      const contact = await h.createContact();
      const neighbour = await h.createContact();

      const done = await h.trigger(workflow.id, contact.id);
      await d.settle(done);
      clock.advance(HOUR_MS);
      expect((await d.finish(done)).status).toBe('COMPLETED');
      clock.advance(PAST_DEDUP_WINDOW_MS);
      const waiting = await h.trigger(workflow.id, contact.id);
      await d.settle(waiting);
      clock.advance(PAST_DEDUP_WINDOW_MS);
      const queued = await h.trigger(workflow.id, contact.id); // enrolled, not started yet
      const untouched = [
        await h.trigger(otherExit.id, contact.id),
        await h.trigger(noExit.id, contact.id),
        await h.trigger(workflow.id, neighbour.id),
      ];
      for (const id of untouched) await d.settle(id);

      expect((await d.sendEvent(contact.id, 'unsubscribed')).status).toBe(202);
      for (const id of [waiting, queued]) {
        expect(await d.rowOf(id)).toMatchObject({ status: 'CANCELLED', completionReason: 'exit_event' });
        expect(await d.eventTypes(id)).toContain('exited');
      }
      expect(await d.rowOf(done)).toMatchObject({ status: 'COMPLETED' });
      expect(await d.eventTypes(done)).not.toContain('exited');
      for (const id of untouched) {
        expect((await d.rowOf(id)).status).toBe('PAUSED');
        expect(await d.eventTypes(id)).not.toContain('exited');
      }
      expect(d.messagesOf(queued)).toEqual([]);

      // The others go on to their end.
      clock.advance(HOUR_MS);
      for (const id of untouched) {
        expect((await d.finish(id)).status).toBe('COMPLETED');
        expect(d.messagesOf(id, 'two')).toHaveLength(1);
      }
    });

    it('a step whose job is running when the exit lands sends nothing after it', async () => {
      const workflow = await h.createWorkflow({
        exit: { event: 'unsubscribed' },
        steps: [email('one'), email('two'), email('three')],
      });
      const contact = await h.createContact();
      const id = await h.trigger(workflow.id, contact.id);
      await h.step(id); // email one
      const job = await d.takeJob(id); // email two's job, run by a worker whose provider answers slowly
      h.provider.setLatency(300);
      try {
        const running = job.run();
        await h.provider.waitFor((received) =>
          received.some((r) => r.body.execution_id === id && r.body.step_id === 'two'),
        );
        expect((await d.sendEvent(contact.id, 'unsubscribed')).status).toBe(202);
        await running;
      } finally {
        h.provider.setLatency(0);
      }
      expect(await d.rowOf(id)).toMatchObject({ status: 'CANCELLED', completionReason: 'exit_event' });
      // Whatever job is left in Redis for the execution finds it ended and sends nothing.
      const left = await h.deps.queue.queue.getJob(stepJobId(id, (await d.rowOf(id)).version));
      if (left) await processStep(h.deps, h.deps.cache, left.data);
      expect((await d.rowOf(id)).status).toBe('CANCELLED');
      expect(d.messagesOf(id, 'three')).toEqual([]);
    });

    it('an exit event for a contact without executions of the workflow changes nothing', async () => {
      await h.createWorkflow(exiting('left_for_good'));
      const contact = await h.createContact();
      const response = await d.sendEvent(contact.id, 'left_for_good');
      expect(response.status).toBe(202);
      expect(await h.db.execution.count({ where: { contactId: contact.id } })).toBe(0);
    });
  });

  describe('bad input for exit is a 400 with the path of the field', () => {
    const steps = [email('hello')];
    const refused = async (definition: unknown, path: string) => {
      const before = await h.db.workflow.count();
      expectDefinitionIssue(await h.api.post('/workflows', { name: 'Bad', definition }), path);
      expect(await h.db.workflow.count()).toBe(before);
    };

    it('an exit event name over the limit (100 characters), empty, or missing', async () => {
      await refused({ exit: { event: 'e'.repeat(101) }, steps }, 'definition.exit.event');
      await refused({ exit: { event: '' }, steps }, 'definition.exit.event');
      await refused({ exit: {}, steps }, 'definition.exit.event');
    });
  });
});

describe('Journeys I: opt-out and exit with real workers (issue #18, Build 6 and 7)', () => {
  let h: Harness;
  let d: JourneyDriver;
  beforeAll(async () => {
    h = await startHarness({ worker: true });
    d = createJourneyDriver(h);
  });
  afterAll(() => h?.stop());

  // Waiting for an event (with a timeout no test reaches) keeps each execution still until the test acts,
  // so nothing here depends on how fast the workers are.
  const journey = {
    exit: { event: 'unsubscribed' },
    reentry: 'always',
    steps: [
      email('hello'),
      {
        id: 'await_click',
        type: 'wait_for_event',
        config: { event: 'clicked', timeout: '1 hour' },
        branches: { received: [email('thanks')], timeout: [] },
      },
      sms('bye'),
    ],
  };

  it('an opted-out contact whose wait ends gets no further message, and its execution completes', async () => {
    const workflow = await h.createWorkflow(journey);
    const contact = await h.createContact();
    const id = await h.trigger(workflow.id, contact.id);
    await h.waitForExecution(id, (e) => e.status === 'PAUSED');
    expect((await h.api.patch(`/contacts/${contact.id}`, { opted_in: false })).status).toBe(200);
    expect((await d.event(contact.id, 'clicked')).resumed).toEqual([id]);
    await h.waitForExecution(id, (e) => e.status === 'COMPLETED');
    expect((await d.logsOfType(id, 'skipped_opted_out')).map((log) => log.stepId)).toEqual(['thanks', 'bye']);
    expect(d.messagesOf(id).map((m) => m.body.step_id)).toEqual(['hello']);
  });

  it('an exit event cancels the waiting execution, and no worker sends anything more', async () => {
    const workflow = await h.createWorkflow(journey);
    const contact = await h.createContact();
    const id = await h.trigger(workflow.id, contact.id);
    await h.waitForExecution(id, (e) => e.status === 'PAUSED');
    expect((await d.sendEvent(contact.id, 'unsubscribed')).status).toBe(202);
    const ended = await h.waitForExecution(id, (e) => e.status !== 'PAUSED');
    expect(ended).toMatchObject({ status: 'CANCELLED', completion_reason: 'exit_event' });
    expect(await d.eventTypes(id)).toContain('exited');
    // The event the wait was for, arriving afterwards, resumes nothing.
    expect((await d.event(contact.id, 'clicked')).resumed).toEqual([]);
    expect(d.messagesOf(id).map((m) => m.body.step_id)).toEqual(['hello']);
  });
});
