import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkConsistency } from '../../src/engine/consistency.ts';
import { createRedis } from '../../src/queue/redis.ts';
import { hashTagOf } from '../../src/redis-target.ts';
import { startHarness, type Harness } from '../helpers/harness.ts';
import { startProcess, type EngineProcess } from '../helpers/processes.ts';
import { startRedisCluster, type RedisCluster } from '../helpers/redis-cluster.ts';

const BEFORE = 40;
const DURING = 20;
const definition = {
  steps: [
    { id: 'welcome', type: 'send_email', config: { subject: 'Hi', body: 'Welcome' } },
    { id: 'pause', type: 'wait', config: { duration: '1 second' } },
    { id: 'follow_up', type: 'send_sms', config: { body: 'Still there?' } },
  ],
};

// Redis Cluster of 3 masters and 3 replicas; the API in this process and two worker processes use it.
// The master serving the queue's hash slot is killed with SIGKILL while steps run, timers are pending
// and triggers keep coming; its replica takes over (cluster-node-timeout 2 s). Writes the master had
// not yet passed to its replica are lost, as in any Redis failover: the sweeper rebuilds that work
// from Postgres, and every execution finishes with each step sent once, always under its one key.
describe('Redis Cluster failover', () => {
  let cluster: RedisCluster;
  let h: Harness;
  const workers: EngineProcess[] = [];

  beforeAll(async () => {
    cluster = await startRedisCluster({ nodeTimeoutMs: 2_000 });
    const env = { REDIS_URL: cluster.url, STALE_AFTER_MS: '1500', SWEEP_INTERVAL_MS: '250' };
    h = await startHarness({ worker: false, env });
    const workerEnv = {
      ...env,
      DATABASE_URL: h.config.DATABASE_URL,
      QUEUE_PREFIX: h.config.QUEUE_PREFIX,
      EMAIL_HTTP_URL: h.provider.emailUrl,
      SMS_HTTP_URL: h.provider.smsUrl,
      WORKER_LOCK_MS: '2000',
      WORKER_CONCURRENCY: '10',
      // A worker whose fetch never returns after the failover (BullMQ's blocking connection can wait
      // forever for a 'ready' it missed) is replaced after this long; see queue/worker-supervisor.ts.
      WORKER_STALL_MS: '4000',
      LOG_LEVEL: 'info',
    };
    workers.push(...(await Promise.all([startProcess('worker', workerEnv), startProcess('worker', workerEnv)])));
  });
  afterAll(async () => {
    for (const worker of workers) worker.kill();
    await Promise.all(workers.map((w) => w.exited));
    await h?.stop();
    await cluster?.stop();
  });

  /** What the queue holds for the executions not completed, and the last log lines of each worker. */
  const whyStuck = async (ids: string[]) => {
    const stuck = await h.db.execution.findMany({ where: { id: { in: ids }, status: { not: 'COMPLETED' } } });
    const jobs = await Promise.all(
      stuck.map(async (e) => {
        const job = await h.deps.queue.queue.getJob(`${e.id}.${e.version}`);
        return {
          id: e.id,
          version: e.version,
          status: e.status,
          job: job && { state: await job.getState(), ...job.asJSON() },
        };
      }),
    );
    const counts = await h.deps.queue.queue.getJobCounts();
    const tails = workers.map((w) => w.output.join('').split('\n').slice(-40).join('\n'));
    return `stuck: ${JSON.stringify({ jobs, counts }, null, 1)}\n${tails.join('\n-----\n')}`;
  };

  it('uses a hash-tagged prefix, so every key of the queue lives in one slot', () => {
    expect(h.config.REDIS.mode).toBe('cluster');
    expect(h.config.QUEUE_PREFIX).toMatch(/^\{fmtest-[0-9a-f]+\}$/);
  });

  it('loses nothing and sends nothing under two keys when the master of the queue fails over', async () => {
    h.provider.setLatency(150);
    const workflow = await h.createWorkflow(definition);
    const contacts = await Promise.all(Array.from({ length: BEFORE + DURING }, () => h.createContact()));
    const ids: string[] = [];
    for (const contact of contacts.slice(0, BEFORE)) ids.push(await h.trigger(workflow.id, contact.id));
    await h.provider.waitFor((requests) => requests.length >= BEFORE / 4, 30_000);

    // The master dies with work on it: steps waiting or running, timers delayed.
    const pending = await h.deps.queue.queue.getJobCounts('waiting', 'prioritized', 'active', 'delayed');
    expect(Object.values(pending).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    const victim = await cluster.masterOf(`${h.config.QUEUE_PREFIX}:steps`);
    await cluster.kill(victim);
    // Triggers go on while the slot has no master: each commits to Postgres and its enqueue waits for
    // the new master (or is rebuilt by the sweeper).
    const during = Promise.all(contacts.slice(BEFORE).map((contact) => h.trigger(workflow.id, contact.id)));
    const successor = await cluster.waitForFailover(victim);
    expect(successor).not.toBe(victim);
    expect(await cluster.masterOf(`${h.config.QUEUE_PREFIX}:steps`)).toBe(successor);
    ids.push(...(await during));

    try {
      for (const id of ids) await h.waitForExecution(id, (e) => e.status === 'COMPLETED', 45_000);
    } catch (error) {
      console.warn(await whyStuck(ids));
      throw error;
    }

    // Every step of every execution was delivered, always under the same key.
    const keysByStep = new Map<string, Set<string | undefined>>();
    for (const request of h.provider.received) {
      const step = `${request.body.execution_id}:${request.body.step_id}`;
      keysByStep.set(step, (keysByStep.get(step) ?? new Set()).add(request.idempotencyKey));
    }
    for (const id of ids)
      for (const step of ['welcome', 'follow_up'])
        expect([...(keysByStep.get(`${id}:${step}`) ?? [])], `${id} ${step}`).toEqual([`${id}:${step}`]);
    expect(keysByStep.size).toBe(ids.length * 2);

    // Each execution's log has each step completed once, and the database is consistent.
    const logs = await h.db.executionLog.findMany({ where: { executionId: { in: ids } }, orderBy: { id: 'asc' } });
    for (const id of ids) {
      const own = logs.filter((l) => l.executionId === id);
      expect(own.filter((l) => l.eventType === 'action_completed').map((l) => l.stepId)).toEqual([
        'welcome',
        'follow_up',
      ]);
      expect(own.filter((l) => l.eventType === 'execution_completed')).toHaveLength(1);
    }
    const report = await checkConsistency(h.db, { stuckAfterMs: 60_000 });
    expect(report.violations).toEqual([]);
    expect(await h.activeSlots()).toBe(0);

    // Every key the engine wrote carries the prefix's hash tag, so all of them sit on the new master.
    const tag = hashTagOf(h.config.QUEUE_PREFIX);
    const masters = (await cluster.nodes()).filter((n) => n.role === 'master' && !n.failing);
    const keysOn = new Map<number, string[]>();
    for (const master of masters) {
      const client = createRedis({ mode: 'single', url: `redis://127.0.0.1:${master.port}` }, { failFast: true });
      await client.connect();
      keysOn.set(master.port, await client.keys('*'));
      client.disconnect();
    }
    const all = [...keysOn.values()].flat();
    expect(all.length).toBeGreaterThan(0);
    expect(all.filter((key) => hashTagOf(key) !== tag)).toEqual([]);
    expect(keysOn.get(successor)).toHaveLength(all.length);
    console.log(
      `cluster failover: ${h.provider.received.length} provider requests for ${ids.length * 2} steps, ` +
        `${logs.filter((l) => l.eventType === 'recovered').length} recovered log entries, ` +
        `${workers.flatMap((w) => w.output.join('').match(/replacing it and its connection/g) ?? []).length} workers replaced`,
    );
  }, 90_000);
});
