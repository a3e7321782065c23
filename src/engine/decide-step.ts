import { transition } from 'xstate';
import type { ActionResult, TagChange } from '../actions/action.ts';
import { dateAfter } from '../clock.ts';
import {
  CASE_EVENT,
  type Effect,
  type ExecutionEvent,
  FINAL_STATES,
  type FinalState,
  VARIANT_EVENT,
} from '../compiler/compile.ts';
import { evaluateCondition } from '../definition/condition.ts';
import { DEFAULT_BRANCH } from '../definition/schema.ts';
import { assignVariant } from '../definition/split.ts';
import { nextLocalTime, resolveZone } from '../definition/local-time.ts';
import { windowOpenAt } from '../definition/send-window.ts';
import { maskPii, maskText } from '../observability/mask.ts';
import type { CommitResult, ExecutionRow, LogRow, SlotOp } from '../store/execution-store.ts';
import { rateLimitDelayMs, retryDelayMs } from './backoff.ts';
import {
  hasStarted,
  progressOf,
  restoreSnapshot,
  type StoredSnapshot,
  stepPosition,
  storeSnapshot,
} from './snapshot.ts';
import type { ExecutionStatus, LoadedExecution, LogEntry, LogEventType } from './types.ts';
import type { StepJob, StepWork } from './work.ts';

/**
 * The engine's decisions, as pure functions: what a job may do ({@link gateJob}), what the effect it ran
 * changes ({@link decideStep}, {@link decideChange}) and what comes after the commit ({@link followUp}).
 * Nothing here reads a clock, a database or a queue: `now` and everything loaded are arguments, and the
 * answer is data the engine writes (store.commit) and acts on (enqueue, continue in the job).
 */

/** Settings the decisions follow (from the config). */
export interface Policy {
  /** Longest `Retry-After` honoured, in seconds. */
  maxRetryAfterSeconds: number;
  /** Longest retry back-off, in seconds. */
  maxRetryDelaySeconds: number;
  /** Timers due further away stay in Postgres (the sweeper promotes them). */
  timerHorizonMs: number;
}

/** A job that arrives this little before its time (clock skew between processes) runs all the same. */
export const DUE_TOLERANCE_MS = 5;

/** What one engine step changes, before it becomes row fields: an event for the machine, log entries, fields. */
export interface Change {
  event?: ExecutionEvent;
  /** Replaces the snapshot without a machine transition (manual retry rewinds a failed execution). */
  rewind?: StoredSnapshot;
  /** Forces a status (manual retry); otherwise the status follows from the effects. */
  status?: ExecutionStatus;
  logs: LogEntry[];
  retryCount?: number;
  /** When the pending timer (retry back-off, rate-limit window) is due; `null` clears it. */
  nextRunAt?: Date | null;
  lastError?: string | null;
  /** Tag added to or removed from the contact, applied to its stored tags in the same commit as the step. */
  tagChange?: TagChange;
  /** Contact attributes set by the step (a webhook's `save_response`), merged into the stored ones in the same commit. */
  attributes?: Record<string, unknown>;
  userId?: string | null;
  /** The change fails the execution with this error, which the account's admin is told about (notify.ts). */
  failure?: string;
  /** Moves the execution to another version of its workflow (move-execution.ts); the row keeps its place in line. */
  moveTo?: { versionId: string; goalEvent: string | null };
}

/**
 * Steps applied in memory and not yet written, to commit together with the next one: what the commit
 * must write besides the next step's own change.
 */
export interface Pending {
  /** Row fields set by the staged steps (the next step's own fields override them). */
  set: RowPatch;
  logRows: LogRow[];
  tagChange?: TagChange;
  attributes?: Record<string, unknown>;
}

