import { describe, expect, it } from 'vitest';
import {
  isAllowedHost,
  nonPublicKind,
  normaliseAllowedHost,
  webhookUrlRefusal,
} from '../../src/definition/address-guard.ts';
import { parseDefinition } from '../../src/definition/schema.ts';
import { createGuardedLookup } from '../../src/providers/webhook-guard.ts';

// Pure checks only: nothing here resolves a real name or opens a connection.
describe('nonPublicKind', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['169.254.169.254', 'link-local'],
    ['100.64.0.1', 'carrier-grade NAT'],
    ['100.100.100.200', 'carrier-grade NAT'],
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['255.255.255.255', 'broadcast'],
    ['224.0.0.1', 'multicast'],
    ['240.0.0.1', 'reserved'],
    ['192.0.2.1', 'reserved'],
    ['::1', 'loopback'],
    ['[::1]', 'loopback'],
    ['::', 'unspecified'],
    ['fe80::1', 'link-local'],
    ['febf::1', 'link-local'],
    ['fc00::1', 'unique-local'],
    ['fd00:ec2::254', 'unique-local'],
    ['ff02::1', 'multicast'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:169.254.169.254', 'link-local'],
    ['::ffff:10.0.0.1', 'private'],
    ['::127.0.0.1', 'loopback'],
    ['64:ff9b::7f00:1', 'IPv4-translated (NAT64)'],
    ['2002:7f00:1::', '6to4 (embeds an IPv4 address)'],
    ['2001:db8::1', 'reserved'],
    ['example.com', 'not an IP address'],
  ])('%s is %s', (address, kind) => {
    expect(nonPublicKind(address)).toBe(kind);
  });

  it.each([
    '8.8.8.8',
    '93.184.215.14',
    '172.32.0.1',
    '100.128.0.1',
    '2606:4700:4700::1111',
    '[2a00:1450:4001::200e]',
    '::ffff:8.8.8.8',
  ])('%s is public', (address) => {
    expect(nonPublicKind(address)).toBeNull();
  });
});

describe('webhookUrlRefusal (definition time)', () => {
  it.each([
    ['http://127.0.0.1/', 'loopback'],
    ['http://169.254.169.254/latest/meta-data/', 'link-local'],
    ['http://10.0.0.1:8080/hook', 'private'],
    ['http://192.168.0.10/', 'private'],
    ['http://100.64.1.1/', 'carrier-grade NAT'],
    ['http://0.0.0.0:3000/', 'unspecified'],
    ['http://255.255.255.255/', 'broadcast'],
    ['http://224.0.0.251/', 'multicast'],
    ['http://[::1]:3000/', 'loopback'],
    ['http://[::]/', 'unspecified'],
    ['http://[fe80::1]/', 'link-local'],
    ['http://[fd12:3456::1]/', 'unique-local'],
    ['http://[::ffff:127.0.0.1]/', 'loopback'],
    ['http://[::ffff:a9fe:a9fe]/', 'link-local'],
    // The WHATWG URL parser turns these IPv4 spellings into 127.0.0.1 before the check sees them.
    ['http://2130706433/', 'loopback'],
    ['http://0177.0.0.1/', 'loopback'],
    ['http://0x7f.1/', 'loopback'],
    ['http://0x7f000001/', 'loopback'],
    ['http://127.1/', 'loopback'],
    ['http://127.0.0.1./', 'loopback'],
    ['http://0/', 'unspecified'],
    ['http://0251.0376.0251.0376/', 'link-local'],
  ])('refuses %s (%s)', (url, kind) => {
    expect(webhookUrlRefusal(url, [])).toContain(`must not point to a ${kind} address`);
  });

  it.each([
    'http://localhost:3000/',
    'http://LOCALHOST./',
    'http://api.localhost/',
    'http://metadata.google.internal/computeMetadata/v1/',
    'http://metadata.goog/',
    'http://instance-data/latest/',
  ])('refuses the name in %s', (url) => {
    expect(webhookUrlRefusal(url, [])).toMatch(/must not point to .* \(this machine or a metadata service\)/);
  });

  it.each([
    'https://hooks.example.com/a',
    'http://8.8.8.8/',
    'https://[2606:4700:4700::1111]/',
    'http://internal.example.com/',
    'not a url',
  ])('accepts %s', (url) => {
    expect(webhookUrlRefusal(url, [])).toBeNull();
  });

  it('accepts an allow-listed host on any port, or only on the listed port', () => {
    expect(webhookUrlRefusal('http://127.0.0.1:8080/hook', ['127.0.0.1'])).toBeNull();
    expect(webhookUrlRefusal('http://127.0.0.1:8080/hook', ['127.0.0.1:8080'])).toBeNull();
    expect(webhookUrlRefusal('http://127.0.0.1:8081/hook', ['127.0.0.1:8080'])).toContain('loopback');
    expect(webhookUrlRefusal('http://2130706433:8080/', ['127.0.0.1:8080'])).toBeNull();
    expect(webhookUrlRefusal('http://[::1]:9000/', ['[::1]:9000'])).toBeNull();
    expect(webhookUrlRefusal('http://localhost/', ['localhost:80'])).toBeNull();
    expect(webhookUrlRefusal('https://localhost/', ['localhost:80'])).toContain('localhost');
    expect(webhookUrlRefusal('http://LocalHost.:3000/', ['localhost'])).toBeNull();
  });
});

