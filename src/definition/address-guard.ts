import ipaddr from 'ipaddr.js';

/**
 * Which addresses a `webhook` step may reach (CONTRACT.md `WEBHOOK_ALLOWED_HOSTS`). Pure: it classifies
 * addresses and host names it is given and resolves nothing; the send-time check that resolves names
 * lives in `providers/guarded-lookup.ts` and uses these functions on every resolved address.
 *
 * Only public unicast addresses are reachable. Everything else (loopback, private, link-local,
 * unique-local, multicast, unspecified, carrier-grade NAT, broadcast, reserved, tunnels and
 * translation prefixes that embed an IPv4 address) is refused unless its host is allow-listed.
 */

/** Readable names of ipaddr.js's ranges, for error messages. */
const RANGE_LABELS: Record<string, string> = {
  unspecified: 'unspecified',
  broadcast: 'broadcast',
  multicast: 'multicast',
  linkLocal: 'link-local',
  loopback: 'loopback',
  carrierGradeNat: 'carrier-grade NAT',
  private: 'private',
  reserved: 'reserved',
  uniqueLocal: 'unique-local',
  deprecatedSiteLocal: 'site-local',
  rfc6145: 'IPv4-translated',
  rfc6052: 'IPv4-translated (NAT64)',
  '6to4': '6to4 (embeds an IPv4 address)',
  teredo: 'Teredo (embeds an IPv4 address)',
};

/** Host names that always mean this machine or a cloud provider's metadata service. */
const RESERVED_NAMES = new Set([
  'localhost',
  'metadata',
  'metadata.google.internal',
  'metadata.goog',
  'instance-data',
  'instance-data.ec2.internal',
]);

/**
 * Why `address` (an IPv4 or IPv6 address, IPv6 with or without brackets) is not a public unicast
 * address, as a readable kind such as `loopback` or `link-local`; null when it is public. An IPv4-mapped
 * (or IPv4-compatible) IPv6 address is judged as the IPv4 address it carries. Anything that does not parse as an address is
 * refused (`not an IP address`).
 */
export function nonPublicKind(address: string): string | null {
  const bare = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  if (!ipaddr.isValid(bare)) return 'not an IP address';
  // process() turns ::ffff:a.b.c.d (and ::a.b.c.d) into a.b.c.d, so a mapped loopback is "loopback".
  const parsed = ipaddr.process(bare);
  const range = parsed.range();
  return range === 'unicast' ? null : (RANGE_LABELS[range] ?? range);
}

/** A host as it is compared: lower case, without a trailing dot (`Example.COM.` is `example.com`). */
export function canonicalHost(hostname: string): string {
  return hostname.toLowerCase().replace(/\.+$/, '');
}

/** Whether a canonical host is an IP literal (IPv4 dotted quad, or bracketed IPv6 as in URLs). */
export function isIpLiteral(host: string): boolean {
  if (host.startsWith('[') && host.endsWith(']')) return ipaddr.IPv6.isValid(host.slice(1, -1));
  return ipaddr.IPv4.isValidFourPartDecimal(host);
}

/**
 * Normalises one `WEBHOOK_ALLOWED_HOSTS` entry (`host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6
 * address) to the form {@link isAllowedHost} compares: the host as a URL would spell it, then `:port`
 * if one was given. Null when the entry is not a host (a path, credentials, an empty or bad port).
 */
export function normaliseAllowedHost(entry: string): string | null {
  const trimmed = entry.trim();
  if (!trimmed) return null;
  const authority = !trimmed.startsWith('[') && trimmed.split(':').length > 2 ? `[${trimmed}]` : trimmed;
  let url: URL;
  try {
    url = new URL(`http://${authority}`);
  } catch {
    return null;
  }
  if (url.username || url.password || url.pathname !== '/' || url.search || url.hash || authority.endsWith(':'))
    return null;
  // The URL drops a default port (":80"); keep it from the entry, so "host:80" does not allow every port.
  const port = /:(\d{1,5})$/.exec(authority)?.[1];
  const host = canonicalHost(url.hostname);
  return port === undefined ? host : `${host}:${Number(port)}`;
}

/**
 * Whether the URL's host (any port) or host and port are in `allowedHosts` (entries normalised by
 * {@link normaliseAllowedHost}). The URL's host is taken as written, not as it resolves.
 */
export function isAllowedHost(url: URL, allowedHosts: readonly string[]): boolean {
  if (allowedHosts.length === 0) return false;
  const host = canonicalHost(url.hostname);
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  return allowedHosts.includes(host) || allowedHosts.includes(`${host}:${port}`);
}

/**
 * The definition-time check of a webhook URL: why it may not be used, or null when it may. Refuses a
 * host that names a non-public address literally (in any form a URL normalises, such as `2130706433`,
 * `0x7f.1` or `[::ffff:127.0.0.1]`), `localhost` and `*.localhost`, and cloud metadata names, unless the
 * host is allow-listed. Names that merely resolve to such addresses are caught at send time.
 * A URL that does not parse is left to the schema's own URL check (null).
 */
export function webhookUrlRefusal(rawUrl: string, allowedHosts: readonly string[]): string | null {
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    return null;
  }
  if (isAllowedHost(url, allowedHosts)) return null;
  const host = canonicalHost(url.hostname);
  const hint = 'unless its host is in WEBHOOK_ALLOWED_HOSTS';
  if (isIpLiteral(host)) {
    const kind = nonPublicKind(host);
    return kind ? `must not point to a ${kind} address (${host}) ${hint}` : null;
  }
  if (RESERVED_NAMES.has(host) || host.endsWith('.localhost'))
    return `must not point to ${host} (this machine or a metadata service) ${hint}`;
  return null;
}
