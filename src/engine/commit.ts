import { transition } from 'xstate';
import { FINAL_STATES, type Effect, type ExecutionEvent, type FinalState } from '../compiler/compile.ts';
import type { TagChange } from '../actions/run-action.ts';
import type { Prisma } from '../generated/prisma/client.ts';
import { maskPii } from '../observability/mask.ts';
import type { StepWork } from '../queue/step-queue.ts';
import { acquireSlot, releaseSlot } from './admission.ts';
import { commitStatement, type ExecutionUpdate, type LogRow } from './commit-statement.ts';
import type { LoadedExecution } from './load.ts';
import { progressOf, restoreSnapshot, storeSnapshot, type StoredSnapshot } from './snapshot.ts';
import type { EngineDeps, ExecutionStatus, LogEntry } from './types.ts';

/** What one engine step changes: an event for the machine, log entries, and row fields the engine owns. */
export interface Change {
  event?: ExecutionEvent;
  /** Replaces the snapshot without a machine transition (manual retry rewinds a failed execution). */
  rewind?: StoredSnapshot;
  /** Forces a status (admission, manual retry); otherwise the status follows from the effects. */
  status?: ExecutionStatus;
  logs: LogEntry[];
  retryCount?: number;
  /** When the pending timer (retry back-off, rate-limit window) is due; `null` clears it. */
  nextRunAt?: Date | null;
  lastError?: string | null;
  /** Tag added to or removed from the contact, applied to its stored tags in the same commit as the step. */
  tagChange?: TagChange;
  userId?: string | null;
}

/** The outcome of a committed change. */
export interface Committed {
  status: ExecutionStatus;
  version: number;
  finished: FinalState | null;
  reason: string | null;
  work: StepWork[];
}

const FINISH_LOGS: Record<FinalState, string[]> = {
  completed: ['execution_completed'],
  goal_achieved: ['goal_achieved', 'execution_completed'],
  failed: ['execution_failed'],
  cancelled: ['execution_cancelled'],
};

class VersionConflict extends Error {}

/** The execution's trace context, carried by each of its jobs so all its steps join one trace. */
export const traceOf = (row: { traceContext: unknown }) => (row.traceContext ?? undefined) as Record<string, string> | undefined;

const EFFECT_TYPES = new Set<string>(['executeAction', 'evaluateCondition', 'startTimer', 'finishExecution']);

/**
 * Applies a change to an execution: runs the machine transition (pure), then in ONE transaction
 * saves the snapshot with an optimistic version check, the log entries, the contact's tags and the
 * account's concurrency slot. Only after the commit is the next work enqueued. Returns `null` when
 * another process changed the execution first (the caller reloads or gives up).
 */
