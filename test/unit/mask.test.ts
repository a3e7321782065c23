import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { containsPlainPii, maskEmail, maskPhone, maskPii, maskText } from '../../src/observability/mask.ts';

describe('maskEmail', () => {
  it('keeps the first character and the domain', () => {
    expect(maskEmail('john@example.com')).toBe('j***@example.com');
    expect(maskEmail('a.b+tag@mail.example.co.uk')).toBe('a***@mail.example.co.uk');
  });

  it('is idempotent and hides values without a local part', () => {
    expect(maskEmail('j***@example.com')).toBe('j***@example.com');
    expect(maskEmail('not-an-email')).toBe('***');
    expect(maskEmail('@example.com')).toBe('***');
  });
});

describe('maskPhone', () => {
  it('keeps a leading + and the last two digits', () => {
    expect(maskPhone('+15551234567')).toBe('+*********67');
    expect(maskPhone('555-123-4567')).toBe('***-***-**67');
    expect(maskPhone('+1 (555) 123-4567')).toBe('+* (***) ***-**67');
  });

  it('is idempotent', () => {
    expect(maskPhone(maskPhone('+15551234567'))).toBe('+*********67');
  });
});

describe('maskText', () => {
  it('masks email addresses inside text', () => {
    expect(maskText('Contact john@example.com or JANE.DOE@Example.org today')).toBe(
      'Contact j***@example.com or J***@Example.org today',
    );
    expect(maskText(`<bob@x.io>, "alice@y.dev", 'o'brien@z.ie'`)).toBe(`<b***@x.io>, "a***@y.dev", 'o'b***@z.ie'`);
    expect(maskText('GET /contacts?email=john@example.com')).toBe('GET /contacts?email=j***@example.com');
    expect(maskText('odd !#$@example.com and =@example.com')).toBe('odd !***@example.com and =***@example.com');
    expect(maskText('x@a.io@b.io, y@a.io@')).toBe('x***@b.io, y***@a.io@');
  });

  it('masks phone-number-like sequences', () => {
    expect(maskText('call +15551234567 now')).toBe('call +*********67 now');
    expect(maskText('call +1 (555) 123-4567.')).toBe('call +* (***) ***-**67.');
    expect(maskText('fax 555.123.4567 or 555 123 4567')).toBe('fax ***.***.**67 or *** *** **67');
    expect(maskText('{"to":"+4915112345678"}')).toBe('{"to":"+***********78"}');
  });

  it('redacts bearer tokens, API keys and secret pairs', () => {
    expect(maskText('Authorization: Bearer eyJhbGciOi.J9x-y_z')).toBe('Authorization: [REDACTED]');
    expect(maskText('sent with Bearer abc.def')).toBe('sent with Bearer [REDACTED]');
    expect(maskText('key fm_abcdefghijklmnopqrstuvwxyz_0123 used')).toBe('key [REDACTED] used');
    expect(maskText('stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc and sk_test_abc')).toBe(
      'stripe [REDACTED] and [REDACTED]',
    );
    expect(maskText('GET /cb?token=abc123&email=john@example.com&password=hunter2')).toBe(
      'GET /cb?token=[REDACTED]&email=j***@example.com&password=[REDACTED]',
    );
    expect(maskText('{"api_key":"k 1","client_secret": "s"}')).toBe(
      '{"api_key":"[REDACTED]","client_secret": "[REDACTED]"}',
    );
    expect(maskText("x-api-key: 'abc'")).toBe("x-api-key: '[REDACTED]'");
  });

  it('leaves uuids, timestamps, dates and plain numbers alone', () => {
    const untouched = [
      '123e4567-e89b-12d3-a456-426614174000',
      'execution 123e4567-e89b-12d3-a456-426614174000 step 3',
      '2026-11-26T22:35:36.123Z',
      'at 2026-11-26T22:35:36+01:00 and 2026-11-26 22:35:36 on 2026-11-26',
      'took 1500 ms, retry in 240 seconds (60 * 2^2), 12345678ms',
      'amount 1234567.89, ratio 0.1234567, version 20.19.43',
      'trace 4bf92f3577b34da6a3ce929d0e0e4736 span 00f067aa0ba902b7',
      'max_tokens=1500 tokens: 12',
      'j***@example.com +*********67 [REDACTED]',
    ];
    for (const text of untouched) expect(maskText(text)).toBe(text);
  });

  it('is idempotent on mixed text', () => {
    const text = 'john@1234567.com called (555) 123-4567.jane@x.com; token="a b" Bearer x';
    const once = maskText(text);
    expect(maskText(once)).toBe(once);
    expect(containsPlainPii(once)).toBe(false);
  });

  it('stays linear on long hostile input', () => {
    const started = performance.now();
    maskText(`${'a'.repeat(200_000)}@${'b'.repeat(200_000)} ${'1 '.repeat(100_000)}x`);
    expect(performance.now() - started).toBeLessThan(2_000);
  });
});

describe('containsPlainPii', () => {
  it('finds unmasked emails and phone numbers', () => {
    expect(containsPlainPii('mail john@example.com')).toBe(true);
    expect(containsPlainPii('{"phone":"+15551234567"}')).toBe(true);
    expect(containsPlainPii('call 555-123-4567')).toBe(true);
  });

  it('ignores masked values, uuids, timestamps and short numbers', () => {
    expect(containsPlainPii('j***@example.com +*********67 ***-***-**67')).toBe(false);
    expect(containsPlainPii('123e4567-e89b-12d3-a456-426614174000 2026-11-26T22:35:36.123Z 1500')).toBe(false);
    expect(containsPlainPii('{"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","duration_ms":1234}')).toBe(false);
  });
});