/** The execution row's fields a decision sets, by the row's field names. */
export interface RowPatch {
  status: ExecutionStatus;
  snapshot: StoredSnapshot;
  currentStepIndex: number;
  totalSteps: number;
  nextRunAt: Date | null;
  completionReason: string | null;
  updatedAt: Date;
  retryCount?: number;
  lastError?: string | null;
  finishedAt?: Date;
  notifyPending?: true;
  /** The event the execution now waits for (`wait_for_event`), or null when it stopped waiting; absent: unchanged. */
  waitingEvent?: string | null;
  /** Set only by a move to another version (`Change.moveTo`), with its goal event and place in line. */
  workflowVersionId?: string;
  goalEvent?: string | null;
  waiting?: boolean;
}

/** The job that runs the execution's next step, handed to the caller to run in the same job. */
export type NextInJob = StepWork & { loaded: LoadedExecution; pending?: Pending };

/** What comes after a decision: it is committed and its next work enqueued (or continued), or it is staged. */
export type Next =
  /** Written now; the next step is due after `delayMs` (enqueued, or kept in Postgres past the horizon) or never. */
  | { kind: 'commit' }
  /** Not written: handed to the next step, to be committed with it (see {@link stagesBefore}). */
  | { kind: 'stage'; next: NextInJob };

/** Counters a decision moves, observed by the engine. */
export interface Signals {
  timerLatenessMs?: number;
  /** A provider answered 429 (not a hold another worker saw): its metric label. */
  rateLimitHit?: string;
  /** A transient failure will be retried: the action type. */
  retry?: string;
}

/** Everything one engine step writes and does next, decided from what was loaded and what its effect came to. */
export interface Decision {
  set: RowPatch;
  /** Log rows as stored (masked), the staged steps' first. */
  logRows: LogRow[];
  tagChange?: TagChange;
  /** Contact attributes the commit merges into the stored ones (absent: none). */
  attributes?: Record<string, unknown>;
  /** What the commit does with the account's concurrency slot. */
  slot: SlotOp;
  finished: FinalState | null;
  next: Next;
  signals: Signals;
  /** Set when the step failed the execution: the error the admin is notified of. */
  failure?: string;
}

/** Where the decision is made: the execution as loaded and what the job carries. */
export interface StepContext {
  loaded: LoadedExecution;
  now: Date;
  policy: Policy;
  /** Row fields, logs and tag change of steps staged before this one. */
  pending?: Pending;
  /** Whether the caller can run the next step in the same job (a job runs a bounded number). */
  canContinue?: boolean;
}

/** What a job may do, decided from what its load found. */
export type Gate =
  | { kind: 'stop'; outcome: 'missing' | 'stale' | 'waiting_in_line'; resumeLostChain?: boolean }
  /** Early: committed as it is (with its recovered entry), its job put back until it is due. */
  | { kind: 'reschedule'; loaded: LoadedExecution }
  /** Its contact was deleted: cancelled. */
  | { kind: 'cancel'; loaded: LoadedExecution }
  /** The effect of the state the execution is at is due. */
  | { kind: 'run'; loaded: LoadedExecution; effect: Effect };

/**
 * What a job does with the execution its load found: nothing (gone, superseded, waiting in line, finished),
 * or the effect its state is at. `admitted` is what admission in the load did (`ACTIVE`, `QUEUED` when it
 * joined the waiting line, null when there was none); an admitted execution is ACTIVE at the next version.
 */
export function gateJob(
  job: StepJob & { redelivered?: boolean },
  read: { loaded: LoadedExecution; admitted: string | null } | null,
  now: Date,
): Gate {
  if (!read) return { kind: 'stop', outcome: 'missing' };
  let { loaded } = read;
  if (loaded.row.version !== job.version)
    return { kind: 'stop', outcome: 'stale', resumeLostChain: !!job.redelivered && loaded.row.version > job.version };
  if (read.admitted === 'QUEUED') return { kind: 'stop', outcome: 'waiting_in_line' };
  if (read.admitted === 'ACTIVE')
    loaded = { ...loaded, row: { ...loaded.row, status: 'ACTIVE', version: loaded.row.version + 1 } };
  const { row, workflow } = loaded;
  // QUEUED and waiting: its job comes when a slot frees; QUEUED and not waiting: admission is someone else's.
  if (row.status === 'QUEUED') return { kind: 'stop', outcome: row.waiting ? 'stale' : 'waiting_in_line' };
  if (row.status !== 'ACTIVE' && row.status !== 'PAUSED') return { kind: 'stop', outcome: 'stale' };
  const effect = dueEffect(workflow, snapshotOf(row));
  if (!effect) return { kind: 'stop', outcome: 'stale' };
  // A job that arrives before its time (clock skew, a promoted job) is put back until then.
  if (row.nextRunAt && row.nextRunAt.getTime() > now.getTime() + DUE_TOLERANCE_MS)
    return { kind: 'reschedule', loaded };
  if (row.contact.deletedAt) return { kind: 'cancel', loaded };
  return { kind: 'run', loaded, effect };
}

