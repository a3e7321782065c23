import type { Pool } from '../db/client.ts';
import { run } from '../db/sql.ts';

/** Of the names given, those some contact of the account has had (the index on account_id, name answers each). */
const SEEN_EVENTS = {
  name: 'contact-events-seen',
  text: `SELECT n.name FROM unnest($2::text[]) AS n(name)
    WHERE EXISTS (SELECT 1 FROM contact_events e WHERE e.account_id = $1 AND e.name = n.name)`,
};

/**
 * The event names among `names` that at least one contact of the account has ever had (CONTRACT.md
 * "Insight and operations": a `wait_for_event` on any other is warned of). Tenant-scoped: another
 * account's events never count. No statement runs when there are no names.
 */
export async function seenEventNames(pool: Pool, accountId: string, names: readonly string[]): Promise<Set<string>> {
  const unique = [...new Set(names)];
  if (unique.length === 0) return new Set();
  const rows = await run<{ name: string }>(pool, SEEN_EVENTS, [accountId, unique]);
  return new Set(rows.map((row) => row.name));
}
