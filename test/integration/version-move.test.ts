import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { responses } from '../../src/api/openapi.ts';
import { moveToPublished } from '../../src/api/version-publish.ts';
import { stepJobId } from '../../src/queue/step-queue.ts';
import { startHarness, type Harness } from '../helpers/harness.ts';

// `PUT /workflows/{id}/definition` with `in_flight` and `dry_run` (CONTRACT.md "Insight and operations"):
// running executions of older versions move to the same step id of the new version, or stay when it is
// gone. No worker runs: the test moves each execution itself (h.step), so every row is where it put it.

const order = (event: string) => ({
  id: 'order',
  type: 'wait_for_event',
  config: { event, timeout: '12 hours' },
  branches: { received: [], timeout: [] },
});
const v1 = {
  steps: [
    { id: 'mail', type: 'send_email', config: { subject: 'Hi', body: 'Welcome' } },
    { id: 'pause', type: 'wait', config: { duration: '1 hour' } },
    order('order_placed'),
    { id: 'bye', type: 'send_email', config: { subject: 'Bye', body: 'x' } },
  ],
};
// `pause` is gone; `order` now waits for another event.
const v2 = {
  goal: { event: 'booked' },
  steps: [
    { id: 'mail', type: 'send_email', config: { subject: 'Hello', body: 'Welcome' } },
    order('purchase'),
    { id: 'bye', type: 'send_email', config: { subject: 'Bye', body: 'x' } },
    { id: 'tag', type: 'add_tag', config: { tag: 'done' } },
  ],
};

