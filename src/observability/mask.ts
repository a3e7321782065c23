/**
 * PII masking: the single place that decides what personal data and secrets look like once written
 * anywhere (execution logs in Postgres, log lines, API responses, span attributes).
 *
 * Emails keep their first character and domain (`j***@example.com`), phone numbers keep a leading `+`
 * and their last two digits (`+*********67`), secrets become `[REDACTED]`. Masking is idempotent.
 *
 * @packageDocumentation
 */

const REDACTED = '[REDACTED]';

/** Object keys whose values are secrets, whatever the value looks like. */
const SECRET_KEY = /pass(word)?|secret|token|api[-_]?key|authorization|cookie|credential|private[-_]?key/i;
const EMAIL_KEY = /^e-?mail$|^to$/i;
const PHONE_KEY = /^phone$|^to$/i;

// RFC 5322 atext minus the characters that in practice delimit an address inside URLs and quotes
// (`?email=john@x.com`, `'john@x.com'`); `*` is included so a masked local part is recognised again.
const LOCAL_PART = String.raw`[A-Za-z0-9.!#$%*+^_\`{|}~-]{1,64}|[=?&/']{1,64}`;
// Bounded label lengths and counts keep matching linear on long hostile input.
const DOMAIN = String.raw`(?:[A-Za-z0-9-]{1,63}\.){1,8}[A-Za-z]{2,63}`;
const UUID = String.raw`[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`;
const TIMESTAMP = String.raw`\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?`;
const NOT_ID = `(?!${UUID}|${TIMESTAMP})`;
/** A local part that is already masked (`j***`); kept as is so masking is idempotent. */
const MASKED_LOCAL = /\*{3}$/;

/**
 * One scanner for everything `maskText` and `containsPlainPii` look for. Alternatives that match at the
 * same position are tried in order, so secrets win over emails, and uuids/timestamps are consumed whole
 * before their digit groups could be mistaken for a phone number. Using one scanner for both functions
 * is what makes `containsPlainPii(maskText(x))` false for every `x`.
 */
const TOKEN = new RegExp(
  [
    // key=value / "key": "value" pairs; the value may be quoted or carry an auth scheme. An empty value
    // matches too, so the pair is recognised whatever follows the separator (idempotence).
    String.raw`(?<pairKey>(?<![\w\]-])(?:[A-Za-z_][\w-]*)?(?:password|passwd|secret|token|api[_-]?key|apikey|credentials?|authorization)["']?\s*[:=]\s*)(?<pairValue>"[^"]*"|'[^']*'|(?:(?:Bearer|Basic)\s+)?[^\s&,;"'}]*)`,
    String.raw`(?<bearer>\bBearer\s+)[A-Za-z0-9._~+/=-]+`,
    // Our API keys and Stripe-style secret keys.
    String.raw`(?<apiKey>\bfm_[A-Za-z0-9_-]{20,}|\b[sr]k_(?:live|test)_[A-Za-z0-9]+)`,
    // A chain such as `x@a.io@b.io` is one token, masked down to its last domain.
    String.raw`(?<emailLocal>${LOCAL_PART})@(?<emailDomain>${DOMAIN}(?:@${DOMAIN})*)`,
    String.raw`(?<keep>${TIMESTAMP}|${UUID})`,
    // A maximal run of 7 to 15 digits (E.164) joined by at most 3 separator characters, not glued to a
    // word, an `@` or a mask, and not running into a uuid or timestamp: long ids such as trace ids stay
    // intact, and the two digits a masked number keeps can never join a neighbour on a second pass. `]`
    // (the end of `[REDACTED]`) counts as a digit on its left and `*` (a masked digit) on its right.
    String.raw`(?<phone>(?<![\w+\]])(?<![\d\]][ ().-]{1,3})\+?\d(?:[ ().-]{0,3}${NOT_ID}\d){6,14})(?![\w@*]|[ ().-]{1,3}(?:\*|${NOT_ID}\d))`,
  ].join('|'),
  'gi',
);

const DECIMAL = /^\d+\.\d+$/;
/**
 * What every alternative of {@link TOKEN} that changes text needs (an `@`, a digit or one of the secret
 * words): text without any is returned as is without running the scanner, and so is a bare uuid (log
 * lines are mostly ids and names).
 */
const MAY_HOLD_TOKEN = /[@\d]|pass|secret|token|api|credential|authorization|bearer|fm_|k_/i;
const BARE_UUID = new RegExp(`^${UUID}$`);

type TokenGroups = Partial<
  Record<'pairKey' | 'pairValue' | 'bearer' | 'apiKey' | 'emailLocal' | 'emailDomain' | 'phone', string>
>;

