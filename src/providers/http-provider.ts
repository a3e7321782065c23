import type { Clock } from '../clock.ts';
import { classifyResponse, type ProviderOutcome } from './outcome.ts';

/** One request to a provider. */
export interface ProviderRequest {
  url: string;
  method?: string;
  body?: unknown;
  /** Same for every retry of one step of one execution (CONTRACT.md). */
  idempotencyKey: string;
  timeoutMs: number;
}

/**
 * Sends one provider request over HTTP and classifies the answer. Never throws for network
 * trouble: timeouts and refused connections are transient outcomes.
 */
export async function sendProviderRequest(request: ProviderRequest, clock: Clock): Promise<ProviderOutcome> {
  const method = request.method ?? 'POST';
  try {
    const response = await fetch(request.url, {
      method,
      headers: { 'content-type': 'application/json', 'idempotency-key': request.idempotencyKey },
      body: method === 'GET' || request.body === undefined ? undefined : typeof request.body === 'string' ? request.body : JSON.stringify(request.body),
      signal: AbortSignal.timeout(request.timeoutMs),
    });
    const text = response.ok ? '' : await response.text().catch(() => '');
    if (response.ok) await response.body?.cancel().catch(() => undefined);
    return classifyResponse(response.status, response.headers.get('retry-after'), clock.now(), text);
  } catch (thrown) {
    const error = thrown as Error & { cause?: { code?: string } };
    const reason = error.name === 'TimeoutError' ? `timeout after ${request.timeoutMs} ms` : (error.cause?.code ?? error.message);
    return { kind: 'transient', status: null, error: `request failed: ${reason}` };
  }
}
