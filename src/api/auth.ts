import type { NextFunction, Request, Response } from 'express';
import { findCaller } from '../sql/api-keys.ts';
import { hashApiKey } from './api-keys.ts';
import { callerOf, type ApiDeps, type Caller } from './context.ts';
import { HttpError } from './http-error.ts';
import type { ApiRateLimits } from './rate-limit.ts';

/**
 * Callers by API key hash (null for an unknown or revoked key), kept in process memory for `ttlMs`
 * so authentication costs no database round trip on a busy path. Known and refused keys are kept apart,
 * each bounded (oldest out first), so a flood of made-up keys can only push out other refused ones,
 * never a valid caller. A revocation through this process's API forgets the key at once; other
 * processes keep accepting it until their entry expires, so a revoked key stops working everywhere
 * within `ttlMs`.
 */
export class CallerCache {
  private readonly known = new Map<string, { caller: Caller; until: number }>();
  private readonly refused = new Map<string, number>();

  constructor(
    private readonly ttlMs = 5_000,
    private readonly capacity = 10_000,
    private readonly refusedCapacity = 1_000,
  ) {}

  /** The cached caller of `hash`: undefined when not cached or expired, null when refused. */
  get(hash: string, now: number): Caller | null | undefined {
    const entry = this.known.get(hash);
    if (entry && entry.until > now) return entry.caller;
    const refusedUntil = this.refused.get(hash);
    return refusedUntil !== undefined && refusedUntil > now ? null : undefined;
  }

  /** Caches the caller of `hash` (null: refused) for `ttlMs` from `now`. */
  set(hash: string, caller: Caller | null, now: number): void {
    this.forget(hash);
    if (caller) put(this.known, hash, { caller, until: now + this.ttlMs }, this.capacity);
    else put(this.refused, hash, now + this.ttlMs, this.refusedCapacity);
  }

  forget(hash: string): void {
    this.known.delete(hash);
    this.refused.delete(hash);
  }
}

function put<V>(map: Map<string, V>, key: string, value: V, capacity: number) {
  if (map.size >= capacity) map.delete(map.keys().next().value as string);
  map.set(key, value);
}

/** Refuses callers whose key is not an admin key (403): key management and account settings. */
export function requireAdmin(request: Request, _response: Response, next: NextFunction) {
  if (callerOf(request).role !== 'admin')
    throw new HttpError(403, 'this API key is not allowed to manage keys or account settings (admin role needed)');
  next();
}

/**
 * Bearer API-key authentication, through `callers`; then the key's request rate. An address that keeps
 * failing authentication is refused with 429 before its key is even looked up.
 */
export function authenticate(deps: ApiDeps, callers: CallerCache, limits: ApiRateLimits) {
  return async (request: Request, _response: Response, next: NextFunction) => {
    const address = request.ip ?? 'unknown';
    await limits.checkAddress(address);
    const match = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '');
    if (!match) {
      await limits.failed(address);
      throw new HttpError(401, 'missing or malformed Authorization header (expected "Bearer <api_key>")');
    }
    const hash = hashApiKey(match[1]!);
    const now = Date.now();
    let caller = callers.get(hash, now);
    if (caller === undefined) {
      caller = await findCaller<Caller>(deps.pool, hash);
      callers.set(hash, caller, now);
    }
    if (!caller) {
      await limits.failed(address);
      throw new HttpError(401, 'invalid or revoked API key');
    }
    await limits.request(caller.apiKeyId);
    (request as Request & { caller: Caller }).caller = caller;
    next();
  };
}
