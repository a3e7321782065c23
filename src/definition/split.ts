import { createHash } from 'node:crypto';

/** One variant of a `split` step: its id and its integer weight (0 = never chosen). */
export interface SplitVariant {
  id: string;
  weight: number;
}

/**
 * A number in [0, 1) fixed by `contactId` and `stepId`: the first 48 bits of
 * sha256(`${contactId}:${stepId}`), so every contact lands on its own point, the same on every call,
 * process and release, and points are spread evenly across contacts.
 */
export function splitPoint(contactId: string, stepId: string): number {
  return Number(pointBits(contactId, stepId)) / 2 ** POINT_BITS;
}

const POINT_BITS = 48;

/** The point as an integer in [0, 2^48). */
function pointBits(contactId: string, stepId: string): bigint {
  const digest = createHash('sha256').update(`${contactId}:${stepId}`).digest();
  return BigInt(digest.readUIntBE(0, POINT_BITS / 8));
}

/**
 * The variant of a `split` step a contact gets: sticky (the same contact and step always get the same
 * variant, on re-entry and retry too, with no state stored) and, across contacts, chosen with the
 * probability `weight / sum of weights`. Variants are laid out in the given order over [0, 1); so
 * changing the weights moves only the contacts near the changed boundaries. Throws on weights that
 * are not integers ≥ 0 with a sum > 0 (the definition schema refuses those first).
 */
export function assignVariant(contactId: string, stepId: string, variants: readonly SplitVariant[]): string {
  for (const { id, weight } of variants)
    if (!Number.isSafeInteger(weight) || weight < 0)
      throw new RangeError(`weight of variant "${id}" must be an integer >= 0 (is ${weight})`);
  const total = variants.reduce((sum, { weight }) => sum + weight, 0);
  if (total <= 0) throw new RangeError('split weights must add up to more than 0');
  // Exact integer arithmetic (point × total against boundary × 2^48): no rounding picks the variant.
  const target = pointBits(contactId, stepId) * BigInt(total);
  let upTo = 0n;
  for (const { id, weight } of variants) {
    upTo += BigInt(weight) << BigInt(POINT_BITS);
    if (target < upTo) return id;
  }
  // Unreachable: target < total = upTo after the last variant; the last weighted one is the safe answer.
  return variants.findLast(({ weight }) => weight > 0)!.id;
}
