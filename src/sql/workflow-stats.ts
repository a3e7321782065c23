import type { Pool } from '../db/client.ts';
import { run } from '../db/sql.ts';
import { RUNNING_STATUSES } from '../vocabulary.ts';

/** What {@link queryWorkflowStats} reads, before it is shaped into the answer. */
export interface StatsRows {
  /** Executions by status. */
  statuses: { status: string; n: number }[];
  /** Running executions by the state (step) their snapshot is in. */
  atStep: { step_id: string; n: number }[];
  /** Log entries per step and event type, an action's retries counted once. */
  events: { step_id: string; event_type: string; n: number }[];
  /** Executions completed by their goal. */
  goalAchieved: number;
}

/** One key of `workflow_counts` and its total (migration workflow_counts). */
interface CountRow {
  status: string;
  step_id: string;
  completion_reason: string;
  event_type: string;
  n: number;
}

/**
 * A workflow's counters (one version's when `$2` is not NULL): the folded counts plus the deltas not
 * folded yet, read in one statement so a concurrent fold is seen entirely or not at all.
 */
const COUNTS = {
  name: 'workflow-counts',
  text: `SELECT status, step_id, completion_reason, event_type, sum(n)::int AS n FROM (
      SELECT status, step_id, completion_reason, event_type, n FROM workflow_counts
        WHERE workflow_id = $1 AND ($2::uuid IS NULL OR workflow_version_id = $2::uuid)
      UNION ALL
      SELECT status, step_id, completion_reason, event_type, n FROM workflow_count_deltas
        WHERE workflow_id = $1 AND ($2::uuid IS NULL OR workflow_version_id = $2::uuid)
    ) c GROUP BY 1, 2, 3, 4 HAVING sum(n) <> 0`,
};
/**
 * The account's workflow with its versions (`$3`: only that version number, or NULL for all), newest
 * first: one row with a NULL version when the workflow has none of them, none when it is not the account's.
 */
const VERSIONS = {
  name: 'workflow-stats-versions',
  text: `SELECT v.id, v.definition FROM workflows w
      LEFT JOIN workflow_versions v ON v.workflow_id = w.id AND ($3::integer IS NULL OR v.version = $3::integer)
    WHERE w.id = $1 AND w.account_id = $2
    ORDER BY v.version DESC`,
};
/** prisma/functions/flowmachine_fold_counts.sql */
const FOLD = { name: 'workflow-counts-fold', text: 'SELECT flowmachine_fold_counts($1::integer) AS folded' };

/**
 * Counts a workflow's executions (one version's, with `versionId`) from the counters the triggers on
 * `executions` and `execution_logs` keep (prisma/functions/flowmachine_count_*.sql): one read of a
 * few dozen rows whatever the number of executions. `at_step` is the snapshot's state of a running
 * execution, the step it is being run at or waits on.
 */
export async function queryWorkflowStats(pool: Pool, workflowId: string, versionId: string | null): Promise<StatsRows> {
  const rows = await run<CountRow>(pool, COUNTS, [workflowId, versionId]);
  const running = new Set<string>(RUNNING_STATUSES);
  const statuses = new Map<string, number>();
  const atStep = new Map<string, number>();
  const bump = (totals: Map<string, number>, key: string, n: number) => totals.set(key, (totals.get(key) ?? 0) + n);
  const events: StatsRows['events'] = [];
  let goalAchieved = 0;
  for (const { status, step_id, completion_reason, event_type, n } of rows) {
    if (event_type !== '') {
      events.push({ step_id, event_type, n });
      continue;
    }
    bump(statuses, status, n);
    if (running.has(status)) bump(atStep, step_id, n);
    if (completion_reason === 'goal_achieved') goalAchieved += n;
  }
  return {
    statuses: [...statuses].map(([status, n]) => ({ status, n })),
    atStep: [...atStep].map(([step_id, n]) => ({ step_id, n })),
    events,
    goalAchieved,
  };
}

/**
 * The definitions stats are shaped by: the account's workflow's versions, newest first (only
 * `version`, when given). Null when the account has no such workflow; empty when it has no such version.
 */
export async function statsVersions(
  pool: Pool,
  workflowId: string,
  accountId: string,
  version: number | null,
): Promise<{ id: string; definition: unknown }[] | null> {
  const rows = await run<{ id: string | null; definition: unknown }>(pool, VERSIONS, [workflowId, accountId, version]);
  if (rows.length === 0) return null;
  return rows.flatMap((row) => (row.id === null ? [] : [{ id: row.id, definition: row.definition }]));
}

/**
 * Vacuums the deltas table, unless another process is vacuuming it: a fold deletes the rows it folds,
 * and until they are vacuumed every read of the stats walks past them (600,000 folded deltas made a read
 * take 30–66 ms instead of 0.5).
 */
export async function vacuumCounts(pool: Pool): Promise<void> {
  await pool.query('VACUUM (SKIP_LOCKED) workflow_count_deltas');
}

/** Folds up to `limit` counter deltas; 0 when another process is folding or none are left. */
export async function foldCounts(pool: Pool, limit: number): Promise<number> {
  const [row] = await run<{ folded: number }>(pool, FOLD, [limit]);
  return row?.folded ?? 0;
}
