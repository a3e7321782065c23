import { describe, expect, it } from 'vitest';
import { compileWorkflow } from '../../src/compiler/compile.ts';
import { parseDefinition } from '../../src/definition/schema.ts';
import { type CheckedLog, replayFinishedSteps, STEP_FINISHED_EVENTS } from '../../src/engine/consistency.ts';
import { abTest } from '../fixtures/workflows.ts';

// The consistency check replays split_assigned and branch_evaluated entries as the machine events the
// engine sent (VARIANT.<id>, CASE.<id>), so a log whose variant or case disagrees with the path is found.

const parsed = parseDefinition(abTest);
if (!parsed.ok) throw new Error(JSON.stringify(parsed.issues));
const workflow = compileWorkflow(parsed.definition);

let ids = 0n;
const entry = (
  eventType: string,
  stepId: string,
  stepIndex: number,
  details: Record<string, unknown> = {},
): CheckedLog => ({
  id: (ids += 1n),
  eventType,
  stepId,
  stepIndex,
  details,
});

describe('replay of splits and branches', () => {
  it('maps split_assigned and branch_evaluated to their events, and nothing without the detail', () => {
    expect(STEP_FINISHED_EVENTS.split_assigned!({ variant: 'a' })).toEqual({ type: 'VARIANT.a' });
    expect(STEP_FINISHED_EVENTS.branch_evaluated!({ case: 'default' })).toEqual({ type: 'CASE.default' });
    expect(STEP_FINISHED_EVENTS.split_assigned!({})).toBeNull();
    expect(STEP_FINISHED_EVENTS.branch_evaluated!({ case: 3 })).toBeNull();
  });

  it('follows the variant and the case the log records', () => {
    const replay = replayFinishedSteps(workflow, [
      entry('split_assigned', 'subject_test', 1, { variant: 'b' }),
      entry('action_completed', 'email_b', 2),
      entry('wait_completed', 'pause', 3),
      entry('branch_evaluated', 'by_plan', 4, { case: 'gold' }),
      entry('action_completed', 'gold_sms', 5),
    ]);
    expect(replay).toEqual({ at: 'done_tag', problem: null });
  });

  it('reports a step of the other variant than the one recorded', () => {
    const replay = replayFinishedSteps(workflow, [
      entry('split_assigned', 'subject_test', 1, { variant: 'a' }),
      entry('action_completed', 'email_b', 2),
    ]);
    expect(replay.at).toBe('email_a');
    expect(replay.problem).toMatch(/action_completed of step email_b while the replayed execution is at email_a/);
  });

  it('reports an entry without its variant', () => {
    const replay = replayFinishedSteps(workflow, [entry('split_assigned', 'subject_test', 1)]);
    expect(replay.problem).toMatch(/no condition result, variant or case recorded/);
  });
});
