import { inRequestOrder } from '../db/batch.ts';
import type { Pool } from '../db/client.ts';
import { run } from '../db/sql.ts';
import type { ExecutionRow, LoadedForJob } from '../store/execution-store.ts';

// Column lists in the client's field names, so one joined query yields the same shapes Prisma would.
const EXECUTION = `e.id, e.account_id AS "accountId", e.workflow_id AS "workflowId", e.workflow_version_id AS "workflowVersionId",
  e.contact_id AS "contactId", e.status, e.snapshot, e.version, e.current_step_index AS "currentStepIndex", e.total_steps AS "totalSteps",
  e.retry_count AS "retryCount", e.completion_reason AS "completionReason", e.last_error AS "lastError", e.goal_event AS "goalEvent",
  e.next_run_at AS "nextRunAt", e.waiting, e.waiting_event AS "waitingEvent", e.trace_context AS "traceContext", e.payload, e.created_at AS "createdAt",
  e.updated_at AS "updatedAt", e.finished_at AS "finishedAt"`;
/** The contact's JSON shape, the one `flowmachine_commit` answers with too (prisma/functions/flowmachine_contact_json.sql). */
const CONTACT = 'flowmachine_contact_json(c) AS contact';
const ACCOUNT = `json_build_object('id', a.id, 'name', a.name, 'adminEmail', a.admin_email,
  'concurrentExecutionsPerAccount', a.concurrent_executions_per_account, 'maxRetryAttempts', a.max_retry_attempts,
  'retryBaseDelaySeconds', a.retry_base_delay_seconds, 'errorNotification', a.error_notification,
  'defaultTimezone', a.default_timezone, 'frequencyCaps', a.frequency_caps) AS account`;
const COLUMNS = `${EXECUTION}, ${CONTACT}, ${ACCOUNT}, json_build_object('name', w.name) AS workflow`;
const RELATED =
  'JOIN contacts c ON c.id = e.contact_id JOIN accounts a ON a.id = e.account_id JOIN workflows w ON w.id = e.workflow_id';

const LOAD_EXECUTION = {
  name: 'load-execution',
  text: `SELECT ${COLUMNS}
  FROM executions e ${RELATED} WHERE e.id = $1::uuid AND ($2::uuid IS NULL OR e.account_id = $2::uuid)`,
};
/** Several executions of one account, for a bulk operation's batch. */
const LOAD_EXECUTIONS = {
  name: 'load-executions',
  text: `SELECT ${COLUMNS}
  FROM executions e ${RELATED} WHERE e.id = ANY($1::uuid[]) AND e.account_id = $2::uuid`,
};
/** The load of a step's job, with its admission or the resumption of its due timer (prisma/functions/flowmachine_admit_loaded.sql). */
const LOAD_FOR_JOB = {
  name: 'load-for-job',
  text: `SELECT ${COLUMNS},
  flowmachine_admit_loaded(e.id, $2::integer, e.version, e.status, e.waiting, e.next_run_at, $3::timestamptz, $4::integer) AS admitted
  FROM executions e ${RELATED} WHERE e.id = $1::uuid`,
};
/** Several jobs' loads in one statement (see db/batch.ts); `i` is the job's place in the batch. */
const LOAD_FOR_JOBS = {
  name: 'load-for-jobs',
  text: `SELECT b.i::integer AS i, ${COLUMNS},
  flowmachine_admit_loaded(e.id, b.version, e.version, e.status, e.waiting, e.next_run_at, b.now, $4::integer) AS admitted
  FROM unnest($1::uuid[], $2::integer[], $3::timestamptz[]) WITH ORDINALITY AS b(id, version, now, i)
  JOIN executions e ON e.id = b.id ${RELATED}`,
};
const READ_DEFINITION = { name: 'load-version', text: 'SELECT definition FROM workflow_versions WHERE id = $1' };

/** A contact as read in JSON (json_build_object turns timestamps into strings). */
export type ContactJson = Omit<ExecutionRow['contact'], 'deletedAt'> & { deletedAt: string | null };

/** A contact read as JSON, with its dates parsed. */
export const contactOf = (raw: ContactJson): ExecutionRow['contact'] => ({
  ...raw,
  deletedAt: raw.deletedAt ? new Date(raw.deletedAt) : null,
});

type RawRow = Omit<ExecutionRow, 'contact'> & { contact: ContactJson };
const rowOf = (raw: RawRow): ExecutionRow => ({ ...raw, contact: contactOf(raw.contact) });

/** One execution with its contact, account and workflow name, optionally only within `accountId`. */
export async function loadExecution(pool: Pool, executionId: string, accountId: string | null) {
  const [raw] = await run<RawRow>(pool, LOAD_EXECUTION, [executionId, accountId]);
  return raw ? rowOf(raw) : null;
}

/** The executions of `executionIds` within `accountId`, in one statement (those not found are left out). */
export async function loadExecutions(pool: Pool, executionIds: readonly string[], accountId: string) {
  return (await run<RawRow>(pool, LOAD_EXECUTIONS, [executionIds, accountId])).map(rowOf);
}

/** One request of {@link loadForJobs}. */
export interface LoadRequest {
  executionId: string;
  version: number;
  now: Date;
  /** How early a timer still counts as due. */
  dueToleranceMs: number;
}

/** Jobs' loads with their admissions, one statement for all, answered in request order. */
export async function loadForJobs(pool: Pool, requests: LoadRequest[]): Promise<(LoadedForJob | undefined)[]> {
  type Raw = RawRow & { admitted: string | null };
  let raws: (Raw | undefined)[];
  if (requests.length === 1) {
    const { executionId, version, now } = requests[0]!;
    raws = await run<Raw>(pool, LOAD_FOR_JOB, [executionId, version, now, requests[0]!.dueToleranceMs]);
  } else {
    const columns = [
      requests.map((r) => r.executionId),
      requests.map((r) => r.version),
      requests.map((r) => r.now.toISOString()),
      requests[0]!.dueToleranceMs,
    ];
    raws = inRequestOrder(await run<Raw & { i: number }>(pool, LOAD_FOR_JOBS, columns), requests.length);
  }
  return raws.map((raw) => {
    if (!raw) return undefined;
    const { admitted, ...row } = raw;
    return { row: rowOf(row), admitted };
  });
}

/** A workflow version's stored definition. */
export async function readDefinition(pool: Pool, versionId: string): Promise<unknown> {
  const [version] = await run<{ definition: unknown }>(pool, READ_DEFINITION, [versionId]);
  return version?.definition;
}
