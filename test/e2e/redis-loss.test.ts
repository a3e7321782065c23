import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedis } from '../../src/queue/redis.ts';
import { startHarness, type Harness } from '../helpers/harness.ts';
import { startPrivateRedis } from '../helpers/redis-server.ts';

const EXECUTIONS = 60;
const definition = {
  steps: [
    { id: 'welcome', type: 'send_email', config: { subject: 'Hi', body: 'Welcome' } },
    { id: 'pause', type: 'wait', config: { duration: '1 second' } },
    { id: 'follow_up', type: 'send_sms', config: { body: 'Still there?' } },
  ],
};

// Redis keeps nothing on disk: a restart or FLUSHALL loses every job. The sweeper rebuilds the work
// from Postgres (queued, active and paused executions with their resume times) and all finish.
describe('Redis loss', () => {
  let redis: Awaited<ReturnType<typeof startPrivateRedis>>;
  let h: Harness;
  beforeAll(async () => {
    redis = await startPrivateRedis();
    h = await startHarness({
      env: { REDIS_URL: redis.url, SWEEP_INTERVAL_MS: '200', STALE_AFTER_MS: '1000', WORKER_CONCURRENCY: '10' },
    });
  });
  afterAll(async () => {
    await h.stop();
    await redis.stop();
  });

  const runThroughLoss = async (lose: () => Promise<void>) => {
    h.provider.setLatency(20);
    const workflow = await h.createWorkflow(definition);
    const base = h.provider.received.length;
    const ids: string[] = [];
    for (let i = 0; i < EXECUTIONS; i += 1) ids.push(await h.trigger(workflow.id, (await h.createContact()).id));
    await h.provider.waitFor((requests) => requests.length >= base + EXECUTIONS / 3, 30_000);
    await lose();
    for (const id of ids) await h.waitForExecution(id, (e) => e.status === 'COMPLETED', 60_000);
    for (const id of ids) {
      const sent = h.provider.received.filter((r) => r.body.execution_id === id);
      expect(new Set(sent.map((r) => r.body.step_id))).toEqual(new Set(['welcome', 'follow_up']));
      for (const request of sent) expect(request.idempotencyKey).toBe(`${id}:${request.body.step_id}`);
      const logs = await h.logsOf(id);
      expect(logs.filter((l) => l.eventType === 'action_completed').map((l) => l.stepId)).toEqual([
        'welcome',
        'follow_up',
      ]);
      expect(logs.filter((l) => l.eventType === 'wait_completed')).toHaveLength(1);
    }
    return ids;
  };

  it('survives FLUSHALL mid-run', async () => {
    const ids = await runThroughLoss(async () => {
      const client = createRedis({ mode: 'single', url: redis.url });
      await client.flushall();
      client.disconnect();
    });
    const recovered = await h.db.executionLog.count({ where: { executionId: { in: ids }, eventType: 'recovered' } });
    expect(recovered).toBeGreaterThan(0);
  }, 120_000);

  it('survives a Redis restart mid-run', async () => {
    const ids = await runThroughLoss(() => redis.restart());
    const recovered = await h.db.executionLog.count({ where: { executionId: { in: ids }, eventType: 'recovered' } });
    expect(recovered).toBeGreaterThan(0);
  }, 120_000);
});
