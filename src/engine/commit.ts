import { transition } from 'xstate';
import { dateAfter } from '../clock.ts';
import { FINAL_STATES, type Effect, type ExecutionEvent, type FinalState } from '../compiler/compile.ts';
import type { TagChange } from '../actions/run-action.ts';
import type { Step } from '../definition/schema.ts';
import { inRequestOrder } from '../db/batch.ts';
import type { Pool } from '../db/client.ts';
import { run } from '../db/sql.ts';
import { PREMASKED } from '../observability/logger.ts';
import { maskPii, maskText } from '../observability/mask.ts';
import type { StepWork } from './work.ts';
import { contactOf, type ExecutionRow, type LoadedExecution } from './load.ts';
import {
  hasStarted,
  progressOf,
  restoreSnapshot,
  stepPosition,
  storeSnapshot,
  type StoredSnapshot,
} from './snapshot.ts';
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
  /** The change fails the execution with an error the account's admin is told about (see notify.ts). */
  notify?: boolean;
}

/** The outcome of a committed change. */
export interface Committed {
  status: ExecutionStatus;
  version: number;
  finished: FinalState | null;
  reason: string | null;
  work: StepWork[];
  /** Not written yet: handed to the next step through {@link Inline}, to be committed with it. */
  staged?: boolean;
}

/**
 * Steps applied in memory and not yet written, to commit together with the next one: what the
 * commit must write besides the next step's own change.
 */
export interface Pending {
  /** Row fields set by the staged steps (the next step's own fields override them). */
  set: Record<string, unknown>;
  logRows: LogRow[];
  tagChange?: TagChange;
}

const FINISH_LOGS: Record<FinalState, string[]> = {
  completed: ['execution_completed'],
  goal_achieved: ['goal_achieved', 'execution_completed'],
  failed: ['execution_failed'],
  cancelled: ['execution_cancelled'],
};

interface CommitResult {
  committed: boolean;
  new_status: ExecutionStatus;
  new_waiting: boolean;
  admitted: StepWork[] | null;
  contact: Parameters<typeof contactOf>[0] | null;
}

/** One call commits a step: see prisma/functions/flowmachine_commit.sql. */
const COMMIT = {
  name: 'commit-step',
  text: 'SELECT * FROM flowmachine_commit($1::uuid, $2::integer, $3::jsonb, $4::jsonb, $5::text, $6::text, $7::text)',
};
/**
 * Several executions' steps committed in one statement (see db/batch.ts), in one order for every batch:
 * the commits that give a slot back last, by shard, so that two batches lock the account's shards in
 * the same order.
 */
const COMMIT_BATCH = {
  name: 'commit-steps',
  text: `SELECT b.i::integer AS i, c.* FROM (
    SELECT a.x, a.i FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS a(x, i) LEFT JOIN executions e ON e.id = (a.x->>'id')::uuid
    ORDER BY a.x->>'slot' = 'release', e.slot_shard, a.i) AS b
  CROSS JOIN LATERAL flowmachine_commit((b.x->>'id')::uuid, (b.x->>'version')::integer, b.x->'set', b.x->'logs', b.x->>'tagOp', b.x->>'tag', b.x->>'slot') AS c`,
};

/** One execution's commit, as `flowmachine_commit` takes it. */
interface CommitRequest {
  id: string;
  version: number;
  set: Record<string, unknown>;
  logs: LogRow[];
  tagOp: string | null;
  tag: string | null;
  slot: 'keep' | 'release' | 'acquire' | 'acquire_in_line';
}

async function sendCommits(pool: Pool, requests: CommitRequest[]): Promise<(CommitResult | undefined)[]> {
  if (requests.length === 1) {
    const { id, version, set, logs, tagOp, tag, slot } = requests[0]!;
    return run<CommitResult>(pool, COMMIT, [id, version, JSON.stringify(set), JSON.stringify(logs), tagOp, tag, slot]);
  }
  return inRequestOrder(
    await run<CommitResult & { i: number }>(pool, COMMIT_BATCH, [JSON.stringify(requests)]),
    requests.length,
  );
}

