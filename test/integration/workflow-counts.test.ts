import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { flattenSteps, queryWorkflowStats, summarizeStats, type StatsRows } from '../../src/api/workflow-stats.ts';
import type { Pool } from '../../src/db/client.ts';
import { createManualClock } from '../../src/clock.ts';
import { foldCounts } from '../../src/engine/count-folder.ts';
import { EXECUTION_STATUSES } from '../../src/engine/types.ts';
import { RUNNING_STATUSES } from '../../src/vocabulary.ts';
import { abTest, sequential } from '../fixtures/workflows.ts';
import { startHarness, type Harness } from '../helpers/harness.ts';

// The counters behind GET /workflows/{id}/stats (migration workflow_counts) against what they count:
// after every change the answer read from the counters equals the one computed from the executions and
// their logs directly (the aggregates the endpoint ran before it had counters), folded or not.

/** The stats of a workflow computed from its executions and logs, one version's with `versionId`. */
async function countedFromRows(pool: Pool, workflowId: string, versionId: string | null): Promise<StatsRows> {
  const values = [workflowId, versionId];
  const of = `workflow_id = $1 AND ($2::uuid IS NULL OR workflow_version_id = $2::uuid)`;
  const [statuses, atStep, events, goal] = await Promise.all([
    pool.query(`SELECT status, count(*)::int AS n FROM executions WHERE ${of} GROUP BY status`, values),
    pool.query(
      `SELECT snapshot->>'value' AS step_id, count(*)::int AS n FROM executions WHERE ${of} AND status = ANY($3) GROUP BY 1`,
      [...values, RUNNING_STATUSES],
    ),
    pool.query(
      `SELECT l.step_id, l.event_type, count(DISTINCT l.execution_id)::int AS n
       FROM execution_logs l JOIN executions e ON e.id = l.execution_id
       WHERE e.workflow_id = $1 AND ($2::uuid IS NULL OR e.workflow_version_id = $2::uuid) AND l.step_id IS NOT NULL
       GROUP BY 1, 2`,
      values,
    ),
    pool.query(`SELECT count(*)::int AS n FROM executions WHERE ${of} AND completion_reason = 'goal_achieved'`, values),
  ]);
  return { statuses: statuses.rows, atStep: atStep.rows, events: events.rows, goalAchieved: goal.rows[0].n };
}

