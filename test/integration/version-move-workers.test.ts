import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../helpers/harness.ts';

// `in_flight: "move"` while a worker runs the executions: each one moves in its own version-checked
// commit, keeps its timer, and then finishes on the new version, every message sent (at least once, with its step's idempotency key).

const journey = (bye: string) => ({
  steps: [
    { id: 'mail', type: 'send_email', config: { subject: 'Hi', body: 'Welcome' } },
    { id: 'pause', type: 'wait', config: { duration: '10 seconds' } },
    { id: 'bye', type: 'send_email', config: { subject: bye, body: 'x' } },
  ],
});

describe('moving executions to a new version while a worker runs them', () => {
  let h: Harness;
  afterAll(() => h?.stop());
  beforeAll(async () => {
    h = await startHarness();
  });

  it('finishes every moved execution on the new version with its timer kept', async () => {
    const workflowId = (await h.createWorkflow(journey('Bye v1'), 'Journey')).id;
    const ids: string[] = [];
    for (let i = 0; i < 20; i += 1) ids.push(await h.trigger(workflowId, (await h.createContact()).id));
    const paused = await Promise.all(ids.map((id) => h.waitForExecution(id, (e) => e.status === 'PAUSED')));
    const published = await h.api.put(`/workflows/${workflowId}/definition`, {
      definition: journey('Bye v2'),
      in_flight: 'move',
    });
    expect(published.status).toBe(200);
    // An execution the worker finished before the move reached it was not running any more: it is not
    // counted. Every other one moved, logged it, and sent the new version's message.
    const migrated = new Set(
      (await h.db.executionLog.findMany({ where: { eventType: 'version_migrated' } })).map((log) => log.executionId),
    );
    expect(published.body.in_flight).toEqual({ moved: migrated.size, stayed: 0 });
    expect(migrated.size).toBeGreaterThan(0);
    const done = await Promise.all(ids.map((id) => h.waitForExecution(id, (e) => e.status === 'COMPLETED')));
    for (const [i, execution] of done.entries())
      expect(new Date(execution.updated_at).getTime()).toBeGreaterThanOrEqual(
        new Date(paused[i]!.next_run_at).getTime(),
      );
    const byes = h.provider.received.filter((r) => String(r.idempotencyKey).endsWith(':bye'));
    expect(new Set(byes.map((r) => r.idempotencyKey)).size).toBe(20);
    // A timer that fires while the move commits may have its send repeated (same idempotency key) by the
    // job of the new version: delivery is at least once, and the last send is the execution's version.
    for (const id of ids)
      expect(byes.filter((r) => r.idempotencyKey === `${id}:bye`).at(-1)?.body.subject).toBe(
        migrated.has(id) ? 'Bye v2' : 'Bye v1',
      );
  });
});
