import type { NextFunction, Request, Response } from 'express';
import { hashApiKey } from './api-keys.ts';
import type { ApiDeps, Caller } from './context.ts';
import { HttpError } from './http-error.ts';

const CACHE_MS = 5_000;

/**
 * Bearer API-key authentication. Lookups are cached for a few seconds (a revoked key stops working
 * within `CACHE_MS`), so authentication costs no database round trip on a busy path.
 */
export function authenticate(deps: ApiDeps) {
  const cache = new Map<string, { caller: Caller | null; until: number }>();
  return async (request: Request, _response: Response, next: NextFunction) => {
    const match = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '');
    if (!match) throw new HttpError(401, 'missing or malformed Authorization header (expected "Bearer <api_key>")');
    const hash = hashApiKey(match[1]!);
    const now = Date.now();
    let entry = cache.get(hash);
    if (!entry || entry.until < now) {
      const key = await deps.db.apiKey.findUnique({ where: { keyHash: hash } });
      entry = { caller: key && !key.revokedAt ? { accountId: key.accountId, userId: key.userId, apiKeyId: key.id } : null, until: now + CACHE_MS };
      if (cache.size > 10_000) cache.clear();
      cache.set(hash, entry);
    }
    if (!entry.caller) throw new HttpError(401, 'invalid or revoked API key');
    (request as Request & { caller: Caller }).caller = entry.caller;
    next();
  };
}
