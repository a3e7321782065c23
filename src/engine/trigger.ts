import { inRequestOrder } from '../db/batch.ts';
import type { Pool } from '../db/client.ts';
import { run } from '../db/sql.ts';
import { FlowmachineError } from '../errors.ts';
import { maskPii } from '../observability/mask.ts';
import { injectTraceContext, startLinkedRootSpan, withSpan } from '../observability/tracing.ts';
import { compiledVersion } from './load.ts';
import type { EngineDeps } from './types.ts';
import type { WorkflowCache } from './workflow-cache.ts';

/** A second trigger for the same workflow and contact within this window of a running execution is ignored. */
export const DEDUPLICATION_WINDOW_MS = 5_000;

export interface TriggerRequest {
  accountId: string;
  workflowId: string;
  contactId: string;
  payload?: Record<string, unknown>;
}

/** Every way a trigger can end (CONTRACT.md `POST /workflows/{id}/trigger`). */
export type TriggerResult =
  | { kind: 'started'; executionId: string }
  | { kind: 'duplicate'; executionId: string }
  | { kind: 'workflow_not_found' }
  | { kind: 'contact_not_found' }
  | { kind: 'inactive' }
  | { kind: 'opted_out' }
  | { kind: 'already_enrolled'; executionId: string };

/**
 * Enrolls a contact: checks every guard, then creates the execution (QUEUED, initial snapshot) and
 * its `execution_started` log in one transaction, serialised per workflow and contact so concurrent
 * triggers cannot both pass the deduplication check; then enqueues the first step. One call of
 * `flowmachine_trigger` when the workflow's current version is compiled here already.
 */
export function triggerExecution(
  deps: EngineDeps,
  cache: WorkflowCache,
  request: TriggerRequest,
): Promise<TriggerResult> {
  return withSpan(
    'trigger execution',
    { 'flowmachine.workflow_id': request.workflowId, 'flowmachine.contact_id': request.contactId },
    async (span) => {
      const result = await enroll(deps, cache, request);
      span.setAttribute('flowmachine.trigger_result', result.kind);
      if ('executionId' in result) span.setAttribute('flowmachine.execution_id', result.executionId);
      return result;
    },
  );
}

/**
 * Workflow, contact and version checks, then lock, deduplication and reentry checks, execution and log
 * inserts: one call (prisma/functions/flowmachine_trigger.sql).
 */
const TRIGGER = {
  name: 'trigger',
  text: 'SELECT kind, execution, version_id AS "versionId" FROM flowmachine_trigger($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)',
};
/**
 * Several triggers in one statement (see db/batch.ts), by workflow and contact, as bulk enrollment takes
 * them, so that concurrent statements take the pairs' advisory locks in one order.
 */
const TRIGGER_BATCH = {
  name: 'triggers',
  text: `SELECT b.i::integer AS i, t.kind, t.execution, t.version_id AS "versionId" FROM (
      SELECT a.x, a.i FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS a(x, i)
      ORDER BY a.x->>'workflow' COLLATE "C", a.x->>'contact' COLLATE "C", a.i) AS b
    CROSS JOIN LATERAL flowmachine_trigger((b.x->>'account')::uuid, (b.x->>'workflow')::uuid, (b.x->>'contact')::uuid, (b.x->>'version')::uuid,
      b.x->>'reentry', (b.x->>'windowMs')::integer, nullif(b.x->'snapshot', 'null'), (b.x->>'totalSteps')::integer, b.x->>'goalEvent',
      b.x->'payload', b.x->'trace', (b.x->>'now')::timestamptz) AS t`,
};

/** One trigger's call of `flowmachine_trigger`; `snapshot`, `payload` and `trace` are JSON text already. */
interface TriggerCall {
  account: string;
  workflow: string;
  contact: string;
  version: string | null;
  reentry: string | null;
  windowMs: number;
  snapshot: string | null;
  totalSteps: number | null;
  goalEvent: string | null;
  payload: string;
  trace: string;
  now: Date;
}
type TriggerAnswer = { kind: TriggerRow; execution: string | null; versionId: string | null };

