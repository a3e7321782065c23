import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { repeat, stallAfterMs } from '../../src/loop.ts';

describe('repeat', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('runs the task after each run settles, failed runs included, until stopped', async () => {
    const runs: number[] = [];
    const loop = repeat(
      0,
      100,
      () => expect.unreachable('no run stalls'),
      async () => {
        runs.push(Date.now());
        if (runs.length === 2) throw new Error('a failed run');
      },
    );
    await vi.advanceTimersByTimeAsync(350);
    expect(runs.length).toBe(4);
    loop.stop();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(runs.length).toBe(4);
  });

  it('starts the next run when one has not settled after the stall time, and reports it once', async () => {
    const stalls: number[] = [];
    let runs = 0;
    const loop = repeat(
      0,
      1_000,
      (ms) => stalls.push(ms),
      () => {
        runs += 1;
        return runs === 1 ? new Promise(() => undefined) : Promise.resolve(); // the first never answers
      },
    );
    await vi.advanceTimersByTimeAsync(stallAfterMs(1_000) - 1);
    expect([runs, stalls]).toEqual([1, []]);
    await vi.advanceTimersByTimeAsync(1 + 1_000);
    expect([runs, stalls]).toEqual([2, [30_000]]);
    await vi.advanceTimersByTimeAsync(3_000);
    expect([runs, stalls]).toEqual([5, [30_000]]);
    loop.stop();
  });
});
