import { describe, expect, it } from 'vitest';
import {
  isValidZone,
  nextLocalTime,
  parseLocalTime,
  resolveZone,
  type LocalTimeSpec,
} from '../../src/definition/local-time.ts';

/** `nextLocalTime` as an ISO string, so a failure shows the instant. */
const next = (spec: LocalTimeSpec, zone: string, after: string) =>
  nextLocalTime(spec, zone, new Date(after)).toISOString();

describe('isValidZone', () => {
  it.each(['UTC', 'America/New_York', 'Europe/Berlin', 'Australia/Sydney', 'Asia/Kolkata', 'US/Eastern'])(
    'accepts the IANA name %s',
    (zone) => expect(isValidZone(zone)).toBe(true),
  );

  it.each(['', 'Mars/Olympus_Mons', '+05:30', 'America/New York', ' UTC', 'UTC ', 42, null, undefined])(
    'refuses %j',
    (zone) => expect(isValidZone(zone)).toBe(false),
  );
});

describe('resolveZone', () => {
  it("uses the contact's zone when it is valid", () => {
    expect(resolveZone('Europe/Berlin', 'America/New_York')).toEqual({ zone: 'Europe/Berlin' });
  });

  it('uses the account default, without a report, when the contact has no zone', () => {
    expect(resolveZone(null, 'America/New_York')).toEqual({ zone: 'America/New_York' });
    expect(resolveZone(undefined, 'America/New_York')).toEqual({ zone: 'America/New_York' });
  });

  it('falls back to UTC, without a report, when nothing is set', () => {
    expect(resolveZone(null, null)).toEqual({ zone: 'UTC' });
  });

  it("falls back to the account default and says so when the contact's zone is not an IANA name", () => {
    expect(resolveZone('Europe/Berlinn', 'America/New_York')).toEqual({
      zone: 'America/New_York',
      fallback: { from: 'Europe/Berlinn', reason: 'contact time zone "Europe/Berlinn" is not a valid IANA time zone' },
    });
  });

  it('falls back to UTC and says so when the account default is not an IANA name either', () => {
    expect(resolveZone('Nowhere/Town', 'Also/Nowhere')).toEqual({
      zone: 'UTC',
      fallback: {
        from: 'Nowhere/Town',
        reason: 'contact time zone "Nowhere/Town" is not a valid IANA time zone; using UTC',
      },
    });
  });

  it('reports an invalid account default when the contact has no zone', () => {
    expect(resolveZone(null, 'EST5EDT/Bogus')).toEqual({
      zone: 'UTC',
      fallback: {
        from: 'EST5EDT/Bogus',
        reason: 'account default_timezone "EST5EDT/Bogus" is not a valid IANA time zone; using UTC',
      },
    });
  });

  it('treats an empty contact zone as set but invalid', () => {
    expect(resolveZone('', 'Asia/Kolkata')).toMatchObject({ zone: 'Asia/Kolkata', fallback: { from: '' } });
  });
});

describe('parseLocalTime', () => {
  it.each([
    ['00:00', 0],
    ['09:05', 545],
    ['23:59', 1439],
  ])('reads %s as %i minutes after midnight', (time, minutes) => expect(parseLocalTime(time)).toBe(minutes));

  it.each(['24:00', '25:00', '9:00', '09:60', '0900', '09:00:00', ''])('refuses %j', (time) =>
    expect(() => parseLocalTime(time)).toThrow(/HH:MM/),
  );
});

