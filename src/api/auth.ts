import type { NextFunction, Request, Response } from 'express';
import { run } from '../db/sql.ts';
import { hashApiKey } from './api-keys.ts';
import type { ApiDeps, Caller } from './context.ts';
import { HttpError } from './http-error.ts';

/** The caller of an unrevoked key, by its hash. */
const FIND_CALLER = {
  name: 'api-find-caller',
  text: `SELECT account_id AS "accountId", user_id AS "userId", id AS "apiKeyId" FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL`,
};

/**
 * Callers by API key hash (null for an unknown or revoked key), kept in process memory for `ttlMs`
 * so authentication costs no database round trip on a busy path. Bounded: the oldest entry goes
 * first. A revocation through this process's API forgets the key at once; other processes keep
 * accepting it until their entry expires, so a revoked key stops working everywhere within `ttlMs`.
 */
export class CallerCache {
  private readonly entries = new Map<string, { caller: Caller | null; until: number }>();

  constructor(
    private readonly ttlMs = 5_000,
    private readonly capacity = 10_000,
  ) {}

  /** The cached caller of `hash`: undefined when not cached or expired. */
  get(hash: string, now: number): Caller | null | undefined {
    const entry = this.entries.get(hash);
    return entry && entry.until > now ? entry.caller : undefined;
  }

  /** Caches the caller of `hash` (null: refused) for `ttlMs` from `now`. */
  set(hash: string, caller: Caller | null, now: number): void {
    this.entries.delete(hash);
    if (this.entries.size >= this.capacity) this.entries.delete(this.entries.keys().next().value as string);
    this.entries.set(hash, { caller, until: now + this.ttlMs });
  }

  forget(hash: string): void {
    this.entries.delete(hash);
  }
}

/** Bearer API-key authentication, through `callers`. */
export function authenticate(deps: ApiDeps, callers: CallerCache) {
  return async (request: Request, _response: Response, next: NextFunction) => {
    const match = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '');
    if (!match) throw new HttpError(401, 'missing or malformed Authorization header (expected "Bearer <api_key>")');
    const hash = hashApiKey(match[1]!);
    const now = Date.now();
    let caller = callers.get(hash, now);
    if (caller === undefined) {
      [caller = null] = await run<Caller>(deps.pool, FIND_CALLER, [hash]);
      callers.set(hash, caller, now);
    }
    if (!caller) throw new HttpError(401, 'invalid or revoked API key');
    (request as Request & { caller: Caller }).caller = caller;
    next();
  };
}
