import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccount } from '../../src/api/api-keys.ts';
import { responses, savedWorkflow } from '../../src/api/openapi.ts';
import { startHarness, type Harness } from '../helpers/harness.ts';

// POST /workflows/validate and the warnings of POST /workflows and PUT /workflows/{id}/definition
// (CONTRACT.md "Insight and operations"), through real HTTP against the real Postgres. No worker runs.

const email = (id: string) => ({ id, type: 'send_email', config: { subject: 'Hi', body: 'Hello' } });
const waitFor = (id: string, event: string) => ({
  id,
  type: 'wait_for_event',
  config: { event, timeout: '2 days' },
  branches: { received: [email(`${id}_thanks`)], timeout: [] },
});
const journey = {
  steps: [
    {
      id: 'ab',
      type: 'split',
      config: {
        variants: [
          { id: 'a', weight: 1 },
          { id: 'off', weight: 0 },
        ],
      },
      branches: { a: [email('mail_a')], off: [email('mail_off')] },
    },
    waitFor('order', 'order_placed'),
    { id: 'morning', type: 'wait_until', config: { time: '09:00' } },
  ],
};

describe('workflow validation', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ worker: false });
  });
  afterAll(() => h?.stop());

  const validateDefinition = async (definition: unknown) => {
    const response = await h.api.post('/workflows/validate', { definition });
    expect(response.status, JSON.stringify(response.body)).toBe(200);
    return responses.validation.strict().parse(response.body);
  };

  it('answers figures and warnings for a valid definition, storing nothing', async () => {
    const before = await h.db.workflow.count();
    const answer = await validateDefinition(journey);
    expect(answer).toEqual({
      valid: true,
      warnings: [
        { code: 'unreachable_step', step_id: 'mail_off', message: expect.stringContaining('mail_off') },
        {
          code: 'unknown_event',
          step_id: 'order',
          event: 'order_placed',
          message: expect.stringContaining('order_placed'),
        },
      ],
      figures: { longest_wait_seconds: 2 * 86_400 + 7 * 86_400, max_messages_per_path: 2, paths: 2 },
    });
    expect(await h.db.workflow.count()).toBe(before);
  });

  it('drops the event warning once a contact of the account has had the event, and only for that account', async () => {
    const other = await createAccount(h.db, { name: 'Other', adminEmail: 'other@example.com' });
    const ownContact = await h.createContact();
    const otherContact = await h.api.post('/contacts', { email: 'x@example.com', opted_in: true }, other.api_key);
    expect(otherContact.status).toBe(201);
    // Another account's contact having the event changes nothing here.
    expect(
      (await h.api.post(`/contacts/${otherContact.body.id}/events`, { name: 'order_placed' }, other.api_key)).status,
    ).toBe(202);
    expect((await validateDefinition(journey)).warnings.map((w) => w.code)).toEqual([
      'unreachable_step',
      'unknown_event',
    ]);
    expect((await h.api.post(`/contacts/${ownContact.id}/events`, { name: 'order_placed' })).status).toBe(202);
    expect((await validateDefinition(journey)).warnings.map((w) => w.code)).toEqual(['unreachable_step']);
    // The other account still has no warning for it either way: it has had the event.
    const theirs = await h.api.post('/workflows/validate', { definition: journey }, other.api_key);
    expect(theirs.body.warnings.map((w: { code: string }) => w.code)).toEqual(['unreachable_step']);
  });

  it('answers valid false with every issue and its path for an invalid definition', async () => {
    const answer = await validateDefinition({
      steps: [
        {
          id: 'ab',
          type: 'split',
          config: {
            variants: [
              { id: 'a', weight: 0 },
              { id: 'b', weight: 0 },
            ],
          },
          branches: { a: [] },
        },
      ],
    });
    expect(answer.valid).toBe(false);
    expect(answer.figures).toBeNull();
    expect(answer.warnings).toEqual([]);
    expect(answer.issues?.map((issue) => issue.path)).toEqual(
      expect.arrayContaining(['definition.steps.0.config.variants', 'definition.steps.0.branches.b']),
    );
  });

  it.each([
    ['no definition', {}, 'body.definition'],
    ['an unknown field', { definition: journey, name: 'x' }, 'body.name'],
  ])('refuses a body with %s with 400 and the path', async (_, body, path) => {
    const response = await h.api.post('/workflows/validate', body);
    expect(response.status).toBe(400);
    expect(response.body.issues.map((issue: { path: string }) => issue.path)).toContain(path);
  });

  it('refuses a body that is not JSON with 400, and a call without a key with 401', async () => {
    const notJson = await h.api.raw('POST', '/api/v1/workflows/validate', '{"definition":', {
      'content-type': 'application/json',
    });
    expect(notJson.status).toBe(400);
    expect((await h.api.post('/workflows/validate', { definition: journey }, 'fm_not_a_key')).status).toBe(401);
  });

  it('puts the warnings on every POST /workflows and PUT /workflows/{id}/definition answer', async () => {
    const created = await h.api.post('/workflows', { name: 'Warned', definition: journey });
    expect(created.status).toBe(201);
    expect(
      savedWorkflow
        .strict()
        .parse(created.body)
        .warnings.map((w) => w.step_id),
    ).toEqual(['mail_off']);
    const updated = await h.api.put(`/workflows/${created.body.id}/definition`, {
      definition: { steps: [waitFor('reply', 'replied_to_survey')] },
    });
    expect(updated.status).toBe(200);
    expect(savedWorkflow.strict().parse(updated.body).warnings).toEqual([
      expect.objectContaining({ code: 'unknown_event', step_id: 'reply', event: 'replied_to_survey' }),
    ]);
    const clean = await h.api.put(`/workflows/${created.body.id}/definition`, { definition: { steps: [email('hi')] } });
    expect(clean.body.warnings).toEqual([]);
  });
});
