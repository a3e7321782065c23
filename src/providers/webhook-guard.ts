import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import type { LookupFunction } from 'node:net';
import { Agent, type Dispatcher } from 'undici';
import { canonicalHost, isAllowedHost, isIpLiteral, nonPublicKind } from '../definition/address-guard.ts';
import { FlowmachineError } from '../errors.ts';

/**
 * Resolves a host name to every address it has (`dns.lookup` with `all: true` by default). Injected so
 * tests can map a name to a loopback address without touching the system's resolver.
 */
export type HostResolver = (hostname: string) => Promise<readonly LookupAddress[]>;

/** The system resolver (getaddrinfo, as every other connection of the process uses). */
export const systemResolver: HostResolver = (hostname) =>
  new Promise((resolve, reject) =>
    dnsLookup(hostname, { all: true, verbatim: true }, (error, addresses) =>
      error ? reject(error) : resolve(addresses),
    ),
  );

/** A webhook whose host is, or resolves to, an address it may not reach; never retried. */
export class AddressNotAllowedError extends FlowmachineError {
  constructor(message: string) {
    super('webhook_address_not_allowed', message);
  }
}

/**
 * A `lookup` for `net.connect` that resolves every address of the name, refuses the connection if ANY
 * of them is non-public (a name that answers with one public and one private address may switch
 * between them: DNS rebinding), and hands back only the addresses it checked, so the socket connects
 * to a checked address and never resolves again.
 */
export function createGuardedLookup(resolve: HostResolver): LookupFunction {
  return lookupThrough(resolve, true);
}

/** A `lookup` answered by `resolve`, checking every address when `check` is set. */
function lookupThrough(resolve: HostResolver, check: boolean): LookupFunction {
  return (
    hostname: string,
    options: LookupOptions,
    callback: (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
  ) => {
    resolve(hostname).then(
      (resolved) => {
        for (const { address } of check ? resolved : []) {
          const kind = nonPublicKind(address);
          if (kind)
            return callback(
              new AddressNotAllowedError(
                `webhook address not allowed: ${hostname} resolves to ${address}, which is ${kind}`,
              ),
              '',
            );
        }
        const family = options.family === 'IPv4' ? 4 : options.family === 'IPv6' ? 6 : options.family;
        const usable = resolved.filter((entry) => !family || entry.family === family);
        if (usable.length === 0)
          return callback(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }), '');
        if (options.all)
          return callback(
            null,
            usable.map((entry) => ({ ...entry })),
          );
        return callback(null, usable[0]!.address, usable[0]!.family);
      },
      (error: NodeJS.ErrnoException) => callback(error, ''),
    );
  };
}

/** Where one webhook may go: the dispatcher to send it with, or why it may not be sent at all. */
export type WebhookRoute = { ok: true; dispatcher: Dispatcher } | { ok: false; error: string };

/** The send-time guard of webhook steps (CONTRACT.md `WEBHOOK_ALLOWED_HOSTS`). */
export interface WebhookGuard {
  /** Picks the dispatcher for `url`, or refuses an IP literal that is not public without connecting. */
  route(url: string): WebhookRoute;
  /** Closes both connection pools. */
  close(): Promise<void>;
}

/** Options of {@link createWebhookGuard}. */
export interface WebhookGuardOptions {
  /** `WEBHOOK_ALLOWED_HOSTS`, normalised: hosts sent to without any address check. */
  allowedHosts: readonly string[];
  /** @defaultValue {@link systemResolver} */
  resolve?: HostResolver;
}

/**
 * Makes the two connection pools of webhooks, both resolving names through `resolve`: one for
 * allow-listed hosts (no address checks), one whose every connection goes through
 * {@link createGuardedLookup}. Neither follows redirects (undici's `request`
 * never does), so a 3xx answer cannot send the call on to an address that was not checked.
 */
export function createWebhookGuard(options: WebhookGuardOptions): WebhookGuard {
  const resolve = options.resolve ?? systemResolver;
  const open = new Agent({
    keepAliveTimeout: 30_000,
    connections: 128,
    connect: { lookup: lookupThrough(resolve, false) },
  });
  const guarded = new Agent({
    keepAliveTimeout: 30_000,
    connections: 128,
    connect: { lookup: createGuardedLookup(resolve) },
  });
  return {
    route(rawUrl) {
      const url = new URL(rawUrl);
      if (isAllowedHost(url, options.allowedHosts)) return { ok: true, dispatcher: open };
      const host = canonicalHost(url.hostname);
      // net.connect does not call `lookup` for an IP literal: check it here.
      if (isIpLiteral(host)) {
        const kind = nonPublicKind(host);
        if (kind) return { ok: false, error: `webhook address not allowed: ${host} is ${kind}` };
      }
      return { ok: true, dispatcher: guarded };
    },
    async close() {
      await Promise.all([open.close(), guarded.close()]);
    },
  };
}

/** The {@link AddressNotAllowedError} behind a failed request, if one refused it (undici may wrap it). */
export function addressRefusalOf(thrown: unknown): AddressNotAllowedError | null {
  for (let error = thrown, depth = 0; error && depth < 5; error = (error as { cause?: unknown }).cause, depth += 1) {
    if (error instanceof AddressNotAllowedError) return error;
  }
  return null;
}
