import { instantOnDay, localDayOf, parseLocalTime, WEEKDAYS, weekdayOf, zoneOf, type Weekday } from './local-time.ts';

/**
 * Send windows (quiet hours): when a workflow's messages may go out, in local time.
 *
 * A window opens at `start` on each of `days` (the local calendar day it opens on) and closes at the
 * next `end`: on the same day when `end` is later than `start`, else on the following day, so
 * `20:00`–`08:00` opened on a Friday runs until Saturday 08:00 even when Saturday is not in `days`.
 * `start` is inside the window, `end` is not. Both ends follow local-time.ts's DST rules (a time in a
 * gap means the end of the gap, a repeated time its first occurrence), so a window is as long as the
 * wall clock says: 09:00–20:00 is 10 hours on a spring-forward day. A window whose two ends land on
 * the same instant that day (both in one gap) does not open that day. `start` equal to `end` is a
 * whole day from `start` (the definition schema refuses it, as it is almost surely a mistake).
 * Pure: every function takes the instant it reasons about.
 */

/** A send window as a workflow's `send_window` configures it (the zone is resolved by the caller). */
export interface SendWindowSpec {
  /** Opening time, `HH:MM` 24-hour, local. */
  start: string;
  /** Closing time, `HH:MM` 24-hour, local; earlier than `start` means the next day. */
  end: string;
  /**
   * The weekdays on which the window opens.
   * @defaultValue every day
   */
  days?: readonly Weekday[];
}

/**
 * `null` when `at` is inside the window in `zone`; otherwise the instant it next opens. Throws on an
 * invalid zone, time or empty `days` (the definition schema refuses those first).
 */
export function windowOpenAt(spec: SendWindowSpec, zoneName: string, at: Date): Date | null {
  const zone = zoneOf(zoneName);
  const start = parseLocalTime(spec.start);
  const end = parseLocalTime(spec.end);
  const days = new Set<Weekday>(spec.days ?? WEEKDAYS);
  if (days.size === 0) throw new RangeError('days must name at least one weekday');
  // Minutes after the opening day's midnight at which the window closes.
  const closeMinutes = end > start ? end : end + 24 * 60;
  const now = at.getTime();
  const today = localDayOf(zone, now);
  // Yesterday's window may still be open (one that crosses midnight); a later one opens within a week.
  for (let day = today - 1; day <= today + 7; day += 1) {
    if (!days.has(weekdayOf(day))) continue;
    const opens = instantOnDay(zone, day, start);
    const closes = instantOnDay(zone, day, closeMinutes);
    if (closes <= opens || closes <= now) continue;
    return opens <= now ? null : new Date(opens);
  }
  // Unreachable: a weekday in `days` recurs within the next seven days.
  throw new RangeError(`no opening of ${spec.start}-${spec.end} found after ${at.toISOString()} in ${zoneName}`);
}