function maskToken(match: string, groups: TokenGroups): string {
  if (groups.pairKey !== undefined) {
    const quote = /^["']/.exec(groups.pairValue ?? '')?.[0] ?? '';
    return `${groups.pairKey}${quote}${REDACTED}${quote}`;
  }
  if (groups.bearer !== undefined) return `${groups.bearer}${REDACTED}`;
  if (groups.apiKey !== undefined) return REDACTED;
  if (groups.emailLocal !== undefined) {
    const local = MASKED_LOCAL.test(groups.emailLocal) ? groups.emailLocal : `${groups.emailLocal[0]}***`;
    return `${local}@${groups.emailDomain?.split('@').at(-1)}`;
  }
  if (groups.phone !== undefined && !DECIMAL.test(groups.phone)) return maskPhone(groups.phone);
  return match;
}

/**
 * Masks one email address: first character of the local part, `***@`, then the domain
 * (`john@example.com` → `j***@example.com`). A value without a local part becomes `***`.
 */
export function maskEmail(email: string): string {
  const trimmed = email.trim();
  const at = trimmed.lastIndexOf('@');
  return at < 1 ? '***' : `${trimmed[0]}***${trimmed.slice(at)}`;
}

/**
 * Masks one phone number: every digit but the last two becomes `*`; a leading `+` and separators stay
 * (`+15551234567` → `+*********67`).
 */
export function maskPhone(phone: string): string {
  let hidden = (phone.match(/\d/g)?.length ?? 0) - 2;
  return phone.replace(/\d/g, (digit) => (hidden-- > 0 ? '*' : digit));
}

/**
 * Masks PII and secrets inside free text: email addresses and phone-number-like sequences (7–15 digits,
 * with spaces, dashes, dots, parentheses, a leading `+`) are masked; `Bearer` tokens, `fm_…` API keys,
 * `sk_live_…`/`sk_test_…` keys and `password=…`/`token=…`/`api_key=…` values become `[REDACTED]`.
 * Uuids, ISO dates and timestamps, decimals and numbers shorter than 7 digits are left alone.
 */
export function maskText(text: string): string {
  if (!MAY_HOLD_TOKEN.test(text) || BARE_UUID.test(text)) return text;
  return text.replace(TOKEN, (match: string, ...rest: unknown[]) => maskToken(match, rest.at(-1) as TokenGroups));
}

/**
 * Whether text still holds an unmasked email address or phone number, i.e. one that {@link maskText}
 * would change (so uuids, timestamps, decimals and masked values do not count). Meant for tests that
 * sweep every log line and stored log entry of a run.
 */
export function containsPlainPii(text: string): boolean {
  for (const match of text.matchAll(TOKEN)) {
    const groups = (match.groups ?? {}) as TokenGroups;
    const isPii = groups.emailLocal !== undefined || groups.phone !== undefined;
    if (isPii && maskToken(match[0], groups) !== match[0]) return true;
  }
  return false;
}

const looksLikeEmail = (value: string): boolean => /^[^\s@]+@[^\s@]+$/.test(value.trim());
const looksLikePhone = (value: string): boolean =>
  /^\+?[\d\s().-]+$/.test(value.trim()) && (value.match(/\d/g)?.length ?? 0) >= 7;

function maskString(value: string, key: string | undefined): string {
  if (key !== undefined && EMAIL_KEY.test(key) && looksLikeEmail(value)) return maskEmail(value);
  if (key !== undefined && PHONE_KEY.test(key) && looksLikePhone(value)) return maskPhone(value);
  return maskText(value);
}

function entriesOf(value: object): [string, unknown][] {
  if (value instanceof Error) {
    const cause: [string, unknown][] = 'cause' in value ? [['cause', value.cause]] : [];
    return [
      ['name', value.name],
      ['message', value.message],
      ['stack', value.stack],
      ...cause,
      ...Object.entries(value),
    ];
  }
  return Object.entries(value);
}

function maskValue(value: unknown, key: string | undefined, ancestors: Set<object>): unknown {
  if (key !== undefined && SECRET_KEY.test(key) && value !== null && value !== undefined) return REDACTED;
  if (typeof value === 'string') return maskString(value, key);
  // A phone number stored as a number is still a phone number.
  if (typeof value === 'number' && key !== undefined && /^phone$/i.test(key)) return maskPhone(String(value));
  if (typeof value !== 'object' || value === null || value instanceof Date) return value;
  if (ancestors.has(value)) return '[Circular]';
  ancestors.add(value);
  try {
    // Array items inherit the key: `to: ['a@x.com']` is a list of recipients.
    if (Array.isArray(value)) return value.map((item) => maskValue(item, key, ancestors));
    if (!(value instanceof Error) && typeof (value as { toJSON?: unknown }).toJSON === 'function') {
      return maskValue((value as { toJSON(): unknown }).toJSON(), key, ancestors);
    }
    return Object.fromEntries(entriesOf(value).map(([k, v]) => [k, maskValue(v, k, ancestors)]));
  } finally {
    ancestors.delete(value);
  }
}

/**
 * Deep copy of `value` that is safe to write anywhere: values under secret-looking keys (password, token,
 * api key, authorization, cookie, credential, private key, …) become `[REDACTED]`; `email`/`to` values that
 * are addresses go through {@link maskEmail}, `phone`/`to` values that are numbers through
 * {@link maskPhone}; every other string through {@link maskText}. Arrays and objects are recursed (class
 * instances with `toJSON` are serialised first, errors keep name/message/stack); dates, numbers, booleans
 * and null are kept; a reference cycle becomes `'[Circular]'`.
 */
export function maskPii<T>(value: T): T {
  return maskValue(value, undefined, new Set()) as T;
}