describe('moving running executions to a new version', () => {
  let h: Harness;
  let workflowId: string;
  /** pausing: at `pause`; ordering: at `order`; queued: never started (at `mail`); done: COMPLETED. */
  const e = {} as Record<'pausing' | 'ordering' | 'queued' | 'done', string>;
  let orderingContact: string;
  const row = (id: string) => h.db.execution.findUniqueOrThrow({ where: { id } });
  const publish = (body: Record<string, unknown>) => h.api.put(`/workflows/${workflowId}/definition`, body);
  /** Makes the execution's timer due now and runs its job (h.step takes the job out of Redis). */
  const fire = async (id: string) => {
    await h.db.execution.update({ where: { id }, data: { nextRunAt: new Date(Date.now() - 1000) } });
    await h.step(id);
  };

  beforeAll(async () => {
    h = await startHarness({ worker: false, env: { TIMER_HORIZON_MS: String(86_400_000) } }); // the 12 h timer has its job
    workflowId = (await h.createWorkflow(v1, 'Journey')).id;
    e.pausing = await h.trigger(workflowId, (await h.createContact()).id);
    await h.step(e.pausing);
    orderingContact = (await h.createContact()).id;
    e.ordering = await h.trigger(workflowId, orderingContact);
    await h.step(e.ordering);
    await fire(e.ordering);
    e.queued = await h.trigger(workflowId, (await h.createContact()).id);
    e.done = await h.trigger(workflowId, (await h.createContact()).id);
    await h.db.execution.update({ where: { id: e.done }, data: { status: 'COMPLETED', finishedAt: new Date() } });
    expect((await row(e.pausing)).snapshot).toMatchObject({ value: 'pause' });
    expect(await row(e.ordering)).toMatchObject({ status: 'PAUSED', waitingEvent: 'order_placed' });
  });
  afterAll(() => h?.stop());

  it('answers a dry run with what would move and stay, and changes nothing (not even a new version)', async () => {
    const before = await h.db.execution.findMany({ orderBy: { id: 'asc' } });
    const move = await publish({ definition: v2, in_flight: 'move', dry_run: true });
    expect(move.status).toBe(200);
    expect(responses.publishPreview.parse(move.body)).toEqual({ would_move: 2, would_stay: 1 });
    const keep = await publish({ definition: v2, dry_run: true });
    expect(keep.body).toEqual({ would_move: 0, would_stay: 3 });
    expect((await h.api.get(`/workflows/${workflowId}`)).body.version).toBe(1);
    expect(await h.db.workflowVersion.count({ where: { workflowId } })).toBe(1);
    expect(await h.db.execution.findMany({ orderBy: { id: 'asc' } })).toEqual(before);
  });

  it.each([
    [{ definition: v2, in_flight: 'sideways' }, 'body.in_flight'],
    [{ definition: v2, dry_run: 'yes' }, 'body.dry_run'],
    [{ definition: { steps: [] }, in_flight: 'move', dry_run: true }, 'definition.steps'],
  ])('refuses %j with 400 at %s', async (body, path) => {
    const response = await publish(body);
    expect(response.status).toBe(400);
    expect(response.body.issues.map((issue: { path: string }) => issue.path)).toContain(path);
  });

  it('moves executions whose step is in the new version, each logging version_migrated; the others stay', async () => {
    const ordering = await row(e.ordering);
    const response = await publish({ definition: v2, in_flight: 'move' });
    expect(response.status).toBe(200);
    expect(response.body.in_flight).toEqual({ moved: 2, stayed: 1 });
    const v2Id = (await h.db.workflowVersion.findFirstOrThrow({ where: { workflowId, version: 2 } })).id;

    // At a wait_for_event whose event changed: it waits for the new one, with the timer it had (its job
    // moves to the new version; a timer past TIMER_HORIZON_MS would stay in Postgres for the sweeper).
    const moved = await row(e.ordering);
    expect(moved).toMatchObject({
      workflowVersionId: v2Id,
      status: 'PAUSED',
      waitingEvent: 'purchase',
      goalEvent: 'booked',
      version: ordering.version + 1,
      nextRunAt: ordering.nextRunAt,
      snapshot: ordering.snapshot,
    });
    const delayed = await h.deps.queue.queue.getJob(stepJobId(e.ordering, moved.version));
    expect(delayed?.opts.delay).toBeGreaterThan(11 * 3_600_000);
    expect(await h.deps.queue.queue.getJob(stepJobId(e.ordering, ordering.version))).toBeUndefined();
    const [entry] = (await h.logsOf(e.ordering)).filter((log) => log.eventType === 'version_migrated');
    expect(entry).toMatchObject({ stepId: 'order', userId: expect.any(String) });
    expect(entry!.details).toEqual({
      from_version: 1,
      to_version: 2,
      waiting_event: { from: 'order_placed', to: 'purchase' },
    });

    // Its step gone: it stays on version 1. Finished executions are not touched.
    expect((await row(e.pausing)).workflowVersionId).not.toBe(v2Id);
    expect((await row(e.done)).workflowVersionId).not.toBe(v2Id);
    const migrated = (id: string) =>
      h.db.executionLog.count({ where: { executionId: id, eventType: 'version_migrated' } });
    expect([await migrated(e.pausing), await migrated(e.done), await migrated(e.queued)]).toEqual([0, 0, 1]);
  });

  it('runs the moved executions on the new version: its steps, its events', async () => {
    // Never started: its job is at the new version and sends the new version's email.
    await h.step(e.queued);
    expect(h.provider.received.at(-1)?.body).toMatchObject({ subject: 'Hello' });
    const old = await h.api.post(`/contacts/${orderingContact}/events`, { name: 'order_placed' });
    expect(old.body.resumed).toEqual([]);
    const current = await h.api.post(`/contacts/${orderingContact}/events`, { name: 'purchase' });
    expect(current.body.resumed).toEqual([e.ordering]);
    expect((await row(e.ordering)).snapshot).toMatchObject({ value: 'bye' });
  });

  it('keeps every running execution on its version by default', async () => {
    const before = (await row(e.pausing)).version;
    const response = await publish({ definition: v1 });
    expect(response.status).toBe(200);
    expect(response.body.in_flight).toBeUndefined();
    expect((await row(e.pausing)).version).toBe(before);
  });

  it('never moves an execution back: an older publish whose move runs late takes only those older than it', async () => {
    const versionOf = async (id: string) =>
      (await h.db.execution.findUniqueOrThrow({ where: { id }, include: { workflowVersion: true } })).workflowVersion
        .version;
    // The last publish (v1 again, kept) is the older one; `pausing` is still on version 1 (v2 has no `pause`).
    const older = await h.db.workflowVersion.findFirstOrThrow({ where: { workflowId }, orderBy: { version: 'desc' } });
    const newer = await publish({ definition: v2, in_flight: 'move' });
    expect(newer.body.in_flight).toEqual({ moved: 2, stayed: 1 });
    expect([await versionOf(e.queued), await versionOf(e.ordering), await versionOf(e.pausing)]).toEqual([
      newer.body.version,
      newer.body.version,
      1,
    ]);
    const late = await moveToPublished(h.deps, {
      accountId: h.account.account_id,
      workflowId,
      versionId: older.id,
      version: older.version,
      userId: '00000000-0000-4000-8000-0000000000e1',
    });
    expect(late).toEqual({ moved: 1, stayed: 0 });
    expect([await versionOf(e.queued), await versionOf(e.ordering), await versionOf(e.pausing)]).toEqual([
      newer.body.version,
      newer.body.version,
      older.version,
    ]);
  });
});
