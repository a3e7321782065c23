import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commitChange } from '../../src/engine/commit.ts';
import { checkConsistency } from '../../src/engine/consistency.ts';
import { loadExecution, loadForJob } from '../../src/engine/load.ts';
import { triggerExecution } from '../../src/engine/trigger.ts';
import { stepJobId } from '../../src/queue/step-queue.ts';
import { emailThenWait } from '../fixtures/workflows.ts';
import { startHarness, type Harness } from '../helpers/harness.ts';

// Triggers, loads and commits that arrive while the pool's batches are all in flight go together in one
// statement (src/db/batch.ts). Each caller must still get its own answer, and only its own error.
describe('group commit', () => {
  let h: Harness;
  let workflowId: string;
  beforeAll(async () => {
    h = await startHarness({ worker: false });
    workflowId = (await h.createWorkflow(emailThenWait)).id;
    expect((await h.api.patch('/account/settings', { concurrent_executions_per_account: 1_024 })).status).toBe(200); // 16 slot shards
  });
  afterAll(() => h.stop());

  const batches = async (kind: string) => {
    const { values } = await h.deps.metrics.dbBatchSize.get();
    const of = (name: string) => values.find((v) => v.metricName === name && v.labels.kind === kind)?.value ?? 0;
    return { batches: of('flowmachine_db_batch_size_count'), requests: of('flowmachine_db_batch_size_sum') };
  };
  const failures = async (kind: string) =>
    (await h.deps.metrics.dbBatchFailures.get()).values.find((v) => v.labels.kind === kind)?.value ?? 0;
  const load = (id: string) => loadExecution(h.deps, h.deps.cache, id).then((loaded) => loaded!);

  it('triggers sent at once go in batches, each answered as if alone, and their first jobs are all enqueued', async () => {
    const contacts = await Promise.all(Array.from({ length: 40 }, () => h.createContact()));
    const optedOut = await h.createContact({ opted_in: false });
    const unknown = '00000000-0000-4000-8000-000000000000';
    const ids = [...contacts.map((c) => c.id), contacts[0]!.id, optedOut.id, unknown];
    const before = await batches('trigger');
    const results = await Promise.all(
      ids.map((contactId) =>
        triggerExecution(h.deps, h.deps.cache, { accountId: h.account.account_id, workflowId, contactId }),
      ),
    );

    const after = await batches('trigger');
    // At least one each: a trigger that guessed the workflow's version wrong (none compiled yet) asks again.
    expect(after.requests - before.requests).toBeGreaterThanOrEqual(ids.length);
    expect(after.batches - before.batches).toBeLessThan(ids.length);
    // The contact triggered twice at once: one of the two started, the other is the duplicate of it.
    const twice = [results[0]!, results[contacts.length]!].sort((a, b) => a.kind.localeCompare(b.kind));
    expect(twice).toEqual([
      { kind: 'duplicate', executionId: expect.any(String) },
      { kind: 'started', executionId: expect.any(String) },
    ]);
    expect((twice[0] as { executionId: string }).executionId).toBe((twice[1] as { executionId: string }).executionId);
    const first = [twice[1]!, ...results.slice(1, contacts.length)];
    expect(first.every((r) => r.kind === 'started')).toBe(true);
    expect(new Set(first.map((r) => 'executionId' in r && r.executionId)).size).toBe(contacts.length);
    expect(results.slice(-2)).toEqual([{ kind: 'opted_out' }, { kind: 'contact_not_found' }]);
    for (const result of first) {
      const job = await h.deps.queue.queue.getJob(stepJobId((result as { executionId: string }).executionId, 0));
      expect(job?.data).toMatchObject({ version: 0 });
    }
    expect(await h.db.execution.count({ where: { contactId: { in: contacts.map((c) => c.id) } } })).toBe(
      contacts.length,
    );
  });

  it('loads sent at once go in batches, and each job gets its own execution, admitted once', async () => {
    const ids = await h.enrollNew(workflowId, 120);
    const unknown = '00000000-0000-4000-8000-000000000000';
    const jobs = [
      ...ids.map((id) => ({ executionId: id, version: 0 })),
      { executionId: unknown, version: 0 },
      { executionId: ids[0]!, version: 7 },
    ];
    const before = await batches('load');
    const results = await Promise.all(jobs.map((job) => loadForJob(h.deps, h.deps.cache, job)));

    const after = await batches('load');
    expect(after.requests - before.requests).toBe(jobs.length);
    expect(after.batches - before.batches).toBeLessThan(jobs.length); // some went together
    results.slice(0, ids.length).forEach((result, i) => {
      expect(result?.loaded.row.id).toBe(ids[i]);
      expect(result?.admitted).toBe('ACTIVE');
    });
    expect(results[ids.length]).toBeNull(); // no such execution
    expect(results[ids.length + 1]?.admitted).toBeNull(); // a job of another version admits nothing
    expect(await h.activeSlots()).toBe(ids.length);
    expect(await failures('load')).toBe(0);
  });

  it('commits sent at once go in batches; a stale version gets no commit and a failing request fails alone', async () => {
    const ids = await h.enrollNew(workflowId, 60);
    await Promise.all(ids.map((id) => loadForJob(h.deps, h.deps.cache, { executionId: id, version: 0 })));
    const loaded = await Promise.all(ids.map(load));
    const stale = { ...loaded[31]!, row: { ...loaded[31]!.row, version: loaded[31]!.row.version - 1 } };
    const before = await batches('commit');
    const failedBefore = await failures('commit');

    const outcomes = await Promise.allSettled(
      loaded.map((execution, i) =>
        commitChange(h.deps, i === 31 ? stale : execution, {
          event: { type: 'STEP_DONE' },
          logs: [{ eventType: 'action_completed', status: 'SUCCESS', stepId: 'mail', details: { n: i } }],
          // Not a uuid: Postgres rejects this request's log row.
          userId: i === 32 ? 'not-a-uuid' : undefined,
        }),
      ),
    );

    expect((await batches('commit')).batches - before.batches).toBeLessThan(ids.length);
    expect(await failures('commit')).toBeGreaterThan(failedBefore); // the batch holding request 2 failed as a whole…
    expect(outcomes[31]).toEqual({ status: 'fulfilled', value: null });
    expect(outcomes[32]).toMatchObject({ status: 'rejected', reason: { message: expect.stringContaining('uuid') } });
    const rows = await h.db.execution.findMany({ where: { id: { in: ids } } });
    const byId = new Map(rows.map((row) => [row.id, row]));
    for (const [i, id] of ids.entries()) {
      const logs = await h.logsOf(id);
      if (i === 31 || i === 32) {
        expect(byId.get(id)).toMatchObject({ status: 'ACTIVE', version: 1 }); // …and only it was not written
        expect(logs.some((log) => log.eventType === 'action_completed')).toBe(false);
        continue;
      }
      expect(byId.get(id)).toMatchObject({ status: 'PAUSED', version: 2 });
      expect(logs.filter((log) => log.eventType === 'action_completed').map((log) => log.details)).toEqual([{ n: i }]);
    }
  });

  it('batches that take and give back slots on every shard at once neither deadlock nor send anyone to the waiting line', async () => {
    const ids = await h.enrollNew(workflowId, 400);
    // Admitted in batches, all of them: each batch keeps to one or two shards, so none finds every shard
    // held by another and none waits in line (flowmachine_take_slot's shard affinity).
    const admitted = await Promise.all(
      ids.map((id) => loadForJob(h.deps, h.deps.cache, { executionId: id, version: 0 })),
    );
    expect(admitted.filter((a) => a?.admitted !== 'ACTIVE')).toEqual([]);
    const loaded = await Promise.all(ids.map(load));
    expect(new Set(loaded.map((l) => l.row.id)).size).toBe(ids.length);
    const shards = await h.db.execution.groupBy({ by: ['slotShard'], where: { id: { in: ids } }, _count: true });
    expect(shards.length).toBeGreaterThan(4);
    const slotsBefore = await h.activeSlots();

    const before = await batches('commit');
    const failedBefore = await failures('commit');
    // In the order of their ids, so each batch gives back slots of many shards, in no particular order.
    const shuffled = [...loaded].sort((a, b) => a.row.id.localeCompare(b.row.id));
    const committed = await Promise.all(
      shuffled.map((execution) =>
        commitChange(h.deps, execution, {
          event: { type: 'STEP_DONE' },
          logs: [{ eventType: 'action_completed', status: 'SUCCESS', stepId: 'mail', stepIndex: 1 }],
        }),
      ),
    );

    expect(committed.every((c) => c?.status === 'PAUSED')).toBe(true);
    const after = await batches('commit');
    // At least one each: a trigger that guessed the workflow's version wrong (none compiled yet) asks again.
    expect(after.requests - before.requests).toBeGreaterThanOrEqual(ids.length);
    expect(after.batches - before.batches).toBeLessThan(ids.length / 4);
    expect(await failures('commit')).toBe(failedBefore);
    expect(await h.activeSlots()).toBe(slotsBefore - ids.length);
    // The account's counters, and these executions (the tests before left theirs half done on purpose).
    const { violations } = await checkConsistency(h.deps.db, { stuckAfterMs: 3_600_000 });
    const mine = new Set(ids);
    expect(violations.filter((v) => !v.execution_id || mine.has(v.execution_id))).toEqual([]);
  });
});
