import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { dateAfter } from '../../src/clock.ts';
import { rateLimitDelayMs, retryDelayMs } from '../../src/engine/backoff.ts';
import { classifyResponse } from '../../src/providers/outcome.ts';

const caps = { maxRetryAfterSeconds: 3_600, maxRetryDelaySeconds: 86_400 };
const now = new Date('2026-04-01T12:00:00.000Z');

/** Retry-After values a hostile or broken provider may send. */
const retryAfter = fc.oneof(
  fc.string(),
  fc.bigInt({ min: 0n, max: 10n ** 40n }).map(String),
  fc.integer({ min: -1_000_000, max: 1_000_000 }).map(String),
  fc.date({ min: new Date(-8.64e15), max: new Date(8.64e15), noInvalidDate: true }).map((d) => d.toUTCString()),
  fc.constantFrom('0', '10000000000000', '3000000000', 'Fri, 31 Dec 9999 23:59:59 GMT', 'soon', '-1', ' 5 '),
);

describe('delays of retries and rate limits', () => {
  it('follow the SPEC back-off: 60, 120, 240 s', () => {
    expect([0, 1, 2].map((n) => retryDelayMs(60, n, caps))).toEqual([60_000, 120_000, 240_000]);
  });

  it('cap the back-off at MAX_RETRY_DELAY_SECONDS whatever the account settings', () => {
    expect(retryDelayMs(86_400, 20, caps)).toBe(86_400_000);
    expect(retryDelayMs(60, 20, { ...caps, maxRetryDelaySeconds: 7_200 })).toBe(7_200_000);
  });

  it('honour Retry-After up to MAX_RETRY_AFTER_SECONDS, and give a zero or unreadable one the back-off', () => {
    expect(rateLimitDelayMs(30_000, 60_000, caps)).toBe(30_000);
    expect(rateLimitDelayMs(10_000_000_000_000_000, 60_000, caps)).toBe(3_600_000);
    expect(rateLimitDelayMs(Infinity, 60_000, caps)).toBe(3_600_000);
    expect(rateLimitDelayMs(0, 60_000, caps)).toBe(60_000);
    expect(rateLimitDelayMs(null, 120_000, caps)).toBe(120_000);
  });

  it('a date past what a Date can hold is refused where it is made, not stored as Invalid Date', () => {
    expect(() => dateAfter(now, 1e16)).toThrow(/cannot schedule/);
    expect(() => dateAfter(now, Number.NaN)).toThrow(/cannot schedule/);
    expect(() => dateAfter(now, -1)).toThrow(/cannot schedule/);
    expect(dateAfter(now, 1_000).toISOString()).toBe('2026-04-01T12:00:01.000Z');
  });

  it('for any Retry-After and any settings: a valid date, within the caps, never at once', () => {
    fc.assert(
      fc.property(
        retryAfter,
        fc.integer({ min: 1, max: 86_400 }),
        fc.integer({ min: 0, max: 20 }),
        fc.integer({ min: 1, max: 31_536_000 }),
        fc.integer({ min: 1, max: 31_536_000 }),
        (header, baseSeconds, retryCount, maxRetryAfterSeconds, maxRetryDelaySeconds) => {
          const bounds = { maxRetryAfterSeconds, maxRetryDelaySeconds };
          const outcome = classifyResponse(429, header, now);
          if (outcome.kind !== 'rate_limited') throw new Error('429 must be rate limited');
          const backoff = retryDelayMs(baseSeconds, retryCount, bounds);
          const delay = rateLimitDelayMs(outcome.retryAfterMs, backoff, bounds);
          expect(delay).toBeGreaterThan(0);
          expect(delay).toBeLessThanOrEqual(Math.max(maxRetryAfterSeconds, maxRetryDelaySeconds) * 1000);
          expect(Number.isNaN(dateAfter(now, delay).getTime())).toBe(false);
        },
      ),
      { numRuns: 2_000 },
    );
  });
});
