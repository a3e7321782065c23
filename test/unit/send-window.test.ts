import { describe, expect, it } from 'vitest';
import { windowOpenAt, type SendWindowSpec } from '../../src/definition/send-window.ts';

/** `windowOpenAt` as an ISO string (or null), so a failure shows the instant. */
const openAt = (spec: SendWindowSpec, zone: string, at: string) =>
  windowOpenAt(spec, zone, new Date(at))?.toISOString() ?? null;

const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri'] as const;

describe('windowOpenAt: a daytime window (09:00-20:00, America/New_York in June, EDT = UTC-4)', () => {
  const day = { start: '09:00', end: '20:00' };
  const zone = 'America/New_York';

  it('before the window: the opening later today', () => {
    expect(openAt(day, zone, '2026-06-10T12:00:00Z')).toBe('2026-06-10T13:00:00.000Z');
  });

  it('the opening minute is inside', () => {
    expect(openAt(day, zone, '2026-06-10T13:00:00Z')).toBeNull();
  });

  it('the last moment before the end is inside', () => {
    expect(openAt(day, zone, '2026-06-10T23:59:59.999Z')).toBeNull();
  });

  it('the end is outside: the opening tomorrow', () => {
    expect(openAt(day, zone, '2026-06-11T00:00:00Z')).toBe('2026-06-11T13:00:00.000Z');
  });

  it('weekdays only: Saturday waits for Monday 09:00', () => {
    expect(openAt({ ...day, days: WEEKDAYS }, zone, '2026-06-13T15:00:00Z')).toBe('2026-06-15T13:00:00.000Z');
  });

  it('weekdays only: Friday evening after the end waits for Monday', () => {
    expect(openAt({ ...day, days: WEEKDAYS }, zone, '2026-06-13T01:00:00Z')).toBe('2026-06-15T13:00:00.000Z');
  });
});

describe('windowOpenAt: a window across midnight (20:00-08:00)', () => {
  const night = { start: '20:00', end: '08:00' };
  const zone = 'America/New_York';

  it('late evening is inside', () => {
    expect(openAt(night, zone, '2026-06-11T03:00:00Z')).toBeNull();
  });

  it('early morning is inside (the window opened the day before)', () => {
    expect(openAt(night, zone, '2026-06-11T11:00:00Z')).toBeNull();
  });

  it('from the end to the start is outside: it opens at 20:00 the same day', () => {
    expect(openAt(night, zone, '2026-06-11T12:00:00Z')).toBe('2026-06-12T00:00:00.000Z');
  });

  it('days name the opening day: Friday 20:00 runs into Saturday morning even without Saturday', () => {
    // 2026-06-13T11:00Z is Saturday 07:00 EDT, inside the window opened on Friday.
    expect(openAt({ ...night, days: ['fri'] }, zone, '2026-06-13T11:00:00Z')).toBeNull();
  });

  it('days name the opening day: Saturday after 08:00 waits for next Friday 20:00', () => {
    expect(openAt({ ...night, days: ['fri'] }, zone, '2026-06-13T13:00:00Z')).toBe('2026-06-20T00:00:00.000Z');
  });

  it('a Thursday morning is outside a window that opens only on Friday', () => {
    expect(openAt({ ...night, days: ['fri'] }, zone, '2026-06-11T11:00:00Z')).toBe('2026-06-13T00:00:00.000Z');
  });
});

