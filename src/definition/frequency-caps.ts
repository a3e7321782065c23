import { z } from 'zod';
import { parseDuration } from './duration.ts';

/**
 * Frequency caps (CONTRACT.md "Journeys", Limits on messages): the account setting `frequency_caps` and
 * which steps it holds back. The count itself is kept in Postgres (prisma/functions/flowmachine_cap_send.sql).
 */

/** The channels a cap limits, and the step type that sends each. */
export const CAP_CHANNELS = { email: 'send_email', sms: 'send_sms' } as const;
export type CapChannel = keyof typeof CAP_CHANNELS;

/** Most caps one account may set. */
export const MAX_FREQUENCY_CAPS = 10;

/** One cap as the API takes and answers it: at most `max` messages of `channel` per contact in any `per`. */
const frequencyCap = z.strictObject({
  channel: z.enum(Object.keys(CAP_CHANNELS) as [CapChannel, ...CapChannel[]]),
  max: z.number().int().min(1).max(1_000_000),
  per: z
    .string()
    .max(50)
    .refine((text) => parseDuration(text) !== null, 'must be a duration such as "1 day", "12 hours" or "1 week"'),
});

/** The `frequency_caps` setting: a list of caps (empty: none). */
export const frequencyCapsSetting = z.array(frequencyCap).max(MAX_FREQUENCY_CAPS);
export type FrequencyCap = z.infer<typeof frequencyCap>;

/** A cap as stored in `accounts.frequency_caps`: with its window in milliseconds, so Postgres needs no parser. */
export type StoredFrequencyCap = FrequencyCap & { per_ms: number };

/** The stored form of caps taken through the API. */
export const storedCaps = (caps: FrequencyCap[]): StoredFrequencyCap[] =>
  caps.map((cap) => ({ ...cap, per_ms: parseDuration(cap.per)! }));

/** The caps as the API answers them (without the stored window). */
export const publicCaps = (stored: unknown): FrequencyCap[] =>
  asCaps(stored).map(({ channel, max, per }) => ({ channel, max, per }));

/** The channel a step type sends on, when a cap may limit it. */
export const channelOf = (stepType: string): CapChannel | undefined =>
  (Object.keys(CAP_CHANNELS) as CapChannel[]).find((channel) => CAP_CHANNELS[channel] === stepType);

/** The stored caps of one channel, as `flowmachine_cap_send` takes them. */
export const capsOf = (stored: unknown, channel: CapChannel): { max: number; per_ms: number }[] =>
  asCaps(stored)
    .filter((cap) => cap.channel === channel)
    .map(({ max, per_ms }) => ({ max, per_ms }));

const asCaps = (stored: unknown): StoredFrequencyCap[] =>
  Array.isArray(stored) ? (stored as StoredFrequencyCap[]) : [];
