import { readdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccount } from '../../src/api/api-keys.ts';
import { responses } from '../../src/api/openapi.ts';
import { MAX_TEST_EVENTS } from '../../src/api/schemas.ts';
import { startHarness, type Harness } from '../helpers/harness.ts';

// `POST /workflows/{id}/test` (CONTRACT.md "Insight and operations"): the path one contact would take on
// a simulated clock, with no provider call and nothing stored. No worker runs; the comparison with the
// engine moves the real execution itself (h.step).

/** The SPEC's example workflows, as `machines/` holds them. */
// The engine run below moves timers to "now" on the real clock, so a workflow with a send window would
// depend on the time of day the test runs at; its deferrals are covered by test/unit/simulate.test.ts.
const EXAMPLES = readdirSync('machines')
  .filter((file) => file.endsWith('.definition.json'))
  .map((file) => [file.replace('.definition.json', ''), JSON.parse(readFileSync(`machines/${file}`, 'utf8'))] as const)
  .filter(([, definition]) => !('send_window' in definition));

const journey = {
  goal: { event: 'appointment_booked' },
  steps: [
    { id: 'welcome', type: 'send_email', config: { subject: 'Hi', body: 'Welcome' } },
    { id: 'tag', type: 'add_tag', config: { tag: 'welcomed' } },
    {
      id: 'vip',
      type: 'condition',
      config: { has_tag: 'VIP' },
      branches: { true: [{ id: 'vip_sms', type: 'send_sms', config: { body: 'VIP' } }], false: [] },
    },
    { id: 'pause', type: 'wait', config: { duration: '2 hours' } },
    { id: 'bye', type: 'send_email', config: { subject: 'Bye', body: 'x' } },
  ],
};

