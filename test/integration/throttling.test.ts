import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccount } from '../../src/api/api-keys.ts';
import { createManualClock } from '../../src/clock.ts';
import { processStep } from '../../src/engine/process-step.ts';
import { stepJobId } from '../../src/queue/step-queue.ts';
import { createDeps } from '../../src/runtime.ts';
import { emails, sequential } from '../fixtures/workflows.ts';
import { startHarness, type Harness } from '../helpers/harness.ts';

describe('throttling across processes and accounts', () => {
  let h: Harness;
  const clock = createManualClock(new Date('2026-08-01T00:00:00.000Z'));
  beforeAll(async () => {
    h = await startHarness({ worker: false, clock });
  });
  afterAll(() => h.stop());

  const cancelAll = async () => {
    for (const running of await h.db.execution.findMany({
      where: { accountId: h.account.account_id, status: { in: ['QUEUED', 'ACTIVE', 'PAUSED'] } },
    })) {
      expect((await h.api.post(`/executions/${running.id}/cancel`)).status).toBe(200);
    }
  };

  it('a 429 seen by one process holds back the provider for every other process', async () => {
    // A second process: its own Postgres pool, Redis connection and machine cache.
    const other = await createDeps(h.config, { clock, logger: h.deps.logger });
    try {
      const workflow = await h.createWorkflow(sequential);
      const first = await h.trigger(workflow.id, (await h.createContact()).id);
      const second = await h.trigger(workflow.id, (await h.createContact()).id);
      h.provider.script({ status: 429, retryAfter: '120' });
      await h.step(first);
      const before = h.provider.requestsTo('/email').length;
      const row = await h.db.execution.findUniqueOrThrow({ where: { id: second } });
      const job = await h.deps.queue.queue.getJob(stepJobId(second, row.version));
      await job!.remove();
      expect(await processStep(other, other.cache, job!.data)).toBe('committed');
      expect(h.provider.requestsTo('/email').length).toBe(before);
      const held = await h.db.execution.findUniqueOrThrow({ where: { id: second } });
      const heldForMs = held.nextRunAt!.getTime() - clock.now().getTime();
      expect(heldForMs).toBeGreaterThan(100_000);
      expect(heldForMs).toBeLessThanOrEqual(120_000);
    } finally {
      await other.close();
      await h.deps.redis.del(`${h.config.QUEUE_PREFIX}:rate-limit:email`);
    }
  });

  it('one account at its limit does not hold back another account', async () => {
    await cancelAll();
    await h.api.patch('/account/settings', { concurrent_executions_per_account: 1 });
    const busy = await h.createWorkflow(emails(2));
    const busyIds: string[] = [];
    for (let i = 0; i < 5; i += 1) busyIds.push(await h.trigger(busy.id, (await h.createContact()).id));
    for (const id of busyIds) await h.step(id);
    expect(await h.db.execution.count({ where: { id: { in: busyIds }, status: 'QUEUED', waiting: true } })).toBe(4);

    const other = await createAccount(h.db, { name: 'Other', adminEmail: 'other@example.com' });
    const contact = await h.api.post('/contacts', { email: 'x@example.com', opted_in: true }, other.api_key);
    const workflow = await h.api.post(
      '/workflows',
      { name: 'Other flow', status: 'active', definition: emails(1) },
      other.api_key,
    );
    const started = await h.api.post(
      `/workflows/${workflow.body.id}/trigger`,
      { contact_id: contact.body.id },
      other.api_key,
    );
    await h.step(started.body.execution_id);
    expect((await h.db.execution.findUniqueOrThrow({ where: { id: started.body.execution_id } })).status).toBe(
      'COMPLETED',
    );
  });

  it('attribute conditions choose the branch through the engine', async () => {
    const workflow = await h.createWorkflow({
      steps: [
        {
          id: 'check',
          type: 'condition',
          config: { field: 'score', operator: 'greater_than', value: 50 },
          branches: {
            true: [{ id: 'hot', type: 'add_tag', config: { tag: 'hot' } }],
            false: [{ id: 'cold', type: 'add_tag', config: { tag: 'cold' } }],
          },
        },
      ],
    });
    await cancelAll();
    await h.api.patch('/account/settings', { concurrent_executions_per_account: 100 });
    for (const [score, tag] of [
      [80, 'hot'],
      [20, 'cold'],
      ['75', 'hot'],
    ] as const) {
      const contact = await h.createContact({ attributes: { score } });
      const id = await h.trigger(workflow.id, contact.id);
      await h.step(id);
      await h.step(id);
      expect((await h.db.contact.findUniqueOrThrow({ where: { id: contact.id } })).tags).toEqual([tag]);
    }
  });
});
