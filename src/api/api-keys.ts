import { createHash, randomBytes } from 'node:crypto';
import type { PrismaClient } from '../db/client.ts';

/** A new API key: the plaintext (shown once) and what is stored. */
export interface IssuedKey {
  apiKey: string;
  hash: string;
  prefix: string;
}

/** SHA-256 of a key; keys are 192-bit random, so a fast hash is enough (no dictionary to attack). */
export const hashApiKey = (key: string) => createHash('sha256').update(key).digest('hex');

/** Makes a random API key (`fm_` + 32 url-safe characters). */
export function issueApiKey(): IssuedKey {
  const apiKey = `fm_${randomBytes(24).toString('base64url')}`;
  return { apiKey, hash: hashApiKey(apiKey), prefix: apiKey.slice(0, 7) };
}

/** Creates an account with its admin user and a first API key; returns the ids and the plaintext key. */
export async function createAccount(db: PrismaClient, input: { name: string; adminEmail: string }) {
  const key = issueApiKey();
  return db.$transaction(async (tx) => {
    const account = await tx.account.create({ data: { name: input.name, adminEmail: input.adminEmail } });
    const user = await tx.user.create({ data: { accountId: account.id, email: input.adminEmail, role: 'admin' } });
    await tx.apiKey.create({
      data: { accountId: account.id, userId: user.id, keyHash: key.hash, prefix: key.prefix, name: 'initial' },
    });
    return { account_id: account.id, user_id: user.id, api_key: key.apiKey };
  });
}
