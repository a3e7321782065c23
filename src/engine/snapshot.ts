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
 * `current_step_index` and `total_steps` of a snapshot: steps done, and steps done plus the longest
 * path still ahead. An execution that ends early (cancelled, failed, goal) keeps the total it had.
 */
export function progressOf(workflow: CompiledWorkflow, stored: StoredSnapshot, previousTotal: number) {
  const done = stored.context.steps;
  if (stored.value === 'completed') return { currentStepIndex: done, totalSteps: done };
  if (stored.value in FINAL_STATES) return { currentStepIndex: done, totalSteps: Math.max(done, previousTotal) };
  return { currentStepIndex: done, totalSteps: done + (workflow.steps.get(stored.value)?.remaining ?? 0) };
}
