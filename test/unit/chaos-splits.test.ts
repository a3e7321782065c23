import { describe, expect, it } from 'vitest';
import { type HeldLog, heldAt } from '../../scripts/chaos-splits.ts';

// When the chaos run's A/B check sees an execution at the removed wait (scripts/chaos-splits.ts `heldAt`).
// The row leaves the wait with the commit of the step after it, into which the fired timer is staged: the
// end is that step's outcome, not the timer's `wait_completed` (chaos `--quick --hostile --seed 1` reported a
// move_missed for an execution whose goodbye was at a dripping provider while the move read it).

const T = Date.parse('2026-01-01T00:00:00Z');
const log = (eventType: string, stepId: string | null, atMs: number): HeldLog => ({
  eventType,
  stepId,
  timestamp: new Date(T + atMs),
});
const entered = [log('action_completed', 's_note', 0), log('wait_started', 's_hold', 0)];

describe('heldAt', () => {
  it.each([
    [
      'the timer staged into an email sent at once',
      [...entered, log('wait_completed', 's_hold', 3_000), log('action_started', 's_bye', 3_001)],
      [log('action_completed', 's_bye', 3_005), log('execution_completed', null, 3_005)],
      3_005,
    ],
    [
      'the timer staged into an email the provider failed after a second',
      [...entered, log('wait_completed', 's_hold', 3_000), log('action_started', 's_bye', 3_001)],
      [log('action_failed', 's_bye', 4_002), log('retry_scheduled', 's_bye', 4_002)],
      4_002,
    ],
    [
      'the timer staged into an email its cap held back',
      [...entered, log('wait_completed', 's_hold', 3_000)],
      [log('frequency_capped', 's_bye', 3_020)],
      3_020,
    ],
    [
      'a redelivered job that fired the timer',
      [...entered, log('recovered', null, 9_000), log('wait_completed', 's_hold', 9_000)],
      [log('action_started', 's_bye', 9_001), log('action_completed', 's_bye', 9_010)],
      9_010,
    ],
    [
      'a timer committed on its own, nothing after it yet',
      [...entered, log('wait_completed', 's_hold', 3_000)],
      [],
      3_000,
    ],
  ])('%s: there until the next step was decided', (_, before, after, until) => {
    expect(heldAt([...before, ...after], 's_hold')).toEqual({ from: T, until: T + until });
  });

  it('is there until the end when the timer never fired, and never there without a wait_started', () => {
    expect(heldAt(entered, 's_hold')).toEqual({ from: T, until: Infinity });
    expect(heldAt([log('action_completed', 's_bye', 5)], 's_hold')).toEqual({ from: Infinity, until: Infinity });
  });
});