describe('stats counters', () => {
  let h: Harness;
  let workflowId: string;
  const steps = flattenSteps(abTest.steps as Parameters<typeof flattenSteps>[0]);
  const answer = (rows: StatsRows) => summarizeStats(steps, rows);
  /** Both answers, for all versions and for each version. */
  const both = async () => {
    const versions = await h.db.workflowVersion.findMany({
      where: { workflowId },
      orderBy: { version: 'asc' },
      select: { id: true },
    });
    return Promise.all(
      [null, ...versions.map((v) => v.id)].map(async (versionId) => ({
        counted: answer(await queryWorkflowStats(h.deps.pool, workflowId, versionId)),
        expected: answer(await countedFromRows(h.deps.pool, workflowId, versionId)),
      })),
    );
  };
  const expectCountsRight = async () => {
    for (const { counted, expected } of await both()) expect(counted).toEqual(expected);
  };
  const clock = createManualClock(new Date());
  const rowOf = (id: string) => h.db.execution.findUniqueOrThrow({ where: { id } });
  /** At rest: ended, or at the two-day wait. */
  const resting = (row: Awaited<ReturnType<typeof rowOf>>) =>
    ['COMPLETED', 'FAILED', 'CANCELLED'].includes(row.status) || (row.snapshot as { value: unknown }).value === 'pause';
  /** Runs the execution's steps until it rests, calling `after` after each. */
  const drive = async (id: string, after = async () => {}) => {
    for (let row = await rowOf(id); !resting(row); row = await rowOf(id)) {
      // A retry is due after its back-off: the clock moves there instead of the test waiting.
      if (row.nextRunAt && row.nextRunAt > clock.now()) clock.set(row.nextRunAt);
      await h.step(id);
      await after();
    }
  };
  const deltas = async () =>
    (await h.deps.pool.query('SELECT count(*)::int AS n FROM workflow_count_deltas')).rows[0].n as number;

  beforeAll(async () => {
    h = await startHarness({ worker: false, clock });
    await h.api.patch('/account/settings', { max_retry_attempts: 1, error_notification: false });
    workflowId = (await h.createWorkflow(abTest, 'A/B')).id;
  });
  afterAll(() => h?.stop());

  it('equal what they count after every step: retries, failures, skips, folds at any point', {
    timeout: 120_000,
  }, async () => {
    const ids: string[] = [];
    for (let i = 0; i < 8; i++)
      ids.push(await h.trigger(workflowId, (await h.createContact(i % 3 === 0 ? { tags: ['gold'] } : {})).id));
    await expectCountsRight();
    // Each contact's email answers differently: sent, retried then sent, retried then failed, refused (skipped).
    const answers = [
      [{ status: 200 }],
      [{ status: 503 }, { status: 200 }],
      [{ status: 503 }, { status: 503 }],
      [{ status: 400 }],
    ];
    for (const [i, id] of ids.entries()) {
      h.provider.script(...answers[i % answers.length]!);
      await drive(id, expectCountsRight);
      // Folding a few deltas at a time leaves the answer as it was.
      await foldCounts(h.deps.store, { batch: 3, batches: 1, vacuumAfter: 3 });
      await expectCountsRight();
    }
    const first = (await both())[0]!.counted;
    expect(first.executions).toMatchObject({ PAUSED: 6, FAILED: 2 });
    expect(first.steps.find((s) => s.step_id === 'subject_test')).toMatchObject({ entered: 8, completed: 8 });
    const emails = first.steps.filter((s) => s.step_id.startsWith('email_'));
    // Retried sends count once: each email step entered once per execution that took it.
    expect(emails.reduce((sum, s) => sum + s.entered, 0)).toBe(8);
    expect(emails.reduce((sum, s) => sum + s.failed, 0)).toBe(2);
    expect(emails.reduce((sum, s) => sum + s.skipped, 0)).toBe(2);
    await foldCounts(h.deps.store);
    expect(await deltas()).toBe(0);
    await expectCountsRight();
    // The fold vacuumed the rows it deleted: none is left dead for a read to walk past.
    const table = await h.deps.pool.query(
      "SELECT vacuum_count + autovacuum_count AS vacuums FROM pg_stat_user_tables WHERE relname = 'workflow_count_deltas'",
    );
    expect(Number(table.rows[0].vacuums)).toBeGreaterThan(0);
  });

  it('follow a bulk cancel, a bulk retry and a move of running executions to a new version', async () => {
    const cancel = await h.api.post(`/workflows/${workflowId}/executions/cancel`, {
      status: 'PAUSED',
      step_id: 'pause',
    });
    expect(cancel.body).toMatchObject({ matched: 6, changed: 6 });
    await expectCountsRight();
    const retry = await h.api.post(`/workflows/${workflowId}/executions/retry`, {});
    expect(retry.body).toMatchObject({ matched: 2, changed: 2 });
    await expectCountsRight();
    const waiting = await h.trigger(workflowId, (await h.createContact()).id);
    await drive(waiting);
    const move = await h.api.put(`/workflows/${workflowId}/definition`, { definition: abTest, in_flight: 'move' });
    expect(move.status).toBe(200);
    const [all, v1, v2] = await both();
    expect(v2!.counted.steps.find((s) => s.step_id === 'pause')!.at_step).toBeGreaterThanOrEqual(1);
    expect(v1!.counted.steps.find((s) => s.step_id === 'pause')!.at_step).toBe(0);
    // Moved executions keep what they did under the version they did it on; where they are, under the new one.
    expect(all!.counted).toEqual(all!.expected);
    expect(v2!.counted.executions).toEqual(v2!.expected.executions);
  });

  it('are rebuilt exactly from the executions and logs (a database from before the counters)', async () => {
    const before = (await both())[0]!.counted;
    await h.deps.pool.query('DELETE FROM workflow_counts');
    expect((await both())[0]!.counted).not.toEqual(before);
    await h.deps.pool.query('SELECT flowmachine_rebuild_counts($1)', [workflowId]);
    expect((await both())[0]!.counted).toEqual(before);
    expect(await deltas()).toBe(0);
  });

  it('are folded by one process at a time, and a deleted workflow leaves none behind', async () => {
    const other = (await h.createWorkflow(sequential, 'Other')).id;
    await h.trigger(other, (await h.createContact()).id);
    const holder = await h.deps.pool.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT flowmachine_fold_counts(1)');
      expect(await h.deps.store.foldCounts(1000)).toBe(0);
      await holder.query('COMMIT');
    } finally {
      holder.release();
    }
    // A workflow goes with its account (nothing in the API deletes one): its executions cascade.
    await h.deps.pool.query('DELETE FROM workflows WHERE id = $1', [other]);
    expect(await deltas()).toBeGreaterThan(0);
    await foldCounts(h.deps.store);
    expect(await deltas()).toBe(0);
    const left = await h.deps.pool.query('SELECT count(*)::int AS n FROM workflow_counts WHERE workflow_id = $1', [
      other,
    ]);
    expect(left.rows[0].n).toBe(0);
  });

  it('key an execution by its step while it runs and by its completion reason once it ended', async () => {
    for (const status of EXECUTION_STATUSES) {
      const { rows } = await h.deps.pool.query(
        `SELECT k.step_id, k.completion_reason FROM flowmachine_count_as(jsonb_populate_record(NULL::executions, $1)) k`,
        [{ status, snapshot: { value: 'mail' }, completion_reason: 'goal_achieved' }],
      );
      const running = RUNNING_STATUSES.includes(status);
      expect(rows[0], status).toEqual(
        running ? { step_id: 'mail', completion_reason: '' } : { step_id: '', completion_reason: 'goal_achieved' },
      );
    }
  });
});

