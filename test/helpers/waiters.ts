/**
 * Promises that resolve once a condition over a growing list holds (an awaited condition, never a sleep):
 * `waitFor` for the tests, `check` for the helper each time the list grows.
 */
export function createWaiters<T>(items: readonly T[], label: string, unit: string) {
  const waiters: { predicate: () => boolean; resolve: () => void }[] = [];
  return {
    /** Resolves once `predicate` holds over the items, or rejects after `timeoutMs`. */
    waitFor(predicate: (items: readonly T[]) => boolean, timeoutMs = 20_000): Promise<void> {
      if (predicate(items)) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`${label}: condition not met within ${timeoutMs} ms (${items.length} ${unit})`)),
          timeoutMs,
        );
        waiters.push({
          predicate: () => predicate(items),
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        });
      });
    },
    /** Resolves the waiters whose condition holds now. */
    check(): void {
      for (const waiter of [...waiters]) {
        if (!waiter.predicate()) continue;
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    },
  };
}
