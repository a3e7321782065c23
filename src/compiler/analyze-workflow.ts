import type { SnapshotFrom } from 'xstate';
import { getAdjacencyMap } from 'xstate/graph';
import {
  CASE_EVENT,
  type CompiledWorkflow,
  type ExecutionEvent,
  VARIANT_EVENT,
  type WorkflowMachine,
} from './compile.ts';

/**
 * What the graph of a compiled machine says about a workflow before anyone runs it (CONTRACT.md "Insight
 * and operations", `POST /workflows/validate`): the steps no run can reach, the events its waits expect,
 * and figures of its runs. Pure: the account's events are the caller's to look up (see
 * {@link warningsOf}).
 *
 * The graph is the machine's own (xstate/graph's adjacency map), walked with the events a run without
 * failures or interruptions sends: every way out of a condition, every variant of a split with a weight
 * above 0, every case of a branch that an earlier identical case does not shadow, the event and the
 * timeout of a wait. States are told apart by their step only, so the graph has one node per step and
 * is a DAG from the first step to `completed`; the figures are computed over it, linear in its size,
 * never by listing paths (a workflow of many conditions has more paths than could be listed).
 */

/** A `wait_until` waits at most a week for its next local time (any day of the week, any time). */
export const WAIT_UNTIL_BOUND_SECONDS = 7 * 24 * 3600;

/** Figures of the runs of a workflow. */
export interface WorkflowFigures {
  /** Longest total wait of one run, in seconds: `wait` its duration, `wait_until` up to 7 days, `wait_for_event` its timeout. */
  longest_wait_seconds: number;
  /** Most emails and SMS one run sends. */
  max_messages_per_path: number;
  /** Number of different ways from the first step to the end (capped at `Number.MAX_SAFE_INTEGER`). */
  paths: number;
}

/** What the graph says about a workflow. */
export interface WorkflowAnalysis {
  /** Ids of the steps no run reaches, in definition order. */
  unreachable: string[];
  /** The `wait_for_event` steps a run reaches, with the event each waits for. */
  eventWaits: { stepId: string; event: string }[];
  figures: WorkflowFigures;
}

/** A problem that is not an error: the workflow runs, but perhaps not as its designer meant. */
export type WorkflowWarning =
  | { code: 'unreachable_step'; step_id: string; message: string }
  | { code: 'unknown_event'; step_id: string; event: string; message: string };

type Snapshot = SnapshotFrom<WorkflowMachine>;

/** Analyzes a compiled workflow from its machine's graph. Pure. */
export function analyzeWorkflow(workflow: CompiledWorkflow): WorkflowAnalysis {
  const adjacency = getAdjacencyMap(workflow.machine, {
    serializeState: (snapshot) => String(snapshot.value),
    events: (snapshot) => runEvents(workflow, snapshot),
    stopWhen: (snapshot) => snapshot.status === 'done',
  });
  const successors = new Map<string, string[]>();
  for (const [state, { transitions }] of Object.entries(adjacency))
    successors.set(
      state,
      Object.values(transitions)
        .map((edge) => String((edge as { state: Snapshot }).state.value))
        .filter((next) => next !== state),
    );

  // The config lists states in definition order (compile.ts), the steps map in compile order.
  const inOrder = Object.keys(workflow.config.states ?? {}).filter((id) => workflow.steps.has(id));
  const unreachable = inOrder.filter((id) => !successors.has(id));
  const eventWaits = inOrder
    .map((id) => workflow.steps.get(id)!)
    .filter(({ step }) => step.type === 'wait_for_event' && successors.has(step.id))
    .map(({ step }) => ({ stepId: step.id, event: (step as { config: { event: string } }).config.event }));

  // Longest wait, most messages and number of paths from each state to `completed`, in one pass.
  const memo = new Map<string, { wait: number; messages: number; paths: number }>();
  const figuresFrom = (state: string): { wait: number; messages: number; paths: number } => {
    const known = memo.get(state);
    if (known) return known;
    let result = { wait: 0, messages: 0, paths: state === 'completed' ? 1 : 0 };
    for (const next of successors.get(state) ?? []) {
      const after = figuresFrom(next);
      if (after.paths === 0) continue;
      result = {
        wait: Math.max(result.wait, after.wait),
        messages: Math.max(result.messages, after.messages),
        paths: Math.min(result.paths + after.paths, Number.MAX_SAFE_INTEGER),
      };
    }
    const own = costOf(workflow, state);
    result = { ...result, wait: result.wait + own.wait, messages: result.messages + own.messages };
    memo.set(state, result);
    return result;
  };
  const initial = String(workflow.machine.config.initial);
  const fromStart = figuresFrom(initial);
  return {
    unreachable,
    eventWaits,
    figures: {
      longest_wait_seconds: fromStart.wait,
      max_messages_per_path: fromStart.messages,
      paths: fromStart.paths,
    },
  };
}

