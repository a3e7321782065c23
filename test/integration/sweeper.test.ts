import { trace } from '@opentelemetry/api';
import { hrTimeToMilliseconds } from '@opentelemetry/core';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
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
  // The releases' spans, collected in memory from the real sweeper.
  const exporter = new InMemorySpanExporter();
  const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  beforeAll(async () => {
    provider.register();
    h = await startHarness({ worker: false, clock, env: { STALE_AFTER_MS: '60000' } });
    sweep = createSweeper(h.deps);
    await sweep(); // sets the epoch: later sweeps are incremental
  });
  afterAll(async () => {
    await h.stop();
    await provider.shutdown();
    trace.disable();
  });
  const releaseSpans = () => exporter.getFinishedSpans().filter((s) => s.name === 'timer release');
  const released = (recovered: boolean) => h.metric('flowmachine_timers_released_total', `recovered="${recovered}"`);

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
    await h.step(id); // the queue is empty again for the tests below
  });

  /** Five executions waiting 3 hours (beyond TIMER_HORIZON_MS: no job at once), each step taken; their ids by due time, then id. */
  const waitingGroup = async (workflowId: string) => {
    const started: string[] = [];
    for (let i = 0; i < 5; i += 1) started.push(await h.trigger(workflowId, (await h.createContact()).id));
    for (const id of started) await h.step(id); // the group's waits share one due time: ties go by id
    return started.sort();
  };
  const jobsOf = async (ids: string[]) => {
    const rows = await h.db.execution.findMany({ where: { id: { in: ids } } });
    const jobs = await Promise.all(rows.map((r) => h.deps.queue.queue.getJob(stepJobId(r.id, r.version))));
    return new Map(rows.map((r, i) => [r.id, jobs[i]]));
  };
  /** Fires the execution's timer and sends its email, as a worker would. */
  const finish = async (id: string) => {
    await h.step(id);
    await h.step(id);
  };

  // A spike of due timers is released as the queue has room: the walk tops the ready jobs up to the
  // target, in (next_run_at, id) order, each release continuing where the previous one stopped.
  it('releases due timers kept in Postgres only while the queue has room under its target: each once, in order, none skipped', async () => {
    const workflow = await h.createWorkflow(withWait('3 hours'));
    const first = await waitingGroup(workflow.id);
    clock.advance(5_000); // a second group due five seconds after the first
    const second = await waitingGroup(workflow.id);
    const order = [...first, ...second];
    expect([...(await jobsOf(order)).values()].filter(Boolean)).toEqual([]);

    const counted = await released(false);
    exporter.reset();
    const bounded = createSweeper(h.deps, { batch: 2, staleRowsPerSweep: 2, readyTarget: 4 });
    expect(await bounded.release()).toEqual({ leader: true, ready: 0, released: 0 }); // due in 3 hours
    clock.advance(3 * 3_600_000 - 4_000); // the first group is overdue by a second, the second due in 4 s
    expect(await bounded.release()).toEqual({ leader: true, ready: 0, released: 4 });
    expect(await bounded.release()).toEqual({ leader: true, ready: 4, released: 0 }); // no room
    const queued = await jobsOf(order);
    expect(order.filter((id) => queued.get(id))).toEqual(first.slice(0, 4));
    // Their jobs wait in one line with new executions' first jobs (a priority), due at once.
    for (const id of first.slice(0, 4)) {
      expect(await queued.get(id)!.getState()).toBe('prioritized');
      expect(queued.get(id)!.opts.delay).toBe(0);
    }
    for (const id of first.slice(0, 2)) await finish(id); // the workers take two: room for two more
    expect(await bounded.release()).toEqual({ leader: true, ready: 2, released: 1 }); // the second group is not within TIMER_PROMOTE_AHEAD_MS yet
    clock.advance(4_000); // the second group is due
    for (const id of first.slice(2)) await finish(id);
    expect(await bounded.release()).toEqual({ leader: true, ready: 0, released: 4 });
    expect(await bounded.release()).toEqual({ leader: true, ready: 4, released: 0 });
    for (const id of second.slice(0, 4)) await finish(id);
    expect(await bounded.release()).toEqual({ leader: true, ready: 0, released: 1 });
    await finish(second[4]!);
    // The walk is past them all: a later release reads none again, and a sweep leaves them to it.
    clock.advance(61_000);
    expect(await bounded.release()).toEqual({ leader: true, ready: 0, released: 0 });
    expect((await bounded()).enqueued).toBe(0);
    const rows = await h.db.execution.findMany({ where: { id: { in: order } } });
    expect(rows.map((r) => r.status)).toEqual(order.map(() => 'COMPLETED'));
    // Counted as released, each once; one span per release that enqueued any, none for those with nothing to do.
    expect(await released(false)).toBe(counted + 10);
    expect(
      releaseSpans().map((span) => [
        span.attributes['flowmachine.timers_released'],
        span.attributes['flowmachine.ready_jobs'],
        span.attributes['flowmachine.ready_target'],
        span.attributes['flowmachine.recovered'],
      ]),
    ).toEqual([
      [4, 0, 4, false],
      [1, 2, 4, false],
      [4, 0, 4, false],
      [1, 0, 4, false],
    ]);
  });

  it('releases a timer due within TIMER_PROMOTE_AHEAD_MS as a job delayed until its time', async () => {
    const workflow = await h.createWorkflow(withWait('3 hours'));
    const [id] = await waitingGroup(workflow.id);
    const others = (await h.db.execution.findMany({ where: { workflowId: workflow.id, id: { not: id } } })).map(
      (r) => r.id,
    );
    clock.advance(3 * 3_600_000 - h.config.TIMER_PROMOTE_AHEAD_MS + 200); // due in TIMER_PROMOTE_AHEAD_MS - 200 ms
    expect((await sweep.release()).released).toBe(5);
    const job = (await jobsOf([id!])).get(id!)!;
    expect(job.opts.delay).toBe(h.config.TIMER_PROMOTE_AHEAD_MS - 200);
    clock.advance(h.config.TIMER_PROMOTE_AHEAD_MS);
    for (const other of [id!, ...others]) await finish(other);
  });

  // One walk, shared: every process's release goes through one lease and one position in Redis.
  it('lets one process release at a time, and another take over the walk where it stands once the lease lapses', async () => {
    const workflow = await h.createWorkflow(withWait('3 hours'));
    const first = await waitingGroup(workflow.id);
    clock.advance(3 * 3_600_000 + 1_000);
    const lease = `${h.config.QUEUE_PREFIX}:timer-release`;
    await h.deps.redis.set(lease, 'another process', 'PX', 60_000);
    expect(await sweep.release()).toEqual({ leader: false, ready: 0, released: 0 });
    expect((await sweep()).promoted).toBe(0);
    // The other process walked to the third timer, then died: its lease lapses and this one goes on from there.
    const third = (await h.db.execution.findUniqueOrThrow({ where: { id: first[2]! } })).nextRunAt!;
    await h.deps.redis.set(`${h.config.QUEUE_PREFIX}:timer-walk`, `${third.toISOString()} ${first[2]}`);
    await h.deps.redis.del(lease);
    const taken = () => h.logLines.filter((line) => line.includes('"message":"timer release lease taken"')).length;
    const takenBefore = taken();
    expect(await sweep.release()).toEqual({ leader: true, ready: 0, released: 2 });
    expect(taken()).toBe(takenBefore + 1); // a change of holder is logged; keeping the lease is not
    await sweep.release();
    expect(taken()).toBe(takenBefore + 1);
    expect(
      [...(await jobsOf(first)).entries()]
        .filter(([, job]) => job)
        .map(([id]) => id)
        .sort(),
    ).toEqual(first.slice(3));
    expect(await h.deps.redis.pttl(lease)).toBeGreaterThan(0);
    // The timers before it are the walk's past: once overdue and stale with no job, the sweep rebuilds them.
    clock.advance(61_000);
    expect((await sweep()).enqueued).toBe(3);
    for (const id of first) await finish(id);
  });

  // After Redis lost its data the walk has no position and starts from the first timer: the jobs it adds
  // are rebuilt ones, counted as recovered, and that walk is logged.
  it('counts the timers a walk without a position releases as recovered, in one span, and logs it', async () => {
    const workflow = await h.createWorkflow(withWait('3 hours'));
    const group = await waitingGroup(workflow.id);
    clock.advance(3 * 3_600_000 + 1_000);
    await h.deps.redis.del(`${h.config.QUEUE_PREFIX}:timer-walk`); // gone, as with the rest of Redis's data
    const [recovered, ordinary] = [await released(true), await released(false)];
    exporter.reset();
    const called = Date.now();
    expect(await sweep.release()).toEqual({ leader: true, ready: 0, released: 5 });
    const returned = Date.now();
    expect(await released(true)).toBe(recovered + 5);
    expect(await released(false)).toBe(ordinary);
    for (const job of (await jobsOf(group)).values()) expect(job?.data.recovered).toBe(true);

    const [span, ...others] = releaseSpans();
    expect(others).toEqual([]);
    expect(span!.attributes).toEqual({
      'flowmachine.timers_released': 5,
      'flowmachine.ready_jobs': 0,
      'flowmachine.ready_target': h.config.TIMER_READY_TARGET,
      'flowmachine.recovered': true,
    });
    // The span covers the whole run, from before the statement that found the timers due.
    expect(hrTimeToMilliseconds(span!.startTime)).toBeGreaterThanOrEqual(called - 1);
    expect(hrTimeToMilliseconds(span!.endTime)).toBeLessThanOrEqual(returned + 1);
    const logged = h.logLines
      .map((line) => JSON.parse(line))
      .filter((l) => l.message === 'timer release from the first timer');
    expect(logged.at(-1)).toMatchObject({
      level: 'info',
      released: 5,
      ready: 0,
      ready_target: h.config.TIMER_READY_TARGET,
    });

    // The walk has its position again: nothing more to release, no span, nothing counted, nothing logged.
    expect(await sweep.release()).toEqual({ leader: true, ready: 5, released: 0 });
    expect(releaseSpans()).toHaveLength(1);
    expect(await released(true)).toBe(recovered + 5);
    for (const id of group) await finish(id);
    expect(await sweep.release()).toEqual({ leader: true, ready: 0, released: 0 });
    expect(releaseSpans()).toHaveLength(1);
    expect(h.logLines.filter((line) => line.includes('timer release from the first timer'))).toHaveLength(
      logged.length,
    );
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
