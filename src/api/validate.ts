import type { z } from 'zod';
import { HttpError } from './http-error.ts';

/** Parses a request part with its schema; on failure a 400 naming the path of every invalid field. */
export function validate<S extends z.ZodType>(
  schema: S,
  value: unknown,
  where: 'body' | 'query' | 'params',
): z.infer<S> {
  const parsed = schema.safeParse(value ?? {});
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.flatMap((issue) =>
    // One issue per unknown field, at its own path, so callers see exactly what to remove.
    issue.code === 'unrecognized_keys'
      ? issue.keys.map((key) => ({ path: [where, ...issue.path.map(String), key].join('.'), message: 'unknown field' }))
      : [{ path: [where, ...issue.path.map(String)].join('.'), message: issue.message }],
  );
  throw new HttpError(400, `invalid request ${where}`, { issues });
}
