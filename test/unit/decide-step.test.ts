import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ActionResult } from '../../src/actions/action.ts';
import { createManualClock } from '../../src/clock.ts';
import type { CompiledWorkflow } from '../../src/compiler/compile.ts';
import {
  type Decision,
  decideChange,
  decideStep,
  deferSend,
  dueEffect,
  type EffectOutcome,
  followUp,
  gateJob,
  type Pending,
  type Policy,
  slotOp,
  type StepContext,
} from '../../src/engine/decide-step.ts';
import type { LoadedExecution } from '../../src/engine/load.ts';
import { storeSnapshot } from '../../src/engine/snapshot.ts';
import type { ExecutionStatus } from '../../src/engine/types.ts';
import type { CommitResult, ExecutionRow, LogRow } from '../../src/store/execution-store.ts';
import { initialTransition } from 'xstate';
import { compileSteps, executionRow, TEST_ACCOUNT, TEST_CONTACT, TEST_POLICY } from '../helpers/engine-rows.ts';

const POLICY: Policy = TEST_POLICY;
const T0 = new Date('2026-03-01T10:00:00.000Z');

const compile = compileSteps;

/** A loaded execution at `at` (a step id or final state), as the store would answer it. */
function loadedAt(
  workflow: CompiledWorkflow,
  at: string,
  fields: Partial<ExecutionRow> & { tags?: string[]; steps?: number } = {},
): LoadedExecution {
  const { tags = [], steps = 0, ...rest } = fields;
  const row = executionRow({
    snapshot: { value: at, context: { steps, failedStep: null, reason: null } },
    currentStepIndex: steps + 1,
    totalSteps: workflow.totalSteps,
    createdAt: T0,
    updatedAt: T0,
    // Copies: some tests change the contact or the account of the row they get.
    contact: { ...TEST_CONTACT, tags },
    account: { ...TEST_ACCOUNT },
    ...rest,
  });
  return { row, workflow };
}

const context = (loaded: LoadedExecution, now = T0, extra: Partial<StepContext> = {}): StepContext => ({
  loaded,
  now,
  policy: POLICY,
  ...extra,
});

const action = (result: ActionResult, actionType = 'send_email'): EffectOutcome => ({
  kind: 'action',
  result,
  startedAt: new Date(T0.getTime() - 120),
  durationMs: 120,
  actionType,
});

const provider = { provider: 'email', providerKind: 'email', details: {} };
const OUTCOMES: Record<string, ActionResult> = {
  success: { kind: 'success', details: {} },
  skipped: { kind: 'skipped', reason: 'contact_opted_out', details: {} },
  permanent: { kind: 'permanent', status: 400, error: 'HTTP 400', ...provider },
  rate_limited: { kind: 'rate_limited', status: 429, error: 'HTTP 429', retryAfterMs: 30_000, ...provider },
  held: {
    kind: 'rate_limited',
    status: 429,
    error: 'held back',
    retryAfterMs: 10_000,
    ...provider,
    details: { held: true },
  },
  transient: { kind: 'transient', status: 503, error: 'HTTP 503', ...provider },
};

const eventTypes = (decision: Decision | null) => decision!.logRows.map((row) => row.event_type);

const ACTIONS = [
  { id: 'mail', type: 'send_email', config: { subject: 'Hi', body: 'Hello' } },
  { id: 'text', type: 'send_sms', config: { body: 'Hi' } },
  { id: 'hook', type: 'webhook', config: { url: 'https://hooks.example.com/x', method: 'POST' } },
];

/** outcome, retries already made, status, next run (ms after now) or null, log event types, machine state after */
type Expectation = [string, number, string, number | null, string[], string];