/**
 * The effect due at the state a snapshot is at: the entry action the machine named when it entered that
 * step's state (the machine is the only place that says which step runs what). Final states have none due.
 */
export function dueEffect(workflow: LoadedExecution['workflow'], stored: StoredSnapshot): Effect | undefined {
  if (stored.value in FINAL_STATES) return undefined;
  const node = workflow.machine.states[stored.value];
  const entry = node?.entry.find((action) => typeof action === 'object' && action !== null && 'params' in action);
  return entry as unknown as Effect | undefined;
}

/** What executing a due effect came to (see effects.ts): only provider calls do I/O. */
export type EffectOutcome =
  | { kind: 'none' }
  | { kind: 'action'; result: ActionResult; startedAt: Date; durationMs: number; actionType: string }
  /** A message its contact's frequency cap holds back until `resumeAt` (nothing was sent or counted). */
  | { kind: 'capped'; channel: string; resumeAt: Date };

/** The stored snapshot of a row. */
export const snapshotOf = (row: ExecutionRow): StoredSnapshot => row.snapshot as unknown as StoredSnapshot;

/** The entry a job rebuilt after a loss (or given out again) adds to its step's logs. */
export const recoveredLogs = (job: StepJob): LogEntry[] =>
  job.recovered ? [{ eventType: 'recovered', status: 'INFO', details: { version: job.version } }] : [];

const withSignals = (decision: Decision | null, signals: Signals): Decision | null =>
  decision && { ...decision, signals };

/**
 * Decides one step: turns what the due effect came to into the change it makes (one case per effect), then
 * into the rows to write ({@link decideChange}). `logs` come first (a recovered job's entry).
 */
export function decideStep(
  context: StepContext,
  effect: Effect,
  outcome: EffectOutcome,
  logs: LogEntry[] = [],
): Decision | null {
  const { row, workflow } = context.loaded;
  const stored = snapshotOf(row);
  const base = { stepId: 'stepId' in effect.params ? effect.params.stepId : null, stepIndex: stepPosition(stored) };
  const { now } = context;
  switch (effect.type) {
    case 'startTimer':
    case 'waitUntilLocalTime':
    case 'awaitEvent': {
      // ACTIVE at a waiting step with no timer: admitted there (a workflow that starts with it): start it.
      if (row.status === 'ACTIVE' && !row.nextRunAt) {
        const entered = resolveEntry(context, effect);
        return decideChange(context, {
          status: 'PAUSED',
          nextRunAt: entered.nextRunAt,
          logs: [...logs, ...entered.logs],
        });
      }
      const latenessMs = row.nextRunAt ? Math.max(0, now.getTime() - row.nextRunAt.getTime()) : 0;
      const fired: LogEntry =
        effect.type === 'awaitEvent'
          ? {
              ...base,
              eventType: 'wait_timed_out',
              status: 'SUCCESS',
              details: { event: effect.params.event, lateness_ms: latenessMs },
            }
          : { ...base, eventType: 'wait_completed', status: 'SUCCESS', details: { lateness_ms: latenessMs } };
      const decision = decideChange(context, { event: { type: 'TIMER_FIRED' }, logs: [...logs, fired] });
      return withSignals(decision, { timerLatenessMs: latenessMs });
    }
    case 'evaluateCondition': {
      const step = workflow.steps.get(effect.params.stepId)!.step;
      if (step.type !== 'condition') throw new Error(`step ${step.id} is not a condition`);
      const result = evaluateCondition(
        step.config,
        { ...row.contact, attributes: (row.contact.attributes ?? {}) as Record<string, unknown> },
        (row.payload ?? {}) as Record<string, unknown>,
      );
      return decideChange(context, {
        event: { type: 'CONDITION_RESULT', result },
        logs: [
          ...logs,
          { ...base, eventType: 'condition_evaluated', status: 'SUCCESS', details: { result, condition: step.config } },
        ],
      });
    }
    case 'chooseVariant':
    case 'evaluateBranch': {
      const { event, entry } = chooseBranch(context, effect.params.stepId);
      return decideChange(context, { event, logs: [...logs, { ...base, ...entry }] });
    }
    case 'executeAction': {
      if (outcome.kind === 'capped') return deferCapped(context, base, logs, outcome);
      if (outcome.kind !== 'action') throw new Error(`step ${effect.params.stepId} ran no action`);
      return decideAction(context, base, logs, outcome);
    }
    case 'finishExecution':
      throw new Error('a final state has no effect due');
  }
}

