import { Agent, errors, request as httpRequest } from 'undici';
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

/** Keep-alive connections to providers, shared by every step of the process. */
const dispatcher = new Agent({ keepAliveTimeout: 30_000, connections: 128 });

/**
 * Sends one provider request over HTTP and classifies the answer. Never throws for network
 * trouble: timeouts and refused connections are transient outcomes.
 */
export async function sendProviderRequest(request: ProviderRequest, clock: Clock): Promise<ProviderOutcome> {
  const method = (request.method ?? 'POST') as 'POST' | 'GET';
  try {
    const response = await httpRequest(request.url, {
      method,
      dispatcher,
      headers: { 'content-type': 'application/json', 'idempotency-key': request.idempotencyKey },
      body: method === 'GET' || request.body === undefined ? undefined : typeof request.body === 'string' ? request.body : JSON.stringify(request.body),
      // Bounds the whole exchange: connecting, the provider's answer and its body.
      signal: AbortSignal.timeout(request.timeoutMs),
    });
    const ok = response.statusCode >= 200 && response.statusCode < 300;
    const text = ok ? '' : await response.body.text().catch(() => '');
    if (ok) await response.body.dump().catch(() => undefined);
    const retryAfter = response.headers['retry-after'];
    return classifyResponse(response.statusCode, (Array.isArray(retryAfter) ? retryAfter[0] : retryAfter) ?? null, clock.now(), text);
  } catch (thrown) {
    const error = thrown as Error & { code?: string; cause?: { code?: string } };
    const timedOut = error.name === 'TimeoutError' || error instanceof errors.RequestAbortedError;
    const reason = timedOut ? `timeout after ${request.timeoutMs} ms` : (error.code ?? error.cause?.code ?? error.message);
    return { kind: 'transient', status: null, error: `request failed: ${reason}` };
  }
}
