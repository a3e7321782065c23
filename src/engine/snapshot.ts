import { initialTransition } from 'xstate';
import { z } from 'zod';
import type { CompiledWorkflow, ExecutionContext } from '../compiler/compile.ts';
import { FINAL_STATES } from '../compiler/compile.ts';

/** The part of an XState snapshot an execution stores: which state, and the context. */
export const storedSnapshotSchema = z.object({
  value: z.string(),
  context: z.object({
    steps: z.number().int().min(0),
    failedStep: z.string().nullable(),
    reason: z.string().nullable(),
  }),
});
export type StoredSnapshot = z.infer<typeof storedSnapshotSchema>;

/** Restores a machine snapshot from its stored form (validated: stored JSON is a boundary). */
export function restoreSnapshot(workflow: CompiledWorkflow, stored: unknown) {
  const parsed = storedSnapshotSchema.parse(stored);
  return workflow.machine.resolveState({ value: parsed.value, context: parsed.context });
}

/** Stored form of a machine snapshot. */
export function storeSnapshot(snapshot: { value: unknown; context: ExecutionContext }): StoredSnapshot {
  return { value: String(snapshot.value), context: snapshot.context };
}

/**
 * 1-based position of the step a snapshot is at on the path the execution takes: the steps finished
 * before it, plus one. It is the `step_index` of that step's log entries.
 */
export const stepPosition = (stored: StoredSnapshot): number => stored.context.steps + 1;

/**
 * Whether an execution has started its first step, i.e. has been admitted (taken a slot) at least once.
 * Only one never admitted is QUEUED with `current_step_index` 0: admission moves the index to at least
 * 1 (prisma/functions/flowmachine_commit.sql, flowmachine_admit_waiting.sql).
 */
export const hasStarted = (row: { status: string; currentStepIndex: number }): boolean =>
  row.status !== 'QUEUED' || row.currentStepIndex > 0;

/**
 * `current_step_index` of a snapshot: the steps done once completed; otherwise 0 while the execution
 * has not `started` (see {@link hasStarted}), else the position of the step it is at ({@link stepPosition}),
 * which for a failed, cancelled or goal-completed execution is the step it stopped at.
 */
export function stepIndexOf(stored: StoredSnapshot, started: boolean): number {
  if (stored.value === 'completed') return stored.context.steps;
  return started ? stepPosition(stored) : 0;
}

/**
 * `current_step_index` ({@link stepIndexOf}) and `total_steps` of a snapshot. The total is the steps
 * done plus the longest path still ahead; an execution that ends early (cancelled, failed, goal) keeps
 * the total it had.
 */
export function progressOf(workflow: CompiledWorkflow, stored: StoredSnapshot, previousTotal: number, started = true) {
  const done = stored.context.steps;
  const currentStepIndex = stepIndexOf(stored, started);
  if (stored.value === 'completed') return { currentStepIndex, totalSteps: done };
  if (stored.value in FINAL_STATES) return { currentStepIndex, totalSteps: Math.max(done, previousTotal) };
  return { currentStepIndex, totalSteps: done + (workflow.steps.get(stored.value)?.remaining ?? 0) };
}

/** A new execution's initial snapshot (as stored) and total steps. */
export function initialOf(workflow: CompiledWorkflow): { snapshot: StoredSnapshot; totalSteps: number } {
  const snapshot = storeSnapshot(initialTransition(workflow.machine)[0]);
  return { snapshot, totalSteps: progressOf(workflow, snapshot, workflow.totalSteps).totalSteps };
}
