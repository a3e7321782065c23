import { describe, expect, it } from 'vitest';
import { resolveNextAttempt } from '../../src/engine/notify.ts';
import type { ProviderOutcome } from '../../src/providers/outcome.ts';

const now = new Date('2026-04-01T12:00:00.000Z');
const transient: ProviderOutcome = { kind: 'transient', status: 503, error: 'HTTP 503' };
const after = (next: Date | null) => (next ? next.getTime() - now.getTime() : null);

describe('resolveNextAttempt', () => {
  it.each([
    ['a transient failure of the first attempt', transient, 0, 30_000],
    ['a transient failure of the third attempt', transient, 2, 120_000],
    ['a transient failure late on, capped at 1 h', transient, 8, 3_600_000],
    ['a transient failure of the last attempt', transient, 9, null],
    [
      'a 429 whose Retry-After is longer than the back-off',
      { kind: 'rate_limited', status: 429, retryAfterMs: 90_000, error: 'HTTP 429' },
      0,
      90_000,
    ],
    [
      'a 429 whose Retry-After is shorter than the back-off',
      { kind: 'rate_limited', status: 429, retryAfterMs: 1_000, error: 'HTTP 429' },
      1,
      60_000,
    ],
    ['a permanent failure', { kind: 'permanent', status: 400, error: 'HTTP 400' }, 0, null],
    ['a success', { kind: 'success', status: 200 }, 3, null],
  ] as [string, ProviderOutcome, number, number | null][])('%s', (_name, outcome, attempt, delayMs) => {
    expect(after(resolveNextAttempt(outcome, attempt, 10, now))).toBe(delayMs);
  });
});
