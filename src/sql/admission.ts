import type { Pool } from '../db/client.ts';
import { run } from '../db/sql.ts';
import type { JobRef } from '../store/execution-store.ts';

const ADMIT_WAITING = {
  name: 'admit-waiting',
  text: 'SELECT execution_id AS "executionId", execution_version AS version FROM flowmachine_admit_waiting($1::uuid, $2::integer)',
};

/** Admits up to `limit` waiting executions of the account (prisma/functions/flowmachine_admit_waiting.sql). */
export function admitWaiting(pool: Pool, accountId: string, limit: number): Promise<JobRef[]> {
  return run<JobRef>(pool, ADMIT_WAITING, [accountId, limit]);
}