/**
 * The warnings of an analysis: each unreachable step, and each reachable `wait_for_event` whose event
 * no contact of the account has ever had (`seenEvents`: the names among the waits' events that some
 * contact of the account has had).
 */
export function warningsOf(analysis: WorkflowAnalysis, seenEvents: ReadonlySet<string>): WorkflowWarning[] {
  return [
    ...analysis.unreachable.map((stepId) => ({
      code: 'unreachable_step' as const,
      step_id: stepId,
      message: `step "${stepId}" is reached by no path (a split variant of weight 0, or a case an earlier identical case shadows)`,
    })),
    ...analysis.eventWaits
      .filter(({ event }) => !seenEvents.has(event))
      .map(({ stepId, event }) => ({
        code: 'unknown_event' as const,
        step_id: stepId,
        event,
        message: `step "${stepId}" waits for "${event}", which no contact of this account has ever had`,
      })),
  ];
}

/** What a run spends at a step: its longest wait in seconds, and the messages it sends. */
function costOf(workflow: CompiledWorkflow, state: string): { wait: number; messages: number } {
  const step = workflow.steps.get(state)?.step;
  if (!step) return { wait: 0, messages: 0 };
  switch (step.type) {
    case 'send_email':
    case 'send_sms':
      return { wait: 0, messages: 1 };
    case 'wait':
    case 'wait_for_event': {
      const entry = workflow.machine.states[state]?.entry.find((action) => typeof action === 'object');
      const params = (entry as { params?: { delayMs?: number; timeoutMs?: number } } | undefined)?.params ?? {};
      return { wait: Math.round((params.delayMs ?? params.timeoutMs ?? 0) / 1000), messages: 0 };
    }
    case 'wait_until':
      return { wait: WAIT_UNTIL_BOUND_SECONDS, messages: 0 };
    default:
      return { wait: 0, messages: 0 };
  }
}

/** The events a run without failures or interruptions may send in a state (see the module's comment). */
function runEvents(workflow: CompiledWorkflow, snapshot: Snapshot): ExecutionEvent[] {
  const step = workflow.steps.get(String(snapshot.value))?.step;
  if (!step) return [];
  switch (step.type) {
    case 'condition':
      return [
        { type: 'CONDITION_RESULT', result: true },
        { type: 'CONDITION_RESULT', result: false },
      ];
    case 'wait':
    case 'wait_until':
      return [{ type: 'TIMER_FIRED' }];
    case 'wait_for_event':
      return [{ type: 'EVENT_RECEIVED', event: step.config.event }, { type: 'TIMER_FIRED' }];
    case 'split':
      return step.config.variants
        .filter(({ weight }) => weight > 0)
        .map(({ id }) => ({ type: `${VARIANT_EVENT}${id}` }) as const);
    case 'branch': {
      // A case whose condition repeats an earlier one's is never the first to hold.
      const seen = new Set<string>();
      const open = step.config.cases.filter(({ when }) => {
        const key = JSON.stringify(when);
        if (seen.has(key)) return false;
        seen.add(key);
        return true;
      });
      return [...open.map(({ id }) => id), 'default'].map((id) => ({ type: `${CASE_EVENT}${id}` }) as const);
    }
    default:
      return [{ type: 'STEP_DONE' }];
  }
}