describe('WEBHOOK_ALLOWED_HOSTS entries', () => {
  it.each([
    ['127.0.0.1', '127.0.0.1'],
    ['127.0.0.1:8080', '127.0.0.1:8080'],
    [' Hooks.Example.COM. ', 'hooks.example.com'],
    ['example.com:80', 'example.com:80'],
    ['::1', '[::1]'],
    ['[::1]', '[::1]'],
    ['[::1]:8080', '[::1]:8080'],
    ['2130706433', '127.0.0.1'],
  ])('%j is %j', (entry, normalised) => {
    expect(normaliseAllowedHost(entry)).toBe(normalised);
  });

  it.each(['', 'http://x', 'a/b', 'user@host', 'host:', 'host:99999', 'a b'])('%j is refused', (entry) => {
    expect(normaliseAllowedHost(entry)).toBeNull();
  });

  it('a listed default port allows that port only', () => {
    expect(isAllowedHost(new URL('http://example.com/'), ['example.com:80'])).toBe(true);
    expect(isAllowedHost(new URL('http://example.com:8080/'), ['example.com:80'])).toBe(false);
    expect(isAllowedHost(new URL('https://example.com/'), ['example.com:443'])).toBe(true);
  });
});

describe('parseDefinition with webhookAllowedHosts', () => {
  const hook = (url: string, id = 'hook') => ({ id, type: 'webhook', config: { url } });

  it('reports a literal non-public URL at its path, in branches too', () => {
    const result = parseDefinition(
      {
        steps: [
          hook('https://hooks.example.com/a'),
          {
            id: 'c',
            type: 'condition',
            config: { has_tag: 'x' },
            branches: { true: [], false: [hook('http://169.254.169.254/', 'meta')] },
          },
        ],
      },
      { webhookAllowedHosts: [] },
    );
    expect(result).toEqual({
      ok: false,
      issues: [{ path: 'steps.1.branches.false.0.config.url', message: expect.stringContaining('link-local') }],
    });
  });

  it('does not check webhook hosts without the option (stored definitions)', () => {
    expect(parseDefinition({ steps: [hook('http://127.0.0.1:1/')] }).ok).toBe(true);
  });

  it('accepts an allow-listed host', () => {
    expect(parseDefinition({ steps: [hook('http://127.0.0.1:1/')] }, { webhookAllowedHosts: ['127.0.0.1:1'] }).ok).toBe(
      true,
    );
  });
});

describe('createGuardedLookup (send time)', () => {
  const lookupWith = (addresses: { address: string; family: number }[]) => {
    const lookup = createGuardedLookup(async () => addresses);
    return (options: { all?: boolean; family?: number }) =>
      new Promise<{ error: Error | null; result: unknown; family?: number }>((resolve) =>
        lookup('rebind.test', options as never, (error, result, family) => resolve({ error, result, family })),
      );
  };

  it('refuses a name if any of its addresses is non-public', async () => {
    const { error } = await lookupWith([
      { address: '93.184.215.14', family: 4 },
      { address: '127.0.0.1', family: 4 },
    ])({ all: true });
    expect(error?.message).toBe('webhook address not allowed: rebind.test resolves to 127.0.0.1, which is loopback');
  });

  it('refuses an IPv4-mapped loopback answer', async () => {
    const { error } = await lookupWith([{ address: '::ffff:127.0.0.1', family: 6 }])({});
    expect(error?.message).toContain('loopback');
  });

  it('hands back the checked addresses, in the form asked for', async () => {
    const lookup = lookupWith([
      { address: '93.184.215.14', family: 4 },
      { address: '2606:2800:21f:cb07:6820:80da:af6b:8b2c', family: 6 },
    ]);
    expect(await lookup({ all: true })).toMatchObject({
      error: null,
      result: [
        { address: '93.184.215.14', family: 4 },
        { address: '2606:2800:21f:cb07:6820:80da:af6b:8b2c', family: 6 },
      ],
    });
    expect(await lookup({})).toMatchObject({ error: null, result: '93.184.215.14', family: 4 });
    expect(await lookup({ family: 6 })).toMatchObject({
      error: null,
      result: '2606:2800:21f:cb07:6820:80da:af6b:8b2c',
      family: 6,
    });
  });
});
