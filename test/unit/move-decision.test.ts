import { describe, expect, it } from 'vitest';
import { compileWorkflow, type CompiledWorkflow } from '../../src/compiler/compile.ts';
import { parseDefinition } from '../../src/definition/schema.ts';
import { decideChange, type Policy, type StepContext } from '../../src/engine/decide-step.ts';
import type { ExecutionRow } from '../../src/store/execution-store.ts';

// The decision of a move to a new version (engine/move-execution.ts, `in_flight: "move"`): the snapshot
// is kept and resolved against the new version's machine; nothing runs and the timer stays.

const POLICY: Policy = { maxRetryAfterSeconds: 3600, maxRetryDelaySeconds: 86_400, timerHorizonMs: 86_400_000 };
const T0 = new Date('2026-03-01T10:00:00.000Z');
const DUE = new Date('2026-03-01T22:00:00.000Z');

const compile = (steps: unknown[], extra: Record<string, unknown> = {}): CompiledWorkflow => {
  const parsed = parseDefinition({ trigger: { type: 'manual' }, steps, ...extra });
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.issues));
  return compileWorkflow(parsed.definition);
};
const order = (event: string) => ({
  id: 'order',
  type: 'wait_for_event',
  config: { event, timeout: '12 hours' },
  branches: { received: [], timeout: [] },
});
const mail = (id: string) => ({ id, type: 'send_email', config: { subject: 'Hi', body: 'x' } });
const v1 = compile([mail('a'), order('order_placed')]);
const v2 = compile([mail('a'), mail('b'), order('purchase'), mail('c')], { goal: { event: 'booked' } });

const row = (fields: Partial<ExecutionRow>): ExecutionRow =>
  ({
    id: '00000000-0000-4000-8000-000000000001',
    accountId: '00000000-0000-4000-8000-0000000000a1',
    workflowId: '00000000-0000-4000-8000-0000000000b1',
    workflowVersionId: '00000000-0000-4000-8000-0000000000c1',
    contactId: '00000000-0000-4000-8000-0000000000d1',
    status: 'PAUSED',
    snapshot: { value: 'order', context: { steps: 1, failedStep: null, reason: null } },
    version: 4,
    currentStepIndex: 2,
    totalSteps: v1.totalSteps,
    retryCount: 0,
    completionReason: null,
    lastError: null,
    goalEvent: null,
    nextRunAt: DUE,
    waiting: false,
    waitingEvent: 'order_placed',
    traceContext: null,
    payload: {},
    createdAt: T0,
    updatedAt: T0,
    finishedAt: null,
    contact: {
      id: '00000000-0000-4000-8000-0000000000d1',
      accountId: '00000000-0000-4000-8000-0000000000a1',
      email: 'ada@example.com',
      phone: null,
      optedIn: true,
      timezone: null,
      attributes: {},
      tags: [],
      deletedAt: null,
    },
    account: {
      id: '00000000-0000-4000-8000-0000000000a1',
      name: 'Acme',
      adminEmail: 'ops@example.com',
      concurrentExecutionsPerAccount: 100,
      maxRetryAttempts: 3,
      retryBaseDelaySeconds: 60,
      errorNotification: true,
      defaultTimezone: 'UTC',
    },
    workflow: { name: 'Welcome' },
    ...fields,
  }) as ExecutionRow;

const move = (fields: Partial<ExecutionRow>) => {
  const current = row(fields);
  const context: StepContext = { loaded: { row: current, workflow: v2 }, now: T0, policy: POLICY };
  return decideChange(context, {
    rewind: current.snapshot as never,
    moveTo: { versionId: '00000000-0000-4000-8000-0000000000c2', goalEvent: 'booked' },
    logs: [],
  })!;
};

describe('the decision of a move to a new version', () => {
  it('keeps the snapshot, status and timer, and takes the new version, its goal, its event and its totals', () => {
    const decision = move({});
    expect(decision.set).toMatchObject({
      status: 'PAUSED',
      snapshot: { value: 'order', context: { steps: 1 } },
      nextRunAt: DUE,
      workflowVersionId: '00000000-0000-4000-8000-0000000000c2',
      goalEvent: 'booked',
      waiting: false,
      waitingEvent: 'purchase',
      currentStepIndex: 2,
      // One step done, `order` and `c` still ahead in the new version.
      totalSteps: 3,
    });
    expect(decision).toMatchObject({ slot: 'keep', finished: null, next: { kind: 'commit' } });
  });

  it('keeps an execution waiting in line there', () => {
    const decision = move({
      status: 'QUEUED',
      waiting: true,
      nextRunAt: null,
      waitingEvent: null,
      snapshot: { value: 'a', context: { steps: 0, failedStep: null, reason: null } },
    });
    expect(decision.set).toMatchObject({ status: 'QUEUED', waiting: true, nextRunAt: null });
    expect(decision.set.waitingEvent).toBeUndefined();
    expect(decision.slot).toBe('keep');
  });
});
