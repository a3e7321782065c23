import { createHash } from 'node:crypto';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { Pool } from '../db/client.ts';
import { coerceError } from '../errors.ts';
import { insertClaim, purgeKeys, readKey, releaseClaim, storeAnswer } from '../sql/idempotency-keys.ts';
import { callerOf, type ApiDeps } from './context.ts';
import { HttpError } from './http-error.ts';

/**
 * `Idempotency-Key` on the routes that create things (CONTRACT.md "Entry"): the same key within 24 hours
 * for the same account and route answers the first answer again (same status, same JSON body, with
 * `Idempotent-Replayed: true`) and runs nothing.
 *
 * Keys are claimed in Postgres before the handler runs, so they survive a Redis flush and hold across
 * API processes:
 * - a request whose key is new (or whose row has expired) claims it, runs, and stores its answer before
 *   the answer is sent, so a retry that follows the answer always finds it;
 * - an answer of 500 or more is not stored: the claim is released, and a retry runs again;
 * - a second request while the first still runs is refused at once with 409 and `Retry-After: 1`
 *   (the first one's answer is not known yet; waiting would hold a connection per duplicate);
 * - the same key with another request (method, path or JSON body) is refused with 422;
 * - a claim whose request never answered (its process died) is released after
 *   {@link IDEMPOTENCY_CLAIM_LEASE_MS}, so the key is not blocked for a day; the retry then runs as
 *   one without a key would (the engine's own dedup and re-entry guards still apply).
 */

/** The routes that honour `Idempotency-Key`, as their keys are stored (one key space per route). */
export const IDEMPOTENT_ROUTES = {
  trigger: 'POST /workflows/{id}/trigger',
  events: 'POST /contacts/{id}/events',
} as const;
export type IdempotentRoute = (typeof IDEMPOTENT_ROUTES)[keyof typeof IDEMPOTENT_ROUTES];

/** Name of the request header. */
export const IDEMPOTENCY_HEADER = 'idempotency-key';
/** Longest key accepted. */
export const MAX_IDEMPOTENCY_KEY_LENGTH = 255;
/** How long a key's first answer is given again. */
export const IDEMPOTENCY_TTL_MS = 24 * 3_600_000;
/** How long an unanswered claim blocks its key before it counts as abandoned. */
export const IDEMPOTENCY_CLAIM_LEASE_MS = 60_000;
/** Most expired rows removed after one stored answer (keeps the table bounded without a sweep). */
const PURGE_BATCH = 100;

const KEY_PATTERN = /^[\x20-\x7e]+$/;

/** Which key of which account and route. */
export interface IdempotencyKeyId {
  accountId: string;
  route: IdempotentRoute;
  key: string;
}

/** What claiming a key found. */
export type IdempotencyClaim =
  /** The key is this request's now; `claimedAt` identifies the claim when answering or releasing it. */
  | { kind: 'claimed'; claimedAt: Date }
  /** The key was answered: give this again. */
  | { kind: 'replay'; status: number; body: unknown }
  /** The key was used with another request. */
  | { kind: 'mismatch' }
  /** The key's first request has not answered yet. */
  | { kind: 'in_progress' };

/**
 * Hash of what makes two requests "the same": method, path and the JSON body with its keys sorted
 * (so the same object sent with its keys in another order is the same request).
 */
export function requestHash(method: string, path: string, body: unknown): string {
  return createHash('sha256')
    .update(`${method.toUpperCase()} ${path}\n${canonicalJson(body ?? null)}`)
    .digest('hex');
}

/** JSON with object keys sorted; bodies are at most 64 levels deep (sanitize-body.ts), so recursion is bounded. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object')
    return `{${Object.keys(value)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonicalJson((value as Record<string, unknown>)[key])}`)
      .join(',')}}`;
  return JSON.stringify(value) ?? 'null';
}

/**
 * Claims `id` for a request with hash `hash` at `now`, or says why not. One statement decides, so two
 * processes claiming the same key at once get one claim between them. An expired row (older than
 * {@link IDEMPOTENCY_TTL_MS}) or an abandoned claim (older than {@link IDEMPOTENCY_CLAIM_LEASE_MS}) is
 * taken over as if the key were new.
 */
export async function claimIdempotencyKey(
  pool: Pool,
  id: IdempotencyKeyId,
  hash: string,
  now: Date,
): Promise<IdempotencyClaim> {
  // A row removed between the two statements (expired and purged) makes the claim worth trying again.
  for (let attempt = 0; attempt < 3; attempt += 1) {
    const claimedAt = await insertClaim(
      pool,
      id,
      hash,
      now,
      new Date(now.getTime() - IDEMPOTENCY_TTL_MS),
      new Date(now.getTime() - IDEMPOTENCY_CLAIM_LEASE_MS),
    );
    if (claimedAt) return { kind: 'claimed', claimedAt };
    const row = await readKey(pool, id);
    if (!row) continue;
    if (row.request_hash !== hash) return { kind: 'mismatch' };
    if (row.status_code === null) return { kind: 'in_progress' };
    return { kind: 'replay', status: row.status_code, body: row.body };
  }
  throw new Error(`could not claim idempotency key of route ${id.route}`);
}