describe('nextLocalTime: America/New_York (spring forward 2026-03-08 02:00, fall back 2026-11-01 02:00)', () => {
  const zone = 'America/New_York';

  it('finds the time later today when it has not passed yet', () => {
    expect(next({ time: '09:00' }, zone, '2026-06-10T12:00:00Z')).toBe('2026-06-10T13:00:00.000Z');
  });

  it('moves to tomorrow when the time has passed today', () => {
    expect(next({ time: '09:00' }, zone, '2026-06-10T14:00:00Z')).toBe('2026-06-11T13:00:00.000Z');
  });

  it('is strictly after: exactly at the time means tomorrow', () => {
    expect(next({ time: '09:00' }, zone, '2026-06-10T13:00:00Z')).toBe('2026-06-11T13:00:00.000Z');
  });

  it('keeps 09:00 local across the change: 14:00Z in EST, 13:00Z in EDT the next day', () => {
    expect(next({ time: '09:00' }, zone, '2026-03-07T12:00:00Z')).toBe('2026-03-07T14:00:00.000Z');
    expect(next({ time: '09:00' }, zone, '2026-03-07T15:00:00Z')).toBe('2026-03-08T13:00:00.000Z');
  });

  it('runs a time inside the spring-forward gap at the first minute after it (02:30 -> 03:00 EDT)', () => {
    expect(next({ time: '02:30' }, zone, '2026-03-07T12:00:00Z')).toBe('2026-03-08T07:00:00.000Z');
    expect(next({ time: '02:00' }, zone, '2026-03-07T12:00:00Z')).toBe('2026-03-08T07:00:00.000Z');
  });

  it('runs the first minute after the gap as itself', () => {
    expect(next({ time: '03:00' }, zone, '2026-03-07T12:00:00Z')).toBe('2026-03-08T07:00:00.000Z');
  });

  it('runs an ambiguous fall-back time at its first occurrence (01:30 EDT, not 01:30 EST)', () => {
    expect(next({ time: '01:30' }, zone, '2026-10-31T12:00:00Z')).toBe('2026-11-01T05:30:00.000Z');
  });

  it('does not run a second time at the repeated hour: between the occurrences means the next day', () => {
    // 06:00Z is 01:00 EST, after 01:30 EDT (05:30Z) and before 01:30 EST (06:30Z).
    expect(next({ time: '01:30' }, zone, '2026-11-01T06:00:00Z')).toBe('2026-11-02T06:30:00.000Z');
  });

  it('honours a weekday filter: Friday evening waits for Monday morning', () => {
    expect(next({ time: '09:00', days: ['mon'] }, zone, '2026-03-06T20:00:00Z')).toBe('2026-03-09T13:00:00.000Z');
  });

  it('honours a weekday filter on the day of the change (2026-03-08 is a Sunday)', () => {
    expect(next({ time: '02:30', days: ['sun'] }, zone, '2026-03-01T08:00:00Z')).toBe('2026-03-08T07:00:00.000Z');
  });

  it('on a matching weekday whose time has passed, waits a whole week', () => {
    // 2026-06-10 is a Wednesday; 10:00 EDT is past 09:00.
    expect(next({ time: '09:00', days: ['wed'] }, zone, '2026-06-10T14:00:00Z')).toBe('2026-06-17T13:00:00.000Z');
  });

  it('reads the weekday in the zone, not in UTC', () => {
    // 2026-06-13T02:00Z is still Friday 22:00 in New York; Friday's 23:00 is an hour away.
    expect(next({ time: '23:00', days: ['fri'] }, zone, '2026-06-13T02:00:00Z')).toBe('2026-06-13T03:00:00.000Z');
  });
});

describe('nextLocalTime: Europe/Berlin (spring forward 2026-03-29 02:00, fall back 2026-10-25 03:00)', () => {
  const zone = 'Europe/Berlin';

  it('keeps 09:00 local across the change', () => {
    expect(next({ time: '09:00' }, zone, '2026-03-28T07:00:00Z')).toBe('2026-03-28T08:00:00.000Z');
    expect(next({ time: '09:00' }, zone, '2026-03-28T09:00:00Z')).toBe('2026-03-29T07:00:00.000Z');
  });

  it('runs 02:30 on the spring-forward day at 03:00 CEST', () => {
    expect(next({ time: '02:30' }, zone, '2026-03-28T12:00:00Z')).toBe('2026-03-29T01:00:00.000Z');
  });

  it('runs 02:30 on the fall-back day at its first occurrence (CEST)', () => {
    expect(next({ time: '02:30' }, zone, '2026-10-24T12:00:00Z')).toBe('2026-10-25T00:30:00.000Z');
  });

  it('after the first occurrence, the next one is the following day', () => {
    expect(next({ time: '02:30' }, zone, '2026-10-25T00:45:00Z')).toBe('2026-10-26T01:30:00.000Z');
  });

  it('weekdays only: Saturday of the change waits for Monday in CEST', () => {
    const weekdays = ['mon', 'tue', 'wed', 'thu', 'fri'] as const;
    expect(next({ time: '08:00', days: weekdays }, zone, '2026-03-28T10:00:00Z')).toBe('2026-03-30T06:00:00.000Z');
  });
});