/** The execution's trace context, carried by each of its jobs so all its steps join one trace. */
export const traceOf = (row: { traceContext: unknown }) =>
  (row.traceContext ?? undefined) as Record<string, string> | undefined;

const EFFECT_TYPES = new Set<string>(['executeAction', 'evaluateCondition', 'startTimer', 'finishExecution']);

/**
 * Where a worker takes the execution's next step when it is due at once: the worker runs it in the
 * same job (saving a queue round trip) instead of enqueueing it.
 */
export interface Inline {
  /**
   * The next step's job, with the execution as just committed (its contact read back by the commit),
   * or as staged in memory, with what is still to be written in `pending`.
   */
  next?: StepWork & { loaded: LoadedExecution; pending?: Pending };
}

/**
 * Steps that only read or change the execution and its contact (a condition, a tag) are staged instead
 * of committed when they follow a step of an admitted execution at once: their change is written by the
 * next commit, in the same call. A provider call never runs with anything staged but a fired timer, so
 * what it depends on (the slot taken when the execution was admitted or its timer resumed, the steps
 * before it) is always committed first; at most one tag change is staged. A worker dying before the next
 * commit loses only what is staged: the job given out again redoes it from the committed version, and a
 * provider call it repeats carries the same idempotency key.
 */
function stagesBefore(change: Change, next: Step | undefined, tagChange: TagChange | undefined): boolean {
  return (
    change.event?.type === 'TIMER_FIRED' ||
    next?.type === 'condition' ||
    ((next?.type === 'add_tag' || next?.type === 'remove_tag') && !tagChange)
  );
}

/** The contact's tags after a tag change, as `flowmachine_commit` applies it. */
function withTag(contact: ExecutionRow['contact'], { op, tag }: TagChange): ExecutionRow['contact'] {
  const others = contact.tags.filter((t) => t !== tag);
  return { ...contact, tags: op === 'add' ? [...others, tag] : others };
}

/**
 * Applies a change to an execution: runs the machine transition (pure), then in ONE Postgres call
 * saves the snapshot with an optimistic version check, the log entries, the contact's tags and the
 * account's concurrency slot. Only after the commit is the next work enqueued (or handed to `inline`).
 * Returns `null` when another process changed the execution first (the caller reloads or gives up).
 */