describe('stats counters under a running worker', () => {
  let h: Harness;
  let folding = true;
  afterAll(async () => {
    folding = false;
    await h?.stop();
  });

  it('equal what they count once 200 executions ran while folds went on', { timeout: 120_000 }, async () => {
    h = await startHarness({ worker: true, env: { COUNTS_FOLD_INTERVAL_MS: '100', PROVIDER_TIMEOUT_MS: '10000' } });
    // A send that times out on a busy machine fails at once rather than waiting out a back-off.
    await h.api.patch('/account/settings', { max_retry_attempts: 0, error_notification: false });
    const workflowId = (await h.createWorkflow(sequential, 'Sequential')).id;
    const ids = await h.enrollNew(workflowId, 200);
    const folder = (async () => {
      while (folding) await foldCounts(h.deps.store, { batch: 7, batches: 1, vacuumAfter: 7 });
    })();
    const ended = (e: { status: string }) => e.status === 'COMPLETED' || e.status === 'FAILED';
    await Promise.all(ids.map((id) => h.waitForExecution(id, ended, 100_000)));
    folding = false;
    await folder;
    const steps = flattenSteps(sequential.steps);
    const counted = summarizeStats(steps, await queryWorkflowStats(h.deps.pool, workflowId, null));
    expect(counted).toEqual(summarizeStats(steps, await countedFromRows(h.deps.pool, workflowId, null)));
    expect(counted.executions.COMPLETED + counted.executions.FAILED).toBe(200);
    expect(counted.steps[0]).toMatchObject({ step_id: 'welcome', entered: 200 });
    // Contacts enrolled in bulk have no phone: the SMS of each completed one is skipped.
    expect(counted.steps[2]).toMatchObject({ step_id: 'sms', skipped: counted.executions.COMPLETED });
  });
});
