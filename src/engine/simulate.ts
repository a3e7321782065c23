import type { ActionResult } from '../actions/action.ts';
import { dateAfter } from '../clock.ts';
import type { CompiledWorkflow, Effect } from '../compiler/compile.ts';
import type { ActionStep } from '../definition/schema.ts';
import type { ExecutionRow, LogRow } from '../store/execution-store.ts';
import { type ContactEvent, exitChange, resumeWaitChange } from './control.ts';
import {
  type Change,
  type Decision,
  type EffectOutcome,
  decideChange,
  decideStep,
  deferSend,
  followUp,
  gateJob,
  type Policy,
  snapshotOf,
  type StepContext,
  withTag,
} from './decide-step.ts';
import { initialOf } from './snapshot.ts';
import { type ExecutionStatus, RUNNING_STATUSES } from './types.ts';

/**
 * The dry run of one contact through a workflow (`POST /workflows/{id}/test`): the engine's own loop with
 * the I/O taken out. Each simulated job goes through the same pure decisions a worker makes
 * ({@link gateJob}, {@link deferSend}, {@link decideStep}, {@link decideChange}, {@link followUp}) on the
 * same compiled machine, and each "commit" only replaces the row in memory; injected events go through the
 * same pure changes as real ones (control.ts {@link resumeWaitChange}, {@link exitChange}, the goal). There
 * is no second interpreter: what differs from a worker is only that time is a simulated clock that jumps to
 * the next due timer or event, that no provider is called (an action succeeds, or is skipped for an
 * opted-out contact's message, as the action runner would), and that nothing is stored or enqueued.
 */

/** The contact a dry run follows: a stored one, or a hypothetical one with defaults. */
export interface SimulatedContact {
  id: string;
  email: string;
  phone: string | null;
  optedIn: boolean;
  timezone: string | null;
  tags: string[];
  attributes: Record<string, unknown>;
}

/** An event injected into a dry run, `afterMs` after its start. */
export interface SimulatedEvent {
  name: string;
  afterMs: number;
  properties: Record<string, unknown>;
}

/** What a dry run starts from. */
export interface SimulationInput {
  workflow: CompiledWorkflow;
  contact: SimulatedContact;
  /** The account's settings the decisions read (default time zone, retries). */
  account: ExecutionRow['account'];
  /** The trigger payload conditions and templates read as `payload.<key>`. */
  payload?: Record<string, unknown>;
  startAt: Date;
  events: SimulatedEvent[];
  policy: Policy;
  /**
   * Most simulated jobs and events before the run is cut short (`INCOMPLETE`).
   * @defaultValue {@link MAX_SIMULATED_STEPS}
   */
  maxSteps?: number;
}

/** One step on the simulated path: when it started and what it came to. */
export interface PathEntry {
  stepId: string;
  type: string;
  at: Date;
  /** `success`, `skipped`, `true`/`false` (condition), `waited`, `event_received`, `timed_out`, `goal_achieved`, `exited`, … or `pending` when the run stopped there. */
  outcome: string;
  /** When a send window held the step back, the moment it was sent instead. */
  deferredUntil?: Date;
}

/** What an injected event did. */
export interface SimulatedEventOutcome {
  name: string;
  at: Date;
  /** `goal`, `exited`, `resumed`, or `ignored` (nothing waited for it, its `where` did not hold, or the run had ended). */
  outcome: 'goal' | 'exited' | 'resumed' | 'ignored';
}

/** The dry run's answer. */
export interface SimulationResult {
  path: PathEntry[];
  /** The execution's final status, or `INCOMPLETE` when the run hit {@link SimulationInput.maxSteps}. */
  result: ExecutionStatus | 'INCOMPLETE';
  completionReason: string | null;
  /** When the execution ended (or where the run stopped). */
  endedAt: Date;
  events: SimulatedEventOutcome[];
}

/** Most jobs and events one dry run simulates: definitions are trees of at most 500 steps, so this is never reached by a real one. */
export const MAX_SIMULATED_STEPS = 5_000;

/** The ids a dry run's execution carries: no row has them, and nothing is ever written under them. */
const SIMULATED_IDS = {
  execution: '00000000-0000-0000-0000-000000000000',
  workflow: '00000000-0000-0000-0000-000000000000',
  version: '00000000-0000-0000-0000-000000000000',
} as const;

