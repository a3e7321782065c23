import type { Pool } from '../db/client.ts';
import { run } from '../db/sql.ts';
import type { NotificationAttempt, RefusalRows } from '../store/execution-store.ts';

/** The `BLOCKED` log entries of refused triggers: one per (contact, execution) pair. */
const INSERT_REFUSALS = {
  name: 'trigger-refusals',
  text: `INSERT INTO execution_logs (account_id, workflow_id, contact_id, execution_id, event_type, status, timestamp, details)
    SELECT $1, $2, r.contact, r.execution, $5, 'BLOCKED', $6, $7 FROM unnest($3::uuid[], $4::uuid[]) AS r(contact, execution)`,
};
/** Logs one attempt, if it still is the next one (prisma/functions/flowmachine_log_notification.sql). */
const LOG_NOTIFICATION = {
  name: 'notification-log-attempt',
  text: 'SELECT flowmachine_log_notification($1::uuid, $2::integer, $3::integer, $4, $5, $6::jsonb, $7::timestamptz) AS logged',
};

/** Stores the refusals of one kind (details masked by the caller). */
export async function insertRefusals(pool: Pool, refusal: RefusalRows): Promise<void> {
  await run(pool, INSERT_REFUSALS, [
    refusal.accountId,
    refusal.workflowId,
    refusal.refused.map((r) => r.contactId),
    refusal.refused.map((r) => r.executionId),
    refusal.eventType,
    refusal.now,
    JSON.stringify(refusal.details),
  ]);
}

/** Logs a notification attempt; false when another sender logged it first. */
export async function logNotification(pool: Pool, attempt: NotificationAttempt): Promise<boolean> {
  const [row] = await run<{ logged: boolean }>(pool, LOG_NOTIFICATION, [
    attempt.executionId,
    attempt.version,
    attempt.attempt,
    attempt.eventType,
    attempt.status,
    JSON.stringify(attempt.details),
    attempt.nextAt,
  ]);
  return row?.logged === true;
}
