import type { ExecutionStore } from '../store/execution-store.ts';

/** Deltas per fold (one transaction each), folds per call, and the folded deltas after which a call vacuums. */
export interface FoldLimits {
  batch: number;
  batches: number;
  vacuumAfter: number;
}
const LIMITS: FoldLimits = { batch: 10_000, batches: 20, vacuumAfter: 1_000 };

/**
 * Folds the stats counters' deltas into their totals, a batch per transaction, until fewer than a
 * batch were left or another process is folding, and at most `limits.batches` batches: what a read of
 * the stats adds up stays a few thousand rows however fast executions change. Once it folded
 * `limits.vacuumAfter` or more, it vacuums the table, so reads do not walk past the rows it deleted
 * (autovacuum comes a minute later at best). Returns the deltas folded.
 */
export async function foldCounts(store: ExecutionStore, limits: FoldLimits = LIMITS): Promise<number> {
  let total = 0;
  for (let i = 0; i < limits.batches; i++) {
    const folded = await store.foldCounts(limits.batch);
    total += folded;
    if (folded < limits.batch) break;
  }
  if (total >= limits.vacuumAfter) await store.vacuumCounts();
  return total;
}
