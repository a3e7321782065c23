import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManualClock } from '../../src/clock.ts';
import { startHarness, type Harness } from '../helpers/harness.ts';
import {
  createJourneyDriver,
  expectDefinitionIssue,
  expectEventAnswer,
  type JourneyDriver,
} from '../helpers/journeys.ts';

// Journeys I, point 1 of the Build list (CONTRACT.md "Journeys", Entry): contacts enter on events and
// tags. Worker-less with a manual clock: executions stay where the test leaves them, every count is exact,
// and the deduplication window (5 s) only passes when a test moves the clock past it.

/** Past the 5 s deduplication window of `POST /trigger`, which event and tag entry share. */
const PAST_DEDUP_WINDOW_MS = 6_000;

/** An entry of the events answer's `enrolled` for the workflow (the contract's fields; more may follow). */
const enrolledIn = (workflowId: string) =>
  expect.objectContaining({ workflow_id: workflowId, execution_id: expect.any(String) });
/** An entry of the events answer's `blocked` for the workflow, with a reason. */
const blockedFrom = (workflowId: string) =>
  expect.objectContaining({ workflow_id: workflowId, reason: expect.stringMatching(/\S/) });

const email = (id: string, body = 'Hello') => ({ id, type: 'send_email', config: { subject: id, body } });
const tag = (id: string, name: string) => ({ id, type: 'add_tag', config: { tag: name } });

