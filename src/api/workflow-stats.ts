import { EXECUTION_STATUSES, type ExecutionStatus } from '../engine/types.ts';
import type { StatsRows } from '../sql/workflow-stats.ts';

export { queryWorkflowStats, statsVersions, type StatsRows } from '../sql/workflow-stats.ts';

/**
 * `GET /workflows/{id}/stats` (CONTRACT.md "Insight and operations"): where a workflow's executions
 * are and what its steps did. All counting is in {@link queryWorkflowStats}, which reads the counters
 * that triggers keep with every commit (migration workflow_counts), so the answer costs the same at a
 * million executions as at ten.
 */

/** One step of a definition as the stats list it: its id and type. */
export interface StepRef {
  id: string;
  type: string;
}

/** A step as definitions nest it: any step may carry `branches` of further steps. */
interface NestedStep {
  id: string;
  type: string;
  branches?: Record<string, NestedStep[]>;
}

/** Every step of a definition in reading order: depth-first, each branch's steps after their step. */
export function flattenSteps(steps: readonly NestedStep[]): StepRef[] {
  return steps.flatMap((step) => [
    { id: step.id, type: step.type },
    ...Object.values(step.branches ?? {}).flatMap((branch) => flattenSteps(branch)),
  ]);
}

/** Log event types that mean an execution reached a step, finished it, skipped it or failed at it. */
const ENTERED = ['action_started', 'wait_started', 'condition_evaluated', 'split_assigned', 'branch_evaluated'];
const COMPLETED = [
  'action_completed',
  'wait_completed',
  'wait_timed_out',
  'event_received',
  'condition_evaluated',
  'split_assigned',
  'branch_evaluated',
];
const SKIPPED = ['action_skipped', 'skipped_non_retryable_error', 'skipped_opted_out'];
const FAILED = ['max_retries_exhausted'];

/** One step of the answer. */
export interface StepStats {
  step_id: string;
  type: string;
  at_step: number;
  entered: number;
  completed: number;
  skipped: number;
  failed: number;
}

/** The answer of `GET /workflows/{id}/stats`. */
export interface WorkflowStats {
  executions: Record<ExecutionStatus, number>;
  steps: StepStats[];
  goal: { achieved: number; conversion_rate: number };
}

/**
 * Shapes the rows into the answer: every status (0 when none), one entry per step of `steps` in that
 * order. Pure. A step counted in `rows` but absent from `steps` (possible only across versions) is
 * left out, since the answer lists the steps of the definitions given.
 */
export function summarizeStats(steps: readonly StepRef[], rows: StatsRows): WorkflowStats {
  const executions = Object.fromEntries(EXECUTION_STATUSES.map((status) => [status, 0])) as Record<
    ExecutionStatus,
    number
  >;
  for (const { status, n } of rows.statuses) if (status in executions) executions[status as ExecutionStatus] = n;
  const atStep = new Map(rows.atStep.map((row) => [row.step_id, row.n]));
  // A step logs one event type of each group (an action `action_started`, a wait `wait_started`, …; a
  // skip is either kind, never both), so adding a group's counts counts each execution once.
  const count = (stepId: string, types: string[]) =>
    rows.events.filter((e) => e.step_id === stepId && types.includes(e.event_type)).reduce((sum, e) => sum + e.n, 0);
  const total = Object.values(executions).reduce((sum, n) => sum + n, 0);
  return {
    executions,
    steps: steps.map((step) => ({
      step_id: step.id,
      type: step.type,
      at_step: atStep.get(step.id) ?? 0,
      entered: count(step.id, ENTERED),
      completed: count(step.id, COMPLETED),
      skipped: count(step.id, SKIPPED),
      failed: count(step.id, FAILED),
    })),
    goal: { achieved: rows.goalAchieved, conversion_rate: total === 0 ? 0 : rows.goalAchieved / total },
  };
}
