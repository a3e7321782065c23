import type { CompiledWorkflow } from '../compiler/compile.ts';
import { inRequestOrder } from '../db/batch.ts';
import type { Pool } from '../db/client.ts';
import { run } from '../db/sql.ts';
import type { Account, Contact, Execution } from '../generated/prisma/client.ts';
import type { EngineDeps } from './types.ts';
import type { WorkflowCache } from './workflow-cache.ts';

/** An execution row with what one engine step needs: its contact, account settings and workflow name. */
export type ExecutionRow = Omit<Execution, 'seq' | 'slotShard' | 'notifyPending' | 'notifyAttempts' | 'notifyAfter'> & {
  contact: Pick<
    Contact,
    'id' | 'accountId' | 'email' | 'phone' | 'optedIn' | 'timezone' | 'attributes' | 'tags' | 'deletedAt'
  >;
  account: Pick<
    Account,
    | 'id'
    | 'name'
    | 'adminEmail'
    | 'concurrentExecutionsPerAccount'
    | 'maxRetryAttempts'
    | 'retryBaseDelaySeconds'
    | 'errorNotification'
  >;
  workflow: { name: string };
};

/** An execution together with its compiled workflow. */
export interface LoadedExecution {
  row: ExecutionRow;
  workflow: CompiledWorkflow;
}

// Column lists in the client's field names, so one joined query yields the same shapes Prisma would.
const EXECUTION = `e.id, e.account_id AS "accountId", e.workflow_id AS "workflowId", e.workflow_version_id AS "workflowVersionId",
  e.contact_id AS "contactId", e.status, e.snapshot, e.version, e.current_step_index AS "currentStepIndex", e.total_steps AS "totalSteps",
  e.retry_count AS "retryCount", e.completion_reason AS "completionReason", e.last_error AS "lastError", e.goal_event AS "goalEvent",
  e.next_run_at AS "nextRunAt", e.waiting, e.trace_context AS "traceContext", e.payload, e.created_at AS "createdAt",
  e.updated_at AS "updatedAt", e.finished_at AS "finishedAt"`;
const CONTACT = `json_build_object('id', c.id, 'accountId', c.account_id, 'email', c.email, 'phone', c.phone, 'optedIn', c.opted_in,
  'timezone', c.timezone, 'attributes', c.attributes, 'tags', coalesce(c.tags, '{}'), 'deletedAt', c.deleted_at) AS contact`;
const ACCOUNT = `json_build_object('id', a.id, 'name', a.name, 'adminEmail', a.admin_email,
  'concurrentExecutionsPerAccount', a.concurrent_executions_per_account, 'maxRetryAttempts', a.max_retry_attempts,
  'retryBaseDelaySeconds', a.retry_base_delay_seconds, 'errorNotification', a.error_notification) AS account`;
const COLUMNS = `${EXECUTION}, ${CONTACT}, ${ACCOUNT}, json_build_object('name', w.name) AS workflow`;
const RELATED =
  'JOIN contacts c ON c.id = e.contact_id JOIN accounts a ON a.id = e.account_id JOIN workflows w ON w.id = e.workflow_id';
const LOAD_EXECUTION = {
  name: 'load-execution',
  text: `SELECT ${COLUMNS}
  FROM executions e ${RELATED} WHERE e.id = $1::uuid AND ($2::uuid IS NULL OR e.account_id = $2::uuid)`,
};
/** The load of a step's job, with its admission or the resumption of its due timer (prisma/functions/flowmachine_admit_loaded.sql). */
const LOAD_FOR_JOB = {
  name: 'load-for-job',
  text: `SELECT ${COLUMNS},
  flowmachine_admit_loaded(e.id, $2::integer, e.version, e.status, e.waiting, e.next_run_at, $3::timestamptz) AS admitted
  FROM executions e ${RELATED} WHERE e.id = $1::uuid`,
};
/** Several jobs' loads in one statement (see db/batch.ts); `i` is the job's place in the batch. */
const LOAD_FOR_JOBS = {
  name: 'load-for-jobs',
  text: `SELECT b.i::integer AS i, ${COLUMNS},
  flowmachine_admit_loaded(e.id, b.version, e.version, e.status, e.waiting, e.next_run_at, b.now) AS admitted
  FROM unnest($1::uuid[], $2::integer[], $3::timestamptz[]) WITH ORDINALITY AS b(id, version, now, i)
  JOIN executions e ON e.id = b.id ${RELATED}`,
};

