import type { Pool } from '../db/client.ts';

/** Which key of which account and route, as `idempotency_keys` stores it. */
export interface KeyRow {
  accountId: string;
  route: string;
  key: string;
}

/**
 * Claims a key: inserts it, or takes over a row that expired (created at or before `expiredBefore`) or
 * whose claim was abandoned unanswered (before `abandonedBefore`). One statement, so of two processes
 * claiming at once one gets the row. Returns the claim's time, or null when the key is someone else's.
 */
const CLAIM = `
INSERT INTO idempotency_keys (account_id, route, key, request_hash, created_at)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (account_id, route, key) DO UPDATE
  SET request_hash = EXCLUDED.request_hash, status_code = NULL, body = NULL, created_at = EXCLUDED.created_at
  WHERE idempotency_keys.created_at <= $6
     OR (idempotency_keys.status_code IS NULL AND idempotency_keys.created_at <= $7)
RETURNING created_at`;
const READ =
  'SELECT request_hash, status_code, body FROM idempotency_keys WHERE account_id = $1 AND route = $2 AND key = $3';
const STORE = `UPDATE idempotency_keys SET status_code = $5, body = $6::jsonb
  WHERE account_id = $1 AND route = $2 AND key = $3 AND created_at = $4 AND status_code IS NULL`;
const RELEASE = `DELETE FROM idempotency_keys
  WHERE account_id = $1 AND route = $2 AND key = $3 AND created_at = $4 AND status_code IS NULL`;
const PURGE = `DELETE FROM idempotency_keys WHERE ctid IN (
  SELECT ctid FROM idempotency_keys WHERE created_at <= $1 ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)`;

const idOf = (id: KeyRow) => [id.accountId, id.route, id.key];

/** See {@link CLAIM}. */
export async function insertClaim(
  pool: Pool,
  id: KeyRow,
  hash: string,
  now: Date,
  expiredBefore: Date,
  abandonedBefore: Date,
): Promise<Date | null> {
  const { rows } = await pool.query<{ created_at: Date }>(CLAIM, [
    ...idOf(id),
    hash,
    now,
    expiredBefore,
    abandonedBefore,
  ]);
  return rows[0]?.created_at ?? null;
}

/** The key's row: the hash of the request that claimed it and, once answered, the answer. */
export async function readKey(pool: Pool, id: KeyRow) {
  const { rows } = await pool.query<{ request_hash: string; status_code: number | null; body: unknown }>(
    READ,
    idOf(id),
  );
  return rows[0] ?? null;
}

/** Stores the answer of the claim made at `claimedAt` (a claim taken over meanwhile is left alone). */
export async function storeAnswer(pool: Pool, id: KeyRow, claimedAt: Date, status: number, body: unknown) {
  await pool.query(STORE, [...idOf(id), claimedAt, status, JSON.stringify(body ?? null)]);
}

/** Removes the unanswered claim made at `claimedAt`. */
export async function releaseClaim(pool: Pool, id: KeyRow, claimedAt: Date) {
  await pool.query(RELEASE, [...idOf(id), claimedAt]);
}

/** Removes up to `limit` rows created at or before `before`, oldest first; returns how many. */
export async function purgeKeys(pool: Pool, before: Date, limit: number): Promise<number> {
  return (await pool.query(PURGE, [before, limit])).rowCount ?? 0;
}
