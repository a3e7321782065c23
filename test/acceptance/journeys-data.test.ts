import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManualClock } from '../../src/clock.ts';
import { MAX_SAVED_ANSWER_BYTES } from '../../src/providers/http-provider.ts';
import { startHarness, type Harness } from '../helpers/harness.ts';
import { createJourneyDriver, expectDefinitionIssue, type JourneyDriver } from '../helpers/journeys.ts';

// Journeys II, point 4 of the Build list (CONTRACT.md "Journeys", Data): a webhook's `save_response`
// saves dotted paths of its 2xx JSON answer to the contact's attributes in the step's own commit, so
// later conditions and templates see them. The fake provider answers the webhooks.

describe('Journeys II: webhook save_response (issue #19, Build 4)', () => {
  const clock = createManualClock(new Date('2026-05-01T10:00:00.000Z'));
  let h: Harness;
  let d: JourneyDriver;
  beforeAll(async () => {
    h = await startHarness({ worker: false, clock });
    d = createJourneyDriver(h);
  });
  afterAll(() => h?.stop());

  const hook = (saves: Record<string, string>) => ({
    id: 'lookup',
    type: 'webhook',
    config: { url: `${h.provider.url}/crm`, method: 'POST', body: { email: '{{email}}' }, save_response: saves },
  });
  const attributesOf = async (contactId: string) =>
    (await h.db.contact.findUniqueOrThrow({ where: { id: contactId } })).attributes as Record<string, unknown>;
  const savedDetails = async (id: string) => {
    const [completed] = await d.logsOfType(id, 'action_started');
    return completed!.details as Record<string, unknown>;
  };
  const run = async (steps: unknown[], attributes: Record<string, unknown> = { plan: 'free' }) => {
    const contact = (await h.createContact({ attributes })).id;
    const workflow = await h.createWorkflow({ reentry: 'always', steps });
    const id = await h.trigger(workflow.id, contact);
    return { id, contact, row: await d.finish(id) };
  };

  it('saves each path of a 2xx JSON answer; a later condition and template read them', async () => {
    h.provider.script({ status: 200, body: { data: { tier: 'gold', score: 42, tags: ['a'] }, id: 'cus_1' } });
    const { id, contact, row } = await run([
      hook({ tier: 'data.tier', crm_id: 'id', score: 'data.score' }),
      {
        id: 'is_gold',
        type: 'condition',
        config: { field: 'tier', operator: 'equals', value: 'gold' },
        branches: {
          true: [
            { id: 'gold_mail', type: 'send_email', config: { subject: 'Hi {{crm_id}}', body: 'Score {{score}}' } },
          ],
          false: [{ id: 'plain_mail', type: 'send_email', config: { subject: 'Hi', body: 'Hello' } }],
        },
      },
    ]);
    expect(row.status).toBe('COMPLETED');
    expect(await attributesOf(contact)).toEqual({ plan: 'free', tier: 'gold', crm_id: 'cus_1', score: 42 });
    expect(d.messagesOf(id, 'plain_mail')).toEqual([]);
    const [mail] = d.messagesOf(id, 'gold_mail');
    expect(mail!.body).toMatchObject({ subject: 'Hi cus_1', body: 'Score 42' });
    expect(((await savedDetails(id)).saved as string[]).sort()).toEqual(['crm_id', 'score', 'tier']);
  });

  it('keeps the saved values out of the stored logs and the log lines', async () => {
    h.provider.script({ status: 200, body: { secret_code: 'zq-unique-value-7781' } });
    const { id } = await run([hook({ code: 'secret_code' })]);
    const stored = JSON.stringify((await h.logsOf(id)).map((log) => log.details));
    expect(stored).not.toContain('zq-unique-value-7781');
    expect(stored).toContain('"saved":["code"]');
    expect(h.logLines.join('')).not.toContain('zq-unique-value-7781');
  });

  it('saves objects and arrays whole, and replaces an attribute of the same name', async () => {
    h.provider.script({ status: 200, body: { address: { city: 'Lyon', zip: '69001' }, items: [{ sku: 'x' }] } });
    const { contact } = await run([hook({ plan: 'items.0.sku', address: 'address' })]);
    expect(await attributesOf(contact)).toEqual({ plan: 'x', address: { city: 'Lyon', zip: '69001' } });
  });

  it('saves the paths it finds and lists the missing ones in details.not_found', async () => {
    h.provider.script({ status: 200, body: { data: { tier: 'silver' } } });
    const { id, contact, row } = await run([hook({ tier: 'data.tier', crm_id: 'customer.id' })]);
    expect(row.status).toBe('COMPLETED');
    expect(await attributesOf(contact)).toEqual({ plan: 'free', tier: 'silver' });
    expect(await savedDetails(id)).toMatchObject({ saved: ['tier'], not_found: ['crm_id'] });
  });

  it('saves nothing from an answer that is not JSON, and still completes the step', async () => {
    h.provider.script({ status: 200, raw: 'OK thanks' });
    const { id, contact, row } = await run([hook({ tier: 'data.tier' })]);
    expect(row.status).toBe('COMPLETED');
    expect(await attributesOf(contact)).toEqual({ plan: 'free' });
    expect(await savedDetails(id)).toMatchObject({ saved: [], save_response_error: 'answer is not JSON' });
    expect(await d.eventTypes(id)).toContain('action_completed');
  });

  it(`saves nothing from a JSON answer longer than ${MAX_SAVED_ANSWER_BYTES} bytes (cut, so not JSON)`, async () => {
    h.provider.script({ status: 200, body: { tier: 'gold', filler: 'x'.repeat(MAX_SAVED_ANSWER_BYTES) } });
    const { id, contact } = await run([hook({ tier: 'tier' })]);
    expect(await attributesOf(contact)).toEqual({ plan: 'free' });
    expect(await savedDetails(id)).toMatchObject({ saved: [], save_response_error: 'answer is not JSON' });
  });

  it('saves nothing from a non-2xx answer (the step is skipped as a permanent failure)', async () => {
    h.provider.script({ status: 400, body: { data: { tier: 'gold' } } });
    const { id, contact, row } = await run([hook({ tier: 'data.tier' })]);
    expect(row.status).toBe('COMPLETED');
    expect(await attributesOf(contact)).toEqual({ plan: 'free' });
    expect(await d.eventTypes(id)).toContain('skipped_non_retryable_error');
  });

  it('saves nothing while a 5xx answer is retried, then saves from the 2xx one', async () => {
    h.provider.script(
      { status: 503, body: { data: { tier: 'bronze' } } },
      { status: 200, body: { data: { tier: 'gold' } } },
    );
    const contact = (await h.createContact({ attributes: { plan: 'free' } })).id;
    const workflow = await h.createWorkflow({ reentry: 'always', steps: [hook({ tier: 'data.tier' })] });
    const id = await h.trigger(workflow.id, contact);
    expect((await h.step(id)).outcome).toBe('committed');
    expect(await d.eventTypes(id)).toContain('retry_scheduled');
    expect(await attributesOf(contact)).toEqual({ plan: 'free' });
    clock.advance(60_000); // the account's retry back-off
    expect((await d.finish(id)).status).toBe('COMPLETED');
    expect(await attributesOf(contact)).toEqual({ plan: 'free', tier: 'gold' });
  });

  describe('bad save_response', () => {
    const create = (saves: unknown) =>
      h.api.post('/workflows', {
        name: 'W',
        definition: {
          steps: [{ id: 'hook', type: 'webhook', config: { url: `${h.provider.url}/crm`, save_response: saves } }],
        },
      });
    it.each([
      ['a reserved attribute', { email: 'data.email' }, 'definition.steps.0.config.save_response.email'],
      ['a prototype key as attribute', { constructor: 'a' }, 'definition.steps.0.config.save_response.constructor'],
      ['an attribute that is no name', { 'my tier': 'a' }, 'definition.steps.0.config.save_response.my tier'],
      ['an empty path segment', { tier: 'data..tier' }, 'definition.steps.0.config.save_response.tier'],
      ['a path through a prototype key', { tier: 'data.__proto__.x' }, 'definition.steps.0.config.save_response.tier'],
      ['a path that is no string', { tier: 5 }, 'definition.steps.0.config.save_response.tier'],
      ['no attribute', {}, 'definition.steps.0.config.save_response'],
      ['a list', ['data.tier'], 'definition.steps.0.config.save_response'],
    ])('refuses %s with 400 at its path', async (_, saves, path) => {
      expectDefinitionIssue(await create(saves), path);
    });
  });
});

describe('Journeys II: save_response with a worker running the steps in line', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(() => h?.stop());

  it('commits the saved attributes with the condition staged after the webhook, which reads them', async () => {
    h.provider.script({ status: 200, body: { data: { tier: 'gold' } } });
    const contact = (await h.createContact({ attributes: { plan: 'free' } })).id;
    const workflow = await h.createWorkflow({
      steps: [
        {
          id: 'lookup',
          type: 'webhook',
          config: { url: `${h.provider.url}/crm-inline`, save_response: { tier: 'data.tier' } },
        },
        {
          id: 'is_gold',
          type: 'condition',
          config: { field: 'tier', operator: 'equals', value: 'gold' },
          branches: { true: [{ id: 'vip', type: 'add_tag', config: { tag: 'gold' } }], false: [] },
        },
      ],
    });
    const id = await h.trigger(workflow.id, contact);
    await h.waitForExecution(id, (e) => e.status === 'COMPLETED');
    const row = await h.db.contact.findUniqueOrThrow({ where: { id: contact } });
    expect(row.attributes).toEqual({ plan: 'free', tier: 'gold' });
    expect(row.tags).toContain('gold');
  });
});
