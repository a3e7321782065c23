import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assignVariant } from '../../src/definition/split.ts';
import { checkConsistency } from '../../src/engine/consistency.ts';
import { startHarness, type Harness } from '../helpers/harness.ts';
import { createJourneyDriver, expectDefinitionIssue, type JourneyDriver } from '../helpers/journeys.ts';

// Journeys II, points 1 and 2 of the Build list (CONTRACT.md "Journeys", Branching): `split` steps with
// sticky weighted variants and `branch` steps that take their first matching case, else `default`,
// through the API on a worker-less harness (each execution's jobs are run by the driver).

const email = (id: string) => ({ id, type: 'send_email', config: { subject: id, body: 'Hello' } });
const tag = (id: string, name: string) => ({ id, type: 'add_tag', config: { tag: name } });

const abTest = (weights: [number, number]) => ({
  reentry: 'always',
  steps: [
    {
      id: 'ab',
      type: 'split',
      config: {
        variants: [
          { id: 'a', weight: weights[0] },
          { id: 'b', weight: weights[1] },
        ],
      },
      branches: { a: [email('mail_a')], b: [email('mail_b'), tag('tag_b', 'saw_b')] },
    },
    email('after'),
  ],
});

describe('Journeys II: split (issue #19, Build 1)', () => {
  let h: Harness;
  let d: JourneyDriver;
  beforeAll(async () => {
    h = await startHarness({ worker: false });
    d = createJourneyDriver(h);
  });
  afterAll(() => h?.stop());

  /** Runs one execution of the workflow for the contact to its end; returns its id. */
  const runOnce = async (workflowId: string, contactId: string) => {
    const id = await h.trigger(workflowId, contactId);
    expect((await d.finish(id)).status).toBe('COMPLETED');
    return id;
  };

  it('sends each contact down its variant, logs split_assigned, and keeps the variant on re-entry', async () => {
    const workflow = await h.createWorkflow(abTest([50, 50]));
    for (let n = 0; n < 12; n += 1) {
      const contact = await h.createContact();
      const variant = assignVariant(contact.id, 'ab', [
        { id: 'a', weight: 50 },
        { id: 'b', weight: 50 },
      ]);
      // Enrolled twice (re-entry `always`): the same variant both times.
      for (const id of [await runOnce(workflow.id, contact.id), await runOnce(workflow.id, contact.id)]) {
        const [assigned, ...more] = await d.logsOfType(id, 'split_assigned');
        expect(more).toEqual([]);
        expect(assigned).toMatchObject({ stepId: 'ab', stepIndex: 1, status: 'SUCCESS', details: { variant } });
        const sent = d.messagesOf(id).map((request) => request.body.step_id);
        expect(sent).toEqual(variant === 'a' ? ['mail_a', 'after'] : ['mail_b', 'after']);
        const execution = (await h.api.get(`/executions/${id}`)).body;
        expect(execution).toMatchObject({ status: 'COMPLETED', current_step_index: variant === 'a' ? 3 : 4 });
        expect(execution.total_steps).toBe(variant === 'a' ? 3 : 4);
      }
    }
  });

  it('never chooses a variant of weight 0, and GET /stats counts the split step like a condition', async () => {
    const workflow = await h.createWorkflow(abTest([0, 100]));
    for (let n = 0; n < 5; n += 1) {
      const id = await runOnce(workflow.id, (await h.createContact()).id);
      expect((await d.logsOfType(id, 'split_assigned'))[0]?.details).toEqual({ variant: 'b' });
    }
    const stats = await h.api.get(`/workflows/${workflow.id}/stats`);
    expect(stats.status).toBe(200);
    const byStep = Object.fromEntries(
      (stats.body.steps as { step_id: string }[]).map((step) => [step.step_id, step]),
    ) as Record<string, Record<string, unknown>>;
    expect(byStep.ab).toMatchObject({ type: 'split', entered: 5, completed: 5, at_step: 0 });
    expect(byStep.mail_b).toMatchObject({ entered: 5, completed: 5 });
    expect(byStep.mail_a).toMatchObject({ entered: 0, completed: 0 });
  });

  it('leaves a log the consistency check replays to the same state', async () => {
    const report = await checkConsistency(h.db, { stuckAfterMs: 3_600_000 });
    expect(report.violations).toEqual([]);
  });

  it.each([
    [
      'weights that add up to 0',
      {
        variants: [
          { id: 'a', weight: 0 },
          { id: 'b', weight: 0 },
        ],
      },
      { a: [], b: [] },
      'definition.steps.0.config.variants',
    ],
    [
      'a negative weight',
      {
        variants: [
          { id: 'a', weight: -1 },
          { id: 'b', weight: 1 },
        ],
      },
      { a: [], b: [] },
      'definition.steps.0.config.variants.0.weight',
    ],
    [
      'a fractional weight',
      {
        variants: [
          { id: 'a', weight: 0.5 },
          { id: 'b', weight: 1 },
        ],
      },
      { a: [], b: [] },
      'definition.steps.0.config.variants.0.weight',
    ],
    ['a single variant', { variants: [{ id: 'a', weight: 1 }] }, { a: [] }, 'definition.steps.0.config.variants'],
    [
      'a variant without its branch',
      {
        variants: [
          { id: 'a', weight: 1 },
          { id: 'b', weight: 1 },
        ],
      },
      { a: [] },
      'definition.steps.0.branches.b',
    ],
    [
      'a branch of no variant',
      {
        variants: [
          { id: 'a', weight: 1 },
          { id: 'b', weight: 1 },
        ],
      },
      { a: [], b: [], c: [] },
      'definition.steps.0.branches.c',
    ],
    [
      'a repeated variant id',
      {
        variants: [
          { id: 'a', weight: 1 },
          { id: 'a', weight: 1 },
        ],
      },
      { a: [] },
      'definition.steps.0.config.variants.1.id',
    ],
  ])('refuses %s with 400 and the path', async (_, config, branches, path) => {
    const response = await h.api.post('/workflows', {
      name: 'Bad split',
      definition: { steps: [{ id: 'ab', type: 'split', config, branches }] },
    });
    expectDefinitionIssue(response, path);
  });
});

