/** A task run again and again; `stop()` ends it after the run in progress. */
export interface Loop {
  stop(): void;
}

/** A run that has not settled after this long (at least {@link STALL_FLOOR_MS}) no longer holds up the next. */
export const stallAfterMs = (intervalMs: number) => Math.max(STALL_FLOOR_MS, 4 * intervalMs);
const STALL_FLOOR_MS = 30_000;

/**
 * Runs `task` `firstAfterMs` from now, then each time `intervalMs` after the previous run settled. A run
 * that has not settled after {@link stallAfterMs} (a Redis call that never answers, across a failover)
 * is reported to `onStalled` and left behind: the next run starts, so one hung call never ends the loop.
 * The tasks it runs (sweeps, folds, timer releases) are safe to overlap.
 */
export function repeat(
  firstAfterMs: number,
  intervalMs: number,
  onStalled: (ms: number) => void,
  task: () => Promise<unknown>,
): Loop {
  const stallMs = stallAfterMs(intervalMs);
  let timer: NodeJS.Timeout | null = null;
  let stopped = false;
  const run = () => {
    let scheduled = false;
    const next = () => {
      if (scheduled || stopped) return;
      scheduled = true;
      timer = setTimeout(run, intervalMs).unref();
    };
    const stall = setTimeout(() => {
      onStalled(stallMs);
      next();
    }, stallMs).unref();
    void task()
      .catch(() => undefined) // the task reports its own errors; a failed run has settled all the same
      .finally(() => {
        clearTimeout(stall);
        next();
      });
  };
  timer = setTimeout(run, firstAfterMs).unref();
  return {
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}