describe('Journeys I: entry by event and by tag (issue #18, Build 1)', () => {
  const clock = createManualClock(new Date('2026-03-02T10:00:00.000Z'));
  let h: Harness;
  let d: JourneyDriver;
  beforeAll(async () => {
    // 1,000 concurrent events come from one API key: the per-key rate limit would answer some with 429.
    h = await startHarness({ worker: false, clock, env: { API_RATE_LIMIT: '0' } });
    d = createJourneyDriver(h);
  });
  afterAll(() => h?.stop());

  let names = 0;
  /** An event or tag name no other test uses, so the account's other workflows never match it. */
  const fresh = (base: string) => `${base}_${(names += 1)}`;

  describe('1. trigger type "event"', () => {
    const signedUp = (event = 'signed_up') => ({
      trigger: { type: 'event', event, where: { field: 'payload.plan', operator: 'equals', value: 'pro' } },
      reentry: 'always',
      steps: [email('welcome', 'Your plan: {{payload.plan}}')],
    });

    it('enrolls a contact whose event matches the where: 202 with the execution, which runs on the event', async () => {
      const workflow = await h.createWorkflow(signedUp());
      const contact = await h.createContact();
      const response = await h.api.post(`/contacts/${contact.id}/events`, {
        name: 'signed_up',
        properties: { plan: 'pro' },
      });
      expect(response.status).toBe(202);
      expectEventAnswer(response.body);
      expect(response.body).toMatchObject({ blocked: [], resumed: [], goals: [] });
      expect(response.body.enrolled).toEqual([enrolledIn(workflow.id)]);
      const id = response.body.enrolled[0]!.execution_id;

      const execution = await h.api.get(`/executions/${id}`);
      expect(execution.body).toMatchObject({ workflow_id: workflow.id, contact_id: contact.id, status: 'QUEUED' });
      expect(await d.eventTypes(id)).toContain('execution_started');
      expect((await d.executionsOf(workflow.id, contact.id)).map((e) => e.id)).toEqual([id]);
    });

    it("makes the event's properties the payload: {{payload.plan}} reaches the provider", async () => {
      const event = fresh('signed_up');
      await h.createWorkflow(signedUp(event));
      const contact = await h.createContact();
      const answer = await d.event(contact.id, event, { plan: 'pro', seats: 3 });
      const id = answer.enrolled[0]!.execution_id;
      expect((await d.finish(id)).status).toBe('COMPLETED');
      const [sent] = d.messagesOf(id, 'welcome');
      expect(sent?.body).toMatchObject({ body: 'Your plan: pro', execution_id: id, step_id: 'welcome' });
    });

    it('does not enroll when the where does not hold, or the event has no such property', async () => {
      const event = fresh('signed_up');
      const workflow = await h.createWorkflow(signedUp(event));
      const contact = await h.createContact();
      expect((await d.event(contact.id, event, { plan: 'free' })).enrolled).toEqual([]);
      clock.advance(PAST_DEDUP_WINDOW_MS);
      expect((await d.event(contact.id, event)).enrolled).toEqual([]);
      expect(await d.executionsOf(workflow.id, contact.id)).toEqual([]);
    });

    it('reads contact fields and combinators in the where', async () => {
      const event = fresh('upgraded');
      const workflow = await h.createWorkflow({
        trigger: {
          type: 'event',
          event,
          where: { all: [{ has_tag: 'VIP' }, { field: 'payload.total', operator: 'greater_than', value: 100 }] },
        },
        steps: [email('thanks')],
      });
      const vip = await h.createContact({ tags: ['VIP'] });
      const regular = await h.createContact();
      expect((await d.event(vip.id, event, { total: 150 })).enrolled).toEqual([enrolledIn(workflow.id)]);
      expect((await d.event(regular.id, event, { total: 150 })).enrolled).toEqual([]);
      expect((await d.event(vip.id, fresh('other'), { total: 150 })).enrolled).toEqual([]);
    });

    it('does not enroll in a draft or paused workflow, nor in one triggered by another event', async () => {
      const event = fresh('signed_up');
      const draft = await h.createWorkflow(signedUp(event), 'Draft', 'draft');
      const paused = await h.createWorkflow(signedUp(event), 'Paused', 'active');
      expect((await h.api.post(`/workflows/${paused.id}/pause`)).status).toBe(200);
      const other = await h.createWorkflow(signedUp(fresh('signed_up')));
      const contact = await h.createContact();
      const answer = await d.event(contact.id, event, { plan: 'pro' });
      expect(answer.enrolled).toEqual([]);
      for (const workflow of [draft, paused, other]) expect(await d.executionsOf(workflow.id, contact.id)).toEqual([]);
    });

    it('enrolls in every matching active workflow at once', async () => {
      const event = fresh('signed_up');
      const one = await h.createWorkflow(signedUp(event), 'One');
      const two = await h.createWorkflow(signedUp(event), 'Two');
      const contact = await h.createContact();
      const answer = await d.event(contact.id, event, { plan: 'pro' });
      expect(answer.enrolled.map((e) => e.workflow_id).sort()).toEqual([one.id, two.id].sort());
      for (const workflow of [one, two]) expect(await d.executionsOf(workflow.id, contact.id)).toHaveLength(1);
    });

    it('lists an opted-out contact as blocked, with a reason, and creates no execution', async () => {
      const event = fresh('signed_up');
      const workflow = await h.createWorkflow(signedUp(event));
      const contact = await h.createContact({ opted_in: false });
      const answer = await d.event(contact.id, event, { plan: 'pro' });
      expect(answer.enrolled).toEqual([]);
      expect(answer.blocked).toEqual([blockedFrom(workflow.id)]);
      expect(await d.executionsOf(workflow.id, contact.id)).toEqual([]);
    });

    it('keeps the deduplication window: a second event within 5 s enrolls no second execution', async () => {
      const event = fresh('signed_up');
      const workflow = await h.createWorkflow(signedUp(event)); // re-entry "always": only the window guards
      const contact = await h.createContact();
      const first = (await d.event(contact.id, event, { plan: 'pro' })).enrolled[0]!.execution_id;
      clock.advance(1_000);
      const second = await d.event(contact.id, event, { plan: 'pro' });
      for (const entry of second.enrolled.filter((e) => e.workflow_id === workflow.id))
        expect(entry.execution_id).toBe(first);
      expect((await d.executionsOf(workflow.id, contact.id)).map((e) => e.id)).toEqual([first]);

      clock.advance(PAST_DEDUP_WINDOW_MS);
      const third = await d.event(contact.id, event, { plan: 'pro' });
      expect(third.enrolled).toEqual([enrolledIn(workflow.id)]);
      expect(third.enrolled[0]!.execution_id).not.toBe(first);
      expect(await d.executionsOf(workflow.id, contact.id)).toHaveLength(2);
    });

    it('keeps the re-entry rule: "never" blocks a second enrollment with a reason', async () => {
      const event = fresh('signed_up');
      const workflow = await h.createWorkflow({ ...signedUp(event), reentry: 'never' });
      const contact = await h.createContact();
      const first = await d.event(contact.id, event, { plan: 'pro' });
      expect(first.enrolled).toHaveLength(1);
      expect((await d.finish(first.enrolled[0]!.execution_id)).status).toBe('COMPLETED');
      clock.advance(PAST_DEDUP_WINDOW_MS);
      const again = await d.event(contact.id, event, { plan: 'pro' });
      expect(again.enrolled).toEqual([]);
      expect(again.blocked).toEqual([blockedFrom(workflow.id)]);
      expect(await d.executionsOf(workflow.id, contact.id)).toHaveLength(1);
    });

    it('keeps the re-entry rule: "after_completion" blocks while one runs and enrolls once it has ended', async () => {
      const event = fresh('signed_up');
      const workflow = await h.createWorkflow({ ...signedUp(event), reentry: 'after_completion' });
      const contact = await h.createContact();
      const first = (await d.event(contact.id, event, { plan: 'pro' })).enrolled[0]!.execution_id;
      clock.advance(PAST_DEDUP_WINDOW_MS);
      expect((await d.event(contact.id, event, { plan: 'pro' })).blocked).toEqual([blockedFrom(workflow.id)]);
      await d.finish(first);
      expect((await d.event(contact.id, event, { plan: 'pro' })).enrolled).toHaveLength(1);
      expect(await d.executionsOf(workflow.id, contact.id)).toHaveLength(2);
    });

    it('lists the executions whose goal the event reached in goals', async () => {
      const goal = fresh('booked');
      const workflow = await h.createWorkflow({
        goal: { event: goal },
        steps: [email('one'), { id: 'pause', type: 'wait', config: { duration: '1 hour' } }, email('two')],
      });
      const contact = await h.createContact();
      const id = await h.trigger(workflow.id, contact.id);
      await d.settle(id);
      const answer = await d.event(contact.id, goal);
      expect(answer.goals).toEqual([id]);
      expect(answer.enrolled).toEqual([]);
      expect((await d.rowOf(id)).completionReason).toBe('goal_achieved');
    });

    it('answers 404 for an unknown contact and enrolls nothing', async () => {
      const event = fresh('signed_up');
      const workflow = await h.createWorkflow(signedUp(event));
      const response = await d.sendEvent('00000000-0000-4000-8000-000000000000', event, { plan: 'pro' });
      expect(response.status).toBe(404);
      expect(await h.db.execution.count({ where: { workflowId: workflow.id } })).toBe(0);
    });
  });

  describe('1. trigger type "tag_added"', () => {
    const tagged = (name: string, reentry = 'always') => ({
      trigger: { type: 'tag_added', tag: name },
      reentry,
      steps: [email('hello')],
    });

    it('enrolls a contact once per tag change through POST /contacts/{id}/tags; none when the tag was there', async () => {
      const lead = fresh('lead');
      const workflow = await h.createWorkflow(tagged(lead)); // re-entry "always": each tag change may enroll
      const unrelated = await h.createWorkflow(tagged(fresh('customer')));
      const contact = await h.createContact();
      expect((await h.api.post(`/contacts/${contact.id}/tags`, { tag: lead })).status).toBe(200);
      const [execution] = await d.executionsOf(workflow.id, contact.id);
      expect(execution).toMatchObject({ status: 'QUEUED' });
      expect(await d.executionsOf(unrelated.id, contact.id)).toEqual([]);

      clock.advance(PAST_DEDUP_WINDOW_MS); // so only "the tag was already there" can refuse the next one
      expect((await h.api.post(`/contacts/${contact.id}/tags`, { tag: lead })).status).toBe(200);
      expect(await d.executionsOf(workflow.id, contact.id)).toHaveLength(1);

      // Removed and added again: a new tag change.
      expect((await h.api.delete(`/contacts/${contact.id}/tags/${lead}`)).status).toBe(200);
      expect((await h.api.post(`/contacts/${contact.id}/tags`, { tag: lead })).status).toBe(200);
      expect(await d.executionsOf(workflow.id, contact.id)).toHaveLength(2);
    });

    it('enrolls once when the same tag is added by concurrent requests', async () => {
      const lead = fresh('lead');
      const workflow = await h.createWorkflow(tagged(lead));
      const contact = await h.createContact();
      const answers = await Promise.all(
        Array.from({ length: 8 }, () => h.api.post(`/contacts/${contact.id}/tags`, { tag: lead })),
      );
      expect(answers.map((a) => a.status)).toEqual(Array(8).fill(200));
      expect(await d.executionsOf(workflow.id, contact.id)).toHaveLength(1);
    });

    it('enrolls through an add_tag step of another workflow, exactly once, also when its job runs again', async () => {
      const lead = fresh('lead');
      const entered = await h.createWorkflow(tagged(lead));
      const tagging = await h.createWorkflow({ reentry: 'always', steps: [tag('mark', lead), email('after')] });
      const contact = await h.createContact();
      const id = await h.trigger(tagging.id, contact.id);
      const tagJob = await d.takeJob(id); // the first job runs the add_tag step
      expect(await tagJob.run()).toBe('committed');
      expect((await h.api.get(`/contacts/${contact.id}`)).body.tags).toContain(lead);
      const [execution] = await d.executionsOf(entered.id, contact.id);
      expect(execution).toMatchObject({ status: 'QUEUED' });
      // The same job delivered again (a worker died after its commit) adds nothing and enrolls nothing.
      expect(await tagJob.run()).toBe('stale');
      expect((await d.finish(id)).status).toBe('COMPLETED');
      expect(await d.executionsOf(entered.id, contact.id)).toHaveLength(1);

      // The tagging workflow again: the tag is already there, so no tag change and no enrollment.
      clock.advance(PAST_DEDUP_WINDOW_MS);
      expect((await d.finish(await h.trigger(tagging.id, contact.id))).status).toBe('COMPLETED');
      expect(await d.executionsOf(entered.id, contact.id)).toHaveLength(1);
    });

    it('keeps the guards: an opted-out contact, or an inactive workflow, is not enrolled', async () => {
      const lead = fresh('lead');
      const active = await h.createWorkflow(tagged(lead));
      const draft = await h.createWorkflow(tagged(lead), 'Draft', 'draft');
      const optedOut = await h.createContact({ opted_in: false });
      expect((await h.api.post(`/contacts/${optedOut.id}/tags`, { tag: lead })).status).toBe(200);
      expect(await d.executionsOf(active.id, optedOut.id)).toEqual([]);
      const contact = await h.createContact();
      await h.api.post(`/contacts/${contact.id}/tags`, { tag: lead });
      expect(await d.executionsOf(active.id, contact.id)).toHaveLength(1);
      expect(await d.executionsOf(draft.id, contact.id)).toEqual([]);
    });

    it('keeps the re-entry rule "never" across tag changes', async () => {
      const lead = fresh('lead');
      const workflow = await h.createWorkflow(tagged(lead, 'never'));
      const contact = await h.createContact();
      await h.api.post(`/contacts/${contact.id}/tags`, { tag: lead });
      clock.advance(PAST_DEDUP_WINDOW_MS);
      await h.api.delete(`/contacts/${contact.id}/tags/${lead}`);
      await h.api.post(`/contacts/${contact.id}/tags`, { tag: lead });
      expect(await d.executionsOf(workflow.id, contact.id)).toHaveLength(1);
    });
  });

  describe('1. exactly once under load and retries', () => {
    it('1,000 concurrent events for 1,000 contacts enroll each contact exactly once', {
      timeout: 180_000,
    }, async () => {
      const event = fresh('bulk_signup');
      const workflow = await h.createWorkflow({ trigger: { type: 'event', event }, steps: [email('hello')] });
      const { rows } = await h.deps.pool.query<{ id: string }>(
        `INSERT INTO contacts (id, account_id, email, updated_at)
         SELECT gen_random_uuid(), $1, 'bulk-' || gen_random_uuid() || '@example.com', now()
         FROM generate_series(1, 1000) RETURNING id`,
        [h.account.account_id],
      );
      // All 1,000 are sent at once, over at most 100 connections (as an importer's HTTP client would):
      // a thousand simultaneous connects overflow the test server's accept queue on a busy machine and
      // get reset, which says nothing about the engine.
      const answers = await atMost(100, rows, ({ id }) => d.sendEvent(id, event, { source: 'import' }));
      expect(answers.filter((a) => a.status !== 202).map((a) => [a.status, a.body])).toEqual([]);
      for (const answer of answers) expect(answer.body.enrolled).toEqual([enrolledIn(workflow.id)]);
      const { rows: counts } = await h.deps.pool.query<{ contact_id: string; n: number }>(
        'SELECT contact_id, count(*)::int AS n FROM executions WHERE workflow_id = $1 GROUP BY contact_id',
        [workflow.id],
      );
      expect(counts).toHaveLength(1000);
      expect(counts.filter((c) => c.n !== 1)).toEqual([]);
      expect(new Set(counts.map((c) => c.contact_id))).toEqual(new Set(rows.map((r) => r.id)));
      const named = new Set(answers.map((a) => a.body.enrolled[0].execution_id));
      expect(named.size).toBe(1000);
    });

    it('an event sent twice with the same Idempotency-Key enrolls once and answers the same', async () => {
      const event = fresh('signed_up');
      const workflow = await h.createWorkflow({
        trigger: { type: 'event', event },
        reentry: 'always',
        steps: [email('hello')],
      });
      const contact = await h.createContact();
      const key = `journey-${event}`;
      const first = await d.sendEvent(contact.id, event, { plan: 'pro' }, key);
      expect(first.status).toBe(202);
      expect(first.body.enrolled).toHaveLength(1);
      clock.advance(PAST_DEDUP_WINDOW_MS); // past the window: only the key stops a second enrollment
      const again = await d.sendEvent(contact.id, event, { plan: 'pro' }, key);
      expect([again.status, again.body]).toEqual([202, first.body]);
      expect(await d.executionsOf(workflow.id, contact.id)).toHaveLength(1);
      // Another key is another event, which enrolls (re-entry "always").
      const other = await d.sendEvent(contact.id, event, { plan: 'pro' }, `${key}-2`);
      expect(other.body.enrolled).toHaveLength(1);
      expect(await d.executionsOf(workflow.id, contact.id)).toHaveLength(2);
    });
  });

  describe('1. bad input is a 400 with the path of the field', () => {
    const refused = async (definition: unknown, path: string) => {
      const before = await h.db.workflow.count();
      expectDefinitionIssue(await h.api.post('/workflows', { name: 'Bad', definition }), path);
      expect(await h.db.workflow.count()).toBe(before);
    };
    const steps = [email('hello')];

    it('an event name over the limit (100 characters)', async () => {
      await refused({ trigger: { type: 'event', event: 'e'.repeat(101) }, steps }, 'definition.trigger.event');
      const ok = await h.api.post('/workflows', {
        name: 'Longest name',
        definition: { trigger: { type: 'event', event: 'e'.repeat(100) }, steps },
      });
      expect(ok.status).toBe(201);
    });

    it('an event trigger without its event', async () => {
      await refused({ trigger: { type: 'event' }, steps }, 'definition.trigger.event');
    });

    it('a where with an unknown operator', async () => {
      await refused(
        { trigger: { type: 'event', event: 'x', where: { field: 'payload.plan', operator: 'over' } }, steps },
        'definition.trigger.where.operator',
      );
    });

    it('a tag_added trigger without its tag, or with a tag over the limit', async () => {
      await refused({ trigger: { type: 'tag_added' }, steps }, 'definition.trigger.tag');
      await refused({ trigger: { type: 'tag_added', tag: 't'.repeat(101) }, steps }, 'definition.trigger.tag');
    });

    it('the same on PUT /workflows/{id}/definition, which keeps the current version', async () => {
      const workflow = await h.createWorkflow({ steps });
      const response = await h.api.put(`/workflows/${workflow.id}/definition`, {
        definition: { trigger: { type: 'event', event: 'e'.repeat(101) }, steps },
      });
      expectDefinitionIssue(response, 'definition.trigger.event');
      expect((await h.api.get(`/workflows/${workflow.id}`)).body.version).toBe(1);
    });
  });
});

/** Runs `task` over `items` with at most `limit` running at once; the results in the items' order. */
async function atMost<T, R>(limit: number, items: readonly T[], task: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await task(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return results;
}
