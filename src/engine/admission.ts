import type { Tx } from '../db/client.ts';
import type { StepWork } from '../queue/step-queue.ts';

/**
 * Account concurrency. `accounts.active_executions` counts the account's ACTIVE executions and is
 * changed only inside the transaction that changes an execution's status, so it can never drift.
 * Executions that find no free slot wait in line (`status QUEUED, waiting`) and are admitted first
 * come, first served when a slot frees; they hold nothing in Redis meanwhile.
 */

/** Takes a slot for an execution becoming ACTIVE; false when the account is at its limit or others wait before it. */
export async function acquireSlot(tx: Tx, accountId: string, respectLine: boolean): Promise<boolean> {
  if (respectLine) {
    const ahead = await tx.$queryRaw<unknown[]>`
      SELECT 1 FROM executions WHERE account_id = ${accountId}::uuid AND status = 'QUEUED' AND waiting LIMIT 1`;
    if (ahead.length > 0) return false;
  }
  const taken = await tx.$executeRaw`
    UPDATE accounts SET active_executions = active_executions + 1
    WHERE id = ${accountId}::uuid AND active_executions < concurrent_executions_per_account`;
  return taken === 1;
}

/** Gives back the slot of an execution leaving ACTIVE, and admits whoever waits longest. */
export async function releaseSlot(tx: Tx, accountId: string): Promise<StepWork[]> {
  await tx.$executeRaw`UPDATE accounts SET active_executions = GREATEST(active_executions - 1, 0) WHERE id = ${accountId}::uuid`;
  return admitWaiting(tx, accountId, 1);
}

/** Admits up to `limit` waiting executions of the account while slots are free; returns their jobs. */
export async function admitWaiting(tx: Tx, accountId: string, limit: number): Promise<StepWork[]> {
  const work: StepWork[] = [];
  while (work.length < limit) {
    const [next] = await tx.$queryRaw<{ id: string; version: number }[]>`
      SELECT id, version FROM executions
      WHERE account_id = ${accountId}::uuid AND status = 'QUEUED' AND waiting
      ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED`;
    if (!next || !(await acquireSlot(tx, accountId, false))) break;
    await tx.$executeRaw`
      UPDATE executions SET status = 'ACTIVE', waiting = false, version = version + 1, updated_at = now()
      WHERE id = ${next.id}::uuid`;
    work.push({ executionId: next.id, version: next.version + 1 });
  }
  return work;
}
