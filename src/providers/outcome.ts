/**
 * What became of one call to an external provider. The kind decides what the engine does next:
 * success → next step; transient → retry with backoff; rate_limited → retry after `retryAfterMs`
 * (bounded by the engine; null when the provider gave no usable Retry-After) and hold back every call
 * to that provider; permanent → skip the step.
 */
export type ProviderOutcome =
  /** `body`: the first bytes of the answer (at most `MAX_ANSWER_BYTES`), when it had one. */
  | { kind: 'success'; status: number; body?: string }
  | { kind: 'transient'; status: number | null; error: string }
  | { kind: 'rate_limited'; status: 429; retryAfterMs: number | null; error: string }
  | { kind: 'permanent'; status: number; error: string };

/**
 * Parses a Retry-After header, in delta-seconds or HTTP-date form, relative to `now`: null when it is
 * missing or unreadable. The value is the provider's, unbounded (a huge one is `Infinity`); the engine
 * caps it.
 */
export function parseRetryAfter(header: string | null, now: Date): number | null {
  if (!header) return null;
  const trimmed = header.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  // Only the IMF-fixdate form of HTTP dates; Date.parse would take almost anything as some past date.
  if (!/^[A-Za-z]{3}, \d{2} [A-Za-z]{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/.test(trimmed)) return null;
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return null;
  return Math.max(0, date - now.getTime());
}

/** Classifies an HTTP response by status (CONTRACT.md "Providers"). */
export function classifyResponse(status: number, retryAfter: string | null, now: Date, bodyText = ''): ProviderOutcome {
  if (status >= 200 && status < 300)
    return bodyText ? { kind: 'success', status, body: bodyText } : { kind: 'success', status };
  const error = `HTTP ${status}${bodyText ? `: ${bodyText.slice(0, 300)}` : ''}`;
  if (status === 429) return { kind: 'rate_limited', status, retryAfterMs: parseRetryAfter(retryAfter, now), error };
  if (status >= 500) return { kind: 'transient', status, error };
  return { kind: 'permanent', status, error };
}
