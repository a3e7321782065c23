import type { PrismaClient } from '../db/client.ts';
import type { TagChange } from '../actions/run-action.ts';
import type { Prisma } from '../generated/prisma/client.ts';

/** One execution log row as stored. */
export type LogRow = Prisma.ExecutionLogCreateManyInput & { timestamp: Date; details: Prisma.InputJsonValue };

/** The execution fields a commit sets; optional ones are left as they are when absent. */
export interface ExecutionUpdate {
  status: string;
  snapshot: unknown;
  version: number;
  currentStepIndex: number;
  totalSteps: number;
  nextRunAt: Date | null;
  completionReason: string | null;
  waiting: boolean;
  updatedAt: Date;
  retryCount?: number;
  lastError?: string | null;
  finishedAt?: Date;
}

/**
 * Saves an execution's new state, its log entries and (optionally) its contact's tags in ONE
 * statement: data-modifying CTEs run atomically, and the logs and tags are written only when the
 * optimistic version check matched. Returns false on a version conflict.
 */
export async function commitStatement(
  db: PrismaClient,
  row: { id: string; version: number; contactId: string },
  data: ExecutionUpdate,
  logs: LogRow[],
  tagChange: TagChange | undefined,
): Promise<boolean> {
  const result = await db.$queryRaw<{ updated: bigint }[]>`
    WITH updated AS (
      UPDATE executions SET
        status = ${data.status},
        snapshot = ${JSON.stringify(data.snapshot)}::jsonb,
        version = ${data.version},
        current_step_index = ${data.currentStepIndex},
        total_steps = ${data.totalSteps},
        next_run_at = ${data.nextRunAt}::timestamptz,
        completion_reason = ${data.completionReason},
        waiting = ${data.waiting},
        updated_at = ${data.updatedAt}::timestamptz,
        retry_count = CASE WHEN ${data.retryCount !== undefined} THEN ${data.retryCount ?? 0} ELSE retry_count END,
        last_error = CASE WHEN ${data.lastError !== undefined} THEN ${data.lastError ?? null} ELSE last_error END,
        finished_at = COALESCE(${data.finishedAt ?? null}::timestamptz, finished_at)
      WHERE id = ${row.id}::uuid AND version = ${row.version}
      RETURNING id
    ), tagged AS (
      UPDATE contacts SET updated_at = now(), tags = CASE WHEN ${tagChange?.op ?? 'none'} = 'add'
        THEN array_append(array_remove(tags, ${tagChange?.tag ?? ''}), ${tagChange?.tag ?? ''}) ELSE array_remove(tags, ${tagChange?.tag ?? ''}) END
      WHERE ${tagChange !== undefined} AND id = ${row.contactId}::uuid AND EXISTS (SELECT 1 FROM updated)
    ), logged AS (
      INSERT INTO execution_logs (execution_id, account_id, workflow_id, contact_id, event_type, status, step_index, step_id, duration_ms, timestamp, user_id, details)
      SELECT updated.id, l.account_id, l.workflow_id, l.contact_id, l.event_type, l.status, l.step_index, l.step_id, l.duration_ms, l.timestamp, l.user_id, l.details
      FROM updated, jsonb_to_recordset(${JSON.stringify(logs.map(toJsonRow))}::jsonb) AS l(
        account_id uuid, workflow_id uuid, contact_id uuid, event_type text, status text, step_index int, step_id text,
        duration_ms int, timestamp timestamptz, user_id uuid, details jsonb)
    )
    SELECT count(*) AS updated FROM updated`;
  return Number(result[0]?.updated ?? 0) === 1;
}

const toJsonRow = (log: LogRow) => ({
  account_id: log.accountId,
  workflow_id: log.workflowId ?? null,
  contact_id: log.contactId ?? null,
  event_type: log.eventType,
  status: log.status,
  step_index: log.stepIndex ?? null,
  step_id: log.stepId ?? null,
  duration_ms: log.durationMs ?? null,
  timestamp: log.timestamp.toISOString(),
  user_id: log.userId ?? null,
  details: log.details,
});
