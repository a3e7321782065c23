/** Display helpers of the page. */

/** A timestamp in the reader's locale, with seconds. */
export const formatTime = (iso: string | null) =>
  iso ? new Date(iso).toLocaleString(undefined, { hour12: false }) : '—';

/** A duration in ms as `850 ms`, `2.4 s`, `3 min`. */
export function formatDuration(ms: number | null): string {
  if (ms === null) return '';
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.round(ms / 60_000)} min`;
}

/** A share as a percentage with one decimal. */
export const formatPercent = (share: number) => `${(share * 100).toFixed(1)} %`;
