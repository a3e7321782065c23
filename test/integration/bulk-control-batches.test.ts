import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cancelExecutions } from '../../src/engine/control.ts';
import { loadForJob } from '../../src/engine/load.ts';
import type { EngineDeps } from '../../src/engine/types.ts';
import { emailThenWait } from '../fixtures/workflows.ts';
import { startHarness, type Harness } from '../helpers/harness.ts';

// A bulk operation's batch (src/engine/control.ts, applyToBatch): one load, one transaction, then the
// Redis removals. What happens when a worker moves one of its executions between the load and the
// commit, and when the batch's transaction fails as a whole. No worker runs: the test moves executions
// itself (h.step), so the race happens exactly where it is put.
describe('bulk control batches', () => {
  let h: Harness;
  let workflowId: string;
  beforeAll(async () => {
    h = await startHarness({ worker: false });
    workflowId = (await h.createWorkflow(emailThenWait)).id;
  });
  afterAll(() => h?.stop());

  const rowsOf = (ids: string[]) =>
    h.deps.pool
      .query<{ id: string; status: string; version: number; tx: string }>(
        'SELECT id, status, version, xmin::text AS tx FROM executions WHERE id = ANY($1::uuid[])',
        [ids],
      )
      .then(({ rows }) => new Map(rows.map((row) => [row.id, row])));
  const cancelEntries = async (id: string) =>
    (await h.logsOf(id)).filter((log) => log.eventType === 'execution_cancelled').map((log) => log.userId);

  it('an execution a worker moves between the batch load and its commit is cancelled again on its own, at its new version', async () => {
    const ids = await h.enrollNew(workflowId, 5);
    const racer = ids[2]!;
    let raced = false;
    // The real store, with a real step of one execution run right after the batch has read it.
    const deps: EngineDeps = {
      ...h.deps,
      store: {
        ...h.deps.store,
        async loadMany(executionIds, accountId) {
          const rows = await h.deps.store.loadMany(executionIds, accountId);
          if (!raced) {
            raced = true;
            await h.step(racer);
          }
          return rows;
        },
      },
    };
    const moved = (await rowsOf([racer])).get(racer)!;
    expect(moved).toMatchObject({ status: 'QUEUED', version: 0 });

    const changed = await cancelExecutions(deps, h.deps.cache, h.account.account_id, ids, h.account.user_id);

    expect(raced).toBe(true);
    expect(changed).toBe(ids.length);
    const rows = await rowsOf(ids);
    expect([...rows.values()].map((row) => row.status)).toEqual(Array(ids.length).fill('CANCELLED'));
    // The four the worker left alone were cancelled in the batch's one transaction, the racer in its own.
    const others = ids.filter((id) => id !== racer).map((id) => rows.get(id)!.tx);
    expect(new Set(others).size).toBe(1);
    expect(rows.get(racer)!.tx).not.toBe(others[0]);
    expect((await h.logsOf(racer)).some((log) => log.eventType === 'action_completed')).toBe(true);
    for (const id of ids) expect(await cancelEntries(id)).toEqual([h.account.user_id]);
    // No job left in Redis: neither the first jobs nor the timer the racer's step set.
    const versions = [0, 1, 2, 3].flatMap((version) => ids.map((executionId) => ({ executionId, version })));
    expect((await h.deps.queue.missing(versions)).length).toBe(versions.length);

    // Done once: the same batch again changes nothing and logs nothing more.
    expect(await cancelExecutions(h.deps, h.deps.cache, h.account.account_id, ids, h.account.user_id)).toBe(0);
    expect(await cancelEntries(racer)).toEqual([h.account.user_id]);
  });

  it('a batch whose transaction fails writes none of its executions, and the error reaches the caller', async () => {
    const ids = await h.enrollNew(workflowId, 4);
    // Not a uuid: Postgres rejects the cancel entries, so the batch fails as a whole and then each one alone.
    await expect(cancelExecutions(h.deps, h.deps.cache, h.account.account_id, ids, 'not-a-uuid')).rejects.toThrow(
      /uuid/,
    );
    expect(h.logLines.some((line) => line.includes('bulk batch failed'))).toBe(true);
    const rows = await rowsOf(ids);
    expect([...rows.values()].map((row) => [row.status, row.version])).toEqual(Array(ids.length).fill(['QUEUED', 0]));
    for (const id of ids) expect(await cancelEntries(id)).toEqual([]);
    expect(await h.deps.queue.missing(ids.map((executionId) => ({ executionId, version: 0 })))).toEqual([]);
  });

  it('takes only executions of the given account', async () => {
    const ids = await h.enrollNew(workflowId, 2);
    const otherAccount = '00000000-0000-4000-8000-000000000000';
    expect(await cancelExecutions(h.deps, h.deps.cache, otherAccount, ids, h.account.user_id)).toBe(0);
    expect([...(await rowsOf(ids)).values()].map((row) => row.status)).toEqual(['QUEUED', 'QUEUED']);
  });

  it('an ACTIVE execution cancelled in a batch gives its slot back, and the one waiting in line for it is admitted with its job', async () => {
    expect((await h.api.patch('/account/settings', { concurrent_executions_per_account: 1 })).status).toBe(200);
    const [active, next] = await h.enrollNew(workflowId, 2);
    const load = (executionId: string) => loadForJob(h.deps, h.deps.cache, { executionId, version: 0 });
    expect((await load(active!))!.admitted).toBe('ACTIVE');
    expect((await load(next!))!.admitted).toBe('QUEUED'); // in line: the one slot is taken
    expect(await h.activeSlots()).toBe(1);

    expect(await cancelExecutions(h.deps, h.deps.cache, h.account.account_id, [active!], h.account.user_id)).toBe(1);

    const rows = await rowsOf([active!, next!]);
    expect(rows.get(active!)!.status).toBe('CANCELLED');
    expect(rows.get(next!)!.status).toBe('ACTIVE');
    expect(await h.activeSlots()).toBe(1);
    const job = { executionId: next!, version: rows.get(next!)!.version };
    expect(await h.deps.queue.missing([job])).toEqual([]);
  });
});
