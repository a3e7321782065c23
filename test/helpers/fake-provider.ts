import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createWaiters } from './waiters.ts';

/** One request the fake provider received. */
export interface ReceivedRequest {
  path: string;
  method: string;
  idempotencyKey: string | undefined;
  body: Record<string, unknown>;
  at: number;
}

/** How the fake provider answers one request. */
export type FakeResponse =
  /** `raw`: the answer's body as is (not JSON-encoded), to answer with text that is not JSON. */
  | { status: number; retryAfter?: string; body?: unknown; raw?: string; headers?: Record<string, string> }
  | { hang: true }
  /** Sends the status line and then one byte every `everyMs`, never finishing (a slow-drip answer). */
  | { drip: true; status?: number; everyMs?: number };

/**
 * A local HTTP provider for tests: records every request (with its Idempotency-Key) and answers
 * from a script: queued responses first, then the default (200). It can answer 200, 400, 429 with
 * Retry-After, 503, hang until the client gives up, or drip its answer a byte at a time.
 */
export async function startFakeProvider() {
  const received: ReceivedRequest[] = [];
  const scripted: FakeResponse[] = [];
  let fallback: FakeResponse = { status: 200 };
  let latencyMs = 0;
  /** While set, every answer but a hang or a drip waits for it (see `hold`). */
  let held: Promise<void> | null = null;
  const hanging = new Set<ServerResponse>();
  const waiters = createWaiters(received, 'fake provider', 'requests');

  const server: Server = createServer((request: IncomingMessage, response: ServerResponse) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      let body: Record<string, unknown> = {};
      try {
        body = JSON.parse(Buffer.concat(chunks).toString() || '{}');
      } catch {
        body = { raw: Buffer.concat(chunks).toString() };
      }
      received.push({
        path: request.url ?? '/',
        method: request.method ?? 'GET',
        idempotencyKey: request.headers['idempotency-key'] as string | undefined,
        body,
        at: Date.now(),
      });
      waiters.check();
      const answer = scripted.shift() ?? fallback;
      if ('hang' in answer || 'drip' in answer) {
        hanging.add(response);
        if ('drip' in answer) {
          response.writeHead(answer.status ?? 200, { 'content-type': 'application/json' });
          const timer = setInterval(() => response.write(' '), answer.everyMs ?? 50);
          response.on('close', () => clearInterval(timer));
        }
        response.on('close', () => hanging.delete(response));
        return;
      }
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (answer.retryAfter !== undefined) headers['retry-after'] = answer.retryAfter;
      Object.assign(headers, answer.headers);
      const send = () =>
        response
          .writeHead(answer.status, headers)
          .end(answer.raw ?? JSON.stringify(answer.body ?? { ok: answer.status < 300 }));
      const answerNow = () => (latencyMs > 0 ? void setTimeout(send, latencyMs) : send());
      if (held) void held.then(answerNow);
      else answerNow();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  const url = `http://127.0.0.1:${port}`;

  return {
    url,
    emailUrl: `${url}/email`,
    smsUrl: `${url}/sms`,
    received,
    /** Answers the next requests with these responses, in order. */
    script(...responses: FakeResponse[]) {
      scripted.push(...responses);
    },
    /** Answers every request without a scripted response like this. */
    setDefault(response: FakeResponse) {
      fallback = response;
    },
    /** Delays every answer by `ms` (a slow provider). */
    setLatency(ms: number) {
      latencyMs = ms;
    },
    /**
     * Holds every answer back (the request is recorded at once) until the returned function is called:
     * a provider call stays in flight for as long as a test needs, however long that takes.
     */
    hold(): () => void {
      let release!: () => void;
      held = new Promise<void>((resolve) => (release = resolve));
      return () => {
        held = null;
        release();
      };
    },
    requestsTo(path: string) {
      return received.filter((r) => r.path === path);
    },
    /** Resolves once `predicate` holds over the received requests. */
    waitFor: waiters.waitFor,
    async close() {
      for (const response of hanging) response.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export type FakeProvider = Awaited<ReturnType<typeof startFakeProvider>>;
