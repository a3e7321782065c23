import type { Pool } from '../db/client.ts';
import { run } from '../db/sql.ts';

/** The caller of an unrevoked key, by its hash. */
const FIND_CALLER = {
  name: 'api-find-caller',
  text: `SELECT account_id AS "accountId", user_id AS "userId", id AS "apiKeyId", role FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL`,
};

/** Who holds the unrevoked key with this hash, or null. */
export async function findCaller<Caller>(pool: Pool, keyHash: string): Promise<Caller | null> {
  const [caller] = await run<Caller>(pool, FIND_CALLER, [keyHash]);
  return caller ?? null;
}
