import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emails } from '../fixtures/workflows.ts';
import { startHarness, type Harness } from '../helpers/harness.ts';
import { startProcess, type EngineProcess } from '../helpers/processes.ts';

const EXECUTIONS = 120;
const STEPS = 3;

// SPEC "Recover execution after worker crash", with real worker processes killed by SIGKILL while
// provider calls are in flight. The API runs in this process; the workers are separate processes.
describe('Scenario: Recover execution after worker crash', () => {
  let h: Harness;
  const workers: EngineProcess[] = [];
  let env: Record<string, string>;

  beforeAll(async () => {
    h = await startHarness({ worker: false, env: { STALE_AFTER_MS: '3000' } });
    env = {
      DATABASE_URL: h.config.DATABASE_URL,
      QUEUE_PREFIX: h.config.QUEUE_PREFIX,
      EMAIL_HTTP_URL: h.provider.emailUrl,
      SMS_HTTP_URL: h.provider.smsUrl,
      WORKER_LOCK_MS: '2000',
      WORKER_CONCURRENCY: '20',
      STALE_AFTER_MS: '3000',
      SWEEP_INTERVAL_MS: '500',
      LOG_LEVEL: 'info',
    };
  });
  afterAll(async () => {
    for (const worker of workers) worker.kill();
    await Promise.all(workers.map((w) => w.exited));
    await h.stop();
  });

  it('resumes every execution at the step it was on, with no step sent under two keys', async () => {
    h.provider.setLatency(250);
    const workflow = await h.createWorkflow(emails(STEPS));
    const ids: string[] = [];
    for (let i = 0; i < EXECUTIONS; i += 1) ids.push(await h.trigger(workflow.id, (await h.createContact()).id));

    workers.push(await startProcess('worker', env), await startProcess('worker', env));
    // Kill a worker each time the provider has seen another slice of the traffic, choosing one that is
    // running jobs right then: calls are in flight (the provider holds every answer 250 ms), so jobs die
    // mid-call and mid-commit.
    const busyWorker = async () => {
      for (const deadline = Date.now() + 10_000; Date.now() < deadline; ) {
        const owners = new Set(
          (await h.deps.queue.queue.getActive()).map((job) => Number(job.processedBy?.split(':')[1])),
        );
        const busy = workers.find((w) => owners.has(w.child.pid!));
        if (busy) return busy;
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      return workers[0]!; // nothing running any more (a slow machine let the work finish first)
    };
    for (const threshold of [30, 90, 150]) {
      await h.provider.waitFor((requests) => requests.length >= threshold, 60_000);
      const victim = await busyWorker();
      workers.splice(workers.indexOf(victim), 1);
      victim.kill('SIGKILL');
      await victim.exited;
      workers.push(await startProcess('worker', env));
    }

    for (const id of ids) await h.waitForExecution(id, (e) => e.status === 'COMPLETED', 90_000);

    // Every step of every execution was delivered, always under the same key.
    const byStep = new Map<string, Set<string | undefined>>();
    for (const request of h.provider.received)
      byStep.set(
        `${request.body.execution_id}:${request.body.step_id}`,
        (byStep.get(`${request.body.execution_id}:${request.body.step_id}`) ?? new Set()).add(request.idempotencyKey),
      );
    for (const id of ids) {
      for (let step = 1; step <= STEPS; step += 1) {
        const keys = byStep.get(`${id}:email_${step}`);
        expect(keys, `${id} step ${step} delivered`).toBeDefined();
        expect([...keys!]).toEqual([`${id}:email_${step}`]);
      }
    }
    // Each execution's log has each step completed exactly once, in order, and the snapshot agrees.
    const logs = await h.db.executionLog.findMany({ where: { executionId: { in: ids } }, orderBy: { id: 'asc' } });
    for (const id of ids) {
      const own = logs.filter((l) => l.executionId === id);
      expect(own.filter((l) => l.eventType === 'action_completed').map((l) => l.stepId)).toEqual([
        'email_1',
        'email_2',
        'email_3',
      ]);
      expect(own.filter((l) => l.eventType === 'execution_completed')).toHaveLength(1);
    }
    const rows = await h.db.execution.findMany({ where: { id: { in: ids } } });
    expect(
      rows.every((r) => r.currentStepIndex === STEPS && (r.snapshot as { value: string }).value === 'completed'),
    ).toBe(true);
    // The crashes were noticed and logged.
    expect(logs.filter((l) => l.eventType === 'recovered').length).toBeGreaterThan(0);
    const resent = h.provider.received.length - EXECUTIONS * STEPS;
    console.log(
      `crash test: ${h.provider.received.length} provider requests for ${EXECUTIONS * STEPS} steps (${resent} same-key re-sends after kills)`,
    );
    expect(await h.activeSlots()).toBe(0);
  }, 180_000);
});
