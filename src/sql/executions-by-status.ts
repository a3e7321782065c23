import type { Pool } from '../db/client.ts';
import { run } from '../db/sql.ts';

const EXECUTIONS_BY_STATUS = {
  name: 'executions-by-status',
  text: 'SELECT status, count(*)::integer AS n FROM executions GROUP BY status',
};

/** How many executions are in each status (a full count: the `/metrics` gauge caches it). */
export async function countExecutionsByStatus(pool: Pool): Promise<Record<string, number>> {
  const rows = await run<{ status: string; n: number }>(pool, EXECUTIONS_BY_STATUS, []);
  return Object.fromEntries(rows.map((row) => [row.status, row.n]));
}
