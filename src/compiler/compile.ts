import { assign, setup, type MachineConfig } from 'xstate';
import { parseDuration } from '../definition/duration.ts';
import { DEFAULT_BRANCH, type Definition, type Step } from '../definition/schema.ts';
import type { CompletionReason, ExecutionStatus } from '../vocabulary.ts';

/** Terminal states of every compiled machine and the execution status each one means. */
export const FINAL_STATES = {
  completed: { status: 'COMPLETED', reason: 'completed' },
  goal_achieved: { status: 'COMPLETED', reason: 'goal_achieved' },
  failed: { status: 'FAILED', reason: 'max_retries_exhausted' },
  cancelled: { status: 'CANCELLED', reason: 'cancelled' },
} as const satisfies Record<string, { status: ExecutionStatus; reason: CompletionReason }>;
export type FinalState = keyof typeof FINAL_STATES;

/** Machine context: all an execution remembers besides which state it is in. */
export interface ExecutionContext {
  /** Steps finished on the path taken so far; the step the execution is at is the next, at position `steps + 1` (see engine/snapshot.ts). */
  steps: number;
  /** The step that exhausted its retries, where a manual retry resumes. */
  failedStep: string | null;
  /** Why the execution ended when that is not implied by the final state (e.g. `contact_deleted`). */
  reason: string | null;
}

/** Events the engine sends to a compiled machine. */
export type ExecutionEvent =
  | { type: 'STEP_DONE' }
  | { type: 'STEP_SKIPPED' }
  | { type: 'RETRY' }
  | { type: 'STEP_FAILED' }
  | { type: 'CONDITION_RESULT'; result: boolean }
  | { type: 'TIMER_FIRED' }
  | { type: 'EVENT_RECEIVED'; event: string }
  /** A `split` step chose this variant: `VARIANT.<variant id>`. */
  | { type: `${typeof VARIANT_EVENT}${string}` }
  /** A `branch` step took this case (or `default`): `CASE.<case id>`. */
  | { type: `${typeof CASE_EVENT}${string}` }
  | { type: 'GOAL' }
  | { type: 'CANCEL'; reason?: CompletionReason };

/**
 * Prefix of the events a `split` step's state takes, one per variant (`VARIANT.a`): one event per branch
 * rather than one event with a guard per branch, so the Stately visualizer labels each edge with its variant.
 */
export const VARIANT_EVENT = 'VARIANT.';
/** Prefix of the events a `branch` step's state takes, one per case and `CASE.default`. */
export const CASE_EVENT = 'CASE.';

/**
 * Effects, as named actions with params. The machine never runs them: `transition()` returns them
 * as data and the engine persists the new snapshot before executing them.
 */
export type Effect =
  | { type: 'executeAction'; params: { stepId: string } }
  | { type: 'evaluateCondition'; params: { stepId: string } }
  | { type: 'chooseVariant'; params: { stepId: string } }
  | { type: 'evaluateBranch'; params: { stepId: string } }
  | { type: 'startTimer'; params: { stepId: string; delayMs: number } }
  | { type: 'waitUntilLocalTime'; params: { stepId: string } }
  | { type: 'awaitEvent'; params: { stepId: string; event: string; timeoutMs: number } }
  | { type: 'finishExecution'; params: { state: FinalState } };

/** What the engine knows of each step of a compiled workflow. */
export interface StepInfo {
  step: Step;
  /** Longest number of steps from this one (included) to the end of the workflow. */
  remaining: number;
}

/** A definition compiled for execution. */
export interface CompiledWorkflow {
  machine: WorkflowMachine;
  /** Plain JSON machine config, importable into the Stately visualizer. */
  config: MachineConfig<ExecutionContext, ExecutionEvent>;
  steps: ReadonlyMap<string, StepInfo>;
  /** Length of the longest path through the workflow. */
  totalSteps: number;
  goalEvent: string | null;
  /** Whether a contact may be enrolled again (`always`, `after_completion`, `never`). */
  reentry: Definition['reentry'];
  /** The definition it was compiled from (its trigger, send window and exit event). */
  definition: Definition;
}

type StateConfig = Record<string, unknown>;

/**
 * Compiles a validated definition into an XState v5 machine. Pure: the machine's actions are named
 * effects with params, and guards only look at the event, so the same definition always yields the
 * same machine.
 */
