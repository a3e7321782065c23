import { Agent, errors, request as httpRequest, type Dispatcher } from 'undici';
import type { Clock } from '../clock.ts';
import { classifyResponse, type ProviderOutcome } from './outcome.ts';
import { addressRefusalOf } from './webhook-guard.ts';

/** One request to a provider. */
export interface ProviderRequest {
  url: string;
  method?: string;
  body?: unknown;
  /** Same for every retry of one step of one execution (CONTRACT.md). */
  idempotencyKey: string;
  timeoutMs: number;
  /** Most bytes of the answer read; {@link MAX_ANSWER_BYTES} unless the step keeps data from it. */
  maxAnswerBytes?: number;
}

/** Most bytes of an answer's body that are kept; the rest is never read (CONTRACT.md). */
export const MAX_ANSWER_BYTES = 4096;
/**
 * Most bytes read of the answer of a webhook with `save_response`, whose JSON must be read whole to be
 * parsed: a longer answer is cut, is not JSON as read, and saves nothing (README "Webhook data").
 */
export const MAX_SAVED_ANSWER_BYTES = 65_536;

/** Keep-alive connections to the operator's providers, shared by every step of the process. */
const dispatcher = new Agent({ keepAliveTimeout: 30_000, connections: 128 });

/**
 * Reads at most `maxBytes` of a body and destroys the stream after that, so a huge answer is neither
 * buffered nor downloaded (the connection is closed, not reused). A body that fails midway keeps what
 * arrived. Decoded as UTF-8; a character cut at the cap becomes U+FFFD.
 */
export async function readBodyPrefix(
  body: Dispatcher.ResponseData['body'],
  maxBytes = MAX_ANSWER_BYTES,
): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  // Destroying an unfinished body emits an error (RequestAbortedError); it is expected here.
  body.on('error', () => undefined);
  try {
    for await (const chunk of body) {
      const buffer = chunk as Buffer;
      chunks.push(buffer.subarray(0, maxBytes - size));
      size += Math.min(buffer.length, maxBytes - size);
      if (size >= maxBytes) break;
    }
  } catch {
    // Keep what arrived before the failure (timeout, reset).
  } finally {
    if (!body.readableEnded) body.destroy();
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Sends one provider request over HTTP and classifies the answer, reading at most
 * {@link MAX_ANSWER_BYTES} of its body. Never throws for network trouble: timeouts and refused
 * connections are transient outcomes. A webhook whose address the guard's lookup refuses
 * (webhook-guard.ts) is a permanent outcome: nothing was sent, and a retry would be refused again.
 * Does not follow redirects.
 */
export async function sendProviderRequest(
  request: ProviderRequest,
  clock: Clock,
  via: Dispatcher = dispatcher,
): Promise<ProviderOutcome> {
  const method = (request.method ?? 'POST') as 'POST' | 'GET';
  try {
    const response = await httpRequest(request.url, {
      method,
      dispatcher: via,
      headers: { 'content-type': 'application/json', 'idempotency-key': request.idempotencyKey },
      body:
        method === 'GET' || request.body === undefined
          ? undefined
          : typeof request.body === 'string'
            ? request.body
            : JSON.stringify(request.body),
      // Bounds the whole exchange: connecting, the provider's answer and its body.
      signal: AbortSignal.timeout(request.timeoutMs),
    });
    const text = await readBodyPrefix(response.body, request.maxAnswerBytes ?? MAX_ANSWER_BYTES);
    const retryAfter = response.headers['retry-after'];
    return classifyResponse(
      response.statusCode,
      (Array.isArray(retryAfter) ? retryAfter[0] : retryAfter) ?? null,
      clock.now(),
      text,
    );
  } catch (thrown) {
    const refused = addressRefusalOf(thrown);
    if (refused) return { kind: 'permanent', status: 0, error: refused.message };
    const error = thrown as Error & { code?: string; cause?: { code?: string } };
    const timedOut = error.name === 'TimeoutError' || error instanceof errors.RequestAbortedError;
    const reason = timedOut
      ? `timeout after ${request.timeoutMs} ms`
      : (error.code ?? error.cause?.code ?? error.message);
    return { kind: 'transient', status: null, error: `request failed: ${reason}` };
  }
}