describe('decideStep: every action step type × provider outcome × retries left', () => {
  const cases = ACTIONS.flatMap((step) =>
    (
      [
        ['success', 0, 'COMPLETED', null, ['action_started', 'action_completed', 'execution_completed'], 'completed'],
        ['skipped', 0, 'COMPLETED', null, ['action_started', 'skipped_opted_out', 'execution_completed'], 'completed'],
        [
          'permanent',
          0,
          'COMPLETED',
          null,
          ['action_started', 'action_failed', 'skipped_non_retryable_error', 'execution_completed'],
          'completed',
        ],
        ['rate_limited', 0, 'ACTIVE', 30_000, ['action_started', 'rate_limit_hit'], step.id],
        ['held', 0, 'ACTIVE', 10_000, ['action_started', 'action_delayed'], step.id],
        ['transient', 0, 'ACTIVE', 60_000, ['action_started', 'action_failed', 'retry_scheduled'], step.id],
        ['transient', 2, 'ACTIVE', 240_000, ['action_started', 'action_failed', 'retry_scheduled'], step.id],
        [
          'transient',
          3,
          'FAILED',
          null,
          ['action_started', 'action_failed', 'max_retries_exhausted', 'execution_failed'],
          'failed',
        ],
      ] as Expectation[]
    ).map(([outcome, retries, status, ...rest]) => [step.type, outcome, retries, status, ...rest, step] as const),
  );

  it.each(cases)('%s: %s after %i retries → %s', (_, outcome, retries, status, nextInMs, logs, state, step) => {
    const workflow = compile([step]);
    const loaded = loadedAt(workflow, step.id, { retryCount: retries });
    const effect = dueEffect(workflow, loaded.row.snapshot as never)!;
    expect(effect).toEqual({ type: 'executeAction', params: { stepId: step.id } });
    const decision = decideStep(context(loaded), effect, action(OUTCOMES[outcome]!, step.type))!;
    expect(decision.set.status).toBe(status);
    expect(decision.set.snapshot.value).toBe(state);
    expect(decision.set.nextRunAt?.getTime() ?? null).toBe(nextInMs === null ? null : T0.getTime() + nextInMs);
    expect(eventTypes(decision)).toEqual(logs);
    expect(decision.slot).toBe(status === 'ACTIVE' ? 'keep' : 'release');
    expect(decision.next.kind).toBe('commit');
    // Every entry is of this execution and step (or of the execution, for the final ones).
    for (const entry of decision.logRows.filter((r) => r.event_type.startsWith('action')))
      expect(entry).toMatchObject({ step_id: step.id, step_index: 1, contact_id: loaded.row.contactId });
    if (status === 'FAILED') {
      expect(decision.failure).toBe('HTTP 503');
      expect(decision.set).toMatchObject({ notifyPending: true, completionReason: 'max_retries_exhausted' });
    } else expect(decision.failure).toBeUndefined();
    if (outcome === 'transient' && status === 'ACTIVE') expect(decision.set.retryCount).toBe(retries + 1);
  });

  it('masks personal data in stored details and errors', () => {
    const workflow = compile([ACTIONS[0]]);
    const loaded = loadedAt(workflow, 'mail');
    const leak: ActionResult = { ...OUTCOMES.transient!, error: 'mailbox ada@example.com is full' } as ActionResult;
    const decision = decideStep(context(loaded), dueEffect(workflow, loaded.row.snapshot as never)!, action(leak))!;
    expect(JSON.stringify(decision.logRows)).not.toContain('ada@example.com');
    expect(decision.set.lastError).not.toContain('ada@example.com');
  });

  it('counts what the engine observes: retries, provider 429s (not holds), timer lateness', () => {
    const workflow = compile([ACTIONS[0]]);
    const loaded = loadedAt(workflow, 'mail');
    const effect = dueEffect(workflow, loaded.row.snapshot as never)!;
    expect(decideStep(context(loaded), effect, action(OUTCOMES.transient!))!.signals).toEqual({ retry: 'send_email' });
    expect(decideStep(context(loaded), effect, action(OUTCOMES.rate_limited!))!.signals).toEqual({
      rateLimitHit: 'email',
    });
    expect(decideStep(context(loaded), effect, action(OUTCOMES.held!))!.signals).toEqual({});
  });
});

describe('decideStep: a message its frequency cap holds back', () => {
  it('is PAUSED at the same step until the cap allows it, logs frequency_capped and gives its slot back', () => {
    const step = { id: 'promo', type: 'send_email', config: { subject: 'Hi', body: 'Hello' } };
    const workflow = compile([step]);
    const loaded = loadedAt(workflow, 'promo');
    const effect = dueEffect(workflow, loaded.row.snapshot as never)!;
    const resumeAt = new Date('2026-03-02T09:00:00.000Z');
    const decision = decideStep(context(loaded), effect, { kind: 'capped', channel: 'email', resumeAt })!;
    expect(decision.set).toMatchObject({ status: 'PAUSED', nextRunAt: resumeAt });
    expect(decision.set.snapshot.value).toBe('promo');
    expect(decision.slot).toBe('release');
    expect(decision.next.kind).toBe('commit');
    expect(decision.logRows).toEqual([
      expect.objectContaining({
        event_type: 'frequency_capped',
        status: 'PAUSED',
        step_id: 'promo',
        details: { channel: 'email', resume_at: '2026-03-02T09:00:00.000Z' },
      }),
    ]);
  });
});

