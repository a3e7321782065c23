const UNIT_MS = {
  second: 1_000,
  minute: 60_000,
  hour: 3_600_000,
  day: 86_400_000,
  week: 604_800_000,
} as const;

const ALIASES: Record<string, keyof typeof UNIT_MS> = {
  s: 'second',
  sec: 'second',
  secs: 'second',
  second: 'second',
  seconds: 'second',
  m: 'minute',
  min: 'minute',
  mins: 'minute',
  minute: 'minute',
  minutes: 'minute',
  h: 'hour',
  hr: 'hour',
  hrs: 'hour',
  hour: 'hour',
  hours: 'hour',
  d: 'day',
  day: 'day',
  days: 'day',
  w: 'week',
  week: 'week',
  weeks: 'week',
};

/** The longest wait a definition may ask for. */
export const MAX_DURATION_MS = 366 * UNIT_MS.day;

/**
 * Parses a human duration such as `"30 seconds"`, `"2 hours"`, `"3 days"` or `"90s"` into milliseconds.
 * Returns `null` for anything else, including zero, negative, fractional or over-long durations.
 */
export function parseDuration(text: string): number | null {
  const match = /^\s*(\d{1,7})\s*([a-z]+)\s*$/i.exec(text);
  if (!match) return null;
  const unit = ALIASES[match[2]!.toLowerCase()];
  if (!unit) return null;
  const ms = Number(match[1]) * UNIT_MS[unit];
  return ms > 0 && ms <= MAX_DURATION_MS ? ms : null;
}