describe('nextLocalTime: Australia/Sydney (fall back 2026-04-05 03:00, spring forward 2026-10-04 02:00)', () => {
  const zone = 'Australia/Sydney';

  it('keeps 09:00 local across the April change (AEDT +11, then AEST +10)', () => {
    expect(next({ time: '09:00' }, zone, '2026-04-03T12:00:00Z')).toBe('2026-04-03T22:00:00.000Z');
    expect(next({ time: '09:00' }, zone, '2026-04-03T23:00:00Z')).toBe('2026-04-04T23:00:00.000Z');
  });

  it('runs 02:30 on the April fall-back day at its first occurrence (AEDT)', () => {
    expect(next({ time: '02:30' }, zone, '2026-04-04T00:00:00Z')).toBe('2026-04-04T15:30:00.000Z');
  });

  it('runs 02:30 on the October spring-forward day at 03:00 AEDT', () => {
    expect(next({ time: '02:30' }, zone, '2026-10-03T00:00:00Z')).toBe('2026-10-03T16:00:00.000Z');
  });

  it('reads the weekday in Sydney: a Sunday there is still Saturday in UTC', () => {
    // 2026-04-03T23:00Z is Saturday 10:00 AEDT; Sunday 09:00 AEST is 2026-04-04T23:00Z (a Saturday in UTC).
    expect(next({ time: '09:00', days: ['sun'] }, zone, '2026-04-03T23:00:00Z')).toBe('2026-04-04T23:00:00.000Z');
  });
});

describe('nextLocalTime: Asia/Kolkata (UTC+05:30, no daylight saving)', () => {
  const zone = 'Asia/Kolkata';

  it('places 09:00 at 03:30Z, every day of the year', () => {
    expect(next({ time: '09:00' }, zone, '2026-03-08T00:00:00Z')).toBe('2026-03-08T03:30:00.000Z');
    expect(next({ time: '09:00' }, zone, '2026-11-01T00:00:00Z')).toBe('2026-11-01T03:30:00.000Z');
  });

  it('handles local midnight on a half-hour offset (00:00 IST is 18:30Z the day before)', () => {
    expect(next({ time: '00:00' }, zone, '2026-06-10T12:00:00Z')).toBe('2026-06-10T18:30:00.000Z');
  });

  it('waits from Tuesday for Friday with a Monday/Friday filter, past the UTC date line of the offset', () => {
    // 2026-06-09T20:00Z is Wednesday 01:30 IST; Friday 2026-06-12 09:00 IST is 03:30Z.
    expect(next({ time: '09:00', days: ['mon', 'fri'] }, zone, '2026-06-09T20:00:00Z')).toBe(
      '2026-06-12T03:30:00.000Z',
    );
  });
});

describe('nextLocalTime: odd cases', () => {
  it('a whole skipped day (Pacific/Apia jumped from 2011-12-29 to 2011-12-31) runs at the end of the gap', () => {
    expect(next({ time: '09:00', days: ['fri'] }, 'Pacific/Apia', '2011-12-29T00:00:00Z')).toBe(
      '2011-12-30T10:00:00.000Z',
    );
  });

  it('UTC is plain arithmetic', () => {
    expect(next({ time: '23:59' }, 'UTC', '2026-12-31T23:59:00Z')).toBe('2027-01-01T23:59:00.000Z');
  });

  it('refuses an invalid zone, time or empty days', () => {
    const after = new Date('2026-01-01T00:00:00Z');
    expect(() => nextLocalTime({ time: '09:00' }, 'Nowhere/Town', after)).toThrow(/not a valid IANA time zone/);
    expect(() => nextLocalTime({ time: '25:00' }, 'UTC', after)).toThrow(/HH:MM/);
    expect(() => nextLocalTime({ time: '09:00', days: [] }, 'UTC', after)).toThrow(/at least one weekday/);
  });
});