describe('decideStep: a webhook that saves data from its answer (save_response)', () => {
  const hook = {
    id: 'lookup',
    type: 'webhook',
    config: { url: 'https://crm.example.com/lookup', save_response: { tier: 'data.tier' } },
  };
  const gold = {
    id: 'is_gold',
    type: 'condition',
    config: { field: 'tier', operator: 'equals', value: 'gold' },
    branches: {
      true: [{ id: 'gold_mail', type: 'send_email', config: { subject: 'Hi', body: 'Gold' } }],
      false: [{ id: 'plain_mail', type: 'send_email', config: { subject: 'Hi', body: 'Plain' } }],
    },
  };
  const saved: ActionResult = { kind: 'success', details: { saved: ['tier'] }, attributes: { tier: 'gold' } };

  it('hands the attributes to the commit', () => {
    const workflow = compile([hook]);
    const loaded = loadedAt(workflow, 'lookup');
    const effect = dueEffect(workflow, loaded.row.snapshot as never)!;
    const decision = decideStep(context(loaded), effect, action(saved, 'webhook'))!;
    expect(decision.attributes).toEqual({ tier: 'gold' });
    expect(decision.next.kind).toBe('commit');
  });

  it('writes no attributes for a step that saved none', () => {
    const workflow = compile([hook]);
    const loaded = loadedAt(workflow, 'lookup');
    const effect = dueEffect(workflow, loaded.row.snapshot as never)!;
    const decision = decideStep(context(loaded), effect, action({ kind: 'success', details: {} }, 'webhook'))!;
    expect(decision).not.toHaveProperty('attributes');
  });

  it('staged before a condition: the condition sees them, and its commit writes them', () => {
    const workflow = compile([hook, gold]);
    const loaded = loadedAt(workflow, 'lookup');
    const effect = dueEffect(workflow, loaded.row.snapshot as never)!;
    const staged = decideStep(context(loaded, T0, { canContinue: true }), effect, action(saved, 'webhook'))!;
    if (staged.next.kind !== 'stage') throw new Error('the webhook step was not staged');
    const { next } = staged.next;
    expect(next.loaded.row.contact.attributes).toEqual({ plan: 'pro', tier: 'gold' });
    const condition = dueEffect(workflow, next.loaded.row.snapshot as never)!;
    const decision = decideStep(context(next.loaded, T0, { pending: next.pending }), condition, { kind: 'none' })!;
    expect(decision.set.snapshot.value).toBe('gold_mail');
    expect(decision.attributes).toEqual({ tier: 'gold' });
  });
});

describe('decideStep: tags, conditions and waits', () => {
  it.each([
    ['add_tag', 'add'],
    ['remove_tag', 'remove'],
  ])('%s carries its tag change into the commit', (type, op) => {
    const workflow = compile([{ id: 't', type, config: { tag: 'VIP' } }, ACTIONS[0]]);
    const loaded = loadedAt(workflow, 't');
    const decision = decideStep(context(loaded), dueEffect(workflow, loaded.row.snapshot as never)!, {
      ...action({ kind: 'success', details: { tag: 'VIP' }, tagChange: { op: op as 'add', tag: 'VIP' } }, type),
    })!;
    expect(decision.tagChange).toEqual({ op, tag: 'VIP' });
    expect(decision.set).toMatchObject({ status: 'ACTIVE', snapshot: { value: 'mail' }, currentStepIndex: 2 });
  });

  it.each([
    [['VIP'], true, 'yes'],
    [[], false, 'no'],
  ])('a condition on tags %o is %s and takes its branch', (tags, result, next) => {
    const workflow = compile([
      {
        id: 'vip',
        type: 'condition',
        config: { has_tag: 'VIP' },
        branches: { true: [{ ...ACTIONS[0], id: 'yes' }], false: [{ ...ACTIONS[1], id: 'no' }] },
      },
    ]);
    const loaded = loadedAt(workflow, 'vip', { tags });
    const effect = dueEffect(workflow, loaded.row.snapshot as never)!;
    expect(effect.type).toBe('evaluateCondition');
    const decision = decideStep(context(loaded), effect, { kind: 'none' })!;
    expect(decision.set.snapshot.value).toBe(next);
    expect(decision.logRows[0]).toMatchObject({ event_type: 'condition_evaluated', details: { result } });
  });

  const waitFlow = () => compile([{ id: 'pause', type: 'wait', config: { duration: '2 hours' } }, ACTIONS[0]]);

  it('a wait entered by a step starts its timer: PAUSED until then, slot given back', () => {
    const workflow = compile([
      { id: 't', type: 'add_tag', config: { tag: 'x' } },
      { id: 'pause', type: 'wait', config: { duration: '2 hours' } },
    ]);
    const loaded = loadedAt(workflow, 't');
    const decision = decideStep(
      context(loaded),
      dueEffect(workflow, loaded.row.snapshot as never)!,
      action(OUTCOMES.success!, 'add_tag'),
    )!;
    expect(decision.set).toMatchObject({ status: 'PAUSED', nextRunAt: new Date(T0.getTime() + 7_200_000) });
    expect(decision.slot).toBe('release');
    expect(eventTypes(decision)).toEqual(['action_started', 'action_completed', 'wait_started']);
  });

  it('a wait admitted with no timer (the workflow starts with it) starts the timer, without a transition', () => {
    const workflow = waitFlow();
    const loaded = loadedAt(workflow, 'pause');
    const decision = decideStep(context(loaded), dueEffect(workflow, loaded.row.snapshot as never)!, { kind: 'none' })!;
    expect(decision.set).toMatchObject({ status: 'PAUSED', snapshot: { value: 'pause' } });
    expect(decision.set.nextRunAt).toEqual(new Date(T0.getTime() + 7_200_000));
    expect(decision.logRows[0]).toMatchObject({ event_type: 'wait_started', step_id: 'pause' });
  });

  it('a timer that fired late moves on, logging its lateness; the next action is due at once', () => {
    const workflow = waitFlow();
    const due = new Date(T0.getTime() - 1500);
    const loaded = loadedAt(workflow, 'pause', { nextRunAt: due });
    const decision = decideStep(context(loaded), dueEffect(workflow, loaded.row.snapshot as never)!, { kind: 'none' })!;
    expect(decision.set).toMatchObject({ status: 'ACTIVE', snapshot: { value: 'mail' }, nextRunAt: null });
    expect(decision.logRows[0]).toMatchObject({ event_type: 'wait_completed', details: { lateness_ms: 1500 } });
    expect(decision.signals).toEqual({ timerLatenessMs: 1500 });
  });
});

