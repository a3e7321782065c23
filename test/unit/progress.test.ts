import { describe, expect, it } from 'vitest';
import { progressPercent } from '../../src/api/serialize.ts';
import { compileWorkflow } from '../../src/compiler/compile.ts';
import { parseDefinition } from '../../src/definition/schema.ts';
import { hasStarted, progressOf, stepPosition, type StoredSnapshot } from '../../src/engine/snapshot.ts';
import { emails } from '../fixtures/workflows.ts';

// Step numbering (CONTRACT.md): steps count from 1, as in the SPEC's tables.
describe('step numbering', () => {
  const parsed = parseDefinition(emails(5));
  if (!parsed.ok) throw new Error('fixture does not parse');
  const workflow = compileWorkflow(parsed.definition);
  const at = (value: string, steps: number, failedStep: string | null = null): StoredSnapshot => ({
    value,
    context: { steps, failedStep, reason: null },
  });

  it('the step a snapshot is at has position steps done + 1', () => {
    expect(stepPosition(at('email_1', 0))).toBe(1);
    expect(stepPosition(at('email_3', 2))).toBe(3);
  });

  it('an execution at its 3rd step of 5 has index 3 and 60%', () => {
    const progress = progressOf(workflow, at('email_3', 2), 5);
    expect(progress).toEqual({ currentStepIndex: 3, totalSteps: 5 });
    expect(progressPercent({ status: 'ACTIVE', ...progress })).toBe(60);
  });

  it('0 before the first step starts, total_steps once completed', () => {
    expect(hasStarted({ status: 'QUEUED', currentStepIndex: 0 })).toBe(false);
    expect(hasStarted({ status: 'ACTIVE', currentStepIndex: 0 })).toBe(true);
    expect(hasStarted({ status: 'QUEUED', currentStepIndex: 2 })).toBe(true);
    const queued = progressOf(workflow, at('email_1', 0), 5, false);
    expect(queued).toEqual({ currentStepIndex: 0, totalSteps: 5 });
    expect(progressPercent({ status: 'QUEUED', ...queued })).toBe(0);
    // Cancelled before it started: still 0.
    expect(progressOf(workflow, at('cancelled', 0), 5, false)).toEqual({ currentStepIndex: 0, totalSteps: 5 });
    const completed = progressOf(workflow, at('completed', 5), 5);
    expect(completed).toEqual({ currentStepIndex: 5, totalSteps: 5 });
    expect(progressPercent({ status: 'COMPLETED', ...completed })).toBe(100);
  });

  it('failed, cancelled and goal-completed executions keep the position of the step they were at', () => {
    expect(progressOf(workflow, at('failed', 2, 'email_3'), 5).currentStepIndex).toBe(3);
    expect(progressOf(workflow, at('cancelled', 2), 5).currentStepIndex).toBe(3);
    expect(progressOf(workflow, at('goal_achieved', 4), 5)).toEqual({ currentStepIndex: 5, totalSteps: 5 });
  });

  it('100% means completed: at the last step it is 99%', () => {
    expect(progressPercent({ status: 'ACTIVE', currentStepIndex: 5, totalSteps: 5 })).toBe(99);
    expect(progressPercent({ status: 'FAILED', currentStepIndex: 5, totalSteps: 5 })).toBe(99);
    expect(progressPercent({ status: 'COMPLETED', currentStepIndex: 5, totalSteps: 10 })).toBe(100);
  });
});
