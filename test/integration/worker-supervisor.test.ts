import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WorkerSupervisor } from '../../src/queue/worker-supervisor.ts';
import { startHarness, type Harness } from '../helpers/harness.ts';

const STALL_MS = 15_000; // the default WORKER_STALL_MS
const definition = { steps: [{ id: 'welcome', type: 'send_email', config: { subject: 'Hi', body: 'Welcome' } }] };

// The supervisor of a process's step worker, on the real queue: a worker that takes no due job (here
// closed underneath it; test/e2e/redis-cluster.test.ts meets the real case, a fetch that never returns
// after a failover) is replaced after WORKER_STALL_MS and the new one runs the work; an idle queue or a
// busy worker is left alone. `check(now)` takes the time, so no test
// waits the 15 s.
describe('worker supervisor', () => {
  let h: Harness;
  let supervisor: WorkerSupervisor | undefined;

  beforeAll(async () => {
    h = await startHarness({ worker: false, env: { WORKER_CONCURRENCY: '1' } });
  });
  const startSupervisor = async () => {
    const started = new WorkerSupervisor(h.deps);
    await started.worker.worker.waitUntilReady();
    return started;
  };
  afterEach(async () => {
    await supervisor?.close(5_000);
    supervisor = undefined;
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('leaves a worker alone while nothing is due, however long', async () => {
    supervisor = await startSupervisor();
    const worker = supervisor.worker;
    const now = Date.now();
    expect(await supervisor.check(now)).toBe(false);
    expect(await supervisor.check(now + 10 * STALL_MS)).toBe(false);
    expect(supervisor.worker).toBe(worker);
  });

  it('replaces a worker that took no ready job for WORKER_STALL_MS; the new one runs it', async () => {
    supervisor = await startSupervisor();
    const stuck = supervisor.worker;
    await stuck.worker.close(); // it takes nothing more, as a worker whose fetch never returns
    const before = await h.metric('flowmachine_worker_restarts_total');
    const workflow = await h.createWorkflow(definition);
    const id = await h.trigger(workflow.id, (await h.createContact()).id);
    expect(await h.deps.queue.ready()).toBe(1);

    const now = Date.now();
    expect(await supervisor.check(now)).toBe(false); // due since now
    expect(await supervisor.check(now + STALL_MS - 1)).toBe(false);
    expect(supervisor.worker).toBe(stuck);
    expect(await supervisor.check(now + STALL_MS)).toBe(true);

    expect(supervisor.worker).not.toBe(stuck);
    expect(stuck.worker.closing).toBeTruthy();
    expect(await h.metric('flowmachine_worker_restarts_total')).toBe(before + 1);
    expect(h.logLines.some((line) => line.includes('the step worker took no due job; replacing it'))).toBe(true);
    await h.waitForExecution(id, (e) => e.status === 'COMPLETED');
    expect(h.provider.received.filter((r) => r.body.execution_id === id)).toHaveLength(1);
  });

  it('replaces a worker that left a delayed job unpromoted past its time', async () => {
    supervisor = await startSupervisor();
    const stuck = supervisor.worker;
    await stuck.worker.close(); // it takes nothing more, as a worker whose fetch never returns
    const workflow = await h.createWorkflow({
      steps: [{ id: 'pause', type: 'wait', config: { duration: '1 second' } }, ...definition.steps],
    });
    const id = await h.trigger(workflow.id, (await h.createContact()).id);
    // The closed worker never starts the first step, so the execution is enqueued, not delayed: run it
    // here, which leaves the wait's delayed job (due in 1 s) that only a fetching worker promotes.
    await h.step(id);
    const dueAt = await h.deps.queue.nextDelayedAt();
    expect(dueAt).toBeGreaterThan(Date.now() - 1_000);
    expect(await h.deps.queue.ready()).toBe(0);

    expect(await supervisor.check(dueAt! + 500)).toBe(false); // not late yet: no suspicion
    expect(await supervisor.check(dueAt! + 500 + STALL_MS)).toBe(false); // late since now
    expect(await supervisor.check(dueAt! + 1_000 + 2 * STALL_MS)).toBe(true);
    await h.waitForExecution(id, (e) => e.status === 'COMPLETED');
  });

  it('leaves a worker alone while it runs a job, however long jobs wait behind it', async () => {
    supervisor = await startSupervisor();
    const worker = supervisor.worker;
    const release = h.provider.hold(); // the worker's one job (WORKER_CONCURRENCY 1) waits at the provider
    try {
      const workflow = await h.createWorkflow(definition);
      const sent = h.provider.received.length;
      const running = await h.trigger(workflow.id, (await h.createContact()).id);
      await h.provider.waitFor((requests) => requests.length > sent);
      const waiting = await h.trigger(workflow.id, (await h.createContact()).id);
      expect([worker.active(), await h.deps.queue.ready()]).toEqual([1, 1]);
      const now = Date.now();
      for (const t of [now, now + STALL_MS, now + 10 * STALL_MS]) expect(await supervisor.check(t)).toBe(false);
      expect(supervisor.worker).toBe(worker);
      release();
      for (const id of [running, waiting]) await h.waitForExecution(id, (e) => e.status === 'COMPLETED');
    } finally {
      release();
    }
  });
});