describe('gateJob: what a job may do with what its load found', () => {
  const workflow = compile([{ id: 'pause', type: 'wait', config: { duration: '1 hour' } }, ACTIONS[0]]);
  const read = (fields: Partial<ExecutionRow>, admitted: string | null = null, at = 'mail') => ({
    loaded: loadedAt(workflow, at, fields),
    admitted,
  });
  const job = { executionId: '00000000-0000-4000-8000-000000000001', version: 3 };
  type Case = [string, string, ReturnType<typeof read> | null, typeof job & { redelivered?: boolean }];

  it.each<Case>([
    ['no row', 'stop:missing', null, job],
    ['an older job', 'stop:stale', read({ version: 4 }), job],
    ['a newer row after a redelivery', 'stop:stale:resume', read({ version: 4 }), { ...job, redelivered: true }],
    ['no free slot at admission', 'stop:waiting_in_line', read({ status: 'QUEUED' }, 'QUEUED'), job],
    ['waiting in line already', 'stop:stale', read({ status: 'QUEUED', waiting: true }), job],
    ['QUEUED, not admitted here', 'stop:waiting_in_line', read({ status: 'QUEUED' }), job],
    ...(['COMPLETED', 'FAILED', 'CANCELLED'] as const).map(
      (status): Case => [`a ${status} execution`, 'stop:stale', read({ status }), job],
    ),
    ['a final state', 'stop:stale', read({}, null, 'completed'), job],
    ['due in 6 ms', 'reschedule', read({ nextRunAt: new Date(T0.getTime() + 6) }), job],
    ['due in 5 ms (within the tolerance)', 'run:executeAction', read({ nextRunAt: new Date(T0.getTime() + 5) }), job],
    ['a deleted contact', 'cancel', read({ contact: { ...read({}).loaded.row.contact, deletedAt: T0 } }), job],
    ['admitted now', 'run:executeAction', read({ status: 'QUEUED' }, 'ACTIVE'), job],
    ['PAUSED with its timer due', 'run:startTimer', read({ status: 'PAUSED', nextRunAt: T0 }, 'ACTIVE', 'pause'), job],
  ])('%s → %s', (_, expected, found, theJob) => {
    const gate = gateJob(theJob, found, T0);
    const summary =
      gate.kind === 'stop'
        ? `stop:${gate.outcome}${gate.resumeLostChain ? ':resume' : ''}`
        : gate.kind === 'run'
          ? `run:${gate.effect.type}`
          : gate.kind;
    expect(summary).toBe(expected);
    // Admission moved the row on: the step commits at the version after it.
    if (gate.kind === 'run' && found?.admitted === 'ACTIVE')
      expect(gate.loaded.row).toMatchObject({ status: 'ACTIVE', version: 4 });
  });
});

describe('decideChange: operators, goals and slots', () => {
  const workflow = compile([ACTIONS[0]], { goal: { event: 'booked' } });

  it('a cancel ends a running execution, remembering why and who', () => {
    const decision = decideChange(context(loadedAt(workflow, 'mail', { status: 'PAUSED' })), {
      event: { type: 'CANCEL', reason: 'cancelled' },
      logs: [],
      userId: '00000000-0000-4000-8000-0000000000e1',
    })!;
    expect(decision.set).toMatchObject({ status: 'CANCELLED', completionReason: 'cancelled', finishedAt: T0 });
    expect(decision.logRows).toMatchObject([
      { event_type: 'execution_cancelled', user_id: '00000000-0000-4000-8000-0000000000e1' },
    ]);
    expect(decision.slot).toBe('keep'); // PAUSED held no slot
  });

  it('a goal completes it with both entries', () => {
    const decision = decideChange(context(loadedAt(workflow, 'mail')), { event: { type: 'GOAL' }, logs: [] })!;
    expect(decision.set).toMatchObject({ status: 'COMPLETED', completionReason: 'goal_achieved' });
    expect(eventTypes(decision)).toEqual(['goal_achieved', 'execution_completed']);
    expect(decision.slot).toBe('release');
  });

  it('refuses an event to a finished execution', () => {
    expect(
      decideChange(context(loadedAt(workflow, 'completed', { status: 'COMPLETED' })), {
        event: { type: 'GOAL' },
        logs: [],
      }),
    ).toBeNull();
  });

  it.each([
    ['ACTIVE', 'ACTIVE', 'keep'],
    ['PAUSED', 'PAUSED', 'keep'],
    ['ACTIVE', 'PAUSED', 'release'],
    ['ACTIVE', 'COMPLETED', 'release'],
    ['QUEUED', 'ACTIVE', 'acquire'],
    ['PAUSED', 'ACTIVE', 'acquire_in_line'],
    ['FAILED', 'QUEUED', 'keep'],
  ] as const)('slot: %s → %s is %s', (from, to, op) => {
    expect(slotOp(from, to)).toBe(op);
  });
});

