import type { Pool } from '../db/client.ts';
import { run } from '../db/sql.ts';
import type { EnrolledRow, EnrollManyCall, EnrollTarget } from '../store/execution-store.ts';

/** The workflow's status and current version, within the account. */
const READ_WORKFLOW = {
  name: 'enroll-read-workflow',
  text: `SELECT w.status AS "workflowStatus", v.id AS "versionId", v.version FROM workflows w
    LEFT JOIN workflow_versions v ON v.workflow_id = w.id AND v.version = w.current_version WHERE w.id = $1 AND w.account_id = $2`,
};
/** Bulk enrollment of a chunk of contacts (prisma/functions/flowmachine_enroll_many.sql). */
const ENROLL_MANY = {
  name: 'enroll-many',
  text: 'SELECT contact, kind, execution FROM flowmachine_enroll_many($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)',
};

/** A workflow's status and current version, within the account. */
export async function readEnrollTarget(pool: Pool, workflowId: string, accountId: string) {
  const [row] = await run<EnrollTarget>(pool, READ_WORKFLOW, [workflowId, accountId]);
  return row ?? null;
}

/** Enrolls a chunk of contacts in one call; one row per contact, in the order given. */
export function enrollMany(pool: Pool, call: EnrollManyCall): Promise<EnrolledRow[]> {
  return run<EnrolledRow>(pool, ENROLL_MANY, [
    call.accountId,
    call.workflowId,
    call.versionId,
    call.version,
    call.contactIds,
    call.reentry,
    call.windowMs,
    call.snapshot,
    call.totalSteps,
    call.goalEvent,
    call.payload,
    JSON.stringify(call.traces),
    call.now,
  ]);
}