/**
 * What a log row of a step says it came to, in the order they are looked for: the first of the
 * step's rows whose type is here names the outcome (condition results are read from the row).
 */
const OUTCOMES: Partial<Record<string, string | ((row: LogRow) => string)>> = {
  action_completed: 'success',
  skipped_opted_out: 'skipped',
  action_skipped: 'skipped',
  skipped_non_retryable_error: 'skipped',
  condition_evaluated: (row) => String(row.details.result),
  wait_completed: 'waited',
  wait_timed_out: 'timed_out',
  event_received: 'event_received',
  goal_achieved: 'goal_achieved',
  exited: 'exited',
  execution_cancelled: 'cancelled',
  execution_failed: 'failed',
};

/** Runs one contact through a workflow on a simulated clock. Pure: reads no clock, writes nothing. */
export function simulateExecution(input: SimulationInput): SimulationResult {
  const { workflow, policy } = input;
  const maxSteps = input.maxSteps ?? MAX_SIMULATED_STEPS;
  const pending = input.events
    .map((event, index) => ({ ...event, index, at: dateAfter(input.startAt, event.afterMs) }))
    .sort((a, b) => a.at.getTime() - b.at.getTime() || a.index - b.index);
  const events: SimulatedEventOutcome[] = [];
  const path: PathEntry[] = [];
  let row = initialRow(input);
  let now = input.startAt;
  const enter = () => {
    const value = snapshotOf(row).value;
    const info = workflow.steps.get(value);
    if (info && path.at(-1)?.stepId !== value)
      path.push({ stepId: value, type: info.step.type, at: now, outcome: 'pending' });
  };
  // Writes a decision as the commit would (at the next version, the tag change applied to the contact).
  const commit = (context: StepContext, decision: Decision) => {
    const before = snapshotOf(row).value;
    const after = followUp(context, decision, {
      new_status: decision.set.status,
      new_waiting: false,
      admitted: null,
      contact: null,
      enrolled: null,
    });
    const base = context.loaded.row;
    row = {
      ...base,
      ...decision.set,
      snapshot: decision.set.snapshot as unknown as ExecutionRow['snapshot'],
      status: after.status,
      version: after.version,
      contact: decision.tagChange ? withTag(base.contact, decision.tagChange) : base.contact,
    };
    const current = path.at(-1);
    if (current?.stepId === before) {
      const deferred = decision.logRows.find((log) => log.event_type === 'send_deferred');
      if (deferred) current.deferredUntil = new Date(String(deferred.details.resume_at));
      if (snapshotOf(row).value !== before || decision.finished) current.outcome = outcomeOf(decision.logRows, before);
    }
    enter();
  };
  const contextAt = (loaded: StepContext['loaded']): StepContext => ({ loaded, now, policy, canContinue: false });

  enter();
  for (let steps = 0; (RUNNING_STATUSES as readonly string[]).includes(row.status); steps += 1) {
    if (steps >= maxSteps) return finish(path, 'INCOMPLETE', null, now, events, pending);
    const dueAt = row.nextRunAt ?? now;
    const event = pending[0];
    // Work due at the same instant as an event runs first: the engine's steps take no simulated time.
    if (event && event.at.getTime() < dueAt.getTime()) {
      pending.shift();
      now = event.at.getTime() > now.getTime() ? event.at : now;
      events.push({ name: event.name, at: now, outcome: deliver(event, now) });
      continue;
    }
    if (dueAt.getTime() > now.getTime()) now = dueAt;
    // A due PAUSED execution is admitted in its job's load (flowmachine_admit_loaded), as a worker's is.
    const read = { loaded: { row, workflow }, admitted: row.status === 'PAUSED' ? 'ACTIVE' : null };
    const gate = gateJob({ executionId: row.id, version: row.version }, read, now);
    if (gate.kind !== 'run') throw new Error(`a dry run's job was not run (${gate.kind})`);
    const context = contextAt(gate.loaded);
    const decision =
      deferSend(context, gate.effect) ??
      decideStep(context, gate.effect, simulatedOutcome(gate.loaded.row, workflow, gate.effect, now));
    if (!decision) throw new Error(`a dry run's step decided nothing at ${snapshotOf(row).value}`);
    commit(context, decision);
  }
  return finish(path, row.status as ExecutionStatus, row.completionReason, now, events, pending);

  // An injected event reaches the execution as receiveEvent hands it over: goal, exit, then the wait.
  function deliver(event: (typeof pending)[number], at: Date): SimulatedEventOutcome['outcome'] {
    const contactEvent: ContactEvent = {
      id: `simulated-${event.index}`,
      name: event.name,
      properties: event.properties,
      at,
    };
    const loaded = { row, workflow };
    const apply = (change: Change) => {
      const context = contextAt(loaded);
      const decision = decideChange(context, change);
      if (decision) commit(context, decision);
      return !!decision;
    };
    if (workflow.goalEvent === event.name && apply({ event: { type: 'GOAL' }, logs: [] })) return 'goal';
    if (workflow.definition.exit?.event === event.name) {
      const change = exitChange(loaded, contactEvent);
      if (!('refuse' in change) && apply(change)) return 'exited';
    }
    const change = resumeWaitChange(loaded, contactEvent);
    return !('refuse' in change) && apply(change) ? 'resumed' : 'ignored';
  }
}

