import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAction } from '../../src/actions/run-action.ts';
import { commitChange } from '../../src/engine/commit.ts';
import { checkConsistency } from '../../src/engine/consistency.ts';
import { loadExecution } from '../../src/engine/load.ts';
import type { ActionStep } from '../../src/definition/schema.ts';
import { startHarness, type Harness } from '../helpers/harness.ts';

// Bugs the chaos run found, pinned down.
describe('regressions found by the chaos run', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ worker: false });
  });
  afterAll(() => h.stop());

  it('a tag step keeps tags added to the contact while the step ran', async () => {
    const workflow = await h.createWorkflow({
      steps: [
        { id: 'tag', type: 'add_tag', config: { tag: 'welcomed' } },
        { id: 'untag', type: 'remove_tag', config: { tag: 'lead' } },
      ],
    });
    const contact = await h.createContact({ tags: ['lead'] });
    const id = await h.trigger(workflow.id, contact.id);
    await h.step(id); // admission and the add_tag step
    // The remove_tag step, with an API tag change landing between its load and its commit.
    const loaded = (await loadExecution(h.deps, h.deps.cache, id))!;
    const step = loaded.workflow.steps.get('untag')!.step as ActionStep;
    const result = await runAction(h.deps, step, {
      accountId: h.account.account_id,
      executionId: id,
      stepId: 'untag',
      contact: { ...loaded.row.contact, attributes: {} },
      payload: {},
    });
    expect((await h.api.post(`/contacts/${contact.id}/tags`, { tag: 'vip' })).status).toBe(200);
    expect(result.kind).toBe('success');
    if (result.kind !== 'success') return;
    expect(
      await commitChange(h.deps, loaded, { event: { type: 'STEP_DONE' }, logs: [], tagChange: result.tagChange }),
    ).not.toBeNull();
    expect((await h.db.contact.findUniqueOrThrow({ where: { id: contact.id } })).tags.sort()).toEqual([
      'vip',
      'welcomed',
    ]);
  });

  it('Postgres terminating the connections does not crash the process', async () => {
    await h.api.get('/account/settings'); // connections in the pool
    const admin = new pg.Client({ connectionString: h.config.DATABASE_URL });
    await admin.connect();
    await admin.query(
      'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()',
    );
    await admin.end();
    // The process is still here, and the pool replaces the dropped connections.
    const deadline = Date.now() + 10_000;
    let status = 0;
    while (status !== 200 && Date.now() < deadline) status = (await h.api.get('/account/settings')).status;
    expect(status).toBe(200);
  });

  it('the consistency check accepts a message held by a frequency cap, and a path moved to a version without a step it took', async () => {
    // One email per hour: `bye` is held back (PAUSED at a message step, with no send window), then
    // moved to a version without the `hold` wait it already passed.
    expect(
      (await h.api.patch('/account/settings', { frequency_caps: [{ channel: 'email', max: 1, per: '1 hour' }] }))
        .status,
    ).toBe(200);
    const email = (id: string) => ({ id, type: 'send_email', config: { subject: id, body: 'x' } });
    const v1 = { steps: [email('hello'), { id: 'hold', type: 'wait', config: { duration: '1 hour' } }, email('bye')] };
    const workflow = await h.createWorkflow(v1);
    const id = await h.trigger(workflow.id, (await h.createContact()).id);
    const violationsOf = async () =>
      (await checkConsistency(h.db, { stuckAfterMs: 3_600_000 })).violations
        .filter((v) => v.execution_id === id)
        .map((v) => `${v.kind}: ${v.message}`);
    try {
      await h.step(id); // hello sent, waiting at hold
      await h.db.execution.update({ where: { id }, data: { nextRunAt: new Date(Date.now() - 1000) } });
      await h.step(id); // hold done
      await h.step(id); // bye capped
      expect(await h.db.execution.findUniqueOrThrow({ where: { id } })).toMatchObject({
        status: 'PAUSED',
        snapshot: { value: 'bye' },
      });
      expect((await h.logsOf(id)).at(-1)).toMatchObject({ eventType: 'frequency_capped', stepId: 'bye' });
      expect(await violationsOf()).toEqual([]);

      const moved = await h.api.put(`/workflows/${workflow.id}/definition`, {
        definition: { steps: [email('hello'), email('bye')] },
        in_flight: 'move',
      });
      expect(moved.body.in_flight).toEqual({ moved: 1, stayed: 0 });
      expect(await violationsOf()).toEqual([]);
      // Sent once the cap allows it, on the new version, and still consistent.
      await h.db.messageSend.deleteMany({ where: { executionId: id } });
      await h.db.execution.update({ where: { id }, data: { nextRunAt: new Date(Date.now() - 1000) } });
      await h.step(id);
      expect(await h.db.execution.findUniqueOrThrow({ where: { id } })).toMatchObject({ status: 'COMPLETED' });
      expect(await violationsOf()).toEqual([]);
    } finally {
      await h.api.patch('/account/settings', { frequency_caps: [] });
    }
  });
});