export function compileWorkflow(definition: Definition, id = 'workflow'): CompiledWorkflow {
  const states: Record<string, StateConfig> = {};
  const steps = new Map<string, StepInfo>();

  // Compiles `list` so that its last step continues to `next`; returns the entry state and the longest remaining length.
  const compileSequence = (list: Step[], next: string, nextRemaining: number): [string, number] => {
    let target = next;
    let remaining = nextRemaining;
    for (const step of [...list].reverse()) {
      remaining = compileStep(step, target, remaining);
      target = step.id;
    }
    return [target, remaining];
  };

  const advance = (target: string) => ({ target, actions: 'countStepAssign' });

  const compileStep = (step: Step, next: string, nextRemaining: number): number => {
    let remaining = nextRemaining + 1;
    switch (step.type) {
      case 'wait':
        states[step.id] = {
          entry: { type: 'startTimer', params: { stepId: step.id, delayMs: parseDuration(step.config.duration) } },
          on: { TIMER_FIRED: advance(next) },
        };
        break;
      case 'wait_until':
        states[step.id] = {
          entry: { type: 'waitUntilLocalTime', params: { stepId: step.id } },
          on: { TIMER_FIRED: advance(next) },
        };
        break;
      case 'wait_for_event': {
        const [onReceived, receivedRemaining] = compileSequence(step.branches.received, next, nextRemaining);
        const [onTimeout, timeoutRemaining] = compileSequence(step.branches.timeout, next, nextRemaining);
        remaining = 1 + Math.max(receivedRemaining, timeoutRemaining);
        const { event, timeout } = step.config;
        states[step.id] = {
          entry: { type: 'awaitEvent', params: { stepId: step.id, event, timeoutMs: parseDuration(timeout) } },
          on: { EVENT_RECEIVED: advance(onReceived), TIMER_FIRED: advance(onTimeout) },
        };
        break;
      }
      case 'condition': {
        const [onTrue, trueRemaining] = compileSequence(step.branches.true, next, nextRemaining);
        const [onFalse, falseRemaining] = compileSequence(step.branches.false, next, nextRemaining);
        remaining = 1 + Math.max(trueRemaining, falseRemaining);
        states[step.id] = {
          entry: { type: 'evaluateCondition', params: { stepId: step.id } },
          on: { CONDITION_RESULT: [{ guard: 'conditionTrue', ...advance(onTrue) }, advance(onFalse)] },
        };
        break;
      }
      case 'split':
      case 'branch': {
        // One transition per branch, in the order of the variants (cases, then `default`).
        const keys =
          step.type === 'split'
            ? step.config.variants.map((variant) => variant.id)
            : [...step.config.cases.map((c) => c.id), DEFAULT_BRANCH];
        const prefix = step.type === 'split' ? VARIANT_EVENT : CASE_EVENT;
        const on: Record<string, unknown> = {};
        let longest = 0;
        for (const key of keys) {
          const [target, branchRemaining] = compileSequence(step.branches[key] ?? [], next, nextRemaining);
          on[`${prefix}${key}`] = advance(target);
          longest = Math.max(longest, branchRemaining);
        }
        remaining = 1 + longest;
        const effect = step.type === 'split' ? 'chooseVariant' : 'evaluateBranch';
        states[step.id] = { entry: { type: effect, params: { stepId: step.id } }, on };
        break;
      }
      default:
        states[step.id] = {
          entry: { type: 'executeAction', params: { stepId: step.id } },
          on: {
            STEP_DONE: advance(next),
            STEP_SKIPPED: advance(next),
            RETRY: { target: step.id, reenter: true },
            STEP_FAILED: { target: 'failed', actions: { type: 'rememberFailedStep', params: { stepId: step.id } } },
          },
        };
    }
    steps.set(step.id, { step, remaining });
    return remaining;
  };

  const [initial, totalSteps] = compileSequence(definition.steps, 'completed', 0);
  for (const state of Object.keys(FINAL_STATES) as FinalState[]) {
    states[state] = { type: 'final', entry: { type: 'finishExecution', params: { state } } };
  }

  // States in the order designers read them: steps depth-first, then the terminal states.
  const order: string[] = [];
  const collect = (list: Step[]) =>
    list.forEach((step) => {
      order.push(step.id);
      if (step.type === 'condition') {
        collect(step.branches.true);
        collect(step.branches.false);
      }
      if (step.type === 'wait_for_event') {
        collect(step.branches.received);
        collect(step.branches.timeout);
      }
      if (step.type === 'split') for (const { id } of step.config.variants) collect(step.branches[id] ?? []);
      if (step.type === 'branch')
        for (const key of [...step.config.cases.map((c) => c.id), DEFAULT_BRANCH]) collect(step.branches[key] ?? []);
    });
  collect(definition.steps);
  const orderedStates = Object.fromEntries(
    [...order, ...Object.keys(FINAL_STATES)].map((name) => [name, states[name]]),
  );

  const config = {
    id,
    initial,
    context: { steps: 0, failedStep: null, reason: null },
    on: {
      GOAL: { target: '.goal_achieved' },
      CANCEL: { target: '.cancelled', actions: 'rememberReason' },
    },
    states: orderedStates,
  } as unknown as MachineConfig<ExecutionContext, ExecutionEvent>;

  return {
    machine: buildMachine(config),
    config,
    steps,
    totalSteps,
    goalEvent: definition.goal?.event ?? null,
    reentry: definition.reentry,
    definition,
  };
}

/** Builds the runnable machine from a JSON config, supplying the pure assignments and guard it names. */
export function buildMachine(config: MachineConfig<ExecutionContext, ExecutionEvent>) {
  return setup({
    types: { context: {} as ExecutionContext, events: {} as ExecutionEvent },
    actions: {
      countStepAssign: assign({ steps: ({ context }) => context.steps + 1 }),
      rememberFailedStep: assign({ failedStep: (_, params: { stepId: string }) => params.stepId }),
      rememberReason: assign({ reason: ({ event }) => (event.type === 'CANCEL' ? (event.reason ?? null) : null) }),
    },
    guards: {
      conditionTrue: ({ event }) => event.type === 'CONDITION_RESULT' && event.result,
    },
  }).createMachine(config as never);
}

/** The XState machine of a compiled workflow. */
export type WorkflowMachine = ReturnType<typeof buildMachine>;