export async function commitChange(
  deps: EngineDeps,
  loaded: LoadedExecution,
  change: Change,
  inline?: Inline,
  pending?: Pending,
): Promise<Committed | null> {
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
  const progress = progressOf(workflow, stored, row.totalSteps, hasStarted(row));

  for (const effect of effects) {
    switch (effect.type) {
      case 'executeAction':
      case 'evaluateCondition':
        if (status !== 'QUEUED') status = 'ACTIVE';
        nextRunAt = null;
        break;
      case 'startTimer':
        status = 'PAUSED';
        nextRunAt = dateAfter(now, effect.params.delayMs);
        logs.push({
          eventType: 'wait_started',
          status: 'PAUSED',
          stepId: effect.params.stepId,
          details: { duration_ms: effect.params.delayMs, resume_at: nextRunAt.toISOString() },
        });
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
  const set = {
    ...pending?.set,
    status,
    snapshot: stored,
    currentStepIndex: progress.currentStepIndex,
    totalSteps: progress.totalSteps,
    nextRunAt,
    completionReason: reason,
    updatedAt: now,
    ...(change.retryCount !== undefined ? { retryCount: change.retryCount } : {}),
    ...(change.lastError !== undefined ? { lastError: change.lastError } : {}),
    ...(finished ? { finishedAt: now } : {}),
    ...(finished === 'failed' && change.notify && row.account.errorNotification ? { notifyPending: true } : {}),
  };
  const logRows = [
    ...(pending?.logRows ?? []),
    ...toLogRows(row, logs, stepPosition(stored), change.userId ?? null, now),
  ];
  const tagChange = change.tagChange ?? pending?.tagChange;
  const wasActive = row.status === 'ACTIVE';
  if (
    inline &&
    wasActive &&
    status === 'ACTIVE' &&
    nextRunAt === null &&
    !change.status &&
    stagesBefore(change, workflow.steps.get(stored.value)?.step, tagChange)
  ) {
    const contact = change.tagChange ? withTag(row.contact, change.tagChange) : row.contact;
    const stagedRow = { ...row, ...set, snapshot: stored as unknown as ExecutionRow['snapshot'], contact };
    inline.next = {
      executionId: row.id,
      version: row.version,
      trace: traceOf(row),
      loaded: { workflow, row: stagedRow },
      pending: { set, logRows, tagChange },
    };
    return { status, version: row.version, finished: null, reason, work, staged: true };
  }
  const slot =
    wasActive === (status === 'ACTIVE')
      ? 'keep'
      : wasActive
        ? 'release'
        : row.status === 'QUEUED'
          ? 'acquire'
          : 'acquire_in_line';
  const result = await deps.batchers.of('commit', sendCommits).submit({
    id: row.id,
    version: row.version,
    set,
    logs: logRows,
    tagOp: tagChange?.op ?? null,
    tag: tagChange?.tag ?? null,
    slot,
  });
  if (!result?.committed) return null;
  // With no free slot the execution waits in line (QUEUED, waiting), holding no job, until a slot frees.
  status = result.new_status;
  const waiting = result.new_waiting;
  if (result.admitted) work.push(...result.admitted);

  if (status === 'ACTIVE' || status === 'PAUSED' || (status === 'QUEUED' && !waiting)) {
    const delayMs = nextRunAt ? nextRunAt.getTime() - now.getTime() : 0;
    // Far-future timers stay in Postgres; the sweeper promotes them to Redis shortly before they are due.
    const next = { executionId: row.id, version, delayMs, trace: traceOf(row) };
    if (inline && status === 'ACTIVE' && delayMs <= 0 && result.contact) {
      const committedRow = {
        ...row,
        ...set,
        status,
        snapshot: stored as unknown as ExecutionRow['snapshot'],
        version,
        waiting,
        contact: contactOf(result.contact),
      };
      inline.next = { ...next, loaded: { workflow, row: committedRow } };
    } else if (delayMs <= deps.config.TIMER_HORIZON_MS) work.unshift(next);
  }
  await deps.queue.enqueue(work, (error) =>
    deps.logger.warn('enqueue failed; the sweeper will retry', { execution_id: row.id, error: error.message }),
  );
  observe(deps, row, logRows, finished, status);
  return { status, version, finished, reason, work };
}

type LogRow = ReturnType<typeof toLogRows>[number];

/**
 * The stored form of log entries (the columns of execution_logs): masked details, and the 1-based
 * position of their step. An entry that names a step but no index (`wait_started`, `manual_retry`) is of
 * the step the new snapshot is at, `stepIndex`.
 */
function toLogRows(row: LoadedExecution['row'], logs: LogEntry[], stepIndex: number, userId: string | null, now: Date) {
  return logs.map((entry) => ({
    account_id: row.accountId,
    workflow_id: row.workflowId,
    contact_id: row.contactId,
    event_type: entry.eventType,
    status: entry.status,
    step_index: entry.stepIndex ?? (entry.stepId ? stepIndex : null),
    step_id: entry.stepId ?? null,
    duration_ms: entry.durationMs ?? null,
    timestamp: (entry.timestamp ?? now).toISOString(),
    user_id: entry.userId ?? userId,
    details: maskPii(entry.details ?? {}),
  }));
}

/** Metrics and one log line per log entry, with the fields as stored (masked once, for both). */
function observe(
  deps: EngineDeps,
  row: LoadedExecution['row'],
  logRows: LogRow[],
  finished: FinalState | null,
  status: ExecutionStatus,
) {
  for (const entry of logRows) {
    deps.metrics.executionEvents.inc({ event_type: entry.event_type });
    deps.logger.info(entry.event_type, {
      [PREMASKED]: true,
      execution_id: row.id,
      account_id: row.accountId,
      workflow_id: row.workflowId,
      step_id: entry.step_id ? maskText(entry.step_id) : undefined,
      status: entry.status,
      duration_ms: entry.duration_ms ?? undefined,
      ...entry.details,
    });
  }
  if (finished) deps.metrics.executionsFinished.inc({ status: status.toLowerCase() });
}
