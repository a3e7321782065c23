import type { NextFunction, Request, Response } from 'express';
import { HttpError } from './http-error.ts';

/** Deepest JSON nesting a request body may have. */
export const MAX_BODY_DEPTH = 64;

/**
 * Refuses bodies Postgres or the JSON serialiser cannot store: nesting deeper than
 * {@link MAX_BODY_DEPTH}, NUL characters and lone surrogates in keys or strings. Walks the body
 * without recursion, so hostile input cannot overflow the stack here either.
 */
export function sanitizeBody(request: Request, _response: Response, next: NextFunction) {
  const pending: { value: unknown; path: string; depth: number }[] = [{ value: request.body, path: 'body', depth: 0 }];
  while (pending.length > 0) {
    const { value, path, depth } = pending.pop()!;
    if (typeof value === 'string') {
      if (!storable(value))
        throw new HttpError(400, 'invalid request body', {
          issues: [{ path, message: 'contains a NUL character or invalid UTF-16' }],
        });
      continue;
    }
    if (!value || typeof value !== 'object') continue;
    if (depth >= MAX_BODY_DEPTH)
      throw new HttpError(400, 'invalid request body', {
        issues: [{ path, message: `nested more than ${MAX_BODY_DEPTH} levels deep` }],
      });
    for (const [key, child] of Object.entries(value)) {
      if (!storable(key))
        throw new HttpError(400, 'invalid request body', {
          issues: [{ path, message: 'a key contains a NUL character or invalid UTF-16' }],
        });
      pending.push({ value: child, path: `${path}.${key}`, depth: depth + 1 });
    }
  }
  next();
}

const storable = (text: string) => !text.includes('\u0000') && text.isWellFormed();