async function sendTriggers(pool: Pool, calls: TriggerCall[]): Promise<(TriggerAnswer | undefined)[]> {
  if (calls.length === 1) {
    const c = calls[0]!;
    return run<TriggerAnswer>(pool, TRIGGER, [
      c.account,
      c.workflow,
      c.contact,
      c.version,
      c.reentry,
      c.windowMs,
      c.snapshot,
      c.totalSteps,
      c.goalEvent,
      c.payload,
      c.trace,
      c.now,
    ]);
  }
  // The JSON texts go in as they are, not parsed and serialised again.
  const batch = calls.map(
    ({ snapshot, payload, trace, ...rest }) =>
      `${JSON.stringify(rest).slice(0, -1)},"snapshot":${snapshot ?? 'null'},"payload":${payload},"trace":${trace}}`,
  );
  return inRequestOrder(
    await run<TriggerAnswer & { i: number }>(pool, TRIGGER_BATCH, [`[${batch.join(',')}]`]),
    calls.length,
  );
}

/** The `BLOCKED` log entries of refused triggers: one per (contact, execution) pair. */
const INSERT_REFUSALS = {
  name: 'trigger-refusals',
  text: `INSERT INTO execution_logs (account_id, workflow_id, contact_id, execution_id, event_type, status, timestamp, details)
    SELECT $1, $2, r.contact, r.execution, $5, 'BLOCKED', $6, $7 FROM unnest($3::uuid[], $4::uuid[]) AS r(contact, execution)`,
};
/** The workflow's status and current version, within the account. */
const READ_WORKFLOW = {
  name: 'enroll-read-workflow',
  text: `SELECT w.status AS "workflowStatus", v.id AS "versionId", v.version FROM workflows w
    LEFT JOIN workflow_versions v ON v.workflow_id = w.id AND v.version = w.current_version WHERE w.id = $1 AND w.account_id = $2`,
};
/** Which of the contacts the account holds (not deleted), and whether they opted in. */
const READ_CONTACTS = {
  name: 'enroll-read-contacts',
  text: 'SELECT id, opted_in AS "optedIn" FROM contacts WHERE id = ANY($1::uuid[]) AND account_id = $2 AND deleted_at IS NULL',
};
/** Bulk enrollment of up to {@link ENROLL_CHUNK} contacts (prisma/functions/flowmachine_enroll_many.sql). */
const ENROLL_MANY = {
  name: 'enroll-many',
  text: 'SELECT contact, kind, execution FROM flowmachine_enroll_many($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)',
};

async function enroll(deps: EngineDeps, cache: WorkflowCache, request: TriggerRequest): Promise<TriggerResult> {
  const { accountId, workflowId, contactId } = request;
  const payload = JSON.stringify(request.payload ?? {});
  const trace = injectTraceContext();
  // The version last seen current is compiled here already; when Postgres says another one is current
  // (or none was seen yet), that one is compiled and the call made again.
  for (let versionId = cache.latestVersion(workflowId); ; ) {
    const compiled = versionId === undefined ? undefined : await compiledVersion(deps, cache, versionId);
    const initial = compiled && cache.initialOf(compiled);
    // flowmachine_trigger answers every call with one row.
    const row = (await deps.batchers.of('trigger', sendTriggers).submit({
      account: accountId,
      workflow: workflowId,
      contact: contactId,
      version: versionId ?? null,
      reentry: compiled?.reentry ?? null,
      windowMs: DEDUPLICATION_WINDOW_MS,
      snapshot: initial?.snapshot ?? null,
      totalSteps: initial?.totalSteps ?? null,
      goalEvent: compiled?.goalEvent ?? null,
      payload,
      trace: JSON.stringify(trace),
      now: deps.clock.now(),
    }))!;
    const { kind, execution } = row;
    if (row.versionId) cache.sawLatestVersion(workflowId, row.versionId);
    switch (kind) {
      case 'stale':
        if (!row.versionId)
          throw new FlowmachineError('missing_version', `workflow ${workflowId} has no row for its current version`);
        versionId = row.versionId;
        continue;
      case 'workflow_not_found':
      case 'contact_not_found':
      case 'inactive':
        return { kind };
      case 'opted_out':
        await logRefusals(
          deps,
          { accountId, workflowId, eventType: 'opt_out_blocked', details: { reason: 'contact has opted out' } },
          [{ contactId, executionId: null }],
        );
        return { kind };
      case 'duplicate':
        await logRefusals(
          deps,
          {
            accountId,
            workflowId,
            eventType: 'deduplication_blocked',
            details: { reason: 'duplicate trigger ignored' },
          },
          [{ contactId, executionId: execution }],
        );
        return { kind, executionId: execution! };
      case 'started':
        await started(deps, accountId, workflowId, [{ executionId: execution!, trace }]);
        return { kind, executionId: execution! };
      case 'already_enrolled':
        return { kind, executionId: execution! };
    }
  }
}

