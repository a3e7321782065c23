import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccount } from '../../src/api/api-keys.ts';
import { BULK_PAGE_SIZE } from '../../src/api/bulk-control.ts';
import { responses } from '../../src/api/openapi.ts';
import { emailThenWait, sequential } from '../fixtures/workflows.ts';
import { startHarness, type Harness } from '../helpers/harness.ts';

// What the designer's view reads and does: `GET /workflows/{id}/stats`, the `step_id` filter of the
// executions list, the trace of an execution, and bulk cancel/retry (CONTRACT.md "Insight and
// operations"). No worker runs: the test moves each execution itself (h.step), so every count is exact.

const journey = {
  goal: { event: 'appointment_booked' },
  steps: [
    { id: 'mail', type: 'send_email', config: { subject: 'Hi', body: 'Welcome' } },
    { id: 'pause', type: 'wait', config: { duration: '1 hour' } },
    {
      id: 'vip',
      type: 'condition',
      config: { has_tag: 'VIP' },
      branches: { true: [{ id: 'vip_sms', type: 'send_sms', config: { body: 'VIP' } }], false: [] },
    },
    { id: 'done', type: 'add_tag', config: { tag: 'done' } },
  ],
};
const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';

describe('workflow insight and bulk operations', () => {
  let h: Harness;
  let workflowId: string;
  /** waiting: at `pause`; queued: never started; failed: at `mail`; goal: completed by its goal; v2: on version 2. */
  const e = {} as Record<'waiting' | 'queued' | 'failed' | 'goal' | 'v2', string>;
  const stats = (query = '', key?: string) => h.api.get(`/workflows/${workflowId}/stats${query}`, key);
  const statusOf = async (id: string) => (await h.db.execution.findUniqueOrThrow({ where: { id } })).status;

  beforeAll(async () => {
    h = await startHarness({ worker: false, env: { JAEGER_UI_URL: 'http://jaeger.internal:16686/' } });
    await h.api.patch('/account/settings', { max_retry_attempts: 0, error_notification: false });
    workflowId = (await h.createWorkflow(journey, 'Journey')).id;
    e.waiting = await h.trigger(workflowId, (await h.createContact()).id);
    await h.step(e.waiting);
    e.queued = await h.trigger(workflowId, (await h.createContact()).id);
    e.failed = await h.trigger(workflowId, (await h.createContact()).id);
    h.provider.script({ status: 503 });
    await h.step(e.failed);
    const goalContact = await h.createContact();
    e.goal = await h.trigger(workflowId, goalContact.id);
    await h.step(e.goal);
    expect((await h.api.post(`/contacts/${goalContact.id}/events`, { name: 'appointment_booked' })).status).toBe(202);
    expect((await h.api.put(`/workflows/${workflowId}/definition`, { definition: sequential })).status).toBe(200);
    e.v2 = await h.trigger(workflowId, (await h.createContact()).id);
    expect(await Promise.all([e.waiting, e.queued, e.failed, e.goal, e.v2].map(statusOf))).toEqual([
      'PAUSED',
      'QUEUED',
      'FAILED',
      'COMPLETED',
      'QUEUED',
    ]);
  });
  afterAll(() => h?.stop());

  it('counts one version: executions by status, per step where they are and what they did, the goal', async () => {
    const response = await stats('?version=1');
    expect(response.status).toBe(200);
    const body = responses.stats.parse(response.body);
    expect(body.executions).toEqual({ QUEUED: 1, ACTIVE: 0, PAUSED: 1, COMPLETED: 1, FAILED: 1, CANCELLED: 0 });
    const zero = { at_step: 0, entered: 0, completed: 0, skipped: 0, failed: 0 };
    expect(body.steps).toEqual([
      { step_id: 'mail', type: 'send_email', ...zero, at_step: 1, entered: 3, completed: 2, failed: 1 },
      { step_id: 'pause', type: 'wait', ...zero, at_step: 1, entered: 2 },
      { step_id: 'vip', type: 'condition', ...zero },
      { step_id: 'vip_sms', type: 'send_sms', ...zero },
      { step_id: 'done', type: 'add_tag', ...zero },
    ]);
    expect(body.goal).toEqual({ achieved: 1, conversion_rate: 0.25 });
  });

  it('counts all versions together, listing the steps of every version (newest first)', async () => {
    const body = responses.stats.parse((await stats()).body);
    expect(body.executions).toMatchObject({ QUEUED: 2, PAUSED: 1, COMPLETED: 1, FAILED: 1 });
    expect(body.steps.map((s) => s.step_id)).toEqual([
      'welcome',
      'tag',
      'sms',
      'mail',
      'pause',
      'vip',
      'vip_sms',
      'done',
    ]);
    expect(body.steps[0]).toMatchObject({ step_id: 'welcome', at_step: 1, entered: 0 });
    expect(body.goal).toEqual({ achieved: 1, conversion_rate: 0.2 });
    const v2 = responses.stats.parse((await stats('?version=2')).body);
    expect(v2.executions.QUEUED).toBe(1);
    expect(v2.goal).toEqual({ achieved: 0, conversion_rate: 0 });
  });

  it('refuses a bad query, an unknown version and a workflow of another account', async () => {
    for (const [query, path] of [
      ['?version=0', 'query.version'],
      ['?version=two', 'query.version'],
      ['?step=mail', 'query.step'],
    ] as const) {
      const response = await stats(query);
      expect(response.status, query).toBe(400);
      expect(response.body.issues.map((i: { path: string }) => i.path)).toEqual([path]);
    }
    expect((await stats('?version=3')).body).toMatchObject({ error: 'workflow version not found' });
    expect((await h.api.get('/workflows/not-a-uuid/stats')).status).toBe(400);
    const other = await createAccount(h.db, { name: 'Other', adminEmail: 'other@example.com' });
    const hidden = await stats('', other.api_key);
    expect(hidden.status).toBe(404);
    expect(hidden.body.error).toBe('workflow not found');
  });

  it('lists the executions at a step (the state they are in now)', async () => {
    const at = async (step: string) =>
      (await h.api.get(`/workflows/${workflowId}/executions?step_id=${step}`)).body.data.map(
        (x: { id: string }) => x.id,
      );
    expect(await at('pause')).toEqual([e.waiting]);
    expect(await at('mail')).toEqual([e.queued]);
    expect(await at('welcome')).toEqual([e.v2]);
    expect(await at('nowhere')).toEqual([]);
    const bad = await h.api.get(`/workflows/${workflowId}/executions?step_id=`);
    expect(bad.status).toBe(400);
    expect(bad.body.issues[0].path).toBe('query.step_id');
  });

  it("gives the execution's trace id and its Jaeger link; none when no trace was recorded", async () => {
    const untraced = await h.api.get(`/executions/${e.queued}`);
    expect(untraced.body).toMatchObject({ trace_id: null, trace_url: null, workflow_version: 1 });
    expect((await h.api.get(`/executions/${e.v2}`)).body.workflow_version).toBe(2);
    await h.db.execution.update({
      where: { id: e.queued },
      data: { traceContext: { traceparent: `00-${TRACE_ID}-00f067aa0ba902b7-01` } },
    });
    const traced = responses.execution.parse((await h.api.get(`/executions/${e.queued}`)).body);
    expect(traced).toMatchObject({ trace_id: TRACE_ID, trace_url: `http://jaeger.internal:16686/trace/${TRACE_ID}` });
    const listed = await h.api.get(`/workflows/${workflowId}/executions?step_id=mail`);
    expect(listed.body.data[0].trace_id).toBe(TRACE_ID);
  });

  it('refuses a bad bulk filter with the path of each problem, and an unknown version with 404', async () => {
    for (const [body, path] of [
      [{ status: 'RUNNING' }, 'body.status'],
      [{ dry_run: 'yes' }, 'body.dry_run'],
      [{ version: 0 }, 'body.version'],
      [{ from: 'yesterday' }, 'body.from'],
      [{ step_id: '' }, 'body.step_id'],
      [{ everything: true }, 'body.everything'],
    ] as const) {
      const response = await h.api.post(`/workflows/${workflowId}/executions/cancel`, body);
      expect(response.status, JSON.stringify(body)).toBe(400);
      expect(response.body.issues.map((i: { path: string }) => i.path)).toEqual([path]);
    }
    const unknown = await h.api.post(`/workflows/${workflowId}/executions/retry`, { version: 7 });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error).toBe('workflow version not found');
    const other = await createAccount(h.db, { name: 'Other 2', adminEmail: 'other2@example.com' });
    const hidden = await h.api.post(`/workflows/${workflowId}/executions/cancel`, { dry_run: true }, other.api_key);
    expect(hidden.status).toBe(404);
  });

  it('a dry run counts what would change and changes nothing; a status the operation never takes matches nothing', async () => {
    const cancel = (body: object) => h.api.post(`/workflows/${workflowId}/executions/cancel`, body);
    expect((await cancel({ dry_run: true })).body).toEqual({ matched: 3, changed: 0 });
    expect((await cancel({ dry_run: true, version: 1 })).body).toEqual({ matched: 2, changed: 0 });
    expect((await cancel({ status: 'COMPLETED' })).body).toEqual({ matched: 0, changed: 0 });
    expect((await h.api.post(`/workflows/${workflowId}/executions/retry`, { dry_run: true })).body).toEqual({
      matched: 1,
      changed: 0,
    });
    expect(await Promise.all([e.waiting, e.queued, e.v2].map(statusOf))).toEqual(['PAUSED', 'QUEUED', 'QUEUED']);
  });

  it('cancels the executions at a step and retries the failed ones, each logged with the caller', async () => {
    const cancelled = await h.api.post(`/workflows/${workflowId}/executions/cancel`, { step_id: 'pause' });
    expect(responses.bulkResult.parse(cancelled.body)).toEqual({ matched: 1, changed: 1 });
    expect(await statusOf(e.waiting)).toBe('CANCELLED');
    expect(await statusOf(e.queued)).toBe('QUEUED');
    expect((await h.logsOf(e.waiting)).find((l) => l.eventType === 'execution_cancelled')?.userId).toBe(
      h.account.user_id,
    );
    const retried = await h.api.post(`/workflows/${workflowId}/executions/retry`, { version: 1 });
    expect(retried.body).toEqual({ matched: 1, changed: 1 });
    expect(await h.db.execution.findUniqueOrThrow({ where: { id: e.failed } })).toMatchObject({
      status: 'QUEUED',
      retryCount: 0,
    });
    expect((await h.logsOf(e.failed)).find((l) => l.eventType === 'manual_retry')?.userId).toBe(h.account.user_id);
    // Done once: the same call again finds nothing to retry.
    expect((await h.api.post(`/workflows/${workflowId}/executions/retry`, {})).body).toEqual({
      matched: 0,
      changed: 0,
    });
  });

  it(`goes through more executions than one page (${BULK_PAGE_SIZE}), and honours the created_at range`, async () => {
    const bulk = (await h.createWorkflow(emailThenWait, 'Bulk')).id;
    const before = new Date(Date.now() - 1000).toISOString();
    const ids = await h.enrollNew(bulk, BULK_PAGE_SIZE + 20);
    const cancel = (body: object) => h.api.post(`/workflows/${bulk}/executions/cancel`, body);
    expect((await cancel({ to: before })).body).toEqual({ matched: 0, changed: 0 });
    const result = await cancel({ from: before, status: 'QUEUED' });
    expect(result.body).toEqual({ matched: ids.length, changed: ids.length });
    const counts = await h.db.execution.groupBy({
      by: ['status'],
      where: { workflowId: bulk },
      _count: { _all: true },
    });
    expect(counts.map((c) => [c.status, c._count._all])).toEqual([['CANCELLED', ids.length]]);
  }, 120_000);
});

