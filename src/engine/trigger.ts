import { initialTransition } from 'xstate';
import { run } from '../db/sql.ts';
import { FlowmachineError } from '../errors.ts';
import { maskPii } from '../observability/mask.ts';
import { injectTraceContext, withSpan } from '../observability/tracing.ts';
import { progressOf, storeSnapshot } from './snapshot.ts';
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
 * triggers cannot both pass the deduplication check; then enqueues the first step. Two round trips
 * when the version's machine is cached: one read, one call of `flowmachine_enroll`.
 */
export function triggerExecution(deps: EngineDeps, cache: WorkflowCache, request: TriggerRequest): Promise<TriggerResult> {
  return withSpan('trigger execution', { 'flowmachine.workflow_id': request.workflowId, 'flowmachine.contact_id': request.contactId }, async (span) => {
    const result = await enroll(deps, cache, request);
    span.setAttribute('flowmachine.trigger_result', result.kind);
    if ('executionId' in result) span.setAttribute('flowmachine.execution_id', result.executionId);
    return result;
  });
}

/** The workflow with its current version, and the contact: null columns for what the account does not hold. */
const READ_TRIGGER = {
  name: 'trigger-read',
  text: `SELECT w.status AS "workflowStatus", v.id AS "versionId", v.version, c.opted_in AS "optedIn"
    FROM (SELECT 1) AS one
    LEFT JOIN workflows w ON w.id = $1 AND w.account_id = $3
    LEFT JOIN workflow_versions v ON v.workflow_id = w.id AND v.version = w.current_version
    LEFT JOIN contacts c ON c.id = $2 AND c.account_id = $3 AND c.deleted_at IS NULL`,
};
/** A version's definition, read only when its compiled machine is not cached yet. */
const READ_DEFINITION = { name: 'trigger-definition', text: 'SELECT definition FROM workflow_versions WHERE id = $1' };
/** Lock, deduplication and reentry checks, execution and log inserts: one call (migration `enroll_function`). */
const ENROLL = { name: 'trigger-enroll', text: 'SELECT kind, execution FROM flowmachine_enroll($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)' };
/** A `BLOCKED` log entry of a refused trigger. */
const INSERT_REFUSAL = {
  name: 'trigger-refusal',
  text: `INSERT INTO execution_logs (account_id, workflow_id, contact_id, execution_id, event_type, status, timestamp, details)
    VALUES ($1, $2, $3, $4, $5, 'BLOCKED', $6, $7)`,
};

async function enroll(deps: EngineDeps, cache: WorkflowCache, request: TriggerRequest): Promise<TriggerResult> {
  const { accountId, workflowId, contactId } = request;
  const [read] = await run<{ workflowStatus: string | null; versionId: string | null; version: number | null; optedIn: boolean | null }>(
    deps.pool, READ_TRIGGER, [workflowId, contactId, accountId],
  );
  if (!read?.workflowStatus) return { kind: 'workflow_not_found' };
  if (read.optedIn === null) return { kind: 'contact_not_found' };
  if (read.workflowStatus !== 'active') return { kind: 'inactive' };
  const refusal = (eventType: string, executionId: string | null, details: Record<string, unknown>) =>
    logRefusal(deps, { accountId, workflowId, contactId, executionId, eventType, details });
  if (!read.optedIn) {
    await refusal('opt_out_blocked', null, { reason: 'contact has opted out' });
    return { kind: 'opted_out' };
  }
  const { versionId, version } = read;
  if (!versionId) throw new FlowmachineError('missing_version', `workflow ${workflowId} has no row for its current version`);
  let compiled = cache.get(versionId);
  if (!compiled) {
    const [stored] = await run<{ definition: unknown }>(deps.pool, READ_DEFINITION, [versionId]);
    compiled = cache.compile(versionId, stored!.definition);
  }
  const [snapshot] = initialTransition(compiled.machine);
  const stored = storeSnapshot(snapshot);
  const now = deps.clock.now();
  const trace = injectTraceContext();

  const [enrolled] = await run<{ kind: 'started' | 'duplicate' | 'already_enrolled'; execution: string }>(deps.pool, ENROLL, [
    accountId, workflowId, versionId, version, contactId, compiled.reentry, DEDUPLICATION_WINDOW_MS, JSON.stringify(stored),
    progressOf(compiled, stored, compiled.totalSteps).totalSteps, compiled.goalEvent, JSON.stringify(request.payload ?? {}), JSON.stringify(trace), now,
  ]);
  const result: TriggerResult = { kind: enrolled!.kind, executionId: enrolled!.execution };

  if (result.kind === 'duplicate') await refusal('deduplication_blocked', result.executionId, { reason: 'duplicate trigger ignored' });
  if (result.kind === 'started') {
    await deps.queue.enqueue([{ executionId: result.executionId, version: 0, trace }], (error) =>
      deps.logger.warn('enqueue failed; the sweeper will retry', { execution_id: result.executionId, error: error.message }),
    );
    deps.metrics.executionsStarted.inc();
    deps.metrics.executionEvents.inc({ event_type: 'execution_started' });
    deps.logger.info('execution_started', { execution_id: result.executionId, account_id: accountId, workflow_id: workflowId });
  }
  return result;
}

async function logRefusal(
  deps: EngineDeps,
  entry: { accountId: string; workflowId: string; contactId: string; executionId: string | null; eventType: string; details: Record<string, unknown> },
) {
  await run(deps.pool, INSERT_REFUSAL, [
    entry.accountId, entry.workflowId, entry.contactId, entry.executionId, entry.eventType, deps.clock.now(), JSON.stringify(maskPii(entry.details)),
  ]);
  deps.metrics.executionEvents.inc({ event_type: entry.eventType });
  deps.logger.info(entry.eventType, { account_id: entry.accountId, workflow_id: entry.workflowId, contact_id: entry.contactId, execution_id: entry.executionId ?? undefined });
}