describe('maskPii', () => {
  it('masks by key and by content, deeply, without touching the input', () => {
    const input = {
      email: 'john@example.com',
      phone: '+15551234567',
      to: 'jane@example.com',
      contact: { to: '+1 555 123 4567', notes: ['met bob@x.io', 'call 555-123-4567'] },
      headers: { Authorization: 'Bearer abc', Cookie: 'sid=1', 'x-api-key': 'k' },
      password: 'hunter2',
      apiKey: { nested: 'x' },
      private_key: '-----BEGIN',
      body: 'Hi, your code is in token=abc',
      count: 1500,
      ok: true,
      missing: null,
      when: new Date('2026-11-26T22:35:36.123Z'),
    };
    const snapshot = structuredClone(input);
    expect(maskPii(input)).toEqual({
      email: 'j***@example.com',
      phone: '+*********67',
      to: 'j***@example.com',
      contact: { to: '+* *** *** **67', notes: ['met b***@x.io', 'call ***-***-**67'] },
      headers: { Authorization: '[REDACTED]', Cookie: '[REDACTED]', 'x-api-key': '[REDACTED]' },
      password: '[REDACTED]',
      apiKey: '[REDACTED]',
      private_key: '[REDACTED]',
      body: 'Hi, your code is in token=[REDACTED]',
      count: 1500,
      ok: true,
      missing: null,
      when: new Date('2026-11-26T22:35:36.123Z'),
    });
    expect(input).toEqual(snapshot);
  });

  it('keeps Dates as Dates and masks numeric phone values', () => {
    const out = maskPii({ at: new Date(0), phone: 15551234567 });
    expect(out.at).toBeInstanceOf(Date);
    expect(out.phone).toBe('*********67');
  });

  it('masks arrays, errors and objects with toJSON', () => {
    expect(maskPii(['a@b.co', 'plain', 7])).toEqual(['a***@b.co', 'plain', 7]);
    const masked = maskPii({ err: new Error('bounce for john@example.com') }) as unknown as {
      err: Record<string, string>;
    };
    expect(masked.err.name).toBe('Error');
    expect(masked.err.message).toBe('bounce for j***@example.com');
    expect(masked.err.stack).not.toContain('john@');
    expect(maskPii({ v: { toJSON: () => 'john@example.com' } })).toEqual({ v: 'j***@example.com' });
  });

  it('survives cycles and keeps shared references', () => {
    const shared = { email: 'a@b.co' };
    const cyclic: Record<string, unknown> = { shared, again: shared };
    cyclic.self = cyclic;
    expect(maskPii(cyclic)).toEqual({
      shared: { email: 'a***@b.co' },
      again: { email: 'a***@b.co' },
      self: '[Circular]',
    });
  });

  it('passes primitives through maskText', () => {
    expect(maskPii('john@example.com')).toBe('j***@example.com');
    expect(maskPii(42)).toBe(42);
    expect(maskPii(undefined)).toBeUndefined();
  });
});

describe('properties', () => {
  it('an email embedded in any text is masked, idempotently', () => {
    fc.assert(
      fc.property(fc.string(), fc.emailAddress(), fc.string(), (before, email, after) => {
        const masked = maskText(`${before}${email}${after}`);
        expect(containsPlainPii(masked)).toBe(false);
        expect(maskText(masked)).toBe(masked);
        // A local part made only of `*`, or ending in `***`, is indistinguishable from a masked one.
        if (!/^\*+@|\*{3}@/.test(email)) expect(masked).not.toContain(email);
      }),
      { numRuns: 2_000 },
    );
  });

  it('masking any text leaves no plain PII and is idempotent', () => {
    const noisy = fc.string({ unit: fc.constantFrom(...'0123456789 +-.()@*abcxyz_.=:"'.split('')), maxLength: 60 });
    fc.assert(
      fc.property(noisy, (text) => {
        const masked = maskText(text);
        expect(containsPlainPii(masked)).toBe(false);
        expect(maskText(masked)).toBe(masked);
      }),
      { numRuns: 5_000 },
    );
  });

  it('never skips text that holds plain PII or a secret, whatever surrounds it', () => {
    const words = [
      'pass',
      'word',
      'secret',
      'token',
      'api',
      '_key',
      'Bearer ',
      'fm_',
      'sk_live_',
      'x',
      'Ab9',
      '@',
      'a.io',
      '5551234567',
      '=',
      ': ',
      ' ',
      '"',
      '-',
    ];
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom(...words), { maxLength: 12 }).map((parts) => parts.join('')),
        (text) => {
          if (containsPlainPii(text)) expect(maskText(text)).not.toBe(text);
          const secret =
            /(^|\s)(password|token|secret|api_key)\s*[:=]\s*\w|\bBearer \w|\bfm_\w{20}|\bsk_live_[A-Za-z0-9]/i.test(
              text,
            );
          // (an email wins over a secret it overlaps, so only texts without one are checked for [REDACTED])
          if (secret && !text.includes('@')) expect(maskText(text)).toContain('[REDACTED]');
        },
      ),
      { numRuns: 5_000 },
    );
  });

  it('uuids and ISO timestamps survive in any surrounding text', () => {
    fc.assert(
      fc.property(
        fc.string(),
        fc.uuid(),
        fc.date({ min: new Date('1970-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59Z'), noInvalidDate: true }),
        fc.string(),
        (a, uuid, date, b) => {
          const iso = date.toISOString();
          const masked = maskText(`${a} ${uuid} ${iso} ${b}`);
          expect(masked).toContain(uuid);
          expect(masked).toContain(iso);
        },
      ),
    );
  });
});