describe('Journeys II: branch (issue #19, Build 2)', () => {
  let h: Harness;
  let d: JourneyDriver;
  beforeAll(async () => {
    h = await startHarness({ worker: false });
    d = createJourneyDriver(h);
  });
  afterAll(() => h?.stop());

  const tiers = {
    reentry: 'always',
    steps: [
      {
        id: 'tier',
        type: 'branch',
        config: {
          cases: [
            {
              id: 'gold',
              when: { all: [{ has_tag: 'gold' }, { not: { field: 'payload.refund', operator: 'exists' } }] },
            },
            { id: 'pro', when: { any: [{ field: 'plan', operator: 'equals', value: 'pro' }, { has_tag: 'pro' }] } },
          ],
        },
        branches: { gold: [email('gold_mail')], pro: [email('pro_mail')], default: [] },
      },
      email('after'),
    ],
  };

  it.each([
    [{ tags: ['gold'] }, {}, 'gold', ['gold_mail', 'after']],
    [{ tags: ['gold'], attributes: { plan: 'pro' } }, { refund: 'yes' }, 'pro', ['pro_mail', 'after']],
    [{ tags: ['pro'] }, {}, 'pro', ['pro_mail', 'after']],
    [{ attributes: { plan: 'free' } }, {}, 'default', ['after']],
  ])('contact %o with payload %o takes case %s', async (contact, payload, chosen, sent) => {
    const workflow = await h.createWorkflow(tiers);
    const { id: contactId } = await h.createContact(contact);
    const triggered = await h.api.post(`/workflows/${workflow.id}/trigger`, { contact_id: contactId, payload });
    expect(triggered.status).toBe(202);
    const id = triggered.body.execution_id as string;
    expect((await d.finish(id)).status).toBe('COMPLETED');
    const [evaluated] = await d.logsOfType(id, 'branch_evaluated');
    expect(evaluated).toMatchObject({ stepId: 'tier', stepIndex: 1, status: 'SUCCESS', details: { case: chosen } });
    expect(d.messagesOf(id).map((request) => request.body.step_id)).toEqual(sent);
  });

  it('leaves a log the consistency check replays to the same state', async () => {
    const report = await checkConsistency(h.db, { stuckAfterMs: 3_600_000 });
    expect(report.violations).toEqual([]);
  });

  it.each([
    [
      'no default branch',
      { cases: [{ id: 'x', when: { has_tag: 'x' } }] },
      { x: [] },
      'definition.steps.0.branches.default',
    ],
    [
      'a case without its branch',
      { cases: [{ id: 'x', when: { has_tag: 'x' } }] },
      { default: [] },
      'definition.steps.0.branches.x',
    ],
    ['no cases', { cases: [] }, { default: [] }, 'definition.steps.0.config.cases'],
    [
      'a case named default',
      { cases: [{ id: 'default', when: { has_tag: 'x' } }] },
      { default: [] },
      'definition.steps.0.config.cases.0.id',
    ],
    [
      'a bad condition',
      { cases: [{ id: 'x', when: { field: 'plan', operator: 'like' } }] },
      { x: [], default: [] },
      'definition.steps.0.config.cases.0.when.operator',
    ],
  ])('refuses %s with 400 and the path', async (_, config, branches, path) => {
    const response = await h.api.post('/workflows', {
      name: 'Bad branch',
      definition: { steps: [{ id: 'tier', type: 'branch', config, branches }] },
    });
    expectDefinitionIssue(response, path);
  });
});