describe('POST /workflows/{id}/test', () => {
  let h: Harness;
  let workflowId: string;
  const test = (body: unknown, key?: string) => h.api.post(`/workflows/${workflowId}/test`, body, key);
  const counts = async () => ({
    executions: await h.db.execution.count(),
    logs: await h.db.executionLog.count(),
    contacts: await h.db.contact.count(),
  });

  beforeAll(async () => {
    h = await startHarness({ worker: false, env: { TIMER_HORIZON_MS: String(30 * 86_400_000) } }); // every timer (the A/B test waits 2 days) has its job in Redis
    workflowId = (await h.createWorkflow(journey, 'Journey')).id;
  });
  afterAll(() => h?.stop());

  it('answers the path of a hypothetical contact, calling no provider and storing nothing', async () => {
    const before = await counts();
    const response = await test({ contact: { tags: ['VIP'] }, start_at: '2026-03-02T10:00:00Z' });
    expect(response.status).toBe(200);
    responses.workflowTest.parse(response.body);
    expect(response.body).toMatchObject({ version: 1, result: 'COMPLETED', completion_reason: 'completed' });
    expect(response.body.path).toEqual([
      { step_id: 'welcome', type: 'send_email', at: '2026-03-02T10:00:00.000Z', outcome: 'success' },
      { step_id: 'tag', type: 'add_tag', at: '2026-03-02T10:00:00.000Z', outcome: 'success' },
      { step_id: 'vip', type: 'condition', at: '2026-03-02T10:00:00.000Z', outcome: 'true' },
      { step_id: 'vip_sms', type: 'send_sms', at: '2026-03-02T10:00:00.000Z', outcome: 'success' },
      { step_id: 'pause', type: 'wait', at: '2026-03-02T10:00:00.000Z', outcome: 'waited' },
      { step_id: 'bye', type: 'send_email', at: '2026-03-02T12:00:00.000Z', outcome: 'success' },
    ]);
    expect(h.provider.received).toHaveLength(0);
    expect(await counts()).toEqual(before);
  });

  it('ends at the goal when its event is injected at an offset', async () => {
    const response = await test({
      contact: {},
      start_at: '2026-03-02T10:00:00Z',
      events: [{ name: 'appointment_booked', after: '30 minutes' }],
    });
    expect(response.status).toBe(200);
    expect(response.body.result).toBe('COMPLETED');
    expect(response.body.completion_reason).toBe('goal_achieved');
    expect(response.body.path.at(-1)).toEqual({
      step_id: 'pause',
      type: 'wait',
      at: '2026-03-02T10:00:00.000Z',
      outcome: 'goal_achieved',
    });
    expect(response.body.events).toEqual([
      { name: 'appointment_booked', at: '2026-03-02T10:30:00.000Z', outcome: 'goal' },
    ]);
  });

  it("follows a stored contact, and skips an opted-out one's messages as the engine would", async () => {
    const contact = await h.createContact({ opted_in: true });
    await h.api.patch(`/contacts/${contact.id}`, { opted_in: false });
    const response = await test({ contact_id: contact.id, events: [{ name: 'noise', after: '0 seconds' }] });
    expect(response.status).toBe(200);
    expect(response.body.path.map((entry: { outcome: string }) => entry.outcome)).toEqual([
      'skipped',
      'success',
      'false',
      'waited',
      'skipped',
    ]);
    expect(response.body.events[0].outcome).toBe('ignored');
  });

  /** Runs the execution through the engine to its end, making each timer due at once (h.step runs one job). */
  const runToEnd = async (executionId: string) => {
    for (let i = 0; i < 50; i += 1) {
      const row = await h.db.execution.findUniqueOrThrow({ where: { id: executionId } });
      if (!['QUEUED', 'ACTIVE', 'PAUSED'].includes(row.status)) return row;
      if (row.status === 'PAUSED')
        await h.db.execution.update({ where: { id: executionId }, data: { nextRunAt: new Date(Date.now() - 1000) } });
      await h.step(executionId);
    }
    throw new Error(`execution ${executionId} did not end`);
  };

  it.each(
    EXAMPLES.flatMap(([name, definition]) => [[name, definition, ['VIP']] as const, [name, definition, []] as const]),
  )(
    'takes the same steps in the same order as the engine then takes, for the SPEC example %s (tags %j)',
    async (_name, definition, tags) => {
      const id = (await h.createWorkflow(definition, 'Example')).id;
      const contact = await h.createContact({ tags: [...tags] });
      const dry = await h.api.post(`/workflows/${id}/test`, { contact_id: contact.id });
      expect(dry.status).toBe(200);
      const executionId = await h.trigger(id, contact.id);
      const finished = await runToEnd(executionId);
      const logs = await h.logsOf(executionId);
      const real = [...new Set(logs.map((log) => log.stepId).filter((stepId) => stepId !== null))];
      expect(dry.body.path.map((entry: { step_id: string }) => entry.step_id)).toEqual(real);
      expect(dry.body.result).toBe(finished.status);
    },
  );

  it('refuses a contact of another account, an unknown one, and a workflow of another account with 404', async () => {
    const b = await createAccount(h.db, { name: 'Account B', adminEmail: 'admin-b@example.com' });
    const theirs = await h.api.post('/contacts', { email: 'b@example.com', opted_in: true }, b.api_key);
    expect(theirs.status).toBe(201);
    expect((await test({ contact_id: theirs.body.id })).status).toBe(404);
    const unknown = await test({ contact_id: '6f1c1f43-9f4e-4b7e-8a39-1b0c7f6d2a11' });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error).toBe('contact not found');
    expect((await test({ contact: {} }, b.api_key)).status).toBe(404);
  });

  it.each([
    [{}, 'body.contact'],
    [{ contact: {}, contact_id: '6f1c1f43-9f4e-4b7e-8a39-1b0c7f6d2a11' }, 'body.contact'],
    [{ contact_id: 'nope' }, 'body.contact_id'],
    [{ contact: { tags: 'VIP' } }, 'body.contact.tags'],
    [{ contact: { colour: 'red' } }, 'body.contact.colour'],
    [{ contact: {}, events: [{ name: 'x', after: 'soon' }] }, 'body.events.0.after'],
    [{ contact: {}, events: [{ name: 'x', after: '-5 minutes' }] }, 'body.events.0.after'],
    [{ contact: {}, events: [{ name: 'x', after: '0 fortnights' }] }, 'body.events.0.after'],
    [{ contact: {}, events: [{ name: '', after: '1 minute' }] }, 'body.events.0.name'],
    [{ contact: {}, start_at: 'yesterday' }, 'body.start_at'],
    [
      { contact: {}, events: Array.from({ length: MAX_TEST_EVENTS + 1 }, () => ({ name: 'x', after: '1 minute' })) },
      'body.events',
    ],
  ])('refuses bad input %j with 400 at %s', async (body, path) => {
    const response = await test(body);
    expect(response.status).toBe(400);
    expect(response.body.issues.map((issue: { path: string }) => issue.path)).toContain(path);
  });
});
