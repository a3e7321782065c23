import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emails } from '../fixtures/workflows.ts';
import { startHarness, type Harness } from '../helpers/harness.ts';
import { startProcess, type EngineProcess } from '../helpers/processes.ts';

const EXECUTIONS = 40;
const STEPS = 3;

// A rolling restart under load: each worker gets SIGTERM while provider calls are in flight, finishes
// them, exits 0, and a new worker takes over. Nothing is lost and, unlike a crash, nothing is re-sent.
describe('graceful shutdown', () => {
  let h: Harness;
  const workers: EngineProcess[] = [];
  let env: Record<string, string>;

  beforeAll(async () => {
    h = await startHarness({ worker: false });
    env = {
      DATABASE_URL: h.config.DATABASE_URL,
      QUEUE_PREFIX: h.config.QUEUE_PREFIX,
      EMAIL_HTTP_URL: h.provider.emailUrl,
      SMS_HTTP_URL: h.provider.smsUrl,
      WORKER_CONCURRENCY: '10',
      LOG_LEVEL: 'info',
    };
  });
  afterAll(async () => {
    for (const worker of workers) worker.kill('SIGKILL');
    await Promise.all(workers.map((w) => w.exited));
    await h.stop();
  });

  it('a rolling restart under load loses nothing and sends nothing twice', async () => {
    h.provider.setLatency(150);
    const workflow = await h.createWorkflow(emails(STEPS));
    const ids: string[] = [];
    for (let i = 0; i < EXECUTIONS; i += 1) ids.push(await h.trigger(workflow.id, (await h.createContact()).id));
    workers.push(await startProcess('worker', env), await startProcess('worker', env));

    for (const threshold of [20, 60]) {
      await h.provider.waitFor((requests) => requests.length >= threshold, 60_000);
      const leaving = workers.shift()!;
      leaving.kill('SIGTERM');
      workers.push(await startProcess('worker', env));
      expect(await leaving.exited).toBe(0);
      expect(leaving.output.join('')).toContain('"message":"shutting down"');
    }
    for (const id of ids) await h.waitForExecution(id, (e) => e.status === 'COMPLETED', 60_000);

    expect(h.provider.received).toHaveLength(EXECUTIONS * STEPS);
    const keys = new Set(h.provider.received.map((r) => r.idempotencyKey));
    expect(keys.size).toBe(EXECUTIONS * STEPS);
    expect(await h.db.executionLog.count({ where: { eventType: 'recovered' } })).toBe(0);
  }, 120_000);
});