describe('followUp: what comes after the commit', () => {
  const workflow = compile([ACTIONS[0], ACTIONS[1]]);
  const result = (status: ExecutionStatus, extra: Partial<CommitResult> = {}): CommitResult => ({
    new_status: status as CommitResult['new_status'],
    new_waiting: false,
    admitted: null,
    contact: null,
    enrolled: null,
    ...extra,
  });
  const decided = (loaded: LoadedExecution, at: StepContext) =>
    decideStep(at, dueEffect(workflow, loaded.row.snapshot as never)!, action(OUTCOMES.success!))!;

  it('continues in the job with the committed contact when the next step is due at once', () => {
    const loaded = loadedAt(workflow, 'mail');
    const at = context(loaded, T0, { canContinue: true });
    const after = followUp(at, decided(loaded, at), result('ACTIVE', { contact: loaded.row.contact }));
    expect(after.next).toMatchObject({
      executionId: loaded.row.id,
      version: 4,
      loaded: { row: { version: 4, status: 'ACTIVE' } },
    });
    expect(after.work).toEqual([]);
  });

  it('enqueues it otherwise, and the executions the freed slot admitted', () => {
    const loaded = loadedAt(workflow, 'mail');
    const at = context(loaded);
    const admitted = [{ executionId: '00000000-0000-4000-8000-0000000000f1', version: 0 }];
    const after = followUp(at, decided(loaded, at), result('ACTIVE', { admitted }));
    expect(after.work).toEqual([
      { executionId: loaded.row.id, version: 4, delayMs: 0, trace: loaded.row.traceContext },
      ...admitted,
    ]);
  });

  it('enqueues nothing for an execution put in line, and keeps far timers in Postgres', () => {
    const loaded = loadedAt(workflow, 'mail');
    const at = context(loaded);
    expect(followUp(at, decided(loaded, at), result('QUEUED', { new_waiting: true })).work).toEqual([]);
    const far = {
      ...decided(loaded, at),
      set: {
        ...decided(loaded, at).set,
        status: 'PAUSED' as const,
        nextRunAt: new Date(T0.getTime() + 2 * 86_400_000),
      },
    };
    expect(followUp(at, far, result('PAUSED')).work).toEqual([]);
  });
});

/**
 * The property the staging rule must keep: a chain of steps run in one job, staging what it may into the
 * next commit, leaves the same execution row, contact tags and log rows as the same steps each committed
 * on its own. The commit is modelled as flowmachine_commit applies it (prisma/functions/flowmachine_commit.sql);
 * test/integration/engine-property.test.ts checks the engine against real Postgres.
 */