type TriggerRow = TriggerResult['kind'] | 'stale';

/** Stores and logs the refusals of one kind for some contacts of one workflow. */
async function logRefusals(
  deps: EngineDeps,
  refusal: { accountId: string; workflowId: string; eventType: string; details: Record<string, unknown> },
  refused: { contactId: string; executionId: string | null }[],
) {
  if (refused.length === 0) return;
  await run(deps.pool, INSERT_REFUSALS, [
    refusal.accountId,
    refusal.workflowId,
    refused.map((r) => r.contactId),
    refused.map((r) => r.executionId),
    refusal.eventType,
    deps.clock.now(),
    JSON.stringify(maskPii(refusal.details)),
  ]);
  deps.metrics.executionEvents.inc({ event_type: refusal.eventType }, refused.length);
  for (const { contactId, executionId } of refused) {
    deps.logger.info(refusal.eventType, {
      account_id: refusal.accountId,
      workflow_id: refusal.workflowId,
      contact_id: contactId,
      execution_id: executionId ?? undefined,
    });
  }
}

/** Puts the first job of new executions on the queue (the sweeper covers a failure), with their metrics and log lines. */
async function started(
  deps: EngineDeps,
  accountId: string,
  workflowId: string,
  executions: { executionId: string; trace: Record<string, string> }[],
) {
  if (executions.length === 0) return;
  await deps.queue.enqueue(
    executions.map(({ executionId, trace }) => ({ executionId, version: 0, trace, first: true })),
    (error) =>
      deps.logger.warn('enqueue failed; the sweeper will retry', {
        executions: executions.length,
        error: error.message,
      }),
  );
  deps.metrics.executionsStarted.inc(executions.length);
  deps.metrics.executionEvents.inc({ event_type: 'execution_started' }, executions.length);
  for (const { executionId } of executions)
    deps.logger.info('execution_started', {
      execution_id: executionId,
      account_id: accountId,
      workflow_id: workflowId,
    });
}

/** What enrolling a contact came to in a bulk enrollment. */
export type EnrollmentOutcome = 'started' | 'duplicate' | 'already_enrolled' | 'contact_not_found' | 'opted_out';

export interface BulkEnrollRequest {
  accountId: string;
  workflowId: string;
  /** At most {@link MAX_BULK_ENROLL}; a contact named twice is enrolled (and answered) once. */
  contactIds: string[];
  payload?: Record<string, unknown>;
}

/** Contacts one bulk enrollment request may name. */
export const MAX_BULK_ENROLL = 1_000;
/** Contacts enrolled per Postgres call (each holds its advisory locks until its call commits). */
const ENROLL_CHUNK = 100;

/**
 * Enrolls many contacts of the account in a workflow, each exactly as a trigger would (deduplication,
 * reentry, opt-out, one execution with its own trace linked to the request's), in a few round trips:
 * one read of the workflow, one of the contacts, and per {@link ENROLL_CHUNK} contacts one call and one
 * queue call. Not atomic across chunks: each chunk is committed and its first jobs enqueued before the
 * next, so an error in a later chunk (answered 500) leaves the earlier ones running, never stranded.
 * Returns one outcome per distinct contact, in the order given.
 */
export function enrollContacts(deps: EngineDeps, cache: WorkflowCache, request: BulkEnrollRequest) {
  return withSpan(
    'bulk enrollment',
    { 'flowmachine.workflow_id': request.workflowId, 'flowmachine.contacts': request.contactIds.length },
    async (span) => {
      const result = await enrollMany(deps, cache, request);
      if (result.kind === 'done')
        span.setAttribute('flowmachine.started', result.outcomes.filter((o) => o.outcome === 'started').length);
      return result;
    },
  );
}