/** Stores the answer of the claim made at `claimedAt`; a claim taken over meanwhile is left alone. */
export async function storeIdempotentAnswer(
  pool: Pool,
  id: IdempotencyKeyId,
  claimedAt: Date,
  status: number,
  body: unknown,
): Promise<void> {
  await storeAnswer(pool, id, claimedAt, status, body);
}

/** Gives up the claim made at `claimedAt` (its request failed), so a retry runs again. */
export async function releaseIdempotencyKey(pool: Pool, id: IdempotencyKeyId, claimedAt: Date): Promise<void> {
  await releaseClaim(pool, id, claimedAt);
}

/** Removes up to `limit` rows older than {@link IDEMPOTENCY_TTL_MS} at `now`, oldest first; returns how many. */
export async function purgeExpiredIdempotencyKeys(pool: Pool, now: Date, limit = PURGE_BATCH): Promise<number> {
  return purgeKeys(pool, new Date(now.getTime() - IDEMPOTENCY_TTL_MS), limit);
}

/** The request's `Idempotency-Key`, or undefined without one; a 400 when it is empty, too long or not ASCII. */
export function idempotencyKeyOf(request: Request): string | undefined {
  const key = request.header(IDEMPOTENCY_HEADER);
  if (key === undefined) return undefined;
  if (key.length === 0 || key.length > MAX_IDEMPOTENCY_KEY_LENGTH || !KEY_PATTERN.test(key))
    throw new HttpError(400, 'invalid Idempotency-Key header', {
      issues: [
        {
          path: `headers.${IDEMPOTENCY_HEADER}`,
          message: `must be 1 to ${MAX_IDEMPOTENCY_KEY_LENGTH} printable ASCII characters`,
        },
      ],
    });
  return key;
}

/**
 * Middleware that makes `route` idempotent for requests with an `Idempotency-Key` (see the module
 * comment); requests without the header pass straight through. Mount it after authentication and body
 * parsing, before the route's handler.
 */
export function idempotency(deps: Pick<ApiDeps, 'pool' | 'clock' | 'logger'>, route: IdempotentRoute): RequestHandler {
  return async (request: Request, response: Response, next: NextFunction) => {
    const key = idempotencyKeyOf(request);
    if (key === undefined) return next();
    const id: IdempotencyKeyId = { accountId: callerOf(request).accountId, route, key };
    const hash = requestHash(request.method, `${request.baseUrl}${request.path}`, request.body);
    const claim = await claimIdempotencyKey(deps.pool, id, hash, deps.clock.now());
    switch (claim.kind) {
      case 'replay':
        response.set('idempotent-replayed', 'true');
        return void response.status(claim.status).json(claim.body);
      case 'mismatch':
        throw new HttpError(422, 'Idempotency-Key was already used with a different request', {
          issues: [
            {
              path: `headers.${IDEMPOTENCY_HEADER}`,
              message: 'send a new key for a new request; a key answers only the request it was first sent with',
            },
          ],
        });
      case 'in_progress':
        throw new HttpError(
          409,
          'a request with this Idempotency-Key is still in progress',
          {},
          { 'retry-after': '1' },
        );
      case 'claimed':
        holdAnswer(deps, response, id, claim.claimedAt);
        return next();
    }
  };
}

/**
 * Stores (or, for 5xx, releases) the answer before it is sent: `response.json` is wrapped for this
 * response (the error handler answers through it too), and a response sent without JSON releases the claim.
 */
function holdAnswer(
  deps: Pick<ApiDeps, 'pool' | 'clock' | 'logger'>,
  response: Response,
  id: IdempotencyKeyId,
  claimedAt: Date,
) {
  let settled = false;
  const send = response.json.bind(response);
  const failed = (what: string) => (error: unknown) =>
    deps.logger.error(`idempotency key could not be ${what}`, { route: id.route, error: coerceError(error).message });
  response.json = ((body: unknown) => {
    settled = true;
    const status = response.statusCode;
    const settle =
      status >= 500
        ? releaseIdempotencyKey(deps.pool, id, claimedAt).catch(failed('released'))
        : storeIdempotentAnswer(deps.pool, id, claimedAt, status, body)
            .then(() => purgeExpiredIdempotencyKeys(deps.pool, deps.clock.now()))
            .catch(failed('stored'));
    // The answer goes out either way; a claim that could not be stored expires with its lease.
    void settle.then(() => send(body)).catch(failed('answered'));
    return response;
  }) as Response['json'];
  // 'finish', not 'close': a client that hangs up early must not free the key while the handler still
  // runs (its answer is stored when it comes, for the client's retry); only an answer sent without
  // JSON, which nothing stores, frees it.
  response.on('finish', () => {
    if (!settled) void releaseIdempotencyKey(deps.pool, id, claimedAt).catch(failed('released'));
  });
}
