import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkConsistency } from '../../src/engine/consistency.ts';
import { loadForJob } from '../../src/engine/load.ts';
import { createSweeper } from '../../src/engine/sweeper.ts';
import { emailThenWait } from '../fixtures/workflows.ts';
import { startHarness, type Harness } from '../helpers/harness.ts';

// An account's concurrency slots are split into shards (one per 64 slots, at most 16) whose quotas add
// up to its limit; the limit must hold exactly whatever shard each slot comes from.
describe('account slots in shards', () => {
  let h: Harness;
  let workflowId: string;
  beforeAll(async () => {
    h = await startHarness({ worker: false });
    workflowId = (await h.createWorkflow(emailThenWait)).id;
  });
  afterAll(() => h.stop());

  const shards = () =>
    h.deps.db.accountSlot.findMany({ where: { accountId: h.account.account_id }, orderBy: { shard: 'asc' } });
  const setLimit = async (limit: number) =>
    expect((await h.api.patch('/account/settings', { concurrent_executions_per_account: limit })).status).toBe(200);
  const statuses = async (ids: string[]) => {
    const rows = await h.deps.db.execution.findMany({
      where: { id: { in: ids } },
      select: { status: true, waiting: true },
    });
    return { active: rows.filter((r) => r.status === 'ACTIVE').length, waiting: rows.filter((r) => r.waiting).length };
  };
  /** Runs the admission of each execution, all at once on the pool's connections. */
  const admitAll = (ids: string[]) =>
    Promise.all(ids.map((id) => loadForJob(h.deps, h.deps.cache, { executionId: id, version: 0 })));
  const cancel = async (ids: string[]) => {
    for (const id of ids) expect((await h.api.post(`/executions/${id}/cancel`)).status).toBe(200);
  };
  const consistent = async () => {
    const report = await checkConsistency(h.deps.db, { stuckAfterMs: 3_600_000 });
    expect(report.violations).toEqual([]);
  };

  it('small limits keep one exact counter; larger ones one shard per 64 slots, at most 16, with quotas adding up to the limit', async () => {
    expect(await shards()).toEqual([{ accountId: h.account.account_id, shard: 0, used: 0, quota: 100 }]);
    await setLimit(1_000);
    const spread = await shards();
    expect(spread).toHaveLength(15);
    expect(spread.map((s) => s.quota)).toEqual([...Array(10).fill(67), ...Array(5).fill(66)]);
    await setLimit(5_000);
    expect((await shards()).map((s) => s.quota).reduce((a, b) => a + b)).toBe(5_000);
    expect(await shards()).toHaveLength(16);
    await setLimit(100); // extra shards stay, with no quota
    expect((await shards()).map((s) => s.quota)).toEqual([100, ...Array(15).fill(0)]);
    await consistent();
  });

  it('admissions at once across shards stop exactly at the limit, and a freed slot goes to the longest waiting', async () => {
    await setLimit(200); // 3 shards: 67, 67, 66
    const ids = await h.enrollNew(workflowId, 230);
    const admitted = await admitAll(ids);
    expect(admitted.filter((a) => a?.admitted === 'ACTIVE')).toHaveLength(200);
    expect(await statuses(ids)).toEqual({ active: 200, waiting: 30 });
    expect((await shards()).slice(0, 3).map((s) => s.used)).toEqual([67, 67, 66]); // slots taken from every shard
    await consistent();

    const firstWaiting = await h.deps.db.execution.findFirstOrThrow({
      where: { id: { in: ids }, waiting: true },
      orderBy: { seq: 'asc' },
    });
    const holder = await h.deps.db.execution.findFirstOrThrow({
      where: { id: { in: ids }, status: 'ACTIVE', slotShard: 2 },
    });
    await cancel([holder.id]);
    expect(await h.deps.db.execution.findUniqueOrThrow({ where: { id: firstWaiting.id } })).toMatchObject({
      status: 'ACTIVE',
      waiting: false,
      slotShard: 2,
    });
    expect(await statuses(ids)).toEqual({ active: 200, waiting: 29 });
    await consistent();
  });

  it('a limit lowered below what is in use admits no one until the account is under it', async () => {
    const running = await h.deps.db.execution.findMany({
      where: { workflowId, status: 'ACTIVE' },
      orderBy: { seq: 'asc' },
    });
    const waiting = await h.deps.db.execution.count({ where: { workflowId, waiting: true } });
    await setLimit(150);
    expect((await shards()).every((s) => s.quota === 0)).toBe(true);
    await consistent();
    const sweep = createSweeper(h.deps);
    await cancel(running.slice(0, 50).map((r) => r.id)); // 150 left: still not under the limit
    expect((await sweep()).admitted).toBe(0);
    expect(await h.deps.db.execution.count({ where: { workflowId, waiting: true } })).toBe(waiting);
    await cancel(running.slice(50, 60).map((r) => r.id)); // 140: the sweeper gives the slots back and admits 10
    expect((await sweep()).admitted).toBe(10);
    expect(await h.deps.db.execution.count({ where: { workflowId, status: 'ACTIVE' } })).toBe(150);
    expect((await shards()).map((s) => s.quota).reduce((a, b) => a + b)).toBe(150);
    await consistent();
  });

  it('under admissions and releases at once, no shard miscounts, the limit holds, and no one waits while a slot is free', async () => {
    await cancel(
      (await h.deps.db.execution.findMany({ where: { workflowId, status: { in: ['ACTIVE', 'QUEUED'] } } })).map(
        (r) => r.id,
      ),
    );
    await setLimit(192); // 3 shards of 64
    const ids = await h.enrollNew(workflowId, 400);
    // Admissions of every execution race with cancellations (releases, each handing its slot to the line).
    const cancelled = ids.filter((_, i) => i % 3 === 0);
    const cancelOne = async (id: string) => {
      const response = await h.api.post(`/executions/${id}/cancel`);
      expect([200, 409]).toContain(response.status);
    };
    await Promise.all([admitAll(ids), ...cancelled.map(cancelOne)]);
    await consistent();
    const { active, waiting } = await statuses(ids);
    expect(active).toBeLessThanOrEqual(192);
    // A slot frees only for the line: with anyone waiting, every slot is taken (a sweep covers the rare
    // execution that joined the line while every shard with room was held by a release in progress).
    await createSweeper(h.deps)();
    const after = await statuses(ids);
    expect(after.waiting === 0 || after.active === 192).toBe(true);
    expect(after.active + after.waiting).toBe(active + waiting);
    await consistent();
  });

  it('from one connection, slots spill over to other shards up to the limit', async () => {
    await cancel(
      (await h.deps.db.execution.findMany({ where: { workflowId, status: { in: ['ACTIVE', 'QUEUED'] } } })).map(
        (r) => r.id,
      ),
    );
    expect(await h.activeSlots()).toBe(0);
    await setLimit(128); // 2 shards of 64
    const ids = await h.enrollNew(workflowId, 130);
    const client = await h.deps.pool.connect();
    try {
      for (const id of ids)
        await client.query(`SELECT flowmachine_admit_loaded($1, 0, 0, 'QUEUED', false, NULL, now(), 5)`, [id]);
    } finally {
      client.release();
    }
    expect(await statuses(ids)).toEqual({ active: 128, waiting: 2 });
    expect((await shards()).slice(0, 2).map((s) => s.used)).toEqual([64, 64]);
    await consistent();
  });
});
