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

  // A spike of timers due together is promoted a bounded slice per sweep, in (next_run_at, id) order,
  // each sweep continuing where the previous one stopped.
  it('promotes timers kept in Postgres in bounded batches: each once, none skipped, the rest by the next sweeps', async () => {
    const workflow = await h.createWorkflow(withWait('3 hours')); // beyond TIMER_HORIZON_MS: no job at once
    const ids: string[] = [];
    const group = async () => {
      const started: string[] = [];
      for (let i = 0; i < 5; i += 1) started.push(await h.trigger(workflow.id, (await h.createContact()).id));
      for (const id of started) await h.step(id); // each group's waits share one due time: ties go by id
      ids.push(...started);
    };
    await group();
    clock.advance(1_000); // a second group due one second after the first
    await group();
    const rows = await h.db.execution.findMany({ where: { id: { in: ids } } });
    const order = rows
      .sort((a, b) => a.nextRunAt!.getTime() - b.nextRunAt!.getTime() || (a.id < b.id ? -1 : 1))
      .map((r) => ({ id: r.id, version: r.version }));
    const queued = async () => {
      const present: string[] = [];
      for (const r of order) if (await h.deps.queue.queue.getJob(stepJobId(r.id, r.version))) present.push(r.id);
      return present;
    };
    expect(rows.every((r) => r.status === 'PAUSED')).toBe(true);
    expect(await queued()).toEqual([]);

    const bounded = createSweeper(h.deps, { batch: 2, staleRowsPerSweep: 2, timersPerSweep: 4 });
    expect((await bounded()).promoted).toBe(0); // due in 3 hours: beyond TIMER_PROMOTE_AHEAD_MS
    clock.advance(3 * 3_600_000 - 30_000); // the first group is due in 29 s, the second in 30 s
    const reports = [await bounded(), await bounded(), await bounded(), await bounded()];
    expect(reports.map((r) => r.promoted)).toEqual([4, 4, 2, 0]);
    expect(await queued()).toEqual(order.map((r) => r.id));
    // The walk is past them all: a later sweep reads none again, even once they are overdue and stale
    // (their jobs are in Redis).
    clock.advance(30_000 + 61_000);
    expect((await bounded()).promoted).toBe(0);
    for (const id of ids) await h.step(id);
    expect(new Set((await h.db.execution.findMany({ where: { id: { in: ids } } })).map((r) => r.status))).toEqual(
      new Set(['ACTIVE']),
    );
  });

  it('releases the jobs of timers due at once no faster than the limit per sweep interval', async () => {
    const workflow = await h.createWorkflow(withWait('3 hours'));
    const ids: string[] = [];
    for (let i = 0; i < 3; i += 1) ids.push(await h.trigger(workflow.id, (await h.createContact()).id));
    for (const id of ids) await h.step(id);
    const bounded = createSweeper(h.deps, { batch: 2, staleRowsPerSweep: 2, timersPerSweep: 4 });
    await bounded();
    clock.advance(3 * 3_600_000 + 5_000); // all overdue by 5 s: the sweeper's walk finds them due
    expect((await bounded()).promoted).toBe(3);
    const rows = await h.db.execution.findMany({ where: { id: { in: ids } } });
    rows.sort((a, b) => (a.id < b.id ? -1 : 1));
    const delays = await Promise.all(
      rows.map(async (r) => (await h.deps.queue.queue.getJob(stepJobId(r.id, r.version)))!.opts.delay ?? 0),
    );
    const interval = h.config.SWEEP_INTERVAL_MS;
    expect(delays).toEqual([0, interval / 4, (2 * interval) / 4].map(Math.round));
    for (const id of ids) await h.step(id);
  });

  it('releases timers due together at their time, then one per interval ÷ limit, across sweeps', async () => {
    const workflow = await h.createWorkflow(withWait('3 hours'));
    const ids: string[] = [];
    for (let i = 0; i < 6; i += 1) ids.push(await h.trigger(workflow.id, (await h.createContact()).id));
    for (const id of ids) await h.step(id); // all six share one due time
    const bounded = createSweeper(h.deps, { batch: 2, staleRowsPerSweep: 2, timersPerSweep: 4 });
    await bounded();
    clock.advance(3 * 3_600_000 - 30_000); // due in 30 s
    expect([(await bounded()).promoted, (await bounded()).promoted]).toEqual([4, 2]);
    const rows = await h.db.execution.findMany({ where: { id: { in: ids } } });
    rows.sort((a, b) => (a.id < b.id ? -1 : 1));
    const delays = await Promise.all(
      rows.map(async (r) => (await h.deps.queue.queue.getJob(stepJobId(r.id, r.version)))!.opts.delay ?? 0),
    );
    const spacing = h.config.SWEEP_INTERVAL_MS / 4;
    expect(delays).toEqual([0, 1, 2, 3, 4, 5].map((k) => Math.round(30_000 + k * spacing)));
    clock.advance(31_000); // all due
    for (const id of ids) await h.step(id);
  });

  it('a walk cut short by its limit leaves overdue timers it has not reached to itself, not to the stale path', async () => {
    const workflow = await h.createWorkflow(withWait('3 hours'));
    const ids: string[] = [];
    for (let i = 0; i < 4; i += 1) {
      ids.push(await h.trigger(workflow.id, (await h.createContact()).id));
      await h.step(ids.at(-1)!);
      clock.advance(1); // each due 1 ms after the one before
    }
    const bounded = createSweeper(h.deps, { batch: 1, staleRowsPerSweep: 10, timersPerSweep: 1 });
    await bounded();
    clock.advance(3 * 3_600_000 + 120_000); // overdue by two minutes, beyond STALE_AFTER_MS
    const reports = [await bounded(), await bounded(), await bounded(), await bounded(), await bounded()];
    expect(reports.map((r) => r.promoted)).toEqual([1, 1, 1, 1, 0]);
    expect(reports.map((r) => r.enqueued)).toEqual([1, 1, 1, 1, 0]);
    for (const id of ids) await h.step(id);
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
