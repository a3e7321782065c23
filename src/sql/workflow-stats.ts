import type { Pool } from '../db/client.ts';
import { RUNNING_STATUSES } from '../vocabulary.ts';

/** What {@link queryWorkflowStats} reads, before it is shaped into the answer. */
export interface StatsRows {
  /** Executions by status. */
  statuses: { status: string; n: number }[];
  /** Running executions by the state (step) their snapshot is in. */
  atStep: { step_id: string; n: number }[];
  /** Distinct executions per step and log event type. */
  events: { step_id: string; event_type: string; n: number }[];
  /** Executions completed by their goal. */
  goalAchieved: number;
}

// `$1` is the workflow; `$2` a version's id or NULL for all versions.
const EXECUTIONS_OF = `workflow_id = $1 AND ($2::uuid IS NULL OR workflow_version_id = $2::uuid)`;

/**
 * Counts a workflow's executions (one version's, with `versionId`) in four aggregates. `at_step` is
 * read from the stored snapshot's state (`snapshot->>'value'`), which is the step an execution is
 * being run at or waits on; log counts are distinct executions, so retries of a step count once.
 */
export async function queryWorkflowStats(pool: Pool, workflowId: string, versionId: string | null): Promise<StatsRows> {
  const values = [workflowId, versionId];
  const [statuses, atStep, events, goal] = await Promise.all([
    pool.query<{ status: string; n: number }>(
      `SELECT status, count(*)::int AS n FROM executions WHERE ${EXECUTIONS_OF} GROUP BY status`,
      values,
    ),
    pool.query<{ step_id: string; n: number }>(
      `SELECT snapshot->>'value' AS step_id, count(*)::int AS n FROM executions
       WHERE ${EXECUTIONS_OF} AND status = ANY($3::text[]) GROUP BY 1`,
      [...values, RUNNING_STATUSES],
    ),
    pool.query<{ step_id: string; event_type: string; n: number }>(
      `SELECT l.step_id, l.event_type, count(DISTINCT l.execution_id)::int AS n
       FROM execution_logs l JOIN executions e ON e.id = l.execution_id
       WHERE l.workflow_id = $1 AND e.workflow_id = $1 AND ($2::uuid IS NULL OR e.workflow_version_id = $2::uuid)
         AND l.step_id IS NOT NULL
       GROUP BY l.step_id, l.event_type`,
      values,
    ),
    pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM executions WHERE ${EXECUTIONS_OF} AND completion_reason = 'goal_achieved'`,
      values,
    ),
  ]);
  return { statuses: statuses.rows, atStep: atStep.rows, events: events.rows, goalAchieved: goal.rows[0]?.n ?? 0 };
}
