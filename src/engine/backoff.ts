/**
 * How long a step waits before its provider is called again. Pure: every delay the engine schedules
 * for a retry or a rate limit is decided here, bounded by the operator's caps.
 */

/** Caps on waits a provider or an account's settings can ask for (config `MAX_RETRY_*`). */
export interface DelayCaps {
  /** Longest `Retry-After` honoured, in seconds. */
  maxRetryAfterSeconds: number;
  /** Longest retry back-off, in seconds. */
  maxRetryDelaySeconds: number;
}

/** A step's retry back-off: `retry_base_delay_seconds · 2^retry_count` (60, 120, 240 s by default), capped. */
export function retryDelayMs(baseSeconds: number, retryCount: number, caps: DelayCaps): number {
  return Math.min(baseSeconds * 2 ** retryCount, caps.maxRetryDelaySeconds) * 1000;
}

/**
 * The wait after a 429: the provider's `Retry-After` up to the cap; a missing, zero, negative or
 * unreadable one (null here) gets the step's normal back-off, never an immediate repeat.
 */
export function rateLimitDelayMs(retryAfterMs: number | null, backoffMs: number, caps: DelayCaps): number {
  if (retryAfterMs === null || !(retryAfterMs > 0)) return backoffMs;
  return Math.min(retryAfterMs, caps.maxRetryAfterSeconds * 1000);
}
