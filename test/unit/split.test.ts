import { describe, expect, it } from 'vitest';
import { assignVariant, splitPoint } from '../../src/definition/split.ts';

const halves = [
  { id: 'a', weight: 50 },
  { id: 'b', weight: 50 },
];
/** 10,000 synthetic contact ids, shaped like the UUIDs contacts get. */
const contactIds = Array.from(
  { length: 10_000 },
  (_, i) => `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`,
);

/** How many of `contactIds` get each variant. */
function tally(stepId: string, variants: { id: string; weight: number }[]) {
  const counts = new Map<string, number>();
  for (const id of contactIds) {
    const variant = assignVariant(id, stepId, variants);
    counts.set(variant, (counts.get(variant) ?? 0) + 1);
  }
  return counts;
}

describe('assignVariant', () => {
  it('splits 10,000 contacts 50/50 within ±3%', () => {
    const counts = tally('ab_test', halves);
    expect(counts.get('a')! + counts.get('b')!).toBe(10_000);
    expect(Math.abs(counts.get('a')! / 10_000 - 0.5)).toBeLessThanOrEqual(0.03);
  });

  it('follows uneven weights too (10/30/60 within ±3%)', () => {
    const counts = tally('three_way', [
      { id: 'x', weight: 1 },
      { id: 'y', weight: 3 },
      { id: 'z', weight: 6 },
    ]);
    expect(Math.abs(counts.get('x')! / 10_000 - 0.1)).toBeLessThanOrEqual(0.03);
    expect(Math.abs(counts.get('y')! / 10_000 - 0.3)).toBeLessThanOrEqual(0.03);
    expect(Math.abs(counts.get('z')! / 10_000 - 0.6)).toBeLessThanOrEqual(0.03);
  });

  it('is sticky: the same contact and step always give the same variant', () => {
    for (const id of contactIds.slice(0, 500)) {
      const first = assignVariant(id, 'ab_test', halves);
      for (let i = 0; i < 3; i += 1) expect(assignVariant(id, 'ab_test', halves)).toBe(first);
    }
  });

  it('is fixed across releases: known inputs keep their points and variants', () => {
    // sha256("contact-1:ab_test") starts with 4fe586069402; pinned so a change of hashing is noticed.
    expect(splitPoint('contact-1', 'ab_test')).toBe(0x4fe586069402 / 2 ** 48);
    expect(
      ['contact-1', 'contact-2', 'contact-3', 'contact-4'].map((id) => assignVariant(id, 'ab_test', halves)),
    ).toEqual(['a', 'a', 'b', 'b']);
  });

  it('varies by step: two split steps assign the same contacts independently', () => {
    let same = 0;
    for (const id of contactIds)
      if (assignVariant(id, 'first', halves) === assignVariant(id, 'second', halves)) same += 1;
    expect(Math.abs(same / 10_000 - 0.5)).toBeLessThanOrEqual(0.03);
  });

  it('never picks a variant of weight 0', () => {
    const counts = tally('zero', [
      { id: 'off', weight: 0 },
      { id: 'on', weight: 7 },
      { id: 'also_off', weight: 0 },
    ]);
    expect([...counts]).toEqual([['on', 10_000]]);
  });

  it('a single variant takes everyone', () => {
    expect(assignVariant('c', 's', [{ id: 'only', weight: 1 }])).toBe('only');
  });

  it('places points in [0, 1)', () => {
    for (const id of contactIds.slice(0, 1_000)) {
      const point = splitPoint(id, 'step');
      expect(point).toBeGreaterThanOrEqual(0);
      expect(point).toBeLessThan(1);
    }
  });

  it.each([
    [
      'a negative weight',
      [
        { id: 'a', weight: -1 },
        { id: 'b', weight: 2 },
      ],
      /variant "a".*integer >= 0/,
    ],
    ['a fractional weight', [{ id: 'a', weight: 0.5 }], /variant "a".*integer >= 0/],
    ['a weight that is not a number', [{ id: 'a', weight: Number.NaN }], /variant "a".*integer >= 0/],
    ['weights adding up to 0', [{ id: 'a', weight: 0 }], /more than 0/],
    ['no variants', [], /more than 0/],
  ])('refuses %s', (_, variants, message) => {
    expect(() => assignVariant('c', 's', variants)).toThrow(message);
  });
});
