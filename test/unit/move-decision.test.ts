import { describe, expect, it } from 'vitest';
import { decideChange, type Policy, type StepContext } from '../../src/engine/decide-step.ts';
import { type MoveTarget, moveChange } from '../../src/engine/move-execution.ts';
import type { ExecutionRow } from '../../src/store/execution-store.ts';
import { compileSteps, executionRow, TEST_CONTACT, TEST_POLICY } from '../helpers/engine-rows.ts';

// The decision of a move to a new version (engine/move-execution.ts, `in_flight: "move"`): the snapshot
// is kept and resolved against the new version's machine; nothing runs and the timer stays.

const POLICY: Policy = TEST_POLICY;
const T0 = new Date('2026-03-01T10:00:00.000Z');
const DUE = new Date('2026-03-01T22:00:00.000Z');

const compile = compileSteps;
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
  executionRow({
    status: 'PAUSED',
    snapshot: { value: 'order', context: { steps: 1, failedStep: null, reason: null } },
    version: 4,
    currentStepIndex: 2,
    totalSteps: v1.totalSteps,
    nextRunAt: DUE,
    waitingEvent: 'order_placed',
    traceContext: null,
    createdAt: T0,
    updatedAt: T0,
    contact: { ...TEST_CONTACT, phone: null, attributes: {} },
    ...fields,
  });

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

describe('which executions a move takes', () => {
  const V1 = '00000000-0000-4000-8000-0000000000c1';
  const V2 = '00000000-0000-4000-8000-0000000000c2';
  const V3 = '00000000-0000-4000-8000-0000000000c3';
  const toV2: MoveTarget = {
    accountId: '00000000-0000-4000-8000-0000000000a1',
    workflowId: '00000000-0000-4000-8000-0000000000b1',
    versionId: V2,
    version: 2,
    workflow: v2,
    userId: null,
    versions: new Map([
      [V1, 1],
      [V2, 2],
      [V3, 3],
    ]),
  };
  const decide = (fields: Partial<ExecutionRow>, target = toV2) =>
    moveChange({ row: row(fields), workflow: v1 }, target);

  it('moves an execution of an older version, logging both version numbers', () => {
    expect(decide({ workflowVersionId: V1 })).toMatchObject({
      moveTo: { versionId: V2, goalEvent: 'booked' },
      logs: [
        {
          eventType: 'version_migrated',
          details: { from_version: 1, to_version: 2, waiting_event: { from: 'order_placed', to: 'purchase' } },
        },
      ],
    });
  });

  it('leaves an execution on the target or on a newer version, even one published after it read the versions', () => {
    expect(decide({ workflowVersionId: V2 })).toEqual({ refuse: 'gone' });
    expect(decide({ workflowVersionId: V3 })).toEqual({ refuse: 'gone' });
    expect(decide({ workflowVersionId: '00000000-0000-4000-8000-0000000000c4' })).toEqual({ refuse: 'gone' });
  });

  it('leaves an ended execution, and keeps one whose step the target does not have', () => {
    expect(decide({ workflowVersionId: V1, status: 'COMPLETED' })).toEqual({ refuse: 'gone' });
    expect(decide({ workflowVersionId: V1 }, { ...toV2, workflow: compile([mail('a')]) })).toEqual({
      refuse: 'stayed',
    });
  });
});
