import type { ExecutionEvent } from '../compiler/compile.ts';
import { commitChange, type Committed } from './commit.ts';
import type { Change } from './decide-step.ts';
import { loadExecution, type LoadedExecution } from './load.ts';
import type { StoredSnapshot } from './snapshot.ts';
import { RUNNING_STATUSES, type EngineDeps } from './types.ts';
import type { WorkflowCache } from './workflow-cache.ts';

/** Result of an operator command on one execution. */
export type ControlResult =
  | { kind: 'ok'; committed: Committed }
  | { kind: 'not_found' }
  | { kind: 'conflict'; status: string };

const isRunning = (status: string) => (RUNNING_STATUSES as string[]).includes(status);

/**
 * Applies a change built from the current row, retrying on version conflicts (a worker may commit
 * a step at the same moment), then removes the job the old version left in Redis.
 */
async function applyWithRetry(
  deps: EngineDeps,
  cache: WorkflowCache,
  executionId: string,
  accountId: string | undefined,
  build: (loaded: LoadedExecution) => Change | { refuse: string },
): Promise<ControlResult> {
  for (let attempt = 0; attempt < 20; attempt += 1) {
    const loaded = await loadExecution(deps, cache, executionId, accountId);
    if (!loaded) return { kind: 'not_found' };
    const change = build(loaded);
    if ('refuse' in change) return { kind: 'conflict', status: change.refuse };
    const committed = await commitChange(deps, loaded, change);
    if (committed) {
      await deps.queue.remove(executionId, loaded.row.version);
      return { kind: 'ok', committed };
    }
  }
  throw new Error(`execution ${executionId} kept changing; giving up`);
}

/** Cancels a running execution; the log records who did it. Finished executions are refused. */
export function cancelExecution(
  deps: EngineDeps,
  cache: WorkflowCache,
  accountId: string,
  executionId: string,
  userId: string | null,
) {
  return applyWithRetry(deps, cache, executionId, accountId, ({ row }) =>
    isRunning(row.status)
      ? { event: { type: 'CANCEL', reason: 'cancelled' }, logs: [], userId }
      : { refuse: row.status },
  );
}

/** Sends a machine event (goal, contact deletion) to a running execution; finished ones are left alone. */
export function sendEvent(deps: EngineDeps, cache: WorkflowCache, executionId: string, event: ExecutionEvent) {
  return applyWithRetry(deps, cache, executionId, undefined, ({ row }) =>
    isRunning(row.status) ? { event, logs: [] } : { refuse: row.status },
  );
}

/**
 * Re-runs a FAILED execution from the step that failed: back to QUEUED with `retry_count` 0.
 * Any other status is refused.
 */
export function retryExecution(
  deps: EngineDeps,
  cache: WorkflowCache,
  accountId: string,
  executionId: string,
  userId: string | null,
) {
  return applyWithRetry(deps, cache, executionId, accountId, ({ row }) => {
    const stored = row.snapshot as unknown as StoredSnapshot;
    if (row.status !== 'FAILED' || !stored.context.failedStep) return { refuse: row.status };
    return {
      rewind: { value: stored.context.failedStep, context: { ...stored.context, failedStep: null, reason: null } },
      status: 'QUEUED',
      retryCount: 0,
      nextRunAt: null,
      lastError: null,
      userId,
      logs: [
        {
          eventType: 'manual_retry',
          status: 'QUEUED',
          stepId: stored.context.failedStep,
          details: { previous_retry_count: row.retryCount },
        },
      ],
    };
  });
}

/** Completes every running execution of the contact whose workflow has `eventName` as its goal. */
export async function achieveGoal(
  deps: EngineDeps,
  cache: WorkflowCache,
  accountId: string,
  contactId: string,
  eventName: string,
): Promise<string[]> {
  const executions = await deps.store.runningOfContact(contactId, { accountId, goalEvent: eventName });
  const completed: string[] = [];
  for (const id of executions) {
    const result = await sendEvent(deps, cache, id, { type: 'GOAL' });
    if (result.kind === 'ok') completed.push(id);
  }
  return completed;
}

/** Soft-deletes a contact and cancels its running executions with reason `contact_deleted` (no error notification). */
export async function deleteContact(
  deps: EngineDeps,
  cache: WorkflowCache,
  accountId: string,
  contactId: string,
): Promise<boolean> {
  if (!(await deps.store.deleteContact(contactId, accountId, deps.clock.now()))) return false;
  for (const id of await deps.store.runningOfContact(contactId))
    await sendEvent(deps, cache, id, { type: 'CANCEL', reason: 'contact_deleted' });
  return true;
}
