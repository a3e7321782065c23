import { cancelExecutions, retryExecutions } from '../engine/control.ts';
import { RUNNING_STATUSES, type ExecutionStatus } from '../engine/types.ts';
import { countMatching, matchingPage } from '../sql/bulk-executions.ts';
import type { ApiDeps } from './context.ts';

/**
 * Largest page of execution ids a bulk operation reads and then changes at once, in one transaction: a
 * short one, so the workers' commits and a worker's job on one of the page's executions never wait long.
 */
export const BULK_PAGE_SIZE = 200;

/** Which executions of one workflow a bulk operation takes (every given filter must hold). */
export interface BulkFilter {
  status?: ExecutionStatus;
  /** The step the execution is at now (its snapshot's state). */
  stepId?: string;
  /** The id of the workflow version the executions are pinned to. */
  versionId?: string;
  from?: Date;
  to?: Date;
}

/** What a bulk operation did: executions that matched its filter, and how many of those it changed. */
export interface BulkResult {
  matched: number;
  changed: number;
}

/** The two bulk operations: cancel takes running executions, retry FAILED ones. */
export type BulkOperation = 'cancel' | 'retry';

const TAKES: Record<BulkOperation, readonly ExecutionStatus[]> = {
  cancel: RUNNING_STATUSES,
  retry: ['FAILED'],
};

/**
 * Cancels or retries every execution of a workflow that matches `filter`, in keyset pages of at most
 * {@link BULK_PAGE_SIZE} ids (ordered by id, so executions changed meanwhile never shift a page), each
 * page through the engine's own {@link cancelExecutions} / {@link retryExecutions}: one transaction and
 * one round of Redis removals per page, nothing held across pages, every log entry with `userId`. An
 * execution that changed status before its turn (finished, or retried by someone else) is matched but
 * not changed. With `dryRun` it only counts.
 */
export async function runBulkControl(
  deps: ApiDeps,
  operation: BulkOperation,
  target: { accountId: string; workflowId: string; userId: string },
  filter: BulkFilter,
  dryRun: boolean,
): Promise<BulkResult> {
  // A status filter outside what the operation takes matches nothing (cancelling a COMPLETED one is no-op).
  const statuses = TAKES[operation].filter((status) => filter.status === undefined || filter.status === status);
  if (statuses.length === 0) return { matched: 0, changed: 0 };
  const matching = { workflowId: target.workflowId, statuses, ...filter };
  if (dryRun) return { matched: await countMatching(deps.pool, matching), changed: 0 };
  const apply = operation === 'cancel' ? cancelExecutions : retryExecutions;
  let matched = 0;
  let changed = 0;
  let after = '00000000-0000-0000-0000-000000000000';
  for (;;) {
    const rows = await matchingPage(deps.pool, matching, after, BULK_PAGE_SIZE);
    changed += await apply(deps, deps.cache, target.accountId, rows, target.userId);
    matched += rows.length;
    if (rows.length < BULK_PAGE_SIZE) return { matched, changed };
    after = rows[rows.length - 1]!;
  }
}
