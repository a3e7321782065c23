import type { ExecutionEvent } from '../compiler/compile.ts';
import { evaluateCondition } from '../definition/condition.ts';
import { changeContext, commitChange, commitDecisions, type Committed, type Decided } from './commit.ts';
import { type Change, decideChange, dueEffect, snapshotOf } from './decide-step.ts';
import { compiledVersion, loadExecution, type LoadedExecution } from './load.ts';
import { type StoredSnapshot, stepPosition } from './snapshot.ts';
import { RUNNING_STATUSES, type EngineDeps } from './types.ts';
import type { WorkflowCache } from './workflow-cache.ts';

/** Result of an operator command on one execution. */
export type ControlResult =
  | { kind: 'ok'; committed: Committed }
  | { kind: 'not_found' }
  | { kind: 'conflict'; status: string };

const isRunning = (status: string) => (RUNNING_STATUSES as string[]).includes(status);

/** What a command changes in an execution, built from its current row, or why it changes nothing. */
export type Build = (loaded: LoadedExecution) => Change | { refuse: string };

/**
 * The execution as its change is decided: as loaded, or (a move) with the machine of the version it
 * moves to, which then decides from the snapshot as it is.
 */
export type DecideOn = (loaded: LoadedExecution) => LoadedExecution;
const asLoaded: DecideOn = (loaded) => loaded;

/**
 * Applies a change built from the current row, retrying on version conflicts (a worker may commit
 * a step at the same moment), then removes the job the old version left in Redis.
 */
async function applyWithRetry(
  deps: EngineDeps,
  cache: WorkflowCache,
  executionId: string,
  accountId: string | undefined,
  build: Build,
  decideOn: DecideOn = asLoaded,
): Promise<ControlResult> {
  for (let attempt = 0; attempt < 20; attempt += 1) {
    const loaded = await loadExecution(deps, cache, executionId, accountId);
    if (!loaded) return { kind: 'not_found' };
    const change = build(loaded);
    if ('refuse' in change) return { kind: 'conflict', status: change.refuse };
    const committed = await commitChange(deps, decideOn(loaded), change);
    if (committed) {
      await deps.queue.remove(executionId, loaded.row.version);
      return { kind: 'ok', committed };
    }
  }
  throw new Error(`execution ${executionId} kept changing; giving up`);
}

/**
 * Applies `build` to a batch of the account's executions at once: one load, ONE transaction for all their
 * commits (`commitMany`, not the workers' group commit), then the removal of the jobs their old versions
 * left in Redis, all sent together. An execution another process changed meanwhile, or every one of a
 * batch that failed as a whole (a deadlock), goes again on its own through {@link applyWithRetry}.
 * Returns how many executions it changed; refused ones are left as they are.
 */
export async function applyToBatch(
  deps: EngineDeps,
  cache: WorkflowCache,
  accountId: string,
  executionIds: readonly string[],
  build: Build,
  decideOn: DecideOn = asLoaded,
): Promise<number> {
  const batch: Decided[] = [];
  for (const row of await deps.store.loadMany(executionIds, accountId)) {
    const loaded = { row, workflow: await compiledVersion(deps, cache, row.workflowVersionId) };
    const change = build(loaded);
    if ('refuse' in change) continue;
    const context = changeContext(deps, decideOn(loaded));
    const decision = decideChange(context, change);
    if (decision) batch.push({ context, decision });
  }
  const committed = await commitDecisions(deps, batch).catch((error: Error) => {
    deps.logger.warn('bulk batch failed; its executions go again one by one', {
      size: batch.length,
      error: error.message,
    });
    return batch.map(() => null);
  });
  const done = batch.filter((_, i) => committed[i]).map(({ context }) => context.loaded.row);
  await Promise.all(done.map((row) => deps.queue.remove(row.id, row.version)));
  let changed = done.length;
  for (const { context } of batch.filter((_, i) => !committed[i])) {
    const result = await applyWithRetry(deps, cache, context.loaded.row.id, accountId, build, decideOn);
    if (result.kind === 'ok') changed += 1;
  }
  return changed;
}

/** The change of a cancel: a running execution ends CANCELLED, logged with `userId`; finished ones are refused. */
const cancelChange =
  (userId: string | null): Build =>
  ({ row }) =>
    isRunning(row.status)
      ? { event: { type: 'CANCEL', reason: 'cancelled' }, logs: [], userId }
      : { refuse: row.status };

