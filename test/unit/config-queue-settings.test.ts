import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';

// The settings of the timer release, the enrollment limit and the worker supervisor: defaults, and a
// bad value stops the process at start with the setting named.
describe('timer release, enrollment limit and worker supervisor settings', () => {
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

  it('replaces a step worker after 15 s without a due job taken, by default', () => {
    expect(loadConfig({}).WORKER_STALL_MS).toBe(15_000);
    expect(loadConfig({ WORKER_STALL_MS: '1000' }).WORKER_STALL_MS).toBe(1_000);
  });

  it.each([
    ['TIMER_RELEASE_INTERVAL_MS', '10'],
    ['TIMER_READY_TARGET', '0'],
    ['TIMER_PROMOTE_AHEAD_MS', '-1'],
    ['ENROLL_QUEUE_LIMIT', '-1'],
    ['ENROLL_QUEUE_LIMIT', 'many'],
    ['TIMER_READY_TARGET', '1.5'],
    ['WORKER_STALL_MS', '999'],
  ])('refuses %s=%s, naming it', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(new RegExp(`^invalid configuration: ${name}: `));
  });
});