async function enrollMany(
  deps: EngineDeps,
  cache: WorkflowCache,
  request: BulkEnrollRequest,
): Promise<
  | { kind: 'workflow_not_found' | 'inactive' }
  | { kind: 'done'; outcomes: { contactId: string; outcome: EnrollmentOutcome; executionId?: string }[] }
> {
  const { accountId, workflowId } = request;
  const contactIds = [...new Set(request.contactIds.map((id) => id.toLowerCase()))];
  const [workflow] = await run<{ workflowStatus: string; versionId: string | null; version: number | null }>(
    deps.pool,
    READ_WORKFLOW,
    [workflowId, accountId],
  );
  if (!workflow) return { kind: 'workflow_not_found' };
  if (workflow.workflowStatus !== 'active') return { kind: 'inactive' };
  if (!workflow.versionId)
    throw new FlowmachineError('missing_version', `workflow ${workflowId} has no row for its current version`);
  const compiled = await compiledVersion(deps, cache, workflow.versionId);
  const contacts = new Map(
    (await run<{ id: string; optedIn: boolean }>(deps.pool, READ_CONTACTS, [contactIds, accountId])).map((c) => [
      c.id,
      c.optedIn,
    ]),
  );
  const outcomes = new Map<string, { outcome: EnrollmentOutcome; executionId?: string }>();
  const eligible: string[] = [];
  for (const contactId of contactIds) {
    const optedIn = contacts.get(contactId);
    if (optedIn === undefined) outcomes.set(contactId, { outcome: 'contact_not_found' });
    else if (!optedIn) outcomes.set(contactId, { outcome: 'opted_out' });
    else eligible.push(contactId);
  }
  const refusal = { accountId, workflowId, eventType: 'opt_out_blocked', details: { reason: 'contact has opted out' } };
  await logRefusals(
    deps,
    refusal,
    contactIds
      .filter((id) => outcomes.get(id)?.outcome === 'opted_out')
      .map((contactId) => ({ contactId, executionId: null })),
  );

  const initial = cache.initialOf(compiled);
  const now = deps.clock.now();
  const duplicates: { contactId: string; executionId: string }[] = [];
  eligible.sort();
  // Each chunk commits on its own and its executions are enqueued at once, before the next chunk: a
  // later chunk that fails leaves no committed execution without its first job.
  for (let i = 0; i < eligible.length; i += ENROLL_CHUNK) {
    const chunk = eligible.slice(i, i + ENROLL_CHUNK);
    const news: { executionId: string; trace: Record<string, string> }[] = [];
    const spans = chunk.map((contactId) =>
      startLinkedRootSpan('trigger execution', {
        'flowmachine.workflow_id': workflowId,
        'flowmachine.contact_id': contactId,
      }),
    );
    try {
      const rows = await run<{
        contact: string;
        kind: 'started' | 'duplicate' | 'already_enrolled';
        execution: string;
      }>(deps.pool, ENROLL_MANY, [
        accountId,
        workflowId,
        workflow.versionId,
        workflow.version,
        chunk,
        compiled.reentry,
        DEDUPLICATION_WINDOW_MS,
        initial.snapshot,
        initial.totalSteps,
        compiled.goalEvent,
        JSON.stringify(request.payload ?? {}),
        JSON.stringify(spans.map((s) => s.carrier)),
        now,
      ]);
      rows.forEach((row, index) => {
        outcomes.set(row.contact, { outcome: row.kind, executionId: row.execution });
        spans[index]!.span.setAttributes({
          'flowmachine.trigger_result': row.kind,
          'flowmachine.execution_id': row.execution,
        });
        if (row.kind === 'started') news.push({ executionId: row.execution, trace: spans[index]!.carrier });
        if (row.kind === 'duplicate') duplicates.push({ contactId: row.contact, executionId: row.execution });
      });
    } finally {
      for (const { span } of spans) span.end();
    }
    await started(deps, accountId, workflowId, news);
  }
  await logRefusals(
    deps,
    { ...refusal, eventType: 'deduplication_blocked', details: { reason: 'duplicate trigger ignored' } },
    duplicates,
  );
  return { kind: 'done', outcomes: contactIds.map((contactId) => ({ contactId, ...outcomes.get(contactId)! })) };
}
