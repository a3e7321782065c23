import { IANAZone } from 'luxon';

/**
 * Local wall-clock time in IANA time zones, for `wait_until` and send windows.
 *
 * Offsets come from the platform's IANA data (Intl, through Luxon); nothing here holds an offset table.
 * Two rules settle the local times that daylight-saving changes make odd, the same everywhere:
 * - a local time that does not exist (spring forward, e.g. 02:30 in New York on the second Sunday of
 *   March) means the first instant after the gap (03:00 local, the moment of the change);
 * - a local time that happens twice (fall back, e.g. 01:30 in New York on the first Sunday of November)
 *   means its first occurrence (01:30 EDT, not 01:30 EST).
 * Pure: every function takes the instant it reasons about; none reads a clock.
 */

/** Days of the week as definitions spell them, Monday first. */
export const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
/** A day of the week as definitions spell it. */
export type Weekday = (typeof WEEKDAYS)[number];

/** The zone used when neither the contact's nor the account's zone is usable. */
export const FALLBACK_ZONE = 'UTC';

const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;

/** `HH:MM` on a 24-hour clock, `00:00` to `23:59`. */
export const LOCAL_TIME_PATTERN = /^([01]\d|2[0-3]):([0-5]\d)$/;

/** True when `name` is an IANA time zone name (or link, such as `US/Eastern`) the platform knows. */
export function isValidZone(name: unknown): name is string {
  return typeof name === 'string' && name.trim() === name && name !== '' && IANAZone.isValidZone(name);
}

/** Which zone to use, and, when a configured one was unusable, which and why. */
export interface ZoneResolution {
  /** A valid IANA zone name. */
  zone: string;
  /** Set when a zone was configured but is not a valid IANA name, so a fallback was taken. */
  fallback?: {
    /** The unusable name as configured. */
    from: string;
    /** Why it was not used and what was used instead, for the log. */
    reason: string;
  };
}

/**
 * Picks the zone for a contact: its own `timezone`, else the account's `default_timezone`, else UTC.
 * A zone that is set but is not a valid IANA name is skipped and reported in `fallback` (the first such
 * name), so a typo never silently moves a send; a zone that is simply unset falls back without a report.
 */
export function resolveZone(
  contactZone: string | null | undefined,
  accountDefault: string | null | undefined,
): ZoneResolution {
  const configured = (value: string | null | undefined): value is string => value !== null && value !== undefined;
  const candidates = [
    { name: contactZone, what: 'contact time zone' },
    { name: accountDefault, what: 'account default_timezone' },
  ];
  let fallback: ZoneResolution['fallback'];
  for (const { name, what } of candidates) {
    if (!configured(name)) continue;
    if (isValidZone(name)) return fallback ? { zone: name, fallback } : { zone: name };
    fallback ??= { from: name, reason: `${what} "${name}" is not a valid IANA time zone` };
  }
  return fallback
    ? { zone: FALLBACK_ZONE, fallback: { ...fallback, reason: `${fallback.reason}; using ${FALLBACK_ZONE}` } }
    : { zone: FALLBACK_ZONE };
}

/** Minutes after local midnight of an `HH:MM` time; throws on anything else (the schema refuses it first). */
export function parseLocalTime(time: string): number {
  const match = LOCAL_TIME_PATTERN.exec(time);
  if (!match) throw new RangeError(`"${time}" is not a 24-hour HH:MM time`);
  return Number(match[1]) * 60 + Number(match[2]);
}

/** A calendar day in some zone, as the number of days since 1970-01-01 (so days add as integers). */
export type LocalDay = number;

/** Luxon's zone for a name; throws on a name that is not a valid IANA zone. */
export function zoneOf(name: string): IANAZone {
  const zone = IANAZone.create(name);
  if (!zone.isValid) throw new RangeError(`"${name}" is not a valid IANA time zone`);
  return zone;
}

/** Offset of `zone` at `instant`, in milliseconds. */
const offsetMs = (zone: IANAZone, instant: number) => zone.offset(instant) * MINUTE_MS;

/** Wall-clock time at `instant` in `zone`, as milliseconds of a UTC clock showing the same wall time. */
const wallMs = (zone: IANAZone, instant: number) => instant + offsetMs(zone, instant);

/** The local calendar day of `instant` in `zone`. */
export function localDayOf(zone: IANAZone, instant: number): LocalDay {
  return Math.floor(wallMs(zone, instant) / DAY_MS);
}

/** Day of the week of a local day (1970-01-01 was a Thursday). */
export function weekdayOf(day: LocalDay): Weekday {
  return WEEKDAYS[(((day + 3) % 7) + 7) % 7]!;
}

/**
 * The instant at which `zone`'s wall clock shows `wall` (UTC-clock milliseconds): the earlier one when
 * it shows it twice, the first instant after the gap when it never does.
 */
function instantOfWall(zone: IANAZone, wall: number): number {
  // The offsets in force a day either side cover both sides of any one change (changes are months apart).
  const offsets = [offsetMs(zone, wall - DAY_MS), offsetMs(zone, wall + DAY_MS)];
  const matches = offsets.map((offset) => wall - offset).filter((instant) => wallMs(zone, instant) === wall);
  if (matches.length > 0) return Math.min(...matches);
  // A gap: find the first instant whose wall time is at or past `wall`, which is the moment of the change.
  // Wall time rises with the instant across the bounds (one forward jump), so bisection holds.
  let low = Math.min(...offsets.map((offset) => wall - offset));
  let high = Math.max(...offsets.map((offset) => wall - offset));
  while (high - low > 1) {
    const middle = Math.floor((low + high) / 2);
    if (wallMs(zone, middle) >= wall) high = middle;
    else low = middle;
  }
  return high;
}

/**
 * The instant at which `zone` shows `minutes` after local midnight of `day`, under the module's DST rules
 * (a time in a gap: the end of the gap; a time shown twice: the first occurrence).
 */
export function instantOnDay(zone: IANAZone, day: LocalDay, minutes: number): number {
  return instantOfWall(zone, day * DAY_MS + minutes * MINUTE_MS);
}

/** A local time of day on chosen weekdays, as `wait_until` configures it. */
export interface LocalTimeSpec {
  /** `HH:MM`, 24-hour. */
  time: string;
  /**
   * The weekdays on which the time counts (the local calendar day in the zone).
   * @defaultValue every day
   */
  days?: readonly Weekday[];
}

/**
 * The first instant strictly after `after` at which it is `time` in `zone` on one of `days`.
 *
 * Each local day has at most one such instant: a time that happens twice counts once (its first
 * occurrence), so a wait that started between the two occurrences runs on the next matching day; a time
 * that does not exist counts at the end of the gap. Throws on an invalid zone, time or empty `days`
 * (the definition schema refuses those first).
 */
export function nextLocalTime(spec: LocalTimeSpec, zoneName: string, after: Date): Date {
  const zone = zoneOf(zoneName);
  const minutes = parseLocalTime(spec.time);
  const days = new Set<Weekday>(spec.days ?? WEEKDAYS);
  if (days.size === 0) throw new RangeError('days must name at least one weekday');
  const from = after.getTime();
  const today = localDayOf(zone, from);
  for (let day = today; day <= today + 7; day += 1) {
    if (!days.has(weekdayOf(day))) continue;
    const instant = instantOnDay(zone, day, minutes);
    if (instant > from) return new Date(instant);
  }
  // Unreachable: a weekday in `days` that has passed today recurs within the next seven days.
  throw new RangeError(`no ${spec.time} found after ${after.toISOString()} in ${zoneName}`);
}