/** The execution as a trigger creates it and admission starts it: ACTIVE at the machine's initial state. */
function initialRow(input: SimulationInput): ExecutionRow {
  const { snapshot, totalSteps } = initialOf(input.workflow);
  const { contact, account, startAt } = input;
  return {
    id: SIMULATED_IDS.execution,
    accountId: account.id,
    workflowId: SIMULATED_IDS.workflow,
    workflowVersionId: SIMULATED_IDS.version,
    contactId: contact.id,
    status: 'ACTIVE',
    snapshot: snapshot as unknown as ExecutionRow['snapshot'],
    version: 1,
    currentStepIndex: 1,
    totalSteps,
    retryCount: 0,
    completionReason: null,
    lastError: null,
    goalEvent: input.workflow.goalEvent,
    nextRunAt: null,
    waiting: false,
    waitingEvent: null,
    traceContext: null,
    payload: (input.payload ?? {}) as ExecutionRow['payload'],
    createdAt: startAt,
    updatedAt: startAt,
    finishedAt: null,
    contact: { ...contact, accountId: account.id, deletedAt: null, attributes: contact.attributes as never },
    account,
    workflow: { name: 'dry run' },
  };
}

/**
 * What the due effect comes to without I/O: only an action has an outcome. Tags change as the action
 * runner changes them; a message to an opted-out contact is skipped as the runner skips it (run-action.ts);
 * every other action succeeds, since no provider is called.
 */
function simulatedOutcome(row: ExecutionRow, workflow: CompiledWorkflow, effect: Effect, now: Date): EffectOutcome {
  if (effect.type !== 'executeAction') return { kind: 'none' };
  const step = workflow.steps.get(effect.params.stepId)!.step as ActionStep;
  return {
    kind: 'action',
    result: simulatedAction(step, row.contact.optedIn),
    startedAt: now,
    durationMs: 0,
    actionType: step.type,
  };
}

function simulatedAction(step: ActionStep, optedIn: boolean): ActionResult {
  switch (step.type) {
    case 'add_tag':
    case 'remove_tag':
      return {
        kind: 'success',
        details: { tag: step.config.tag },
        tagChange: { op: step.type === 'add_tag' ? 'add' : 'remove', tag: step.config.tag },
      };
    case 'send_email':
    case 'send_sms':
      if (!optedIn) return { kind: 'skipped', reason: 'contact_opted_out', details: {} };
      return { kind: 'success', details: { simulated: true } };
    default:
      return { kind: 'success', details: { simulated: true } };
  }
}

/** The outcome a step's log rows name (see {@link OUTCOMES}). */
function outcomeOf(logs: LogRow[], stepId: string): string {
  for (const log of logs) {
    if (log.step_id !== null && log.step_id !== stepId) continue;
    const outcome = OUTCOMES[log.event_type];
    if (outcome !== undefined) return typeof outcome === 'string' ? outcome : outcome(log);
  }
  return 'done';
}

function finish(
  path: PathEntry[],
  result: SimulationResult['result'],
  completionReason: string | null,
  endedAt: Date,
  events: SimulatedEventOutcome[],
  pending: { name: string; at: Date }[],
): SimulationResult {
  // Events after the end reach nothing.
  for (const event of pending) events.push({ name: event.name, at: event.at, outcome: 'ignored' });
  return { path, result, completionReason, endedAt, events };
}