interface LoadRequest {
  executionId: string;
  version: number;
  now: Date;
}
type LoadedRaw = RawRow & { admitted: string | null };

async function sendLoads(pool: Pool, requests: LoadRequest[]): Promise<(LoadedRaw | undefined)[]> {
  if (requests.length === 1) {
    const { executionId, version, now } = requests[0]!;
    return run<LoadedRaw>(pool, LOAD_FOR_JOB, [executionId, version, now]);
  }
  const columns = [
    requests.map((r) => r.executionId),
    requests.map((r) => r.version),
    requests.map((r) => r.now.toISOString()),
  ];
  return inRequestOrder(await run<LoadedRaw & { i: number }>(pool, LOAD_FOR_JOBS, columns), requests.length);
}

const READ_VERSION = { name: 'load-version', text: 'SELECT definition FROM workflow_versions WHERE id = $1' };

/** A contact read as JSON (json_build_object turns timestamps into strings). */
export const contactOf = (
  raw: Omit<ExecutionRow['contact'], 'deletedAt'> & { deletedAt: string | null },
): ExecutionRow['contact'] => ({
  ...raw,
  deletedAt: raw.deletedAt ? new Date(raw.deletedAt) : null,
});

/**
 * Loads an execution (optionally only within `accountId`) with its contact, account and workflow
 * name in one round trip, compiling its pinned workflow version on first use.
 */
export async function loadExecution(
  deps: EngineDeps,
  cache: WorkflowCache,
  executionId: string,
  accountId?: string,
): Promise<LoadedExecution | null> {
  const [raw] = await run<RawRow>(deps.pool, LOAD_EXECUTION, [executionId, accountId ?? null]);
  return raw ? withWorkflow(deps, cache, raw) : null;
}

/**
 * Loads the execution of a step's job as {@link loadExecution} does and, in the same call, admits it when
 * it is at the job's version and either QUEUED and not waiting in line, or PAUSED with its timer due.
 * `admitted` is the status admission left it in (`ACTIVE`, or `QUEUED` when it joined the waiting line),
 * null when there was none; the row is as read before the admission.
 */
export async function loadForJob(
  deps: EngineDeps,
  cache: WorkflowCache,
  job: { executionId: string; version: number },
): Promise<{ loaded: LoadedExecution; admitted: string | null } | null> {
  const raw = await deps.batchers
    .of('load', sendLoads)
    .submit({ executionId: job.executionId, version: job.version, now: deps.clock.now() });
  if (!raw) return null;
  const { admitted, ...rest } = raw;
  return { loaded: await withWorkflow(deps, cache, rest), admitted };
}

type RawRow = ExecutionRow & { contact: { deletedAt: string | null } };

/** The row with its contact's dates parsed, and its pinned version's machine. */
async function withWorkflow(deps: EngineDeps, cache: WorkflowCache, raw: RawRow): Promise<LoadedExecution> {
  const row: ExecutionRow = { ...raw, contact: contactOf(raw.contact) };
  return { row, workflow: await compiledVersion(deps, cache, row.workflowVersionId) };
}

/** The compiled machine of a workflow version, read from Postgres only the first time. */
export async function compiledVersion(
  deps: EngineDeps,
  cache: WorkflowCache,
  versionId: string,
): Promise<CompiledWorkflow> {
  const cached = cache.get(versionId);
  if (cached) return cached;
  const [version] = await run<{ definition: unknown }>(deps.pool, READ_VERSION, [versionId]);
  return cache.compile(versionId, version!.definition);
}
