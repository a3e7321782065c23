import type { FinalState } from '../compiler/compile.ts';
import { PREMASKED } from '../observability/logger.ts';
import { maskText } from '../observability/mask.ts';
import type { CommitRequest, LogRow } from '../store/execution-store.ts';
import { type Change, type Decision, decideChange, followUp, type NextInJob, type StepContext } from './decide-step.ts';
import type { LoadedExecution } from './load.ts';
import type { EngineDeps, ExecutionStatus } from './types.ts';
import type { StepWork } from './work.ts';

/** The outcome of a committed (or staged) decision. */
export interface Committed {
  status: ExecutionStatus;
  version: number;
  finished: FinalState | null;
  work: StepWork[];
  /** Not written yet: handed to the next step through {@link Inline}, to be committed with it. */
  staged?: boolean;
}

/** Where a worker takes the execution's next step when it is due at once, to run it in the same job. */
export interface Inline {
  next?: NextInJob;
}

/**
 * Carries out a decision: a staged one is handed to `inline`; any other is written in ONE store call
 * (the snapshot with its optimistic version check, the log rows, the contact's tag, the account's slot),
 * and only after that commit is the next work enqueued (or handed to `inline`). Returns null when another
 * process changed the execution first (the caller reloads or gives up).
 */
export async function commitDecision(
  deps: EngineDeps,
  context: StepContext,
  decision: Decision,
  inline?: Inline,
): Promise<Committed | null> {
  const { row } = context.loaded;
  observeSignals(deps, decision);
  if (decision.next.kind === 'stage') {
    if (inline) inline.next = decision.next.next;
    return { status: decision.set.status, version: row.version, finished: null, work: [], staged: true };
  }
  const result = await deps.store.commit(requestOf(context, decision));
  if (!result) return null;
  const { status, version, work, next } = followUp(context, decision, result);
  if (next && inline) inline.next = next;
  await deps.queue.enqueue(work, (error) =>
    deps.logger.warn('enqueue failed; the sweeper will retry', { execution_id: row.id, error: error.message }),
  );
  observe(deps, row, decision.logRows, decision.finished, status);
  return { status, version, finished: decision.finished, work };
}

/** What the store writes for a decision: the row at its version, its log rows, tag, attributes and slot. */
const requestOf = ({ loaded: { row } }: StepContext, decision: Decision): CommitRequest => ({
  id: row.id,
  version: row.version,
  set: decision.set as unknown as Record<string, unknown>,
  logs: decision.logRows,
  tagChange: decision.tagChange,
  ...(decision.attributes ? { attributes: decision.attributes } : {}),
  slot: decision.slot,
});

/** Where a change made from outside a job is decided: the execution as loaded, now. */
export const changeContext = (deps: EngineDeps, loaded: LoadedExecution): StepContext => ({
  loaded,
  now: deps.clock.now(),
  policy: policyOf(deps),
});

/** Decides and commits a change made from outside a job (an operator's command, a goal, a deletion). */
export async function commitChange(
  deps: EngineDeps,
  loaded: LoadedExecution,
  change: Change,
): Promise<Committed | null> {
  const context = changeContext(deps, loaded);
  const decision = decideChange(context, change);
  return decision && commitDecision(deps, context, decision);
}

/** A decision about one execution of a batch, where it was made. */
export interface Decided {
  context: StepContext;
  decision: Decision;
}

/**
 * Commits decisions about several executions made from outside a job (a bulk operation's batch) in ONE
 * store call, one transaction, then enqueues the work they lead to (jobs of executions admitted to the
 * slots they gave back) in one call. Answers each in order: null where another process changed the
 * execution first.
 */
export async function commitDecisions(deps: EngineDeps, batch: Decided[]): Promise<(Committed | null)[]> {
  if (batch.length === 0) return [];
  for (const { decision } of batch) observeSignals(deps, decision);
  const results = await deps.store.commitMany(batch.map(({ context, decision }) => requestOf(context, decision)));
  const work: StepWork[] = [];
  const committed = results.map((result, i): Committed | null => {
    if (!result) return null;
    const { context, decision } = batch[i]!;
    const { status, version, work: next } = followUp(context, decision, result);
    work.push(...next);
    observe(deps, context.loaded.row, decision.logRows, decision.finished, status);
    return { status, version, finished: decision.finished, work: next };
  });
  await deps.queue.enqueue(work, (error) =>
    deps.logger.warn('enqueue failed; the sweeper will retry', { executions: work.length, error: error.message }),
  );
  return committed;
}

/** The decisions' settings, from the config. */
export const policyOf = ({ config }: Pick<EngineDeps, 'config'>) => ({
  maxRetryAfterSeconds: config.MAX_RETRY_AFTER_SECONDS,
  maxRetryDelaySeconds: config.MAX_RETRY_DELAY_SECONDS,
  timerHorizonMs: config.TIMER_HORIZON_MS,
});

function observeSignals(deps: EngineDeps, { signals }: Decision) {
  if (signals.timerLatenessMs !== undefined) deps.metrics.timerLateness.observe(signals.timerLatenessMs / 1000);
  if (signals.rateLimitHit) deps.metrics.rateLimitHits.inc({ provider: signals.rateLimitHit });
  if (signals.retry) deps.metrics.retries.inc({ action_type: signals.retry });
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
