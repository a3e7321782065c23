import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManualClock } from '../../src/clock.ts';
import { createSweeper } from '../../src/engine/sweeper.ts';
import { stepJobId } from '../../src/queue/step-queue.ts';
import { emails, withWait } from '../fixtures/workflows.ts';
import { startHarness, type Harness } from '../helpers/harness.ts';

// Work lost between a commit and its enqueue (a crash, a failed Redis call) is rebuilt from Postgres.
describe('sweeper', () => {
  let h: Harness;
  const clock = createManualClock(new Date('2026-07-01T00:00:00.000Z'));
  let sweep: ReturnType<typeof createSweeper>;
  beforeAll(async () => {
    h = await startHarness({ worker: false, clock, env: { STALE_AFTER_MS: '60000' } });
    sweep = createSweeper(h.deps);
    await sweep(); // sets the epoch: later sweeps are incremental
  });
  afterAll(() => h.stop());

  const loseJob = async (id: string) => {
    const row = await h.db.execution.findUniqueOrThrow({ where: { id } });
    await h.deps.queue.queue.remove(stepJobId(id, row.version));
    expect(await h.deps.queue.queue.getJob(stepJobId(id, row.version))).toBeUndefined();
    return row;
  };

  it('re-enqueues a lost step once it is stale, and the step logs recovered', async () => {
    const id = await h.trigger((await h.createWorkflow(emails(2))).id, (await h.createContact()).id);
    await h.step(id);
    const row = await loseJob(id);
    await sweep();
    expect(await h.deps.queue.queue.getJob(stepJobId(id, row.version))).toBeUndefined(); // not stale yet
    clock.advance(61_000);
    const report = await sweep();
    expect(report.rebuilt).toBe(false);
    expect(report.enqueued).toBeGreaterThanOrEqual(1);
    const job = await h.deps.queue.queue.getJob(stepJobId(id, row.version));
    expect(job?.data).toMatchObject({ executionId: id, version: row.version, recovered: true });
    await h.step(id);
    expect((await h.db.execution.findUniqueOrThrow({ where: { id } })).status).toBe('COMPLETED');
    expect((await h.logsOf(id)).map((l) => l.eventType)).toContain('recovered');
  });

  it('leaves a stale backlog whose jobs are still in Redis as it is', async () => {
    const id = await h.trigger((await h.createWorkflow(emails(1))).id, (await h.createContact()).id);
    const job = await h.deps.queue.queue.getJob(stepJobId(id, 0));
    clock.advance(61_000);
    expect((await sweep()).enqueued).toBe(0);
    expect((await h.deps.queue.queue.getJob(stepJobId(id, 0)))?.timestamp).toBe(job!.timestamp);
    await h.step(id);
  });

  it('re-enqueues an overdue timer whose job was lost', async () => {
    const id = await h.trigger((await h.createWorkflow(withWait('30 seconds'))).id, (await h.createContact()).id);
    await h.step(id);
    const row = await loseJob(id);
    expect(row.status).toBe('PAUSED');
    clock.advance(30_000 + 61_000);
    await sweep();
    expect(await h.deps.queue.queue.getJob(stepJobId(id, row.version))).toBeDefined();
    await h.step(id);
    expect((await h.db.execution.findUniqueOrThrow({ where: { id } })).status).toBe('ACTIVE');
  });

  it('admits executions waiting in line when their account has free slots', async () => {
    const workflow = await h.createWorkflow(emails(1));
    const waiting = await h.trigger(workflow.id, (await h.createContact()).id);
    // As if it had found the account full and a slot was freed without admitting it (e.g. the limit was raised).
    await h.db.execution.update({ where: { id: waiting }, data: { waiting: true, version: { increment: 1 } } });
    const report = await sweep();
    expect(report.admitted).toBeGreaterThanOrEqual(1);
    expect(await h.db.execution.findUniqueOrThrow({ where: { id: waiting } })).toMatchObject({
      status: 'ACTIVE',
      waiting: false,
    });
    await h.step(waiting);
    expect((await h.db.execution.findUniqueOrThrow({ where: { id: waiting } })).status).toBe('COMPLETED');
  });

  it('rebuilds everything after Redis lost its data', async () => {
    const id = await h.trigger((await h.createWorkflow(emails(2))).id, (await h.createContact()).id);
    await h.deps.queue.queue.obliterate({ force: true });
    await h.deps.redis.del(`${h.config.QUEUE_PREFIX}:epoch`);
    const report = await sweep();
    expect(report.rebuilt).toBe(true);
    const row = await h.db.execution.findUniqueOrThrow({ where: { id } });
    expect((await h.deps.queue.queue.getJob(stepJobId(id, row.version)))?.data.recovered).toBe(true);
  });

  // The rebuild used to start from the cursor an earlier incremental sweep left, so executions below it
  // waited for the ordinary stale path.
  it('after Redis lost its data, rebuilds every running execution from the start, in bounded batches', async () => {
    const small = createSweeper(h.deps, { batch: 2, staleRowsPerSweep: 2 });
    await small();
    const workflow = await h.createWorkflow(emails(2));
    const ids: string[] = [];
    for (let i = 0; i < 7; i += 1) ids.push(await h.trigger(workflow.id, (await h.createContact()).id));
    clock.advance(61_000);
    await small(); // an incremental sweep: checks 2 candidates and leaves its cursor inside the table
    await h.deps.queue.queue.obliterate({ force: true });
    await h.deps.redis.del(`${h.config.QUEUE_PREFIX}:epoch`);
    const report = await small();
    expect(report.rebuilt).toBe(true);
    for (const id of ids) expect(await h.deps.queue.queue.getJob(stepJobId(id, 0)), id).toBeDefined();
  });
});