/**
 * The branch a `split` or `branch` step takes, and its log entry. A split's variant is a stable hash of the
 * contact and the step (split.ts), so re-entry, retry and recovery choose it again with nothing stored; a
 * branch takes its first case whose condition holds for the contact and the execution's payload, else
 * `default`.
 */
function chooseBranch(context: StepContext, stepId: string): { event: ExecutionEvent; entry: LogEntry } {
  const { row, workflow } = context.loaded;
  const step = workflow.steps.get(stepId)!.step;
  if (step.type === 'split') {
    const variant = assignVariant(row.contactId, step.id, step.config.variants);
    return {
      event: { type: `${VARIANT_EVENT}${variant}` },
      entry: { eventType: 'split_assigned', status: 'SUCCESS', details: { variant } },
    };
  }
  if (step.type !== 'branch') throw new Error(`step ${step.id} is neither a split nor a branch`);
  const contact = { ...row.contact, attributes: (row.contact.attributes ?? {}) as Record<string, unknown> };
  const payload = (row.payload ?? {}) as Record<string, unknown>;
  const chosen = step.config.cases.find(({ when }) => evaluateCondition(when, contact, payload))?.id ?? DEFAULT_BRANCH;
  return {
    event: { type: `${CASE_EVENT}${chosen}` },
    entry: { eventType: 'branch_evaluated', status: 'SUCCESS', details: { case: chosen } },
  };
}

