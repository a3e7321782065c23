import { run } from '../db/sql.ts';
import type { StepWork } from './work.ts';
import type { EngineDeps } from './types.ts';

/**
 * Account concurrency. An account's slots are split into shards (`account_slots`, whose quotas add up to
 * the limit), so that executions starting and stopping at once update different rows. A shard's `used`
 * counts the ACTIVE executions holding one of its slots and is changed only in the same Postgres call
 * that changes an execution's status (`flowmachine_commit`, `flowmachine_admit_waiting`), so it can never
 * drift. Executions that find no free slot wait in line (`status QUEUED, waiting`) and are admitted first
 * come, first served when a slot frees; they hold nothing in Redis meanwhile.
 */

const ADMIT_WAITING = {
  name: 'admit-waiting',
  text: 'SELECT execution_id, execution_version FROM flowmachine_admit_waiting($1::uuid, $2::integer)',
};

/** Admits up to `limit` waiting executions of the account while slots are free; returns their jobs. */
export async function admitWaiting(deps: EngineDeps, accountId: string, limit: number): Promise<StepWork[]> {
  const rows = await run<{ execution_id: string; execution_version: number }>(deps.pool, ADMIT_WAITING, [
    accountId,
    limit,
  ]);
  return rows.map((row) => ({ executionId: row.execution_id, version: row.execution_version }));
}