describe('windowOpenAt: daylight-saving days', () => {
  it('New York spring forward: a window starting in the gap opens at 03:00 EDT', () => {
    // 06:59Z on 2026-03-08 is 01:59 EST; 02:30 does not exist, 03:00 EDT is 07:00Z.
    expect(openAt({ start: '02:30', end: '09:00' }, 'America/New_York', '2026-03-08T06:59:00Z')).toBe(
      '2026-03-08T07:00:00.000Z',
    );
  });

  it('New York spring forward: a window wholly inside the gap does not open that day', () => {
    expect(openAt({ start: '02:00', end: '02:45' }, 'America/New_York', '2026-03-08T05:00:00Z')).toBe(
      '2026-03-09T06:00:00.000Z',
    );
  });

  it('New York spring forward: a window spanning the gap is open on both sides of it', () => {
    const window = { start: '01:00', end: '05:00' };
    expect(openAt(window, 'America/New_York', '2026-03-08T06:30:00Z')).toBeNull(); // 01:30 EST
    expect(openAt(window, 'America/New_York', '2026-03-08T07:30:00Z')).toBeNull(); // 03:30 EDT
    expect(openAt(window, 'America/New_York', '2026-03-08T09:00:00Z')).toBe('2026-03-09T05:00:00.000Z'); // 05:00 EDT
  });

  it('New York fall back: a window ending at the repeated 01:30 closes at its first occurrence', () => {
    const window = { start: '20:00', end: '01:30' };
    expect(openAt(window, 'America/New_York', '2026-11-01T05:15:00Z')).toBeNull(); // 01:15 EDT
    // 05:45Z is 01:45 EDT, past the first 01:30; the next opening is 20:00 EST on 2026-11-01.
    expect(openAt(window, 'America/New_York', '2026-11-01T05:45:00Z')).toBe('2026-11-02T01:00:00.000Z');
  });

  it('Berlin spring forward: 09:00 CEST is 07:00Z on the day of the change', () => {
    expect(openAt({ start: '09:00', end: '20:00' }, 'Europe/Berlin', '2026-03-29T06:30:00Z')).toBe(
      '2026-03-29T07:00:00.000Z',
    );
  });

  it('Berlin fall back: the repeated hour is inside a night window once and only once', () => {
    const window = { start: '22:00', end: '02:30' };
    expect(openAt(window, 'Europe/Berlin', '2026-10-25T00:15:00Z')).toBeNull(); // 02:15 CEST
    // 00:45Z is 02:45 CEST; 01:15Z is 02:15 CET (the second pass through 02:00-03:00).
    expect(openAt(window, 'Europe/Berlin', '2026-10-25T00:45:00Z')).toBe('2026-10-25T21:00:00.000Z');
    expect(openAt(window, 'Europe/Berlin', '2026-10-25T01:15:00Z')).toBe('2026-10-25T21:00:00.000Z');
  });

  it('Sydney fall back (2026-04-05 03:00 AEDT -> 02:00 AEST): 09:00 moves from 22:00Z to 23:00Z', () => {
    const window = { start: '09:00', end: '17:00' };
    expect(openAt(window, 'Australia/Sydney', '2026-04-03T21:00:00Z')).toBe('2026-04-03T22:00:00.000Z');
    expect(openAt(window, 'Australia/Sydney', '2026-04-04T07:00:00Z')).toBe('2026-04-04T23:00:00.000Z');
  });

  it('Sydney spring forward: a night window crossing the change is 7 hours on the wall clock, 6 in fact', () => {
    const window = { start: '22:00', end: '05:00' };
    // Opens Saturday 2026-10-03 22:00 AEST (12:00Z), closes Sunday 05:00 AEDT (2026-10-03T18:00Z).
    expect(openAt(window, 'Australia/Sydney', '2026-10-03T11:59:00Z')).toBe('2026-10-03T12:00:00.000Z');
    expect(openAt(window, 'Australia/Sydney', '2026-10-03T17:59:00Z')).toBeNull();
    expect(openAt(window, 'Australia/Sydney', '2026-10-03T18:00:00Z')).toBe('2026-10-04T11:00:00.000Z');
  });
});

describe('windowOpenAt: other zones and edge cases', () => {
  it('Asia/Kolkata: 09:00-20:00 IST is 03:30Z-14:30Z', () => {
    const window = { start: '09:00', end: '20:00' };
    expect(openAt(window, 'Asia/Kolkata', '2026-06-10T03:29:00Z')).toBe('2026-06-10T03:30:00.000Z');
    expect(openAt(window, 'Asia/Kolkata', '2026-06-10T14:29:00Z')).toBeNull();
    expect(openAt(window, 'Asia/Kolkata', '2026-06-10T14:30:00Z')).toBe('2026-06-11T03:30:00.000Z');
  });

  it('start equal to end is a whole day from start', () => {
    const window = { start: '09:00', end: '09:00', days: ['mon'] as const };
    // Monday 2026-06-15 09:00 UTC to Tuesday 09:00 UTC.
    expect(openAt(window, 'UTC', '2026-06-16T08:59:00Z')).toBeNull();
    expect(openAt(window, 'UTC', '2026-06-16T09:00:00Z')).toBe('2026-06-22T09:00:00.000Z');
  });

  it('refuses an invalid zone, time or empty days', () => {
    const at = new Date('2026-01-01T00:00:00Z');
    expect(() => windowOpenAt({ start: '09:00', end: '17:00' }, 'Nowhere/Town', at)).toThrow(/IANA/);
    expect(() => windowOpenAt({ start: '9am', end: '17:00' }, 'UTC', at)).toThrow(/HH:MM/);
    expect(() => windowOpenAt({ start: '09:00', end: '24:00' }, 'UTC', at)).toThrow(/HH:MM/);
    expect(() => windowOpenAt({ start: '09:00', end: '17:00', days: [] }, 'UTC', at)).toThrow(/weekday/);
  });
});