/** The decision case of an action: its provider's answer, with retries and rate-limit holds. */
function decideAction(
  context: StepContext,
  base: { stepId: string | null; stepIndex: number },
  recovered: LogEntry[],
  { result, startedAt, durationMs, actionType }: Extract<EffectOutcome, { kind: 'action' }>,
): Decision | null {
  const { row } = context.loaded;
  const { now, policy } = context;
  const caps = { maxRetryAfterSeconds: policy.maxRetryAfterSeconds, maxRetryDelaySeconds: policy.maxRetryDelaySeconds };
  const started: LogEntry = {
    ...base,
    eventType: 'action_started',
    status: 'STARTED',
    timestamp: startedAt,
    details: { action_type: actionType, attempt: row.retryCount + 1, ...result.details },
  };
  const change = (fields: Omit<Change, 'logs'>, ...entries: LogEntry[]): Change => ({
    ...fields,
    logs: [...recovered, started, ...entries.map((entry) => ({ ...base, timestamp: now, durationMs, ...entry }))],
  });
  const failed = (error: string, status: number | null, retryable: boolean): LogEntry => ({
    eventType: 'action_failed',
    status: 'FAILED',
    details: { error, http_status: status, retryable },
  });

  switch (result.kind) {
    case 'success':
      return decideChange(
        context,
        change(
          {
            event: { type: 'STEP_DONE' },
            retryCount: 0,
            lastError: null,
            tagChange: result.tagChange,
            attributes: result.attributes,
          },
          { eventType: 'action_completed', status: 'SUCCESS', details: { action_type: actionType } },
        ),
      );
    case 'skipped':
      return decideChange(
        context,
        change(
          { event: { type: 'STEP_SKIPPED' }, retryCount: 0 },
          {
            eventType: result.reason === 'contact_opted_out' ? 'skipped_opted_out' : 'action_skipped',
            status: 'SKIPPED',
            details: { reason: result.reason },
          },
        ),
      );
    case 'permanent':
      return decideChange(
        context,
        change(
          { event: { type: 'STEP_SKIPPED' }, retryCount: 0, lastError: maskText(result.error) },
          failed(result.error, result.status, false),
          {
            eventType: 'skipped_non_retryable_error',
            status: 'SKIPPED',
            durationMs: null,
            details: { error: result.error },
          },
        ),
      );
    case 'rate_limited': {
      const backoff = retryDelayMs(row.account.retryBaseDelaySeconds, row.retryCount, caps);
      const delayMs = rateLimitDelayMs(result.retryAfterMs, backoff, caps);
      const resumeAt = dateAfter(now, delayMs);
      const held = result.details.held === true;
      const decision = decideChange(
        context,
        change(
          { nextRunAt: resumeAt, lastError: maskText(result.error) },
          {
            eventType: held ? 'action_delayed' : 'rate_limit_hit',
            status: 'DELAYED',
            details: {
              provider: result.provider,
              retry_after_seconds: delayMs / 1000,
              resume_at: resumeAt.toISOString(),
            },
          },
        ),
      );
      return held ? decision : withSignals(decision, { rateLimitHit: result.providerKind });
    }
    case 'transient': {
      if (row.retryCount < row.account.maxRetryAttempts) {
        const delayMs = retryDelayMs(row.account.retryBaseDelaySeconds, row.retryCount, caps);
        const decision = decideChange(
          context,
          change(
            { retryCount: row.retryCount + 1, nextRunAt: dateAfter(now, delayMs), lastError: maskText(result.error) },
            failed(result.error, result.status, true),
            {
              eventType: 'retry_scheduled',
              status: 'SCHEDULED',
              durationMs: null,
              details: { delay_seconds: delayMs / 1000, retry_count: row.retryCount + 1, error: result.error },
            },
          ),
        );
        return withSignals(decision, { retry: actionType });
      }
      return decideChange(
        context,
        change(
          { event: { type: 'STEP_FAILED' }, lastError: maskText(result.error), failure: maskText(result.error) },
          failed(result.error, result.status, true),
          {
            eventType: 'max_retries_exhausted',
            status: 'FAILED',
            durationMs: null,
            details: { retry_count: row.retryCount, error: result.error },
          },
        ),
      );
    }
  }
}

const FINISH_LOGS: Record<FinalState, LogEventType[]> = {
  completed: ['execution_completed'],
  goal_achieved: ['goal_achieved', 'execution_completed'],
  failed: ['execution_failed'],
  cancelled: ['execution_cancelled'],
};

/**
 * Turns a change into what to write: runs the machine transition (pure) and resolves the effects it
 * returns into row fields (a timer into PAUSED and its due time, a final state into its status and logs),
 * masks the log entries, and decides the slot operation and whether the step is staged. Returns null when
 * the change sends an event to a finished execution (the machine's GOAL and CANCEL would still match).
 */
