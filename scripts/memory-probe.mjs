// Preloaded (`node --import`) into a process whose memory a benchmark follows: every MEMORY_PROBE_MS
// (default 100) it appends one JSON line to MEMORY_PROBE_FILE with the time, process.memoryUsage(), the
// used and committed size of each V8 heap space, and the garbage collections so far (count and pause ms,
// all and mark-compact only). A line is written only when the event loop is free; the benchmark reads RSS
// from /proc itself for the moments in between. Does nothing without MEMORY_PROBE_FILE.
import { openSync, writeSync } from 'node:fs';
import { constants, PerformanceObserver } from 'node:perf_hooks';
import v8 from 'node:v8';

const file = process.env.MEMORY_PROBE_FILE;
if (file) {
  const fd = openSync(file, 'a');
  const gc = { count: 0, ms: 0, majorCount: 0, majorMs: 0 };
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      gc.count += 1;
      gc.ms += entry.duration;
      if (entry.detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) {
        gc.majorCount += 1;
        gc.majorMs += entry.duration;
      }
    }
  }).observe({ entryTypes: ['gc'] });
  setInterval(
    () => {
      const spaces = {};
      for (const s of v8.getHeapSpaceStatistics())
        spaces[s.space_name] = { used: s.space_used_size, size: s.space_size };
      writeSync(fd, `${JSON.stringify({ at: Date.now(), ...process.memoryUsage(), spaces, gc })}\n`);
    },
    Number(process.env.MEMORY_PROBE_MS ?? 100),
  ).unref();
}
