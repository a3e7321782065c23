import { FlowmachineError } from './errors.ts';

/** Source of the current time, injected so tests can move time instead of sleeping. */
export interface Clock {
  now(): Date;
}

/** The wall clock. */
export const systemClock: Clock = { now: () => new Date() };

/** A clock that only moves when told; for tests. */
export function createManualClock(start = new Date('2026-01-01T00:00:00.000Z')) {
  let current = start.getTime();
  return {
    now: () => new Date(current),
    advance(ms: number) {
      current += ms;
    },
    set(date: Date) {
      current = date.getTime();
    },
  };
}

/** Latest instant a JavaScript Date can hold (±8.64e15 ms from the epoch). */
const MAX_TIME_MS = 8.64e15;

/**
 * `ms` after `now`, validated where it is made: a delay that is not a finite, non-negative number, or
 * that lands past what a Date can hold, throws instead of yielding an Invalid Date that fails later.
 */
export function dateAfter(now: Date, ms: number): Date {
  const time = now.getTime() + ms;
  if (!Number.isFinite(ms) || ms < 0 || !(Math.abs(time) <= MAX_TIME_MS)) {
    throw new FlowmachineError('invalid_delay', `cannot schedule ${ms} ms after ${now.toISOString()}`);
  }
  return new Date(time);
}
