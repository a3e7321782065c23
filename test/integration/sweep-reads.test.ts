import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STUCK, TIMERS } from '../../src/sql/sweep.ts';
import { withWait } from '../fixtures/workflows.ts';
import { startHarness, type Harness } from '../helpers/harness.ts';

// The sweeper's statements read about what they return, however many executions the table holds: the
// timer release its LIMIT of due timers, the check for lost work only the work due but untouched. Checked
// on what Postgres runs (EXPLAIN ANALYZE of the prepared statements, in custom and generic plans) over
// 20,000 due timers and 20,000 finished executions. No worker or sweeper runs: nothing moves the rows.
describe('what the sweeper reads', () => {
  const [DUE, FINISHED, LIMIT] = [20_000, 20_000, 100];
  let h: Harness;
  let client: pg.PoolClient;
  /** The due timers in the release's order. */
  let due: { id: string; at: Date }[];

  interface PlanNode {
    'Node Type': string;
    'Actual Rows': number;
    'Actual Loops': number;
    'Rows Removed by Filter'?: number;
    'Rows Removed by Index Recheck'?: number;
    Plans?: PlanNode[];
  }
  /** Rows the plan's scans read: those they returned and those their conditions removed. */
  const rowsRead = (node: PlanNode): number =>
    (node['Node Type'].endsWith('Scan')
      ? (node['Actual Rows'] + (node['Rows Removed by Filter'] ?? 0) + (node['Rows Removed by Index Recheck'] ?? 0)) *
        node['Actual Loops']
      : 0) + (node.Plans ?? []).reduce((sum, child) => sum + rowsRead(child), 0);

  /** Runs the prepared `name` with `args` in `mode`: the rows it returned and read. */
  const explain = async (mode: string, name: string, args: unknown[]) => {
    await client.query(`SET plan_cache_mode = ${mode}`);
    const literals = args.map((a) =>
      a === null ? 'NULL' : client.escapeLiteral(a instanceof Date ? a.toISOString() : String(a)),
    );
    const result = await client.query(`EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE ${name}(${literals.join(', ')})`);
    const plan = (result.rows[0]['QUERY PLAN'] as { Plan: PlanNode }[])[0]!.Plan;
    return { returned: plan['Actual Rows'], read: rowsRead(plan) };
  };

  beforeAll(async () => {
    h = await startHarness({ worker: false });
    const workflow = await h.createWorkflow(withWait('3 hours'));
    const template = await h.trigger(workflow.id, (await h.createContact()).id); // QUEUED, its job never taken
    const copy = (n: number, status: string, nextRunAt: string) =>
      h.deps.pool.query(
        `INSERT INTO executions (id, account_id, workflow_id, workflow_version_id, contact_id, status, snapshot,
                                 total_steps, next_run_at, finished_at, updated_at)
         SELECT gen_random_uuid(), t.account_id, t.workflow_id, t.workflow_version_id, t.contact_id, $3, t.snapshot,
                t.total_steps, ${nextRunAt}, CASE WHEN $3 = 'COMPLETED' THEN now() END, now() - interval '1 hour'
         FROM executions t, generate_series(1, $2) WHERE t.id = $1`,
        [template, n, status],
      );
    await copy(DUE, 'PAUSED', `now() - random() * interval '1 hour'`);
    await copy(FINISHED, 'COMPLETED', 'NULL');
    await h.deps.pool.query('ANALYZE executions');
    due = (
      await h.deps.pool.query<{ id: string; at: Date }>(
        `SELECT id, next_run_at AS at FROM executions WHERE status = 'PAUSED' ORDER BY next_run_at, id`,
      )
    ).rows;
    client = await h.deps.pool.connect();
    await client.query(`PREPARE timers(timestamptz, timestamptz, uuid, integer) AS ${TIMERS.text}`);
    await client.query(`PREPARE stuck(timestamptz, boolean, uuid, integer, timestamptz) AS ${STUCK.text}`);
  });
  afterAll(async () => {
    client?.release(true);
    await h?.stop();
  });

  for (const mode of ['force_custom_plan', 'force_generic_plan'])
    describe(mode, () => {
      it('a timer release reads its LIMIT of due timers, from the first and from the middle of the walk', async () => {
        const now = new Date();
        const first = await explain(mode, 'timers', [now, null, null, LIMIT]);
        expect(first).toMatchObject({ returned: LIMIT });
        expect(first.read).toBeLessThanOrEqual(LIMIT + 1);

        const middle = due[DUE / 2]!;
        const from = await explain(mode, 'timers', [now, middle.at, middle.id, LIMIT]);
        expect(from).toMatchObject({ returned: LIMIT });
        expect(from.read).toBeLessThanOrEqual(LIMIT + 1);
      });

      it('the check for lost work reads the untouched work and the timers the walk has passed, not the table', async () => {
        const now = new Date();
        // The walk has passed the first LIMIT timers, all overdue: those and the template's admission are
        // lost work; the 19,900 timers not reached yet and the finished executions are not read.
        const walk = due[LIMIT]!.at;
        const check = await explain(mode, 'stuck', [now, false, null, 1_000, walk]);
        expect(check.returned).toBe(LIMIT + 1);
        expect(check.read).toBeLessThanOrEqual(2 * (LIMIT + 1));

        // No walk (Redis lost its position): only the untouched work.
        expect(await explain(mode, 'stuck', [now, false, null, 1_000, null])).toMatchObject({ returned: 1 });
        expect((await explain(mode, 'stuck', [now, true, null, 1_000, null])).read).toBeLessThanOrEqual(2);
      });
    });
});
