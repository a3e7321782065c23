import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';

// The settings of the timer release and of the enrollment limit: defaults, and a bad value stops the
// process at start with the setting named.
describe('timer release and enrollment limit settings', () => {
  it('default to a release every 250 ms up to 500 ready jobs, 1 s ahead, and 50,000 ready jobs before a 429', () => {
    const config = loadConfig({});
    expect([
      config.TIMER_RELEASE_INTERVAL_MS,
      config.TIMER_READY_TARGET,
      config.TIMER_PROMOTE_AHEAD_MS,
      config.ENROLL_QUEUE_LIMIT,
    ]).toEqual([250, 500, 1_000, 50_000]);
    expect(loadConfig({ ENROLL_QUEUE_LIMIT: '0' }).ENROLL_QUEUE_LIMIT).toBe(0); // never refuses
  });

  it.each([
    ['TIMER_RELEASE_INTERVAL_MS', '10'],
    ['TIMER_READY_TARGET', '0'],
    ['TIMER_PROMOTE_AHEAD_MS', '-1'],
    ['ENROLL_QUEUE_LIMIT', '-1'],
    ['ENROLL_QUEUE_LIMIT', 'many'],
    ['TIMER_READY_TARGET', '1.5'],
  ])('refuses %s=%s, naming it', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(new RegExp(`^invalid configuration: ${name}: `));
  });
});