export function decideChange(context: StepContext, change: Change): Decision | null {
  const { row, workflow } = context.loaded;
  const { now, pending } = context;
  let stored = change.rewind ?? snapshotOf(row);
  let effects: Effect[] = [];
  if (change.event) {
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
  for (const effect of effects) {
    switch (effect.type) {
      case 'executeAction':
      case 'evaluateCondition':
      case 'chooseVariant':
      case 'evaluateBranch':
        if (status !== 'QUEUED') status = 'ACTIVE';
        nextRunAt = null;
        break;
      case 'startTimer':
      case 'waitUntilLocalTime':
      case 'awaitEvent': {
        const entered = resolveEntry(context, effect);
        status = 'PAUSED';
        nextRunAt = entered.nextRunAt;
        logs.push(...entered.logs);
        break;
      }
      case 'finishExecution':
        finished = effect.params.state;
        status = FINAL_STATES[finished].status;
        reason = stored.context.reason ?? FINAL_STATES[finished].reason;
        nextRunAt = null;
        for (const eventType of FINISH_LOGS[finished]) logs.push({ eventType, status, details: { reason } });
        break;
    }
  }

  const progress = progressOf(workflow, stored, row.totalSteps, hasStarted(row));
  // Postgres finds the executions waiting for an event by this column (an index of the waiting ones only).
  const due = dueEffect(workflow, stored);
  const waitingEvent = status === 'PAUSED' && due?.type === 'awaitEvent' ? due.params.event : null;
  const set: RowPatch = {
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
    ...(waitingEvent !== (row.waitingEvent ?? null) ? { waitingEvent } : {}),
    ...(change.moveTo
      ? { workflowVersionId: change.moveTo.versionId, goalEvent: change.moveTo.goalEvent, waiting: row.waiting }
      : {}),
    ...(finished === 'failed' && change.failure !== undefined && row.account.errorNotification
      ? { notifyPending: true as const }
      : {}),
  };
  const logRows = [
    ...(pending?.logRows ?? []),
    ...toLogRows(row, logs, stepPosition(stored), change.userId ?? null, now),
  ];
  const tagChange = change.tagChange ?? pending?.tagChange;
  const attributes =
    pending?.attributes || change.attributes ? { ...pending?.attributes, ...change.attributes } : undefined;
  const wasActive = row.status === 'ACTIVE';
  const decision = {
    set,
    logRows,
    tagChange,
    ...(attributes ? { attributes } : {}),
    slot: slotOp(row.status as ExecutionStatus, status),
    finished,
    signals: {},
    ...(finished === 'failed' && change.failure !== undefined ? { failure: change.failure } : {}),
  };
  if (
    context.canContinue &&
    wasActive &&
    status === 'ACTIVE' &&
    nextRunAt === null &&
    !change.status &&
    stagesBefore(change, workflow.steps.get(stored.value)?.step.type, tagChange)
  ) {
    const tagged = change.tagChange ? withTag(row.contact, change.tagChange) : row.contact;
    // The staged step's attributes are seen by the next step (a condition) before they are written.
    const contact: ExecutionRow['contact'] = change.attributes
      ? {
          ...tagged,
          attributes: {
            ...(tagged.attributes as Record<string, unknown>),
            ...change.attributes,
          } as ExecutionRow['contact']['attributes'],
        }
      : tagged;
    const stagedRow = { ...row, ...set, snapshot: stored as unknown as ExecutionRow['snapshot'], contact };
    const next: NextInJob = {
      executionId: row.id,
      version: row.version,
      trace: traceOf(row),
      loaded: { workflow, row: stagedRow },
      pending: { set, logRows, tagChange, ...(attributes ? { attributes } : {}) },
    };
    return { ...decision, next: { kind: 'stage', next } };
  }
  return { ...decision, next: { kind: 'commit' } };
}

const EFFECT_TYPES = new Set<string>([
  'executeAction',
  'evaluateCondition',
  'chooseVariant',
  'evaluateBranch',
  'startTimer',
  'waitUntilLocalTime',
  'awaitEvent',
  'finishExecution',
] satisfies Effect['type'][]);

type WaitEffect = Extract<Effect, { type: 'startTimer' | 'waitUntilLocalTime' | 'awaitEvent' }>;

/**
 * What entering a waiting step does (the pure resolve of its effect): when its timer is due and the
 * `wait_started` entry that says so. A `wait_until` is due at the next local time in the contact's zone
 * (else the account's default, else UTC; a zone that is not a valid IANA name falls back and says so); a
 * `wait_for_event` at its timeout.
 */
function resolveEntry(context: StepContext, effect: WaitEffect): { nextRunAt: Date; logs: LogEntry[] } {
  const { now } = context;
  const { row, workflow } = context.loaded;
  const entry = (nextRunAt: Date, details: Record<string, unknown>) => ({
    nextRunAt,
    logs: [
      {
        eventType: 'wait_started' as const,
        status: 'PAUSED',
        stepId: effect.params.stepId,
        details: { ...details, resume_at: nextRunAt.toISOString() },
      },
    ],
  });
  switch (effect.type) {
    case 'startTimer':
      return entry(dateAfter(now, effect.params.delayMs), { duration_ms: effect.params.delayMs });
    case 'awaitEvent':
      return entry(dateAfter(now, effect.params.timeoutMs), {
        event: effect.params.event,
        timeout_ms: effect.params.timeoutMs,
      });
    case 'waitUntilLocalTime': {
      const step = workflow.steps.get(effect.params.stepId)!.step;
      if (step.type !== 'wait_until') throw new Error(`step ${step.id} is not a wait_until`);
      const zone = zoneFor(step.config.timezone, row);
      return entry(nextLocalTime(step.config, zone.zone, now), {
        time: step.config.time,
        timezone: zone.zone,
        ...(zone.fallback ? { timezone_fallback: zone.fallback } : {}),
      });
    }
  }
}

/** The zone of a `wait_until` or send window: a named one, or the contact's (`"contact"`) with its fallbacks. */
function zoneFor(timezone: string, row: ExecutionRow) {
  return timezone === 'contact' ? resolveZone(row.contact.timezone, row.account.defaultTimezone) : { zone: timezone };
}

/** Step types a send window holds back. */
const WINDOWED = new Set(['send_email', 'send_sms', 'webhook']);

/**
 * A message or webhook due outside the workflow's send window is not sent: it is PAUSED until the window
 * next opens (`send_deferred`), then sent. A `"transactional": true` step ignores the window. Returns
 * null when the step may run now.
 */
export function deferSend(context: StepContext, effect: Effect): Decision | null {
  const { row, workflow } = context.loaded;
  const window = workflow.definition.send_window;
  if (!window || effect.type !== 'executeAction') return null;
  const step = workflow.steps.get(effect.params.stepId)!.step;
  if (!WINDOWED.has(step.type) || ('transactional' in step.config && step.config.transactional)) return null;
  const zone = zoneFor(window.timezone, row);
  const opensAt = windowOpenAt(window, zone.zone, context.now);
  if (!opensAt) return null;
  return decideChange(context, {
    status: 'PAUSED',
    nextRunAt: opensAt,
    logs: [
      {
        eventType: 'send_deferred',
        status: 'PAUSED',
        stepId: step.id,
        stepIndex: stepPosition(snapshotOf(row)),
        details: {
          resume_at: opensAt.toISOString(),
          timezone: zone.zone,
          ...('fallback' in zone && zone.fallback ? { timezone_fallback: zone.fallback } : {}),
        },
      },
    ],
  });
}

/**
 * A message its contact's frequency cap holds back is not sent: it is PAUSED until the cap allows it
 * (`frequency_capped`), giving its slot back, then sent (checked again) by the job due then.
 */
function deferCapped(
  context: StepContext,
  base: { stepId: string | null; stepIndex: number },
  logs: LogEntry[],
  { channel, resumeAt }: Extract<EffectOutcome, { kind: 'capped' }>,
): Decision | null {
  return decideChange(context, {
    status: 'PAUSED',
    nextRunAt: resumeAt,
    logs: [
      ...logs,
      {
        ...base,
        eventType: 'frequency_capped',
        status: 'PAUSED',
        details: { channel, resume_at: resumeAt.toISOString() },
      },
    ],
  });
}

/** How a status change moves the account's slots: an ACTIVE execution holds one. */
export function slotOp(from: ExecutionStatus, to: ExecutionStatus): SlotOp {
  const wasActive = from === 'ACTIVE';
  if (wasActive === (to === 'ACTIVE')) return 'keep';
  if (wasActive) return 'release';
  // Admitted now: a QUEUED execution takes a slot or joins the line; a resumed one takes it before the line.
  return from === 'QUEUED' ? 'acquire' : 'acquire_in_line';
}

/**
 * Steps that only read or change the execution and its contact (a condition, split, branch, tag) are staged instead
 * of committed when they follow a step of an admitted execution at once: their change is written by the
 * next commit, in the same call. A provider call never runs with anything staged but a fired timer, so
 * what it depends on (the slot taken when the execution was admitted or its timer resumed, the steps
 * before it) is always committed first; at most one tag change is staged. A worker dying before the next
 * commit loses only what is staged: the job given out again redoes it from the committed version, and a
 * provider call it repeats carries the same idempotency key.
 */
function stagesBefore(change: Change, nextType: string | undefined, tagChange: TagChange | undefined): boolean {
  return (
    change.event?.type === 'TIMER_FIRED' ||
    nextType === 'condition' ||
    nextType === 'split' ||
    nextType === 'branch' ||
    ((nextType === 'add_tag' || nextType === 'remove_tag') && !tagChange)
  );
}

/** The contact's tags after a tag change, as the commit applies it (also the dry run's, simulate.ts). */
export function withTag(contact: ExecutionRow['contact'], { op, tag }: TagChange): ExecutionRow['contact'] {
  const others = contact.tags.filter((t) => t !== tag);
  return { ...contact, tags: op === 'add' ? [...others, tag] : others };
}

/** The execution's trace context, carried by each of its jobs so all its steps join one trace. */
export const traceOf = (row: { traceContext: unknown }) =>
  (row.traceContext ?? undefined) as Record<string, string> | undefined;

/**
 * What follows a committed decision: the jobs to enqueue (admitted executions of the account, the
 * execution's own next step within the horizon) or the next step to run in this job. The commit's answer
 * decides the status: with no free slot the execution waits in line (QUEUED, waiting), holding no job.
 */
export function followUp(
  context: StepContext,
  decision: Decision,
  result: CommitResult,
): { status: ExecutionStatus; version: number; work: StepWork[]; next?: NextInJob } {
  const { row, workflow } = context.loaded;
  const { set } = decision;
  const status = result.new_status;
  const version = row.version + 1;
  const work: StepWork[] = [
    ...(result.admitted ?? []),
    // Executions the step's tag started: first jobs, behind the due work of running ones.
    ...(result.enrolled ?? []).map((job) => ({ ...job, first: true })),
  ];
  if (status === 'ACTIVE' || status === 'PAUSED' || (status === 'QUEUED' && !result.new_waiting)) {
    const delayMs = set.nextRunAt ? set.nextRunAt.getTime() - context.now.getTime() : 0;
    const job = { executionId: row.id, version, delayMs, trace: traceOf(row) };
    if (context.canContinue && status === 'ACTIVE' && delayMs <= 0 && result.contact) {
      const committedRow: ExecutionRow = {
        ...row,
        ...set,
        status,
        snapshot: set.snapshot as unknown as ExecutionRow['snapshot'],
        version,
        waiting: result.new_waiting,
        contact: result.contact,
      };
      return { status, version, work, next: { ...job, loaded: { workflow, row: committedRow } } };
    }
    // Far-future timers stay in Postgres; the sweeper promotes them to Redis shortly before they are due.
    if (delayMs <= context.policy.timerHorizonMs) work.unshift(job);
  }
  return { status, version, work };
}

/**
 * The stored form of log entries (the columns of execution_logs): masked details, and the 1-based
 * position of their step. An entry that names a step but no index (`wait_started`, `manual_retry`) is of
 * the step the new snapshot is at, `stepIndex`.
 */
export function toLogRows(
  row: ExecutionRow,
  logs: LogEntry[],
  stepIndex: number,
  userId: string | null,
  now: Date,
): LogRow[] {
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