export async function commitChange(deps: EngineDeps, loaded: LoadedExecution, change: Change): Promise<Committed | null> {
  const { row, workflow } = loaded;
  const now = deps.clock.now();
  let stored = change.rewind ?? (row.snapshot as unknown as StoredSnapshot);
  let effects: Effect[] = [];
  if (change.event) {
    // A finished execution takes no more events (the machine's GOAL and CANCEL would still match).
    if (stored.value in FINAL_STATES) return null;
    const [next, actions] = transition(workflow.machine, restoreSnapshot(workflow, stored), change.event);
    stored = storeSnapshot(next);
    effects = actions.filter((action) => EFFECT_TYPES.has(action.type)) as unknown as Effect[];
  }

  const logs = [...change.logs];
  let status: ExecutionStatus = change.status ?? (row.status as ExecutionStatus);
  let nextRunAt = change.nextRunAt === undefined ? row.nextRunAt : change.nextRunAt;
  let finished: FinalState | null = null;
  let reason: string | null = row.completionReason;
  const work: StepWork[] = [];
  const progress = progressOf(workflow, stored, row.totalSteps);

  for (const effect of effects) {
    switch (effect.type) {
      case 'executeAction':
      case 'evaluateCondition':
        if (status !== 'QUEUED') status = 'ACTIVE';
        nextRunAt = null;
        break;
      case 'startTimer':
        status = 'PAUSED';
        nextRunAt = new Date(now.getTime() + effect.params.delayMs);
        logs.push({ eventType: 'wait_started', status: 'PAUSED', stepId: effect.params.stepId, details: { duration_ms: effect.params.delayMs, resume_at: nextRunAt.toISOString() } });
        break;
      case 'finishExecution': {
        finished = effect.params.state;
        status = FINAL_STATES[finished].status;
        reason = stored.context.reason ?? FINAL_STATES[finished].reason;
        nextRunAt = null;
        for (const eventType of FINISH_LOGS[finished]) logs.push({ eventType, status, details: { reason } });
        break;
      }
    }
  }

  const version = row.version + 1;
  const data: ExecutionUpdate = {
    status,
    snapshot: stored,
    version,
    currentStepIndex: progress.currentStepIndex,
    totalSteps: progress.totalSteps,
    nextRunAt,
    completionReason: reason,
    waiting: false,
    updatedAt: now,
    ...(change.retryCount !== undefined ? { retryCount: change.retryCount } : {}),
    ...(change.lastError !== undefined ? { lastError: change.lastError } : {}),
    ...(finished ? { finishedAt: now } : {}),
  };

  const logRows = toLogRows(row, logs, progress.currentStepIndex, change.userId ?? null, now);
  const wasActive = row.status === 'ACTIVE';
  if (wasActive === (status === 'ACTIVE')) {
    // The common case (a step of a running execution): no concurrency slot changes hands, so the whole
    // commit is one statement, one round trip.
    const committed = await commitStatement(deps.db, row, data, logRows, change.tagChange);
    if (!committed) return null;
  } else {
    try {
      await deps.db.$transaction(async (tx) => {
        if (status === 'ACTIVE' && !(await acquireSlot(tx, row.accountId, row.status !== 'QUEUED'))) {
          // No free slot: the execution waits in line, holding no job, until a slot frees.
          status = 'QUEUED';
          data.status = status;
          data.waiting = true;
        }
        const updated = await tx.execution.updateMany({ where: { id: row.id, version: row.version }, data: data as Prisma.ExecutionUpdateManyMutationInput });
        if (updated.count !== 1) throw new VersionConflict();
        if (wasActive && status !== 'ACTIVE') work.push(...(await releaseSlot(tx, row.accountId)));
        if (change.tagChange) {
          const { op, tag } = change.tagChange;
          await tx.$executeRaw`UPDATE contacts SET tags = CASE WHEN ${op} = 'add' THEN array_append(array_remove(tags, ${tag}), ${tag}) ELSE array_remove(tags, ${tag}) END, updated_at = now() WHERE id = ${row.contactId}::uuid`;
        }
        if (logRows.length > 0) await tx.executionLog.createMany({ data: logRows });
      });
    } catch (error) {
      if (error instanceof VersionConflict) return null;
      throw error;
    }
  }

  if (status === 'ACTIVE' || status === 'PAUSED' || (status === 'QUEUED' && !data.waiting)) {
    const delayMs = nextRunAt ? nextRunAt.getTime() - now.getTime() : 0;
    // Far-future timers stay in Postgres; the sweeper promotes them to Redis shortly before they are due.
    if (delayMs <= deps.config.TIMER_HORIZON_MS) work.unshift({ executionId: row.id, version, delayMs, trace: traceOf(row) });
  }
  await deps.queue.enqueue(work, (error) => deps.logger.warn('enqueue failed; the sweeper will retry', { execution_id: row.id, error: error.message }));
  observe(deps, row, logs, finished, status);
  return { status, version, finished, reason, work };
}

/** The stored form of log entries: masked details, the step index of the step they belong to. */
function toLogRows(row: LoadedExecution['row'], logs: LogEntry[], stepIndex: number, userId: string | null, now: Date): LogRow[] {
  return logs.map((entry) => ({
    executionId: row.id,
    accountId: row.accountId,
    workflowId: row.workflowId,
    contactId: row.contactId,
    eventType: entry.eventType,
    status: entry.status,
    stepIndex: entry.stepIndex ?? (entry.stepId ? stepIndex : null),
    stepId: entry.stepId ?? null,
    durationMs: entry.durationMs ?? null,
    timestamp: entry.timestamp ?? now,
    userId: entry.userId ?? userId,
    details: maskPii(entry.details ?? {}) as Prisma.InputJsonValue,
  }));
}

function observe(deps: EngineDeps, row: LoadedExecution['row'], logs: LogEntry[], finished: FinalState | null, status: ExecutionStatus) {
  for (const entry of logs) {
    deps.metrics.executionEvents.inc({ event_type: entry.eventType });
    deps.logger.info(entry.eventType, {
      execution_id: row.id,
      account_id: row.accountId,
      workflow_id: row.workflowId,
      step_id: entry.stepId ?? undefined,
      status: entry.status,
      duration_ms: entry.durationMs ?? undefined,
      ...entry.details,
    });
  }
  if (finished) deps.metrics.executionsFinished.inc({ status: status.toLowerCase() });
}