describe('staged then committed = committed one by one', () => {
  interface Stored {
    row: ExecutionRow;
    logs: LogRow[];
  }

  function applyCommit(stored: Stored, decision: Decision): CommitResult {
    const { set } = decision;
    let tags = stored.row.contact.tags;
    if (decision.tagChange) {
      const others = tags.filter((t) => t !== decision.tagChange!.tag);
      tags = decision.tagChange.op === 'add' ? [...others, decision.tagChange.tag] : others;
    }
    const contact = { ...stored.row.contact, tags };
    stored.row = {
      ...stored.row,
      status: set.status,
      snapshot: set.snapshot as never,
      version: stored.row.version + 1,
      currentStepIndex: set.status === 'ACTIVE' ? Math.max(set.currentStepIndex, 1) : set.currentStepIndex,
      totalSteps: set.totalSteps,
      nextRunAt: set.nextRunAt,
      completionReason: set.completionReason,
      retryCount: set.retryCount ?? stored.row.retryCount,
      lastError: set.lastError === undefined ? stored.row.lastError : set.lastError,
      finishedAt: set.finishedAt ?? stored.row.finishedAt,
      waitingEvent: set.waitingEvent === undefined ? stored.row.waitingEvent : set.waitingEvent,
      updatedAt: set.updatedAt,
      contact,
    };
    stored.logs.push(...decision.logRows);
    return {
      new_status: set.status,
      new_waiting: false,
      admitted: null,
      contact: set.status === 'ACTIVE' ? contact : null,
      enrolled: null,
    };
  }

  /** Runs the execution to its end (or a wait), `chained` as a worker with room to continue, else one step per job. */
  function runToRest(workflow: CompiledWorkflow, tags: string[], outcomes: ActionResult[], chained: boolean): Stored {
    const clock = createManualClock(T0);
    const start = storeSnapshot(initialTransition(workflow.machine)[0]);
    const stored: Stored = { row: loadedAt(workflow, start.value, { tags, version: 1 }).row, logs: [] };
    let carried: { loaded: LoadedExecution; pending?: Pending } | undefined;
    const queue = outcomes.slice();
    for (let guard = 0; guard < 50; guard += 1) {
      // A due timer is resumed in the job's load, as flowmachine_admit_loaded does: ACTIVE at the next version.
      if (!carried && stored.row.status === 'PAUSED' && stored.row.nextRunAt) {
        clock.set(stored.row.nextRunAt);
        stored.row = { ...stored.row, status: 'ACTIVE', version: stored.row.version + 1, updatedAt: clock.now() };
      }
      const loaded = carried?.loaded ?? { row: stored.row, workflow };
      const gate = gateJob(
        { executionId: loaded.row.id, version: loaded.row.version },
        { loaded, admitted: null },
        clock.now(),
      );
      if (gate.kind !== 'run') break;
      const outcome: EffectOutcome =
        gate.effect.type === 'executeAction' ? action(queue.shift() ?? OUTCOMES.success!) : { kind: 'none' };
      const at = context(gate.loaded, clock.now(), { canContinue: chained, pending: carried?.pending });
      const decision = decideStep(at, gate.effect, outcome)!;
      clock.advance(1);
      if (decision.next.kind === 'stage') {
        carried = decision.next.next;
        continue;
      }
      const after = followUp(at, decision, applyCommit(stored, decision));
      carried = after.next;
      if (!after.next && stored.row.status !== 'ACTIVE' && stored.row.status !== 'PAUSED') break;
    }
    return stored;
  }

  const STEP = fc.oneof(
    fc.constantFrom('A', 'B').map((tag) => ({ type: 'add_tag', config: { tag } })),
    fc.constantFrom('A', 'B').map((tag) => ({ type: 'remove_tag', config: { tag } })),
    fc.constant({ type: 'send_email', config: { subject: 'Hi', body: 'Hello' } }),
    fc.integer({ min: 1, max: 90 }).map((n) => ({ type: 'wait', config: { duration: `${n} seconds` } })),
  );
  const stepsArb: fc.Arbitrary<unknown[]> = fc.array(
    fc.oneof(
      { weight: 4, arbitrary: STEP },
      {
        weight: 1,
        arbitrary: fc
          .tuple(fc.constantFrom('A', 'B'), fc.array(STEP, { maxLength: 3 }), fc.array(STEP, { maxLength: 3 }))
          .map(([tag, yes, no]) => ({
            type: 'condition',
            config: { has_tag: tag },
            branches: { true: yes, false: no },
          })),
      },
    ),
    { minLength: 1, maxLength: 8 },
  );
  const withIds = (steps: unknown[], prefix = 's'): unknown[] =>
    steps.map((step, i) => {
      const s = step as { branches?: { true: unknown[]; false: unknown[] } };
      const id = `${prefix}${i}`;
      return s.branches
        ? {
            ...s,
            id,
            branches: { true: withIds(s.branches.true, `${id}t`), false: withIds(s.branches.false, `${id}f`) },
          }
        : { ...s, id };
    });

  it('holds for random workflows, tags and provider outcomes', () => {
    fc.assert(
      fc.property(
        stepsArb,
        fc.subarray(['A', 'B']),
        fc.array(fc.constantFrom('success', 'skipped', 'permanent', 'transient'), { maxLength: 4 }),
        (steps, tags, outcomes) => {
          const workflow = compile(withIds(steps));
          const results = outcomes.map((o) => OUTCOMES[o]!);
          const chained = runToRest(workflow, tags, results, true);
          const alone = runToRest(workflow, tags, results, false);
          const { version: _v1, updatedAt: _u1, ...chainedRow } = chained.row;
          const { version: _v2, updatedAt: _u2, ...aloneRow } = alone.row;
          expect(chainedRow).toEqual(aloneRow);
          expect(chained.logs).toEqual(alone.logs);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('decideStep: journeys (wait_until, wait_for_event, send windows, opt-out)', () => {
  const mail = { id: 'mail', type: 'send_email', config: { subject: 'Hi', body: 'Hello' } };

  it.each([
    // contact zone, account default, now (UTC), expected resume (UTC), fallback reported
    ['America/New_York', 'UTC', '2026-03-06T15:00:00.000Z', '2026-03-07T14:00:00.000Z', false],
    ['Asia/Kolkata', 'UTC', '2026-03-06T02:00:00.000Z', '2026-03-06T03:30:00.000Z', false],
    [null, 'Europe/Berlin', '2026-03-06T09:00:00.000Z', '2026-03-07T08:00:00.000Z', false],
    ['Mars/Olympus_Mons', 'Europe/Berlin', '2026-03-06T09:00:00.000Z', '2026-03-07T08:00:00.000Z', true],
  ] as const)(
    'wait_until 09:00 for a contact in %s (account %s) at %s → %s',
    (zone, fallback, now, resume, reported) => {
      const workflow = compile([
        { id: 't', type: 'add_tag', config: { tag: 'x' } },
        { id: 'morning', type: 'wait_until', config: { time: '09:00' } },
        mail,
      ]);
      const loaded = loadedAt(workflow, 't');
      loaded.row.contact.timezone = zone;
      loaded.row.account.defaultTimezone = fallback;
      const at = new Date(now);
      const decision = decideStep(
        context(loaded, at),
        dueEffect(workflow, loaded.row.snapshot as never)!,
        action(OUTCOMES.success!, 'add_tag'),
      )!;
      expect(decision.set).toMatchObject({ status: 'PAUSED', nextRunAt: new Date(resume) });
      const started = decision.logRows.find((row) => row.event_type === 'wait_started')!;
      expect(started.details).toMatchObject({ resume_at: resume, time: '09:00' });
      expect(!!started.details.timezone_fallback).toBe(reported);
      expect(decision.slot).toBe('release');
    },
  );

  const waiting = () =>
    compile([
      {
        id: 'cart',
        type: 'wait_for_event',
        config: { event: 'order_placed', timeout: '3 days' },
        branches: { received: [{ ...mail, id: 'thanks' }], timeout: [{ ...mail, id: 'reminder' }] },
      },
    ]);

  it('entering a wait_for_event: PAUSED until the timeout, findable by its event', () => {
    const workflow = waiting();
    const loaded = loadedAt(workflow, 'cart');
    const decision = decideStep(context(loaded), dueEffect(workflow, loaded.row.snapshot as never)!, {
      kind: 'none',
    })!;
    expect(decision.set).toMatchObject({
      status: 'PAUSED',
      nextRunAt: new Date(T0.getTime() + 3 * 86_400_000),
      waitingEvent: 'order_placed',
    });
    expect(decision.logRows[0]).toMatchObject({ event_type: 'wait_started', details: { event: 'order_placed' } });
  });

  it('its timeout takes the timeout branch and stops waiting', () => {
    const workflow = waiting();
    const loaded = loadedAt(workflow, 'cart', { nextRunAt: T0, waitingEvent: 'order_placed' });
    const decision = decideStep(context(loaded), dueEffect(workflow, loaded.row.snapshot as never)!, {
      kind: 'none',
    })!;
    expect(decision.set).toMatchObject({ status: 'ACTIVE', snapshot: { value: 'reminder' }, waitingEvent: null });
    expect(decision.logRows[0]).toMatchObject({ event_type: 'wait_timed_out' });
  });

  it('its event takes the received branch', () => {
    const workflow = waiting();
    const loaded = loadedAt(workflow, 'cart', { status: 'PAUSED', nextRunAt: T0, waitingEvent: 'order_placed' });
    const decision = decideChange(context(loaded), {
      event: { type: 'EVENT_RECEIVED', event: 'order_placed' },
      logs: [{ eventType: 'event_received', status: 'SUCCESS', stepId: 'cart' }],
    })!;
    expect(decision.set).toMatchObject({ status: 'ACTIVE', snapshot: { value: 'thanks' }, waitingEvent: null });
    expect(decision.slot).toBe('acquire_in_line');
  });

  const windowed = (transactional?: boolean) =>
    compile([{ ...mail, config: { ...mail.config, ...(transactional ? { transactional } : {}) } }], {
      send_window: { start: '09:00', end: '20:00', timezone: 'Europe/Berlin' },
    });

  it.each([
    ['22:00 Berlin', '2026-03-06T21:00:00.000Z', '2026-03-07T08:00:00.000Z'],
    ['08:59 Berlin', '2026-03-06T07:59:00.000Z', '2026-03-06T08:00:00.000Z'],
    ['10:00 Berlin', '2026-03-06T09:00:00.000Z', null],
  ])('a message due at %s is deferred until %s', (_, now, opens) => {
    const workflow = windowed();
    const loaded = loadedAt(workflow, 'mail');
    const decision = deferSend(context(loaded, new Date(now)), dueEffect(workflow, loaded.row.snapshot as never)!);
    if (opens === null) return expect(decision).toBeNull();
    expect(decision!.set).toMatchObject({ status: 'PAUSED', nextRunAt: new Date(opens) });
    expect(decision!.logRows[0]).toMatchObject({ event_type: 'send_deferred', details: { resume_at: opens } });
  });

  it('a transactional message ignores the window, and a workflow without one defers nothing', () => {
    const night = new Date('2026-03-06T23:00:00.000Z');
    for (const workflow of [windowed(true), compile([mail])]) {
      const loaded = loadedAt(workflow, 'mail');
      expect(deferSend(context(loaded, night), dueEffect(workflow, loaded.row.snapshot as never)!)).toBeNull();
    }
  });
});

describe('split and branch decisions (CONTRACT.md "Branching")', () => {
  const email = (id: string) => ({ id, type: 'send_email', config: { subject: 'Hi', body: 'Hello' } });
  const splitFlow = (weights: [number, number] = [50, 50]) =>
    compile([
      {
        id: 'ab',
        type: 'split',
        config: {
          variants: [
            { id: 'a', weight: weights[0] },
            { id: 'b', weight: weights[1] },
          ],
        },
        branches: { a: [email('mail_a')], b: [email('mail_b')] },
      },
      email('after'),
    ]);
  const contactId = (n: number) => `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
  const decideSplit = (workflow: CompiledWorkflow, id: string) => {
    const base = loadedAt(workflow, 'ab');
    const loaded = { ...base, row: { ...base.row, contactId: id } };
    return decideStep(context(loaded), dueEffect(workflow, loaded.row.snapshot as never)!, { kind: 'none' })!;
  };

  it('10,000 contacts through a 50/50 split land within ±3% of half each, by the engine decision', () => {
    const workflow = splitFlow();
    const landed = { mail_a: 0, mail_b: 0 } as Record<string, number>;
    for (let n = 0; n < 10_000; n += 1) {
      const decision = decideSplit(workflow, contactId(n));
      landed[decision.set.snapshot.value] = (landed[decision.set.snapshot.value] ?? 0) + 1;
    }
    expect(landed.mail_a! + landed.mail_b!).toBe(10_000);
    expect(Math.abs(landed.mail_a! - 5_000)).toBeLessThanOrEqual(300);
  });

  it('gives the same contact the same variant every time (re-entry, retry, recovery) and logs split_assigned', () => {
    const workflow = splitFlow();
    for (let n = 0; n < 50; n += 1) {
      const first = decideSplit(workflow, contactId(n));
      const again = decideSplit(workflow, contactId(n));
      expect(again.set.snapshot.value).toBe(first.set.snapshot.value);
      const variant = first.set.snapshot.value === 'mail_a' ? 'a' : 'b';
      expect(first.logRows[0]).toMatchObject({
        event_type: 'split_assigned',
        step_id: 'ab',
        step_index: 1,
        status: 'SUCCESS',
        details: { variant },
      });
      expect(first.set).toMatchObject({ status: 'ACTIVE', currentStepIndex: 2, nextRunAt: null });
    }
  });

  it('never chooses a variant of weight 0', () => {
    const workflow = splitFlow([0, 1]);
    for (let n = 0; n < 200; n += 1) expect(decideSplit(workflow, contactId(n)).set.snapshot.value).toBe('mail_b');
  });

  const branchFlow = () =>
    compile([
      {
        id: 'tier',
        type: 'branch',
        config: {
          cases: [
            {
              id: 'gold',
              when: { all: [{ has_tag: 'gold' }, { not: { field: 'payload.refund', operator: 'exists' } }] },
            },
            { id: 'pro', when: { any: [{ field: 'plan', operator: 'equals', value: 'pro' }, { has_tag: 'pro' }] } },
          ],
        },
        branches: { gold: [email('gold_mail')], pro: [email('pro_mail')], default: [] },
      },
      email('after'),
    ]);

  it.each([
    [['gold'], { plan: 'pro' }, {}, 'gold', 'gold_mail'],
    [['gold'], { plan: 'pro' }, { refund: true }, 'pro', 'pro_mail'],
    [[], { plan: 'free' }, {}, 'default', 'after'],
    [['pro'], {}, {}, 'pro', 'pro_mail'],
  ])('tags %o, attributes %o, payload %o: case %s, next %s', (tags, attributes, payload, chosen, next) => {
    const workflow = branchFlow();
    const base = loadedAt(workflow, 'tier', { tags, payload });
    const loaded = { ...base, row: { ...base.row, contact: { ...base.row.contact, attributes } } };
    const effect = dueEffect(workflow, loaded.row.snapshot as never)!;
    expect(effect).toEqual({ type: 'evaluateBranch', params: { stepId: 'tier' } });
    const decision = decideStep(context(loaded), effect, { kind: 'none' })!;
    expect(decision.set.snapshot.value).toBe(next);
    expect(decision.logRows[0]).toMatchObject({ event_type: 'branch_evaluated', details: { case: chosen } });
  });

  it('a split or branch right after a step of an admitted execution is staged with it, like a condition', () => {
    const workflow = compile([
      { id: 't', type: 'add_tag', config: { tag: 'x' } },
      {
        id: 'ab',
        type: 'split',
        config: {
          variants: [
            { id: 'a', weight: 1 },
            { id: 'b', weight: 1 },
          ],
        },
        branches: { a: [], b: [] },
      },
    ]);
    const decision = decideStep(
      context(loadedAt(workflow, 't'), T0, { canContinue: true }),
      dueEffect(workflow, { value: 't', context: { steps: 0, failedStep: null, reason: null } } as never)!,
      action({ kind: 'success', details: {}, tagChange: { op: 'add', tag: 'x' } }, 'add_tag'),
    )!;
    expect(decision.next.kind).toBe('stage');
  });
});