describe('GET /workflows/{id}/versions/{version}', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ worker: false });
  });
  afterAll(() => h?.stop());

  it("answers each version's definition and compiled machine; 404 for a version that does not exist, 400 for a bad one", async () => {
    const { id } = await h.createWorkflow(journey, 'Versions');
    await h.api.put(`/workflows/${id}/definition`, { definition: sequential });
    const first = await h.api.get(`/workflows/${id}/versions/1`);
    expect(first.status).toBe(200);
    const body = responses.workflowVersion.parse(first.body);
    expect(body).toMatchObject({ version: 1, current: false });
    expect((body.definition as typeof journey).steps.map((s) => s.id)).toEqual(['mail', 'pause', 'vip', 'done']);
    expect(Object.keys(body.machine.states as object)).toContain('vip_sms');
    const second = responses.workflowVersion.parse((await h.api.get(`/workflows/${id}/versions/2`)).body);
    expect(second.current).toBe(true);
    expect(second.machine).toEqual((await h.api.get(`/workflows/${id}/machine`)).body);
    expect((await h.api.get(`/workflows/${id}/versions/3`)).body.error).toBe('workflow version not found');
    const bad = await h.api.get(`/workflows/${id}/versions/first`);
    expect(bad.status).toBe(400);
    expect(bad.body.issues[0].path).toBe('params');
  });
});
