import { useEffect, useState } from 'preact/hooks';

/** What an async load gives the view: its value, its error, and a way to load it again. */
export interface Loaded<T> {
  value: T | null;
  error: string | null;
  reload: () => void;
}

/**
 * Runs `load` when `deps` change and again every `everyMs` when given (the next run starts after the
 * previous one ended, so slow answers never pile up); stops when the view goes away.
 */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[], everyMs?: number): Loaded<T> {
  const [value, setValue] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const run = async () => {
      try {
        const next = await load();
        if (!live) return;
        setValue(next);
        setError(null);
      } catch (caught) {
        if (live) setError(caught instanceof Error ? caught.message : String(caught));
      }
      if (live && everyMs) timer = setTimeout(run, everyMs);
    };
    void run();
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [...deps, tick]);
  return { value, error, reload: () => setTick((n) => n + 1) };
}