/** Cancels a running execution; the log records who did it. Finished executions are refused. */
export function cancelExecution(
  deps: EngineDeps,
  cache: WorkflowCache,
  accountId: string,
  executionId: string,
  userId: string | null,
) {
  return applyWithRetry(deps, cache, executionId, accountId, cancelChange(userId));
}

/** Cancels a batch of executions as {@link cancelExecution} cancels each, in one transaction; returns how many. */
export function cancelExecutions(
  deps: EngineDeps,
  cache: WorkflowCache,
  accountId: string,
  executionIds: readonly string[],
  userId: string | null,
) {
  return applyToBatch(deps, cache, accountId, executionIds, cancelChange(userId));
}

/** Sends a machine event (goal, contact deletion) to a running execution; finished ones are left alone. */
export function sendEvent(deps: EngineDeps, cache: WorkflowCache, executionId: string, event: ExecutionEvent) {
  return applyWithRetry(deps, cache, executionId, undefined, ({ row }) =>
    isRunning(row.status) ? { event, logs: [] } : { refuse: row.status },
  );
}

/** The change of a retry: a FAILED execution goes back to the step that failed, QUEUED, `retry_count` 0. */
const retryChange =
  (userId: string | null): Build =>
  ({ row }) => {
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
  };

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
  return applyWithRetry(deps, cache, executionId, accountId, retryChange(userId));
}

/** Retries a batch of executions as {@link retryExecution} retries each, in one transaction; returns how many. */
export function retryExecutions(
  deps: EngineDeps,
  cache: WorkflowCache,
  accountId: string,
  executionIds: readonly string[],
  userId: string | null,
) {
  return applyToBatch(deps, cache, accountId, executionIds, retryChange(userId));
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

/** A contact event as the engine hands it to the executions it concerns. */
export interface ContactEvent {
  id: string;
  name: string;
  properties: Record<string, unknown>;
  /** When it arrived: only waits that started before count it. */
  at: Date;
}

/**
 * Resumes an execution waiting for `event` (`wait_for_event`): when it still waits for that name (PAUSED
 * there since before the event arrived) and the step's `where` holds for the contact and the event's
 * properties, it takes the `received` branch (`event_received`). An event and a due timeout that race
 * take exactly one branch: each commits against the version it read, and the loser finds the
 * execution moved on and is refused.
 */
export function resumeWait(deps: EngineDeps, cache: WorkflowCache, executionId: string, event: ContactEvent) {
  return applyWithRetry(deps, cache, executionId, undefined, (loaded) => resumeWaitChange(loaded, event));
}

/**
 * The change an event makes to an execution waiting for it (pure; see {@link resumeWait}), or why it
 * makes none. The dry run (simulate.ts) decides with it too.
 */
export function resumeWaitChange({ row, workflow }: LoadedExecution, event: ContactEvent): Change | { refuse: string } {
  const effect = dueEffect(workflow, snapshotOf(row));
  if (row.status !== 'PAUSED' || effect?.type !== 'awaitEvent' || effect.params.event !== event.name)
    return { refuse: row.status };
  if (row.updatedAt.getTime() > event.at.getTime()) return { refuse: 'waiting since after the event' };
  const step = workflow.steps.get(effect.params.stepId)!.step;
  const where = step.type === 'wait_for_event' ? step.config.where : undefined;
  const contact = { ...row.contact, attributes: (row.contact.attributes ?? {}) as Record<string, unknown> };
  if (where && !evaluateCondition(where, contact, event.properties)) return { refuse: 'where does not hold' };
  return {
    event: { type: 'EVENT_RECEIVED', event: event.name },
    logs: [
      {
        eventType: 'event_received',
        status: 'SUCCESS',
        stepId: step.id,
        // The wait's own position: without it the entry would take the step the event moves to.
        stepIndex: stepPosition(snapshotOf(row)),
        details: { event: event.name, event_id: event.id },
      },
    ],
  };
}

/** Ends a running execution because of its workflow's exit event: CANCELLED, `exit_event`, `exited` logged. */
export function exitExecution(deps: EngineDeps, cache: WorkflowCache, executionId: string, event: ContactEvent) {
  return applyWithRetry(deps, cache, executionId, undefined, (loaded) => exitChange(loaded, event));
}

/** The change a workflow's exit event makes to a running execution (pure; see {@link exitExecution}). */
export function exitChange({ row }: LoadedExecution, event: ContactEvent): Change | { refuse: string } {
  return isRunning(row.status)
    ? {
        event: { type: 'CANCEL', reason: 'exit_event' },
        logs: [{ eventType: 'exited', status: 'CANCELLED', details: { event: event.name, event_id: event.id } }],
      }
    : { refuse: row.status };
}
