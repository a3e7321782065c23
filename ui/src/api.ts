/**
 * The page's only way to the engine: `fetch` to `/api/v1` on this origin with the API key as a Bearer
 * header. The key is kept in sessionStorage (gone when the tab closes) and never put in a URL.
 */

export * from './api-types.ts';

const KEY = 'flowmachine.api_key';

/** An answer of the API that is not a 2xx: its status and the `error` message it gave. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** The key of this tab's session, or null when signed out. */
export const storedKey = (): string | null => sessionStorage.getItem(KEY);
export const storeKey = (key: string) => sessionStorage.setItem(KEY, key);
export const forgetKey = () => sessionStorage.removeItem(KEY);

/** Called when the API refuses the stored key (revoked meanwhile): the app signs out. */
let onUnauthorized: (message: string) => void = () => {};
export const setUnauthorizedHandler = (handler: (message: string) => void) => {
  onUnauthorized = handler;
};

/** Calls the API with `key` (the stored one by default); resolves the JSON body or throws {@link ApiError}. */
export async function api<T>(method: 'GET' | 'POST', path: string, body?: unknown, key = storedKey()): Promise<T> {
  const response = await fetch(`/api/v1${path}`, {
    method,
    headers: {
      ...(key ? { authorization: `Bearer ${key}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'omit',
    cache: 'no-store',
  });
  const text = await response.text();
  let parsed: unknown = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  if (!response.ok) {
    const message = (parsed as { error?: string } | null)?.error ?? `HTTP ${response.status}`;
    if (response.status === 401 && key === storedKey()) onUnauthorized(message);
    throw new ApiError(response.status, message);
  }
  return parsed as T;
}
