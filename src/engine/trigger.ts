import { initialTransition } from 'xstate';
import type { Prisma } from '../generated/prisma/client.ts';
import { maskPii } from '../observability/mask.ts';
import { injectTraceContext, withSpan } from '../observability/tracing.ts';
import { progressOf, storeSnapshot } from './snapshot.ts';
import { RUNNING_STATUSES, type EngineDeps } from './types.ts';
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
 * triggers cannot both pass the deduplication check; then enqueues the first step.
 */
export function triggerExecution(deps: EngineDeps, cache: WorkflowCache, request: TriggerRequest): Promise<TriggerResult> {
  return withSpan('trigger execution', { 'flowmachine.workflow_id': request.workflowId, 'flowmachine.contact_id': request.contactId }, async (span) => {
    const result = await enroll(deps, cache, request);
    span.setAttribute('flowmachine.trigger_result', result.kind);
    if ('executionId' in result) span.setAttribute('flowmachine.execution_id', result.executionId);
    return result;
  });
}

async function enroll(deps: EngineDeps, cache: WorkflowCache, request: TriggerRequest): Promise<TriggerResult> {
  const { accountId, workflowId, contactId } = request;
  const [workflow, contact] = await Promise.all([
    deps.db.workflow.findFirst({ where: { id: workflowId, accountId } }),
    deps.db.contact.findFirst({ where: { id: contactId, accountId, deletedAt: null } }),
  ]);
  if (!workflow) return { kind: 'workflow_not_found' };
  if (!contact) return { kind: 'contact_not_found' };
  if (workflow.status !== 'active') return { kind: 'inactive' };
  const refusal = (eventType: string, executionId: string | null, details: Record<string, unknown>) =>
    logRefusal(deps, { accountId, workflowId, contactId, executionId, eventType, details });
  if (!contact.optedIn) {
    await refusal('opt_out_blocked', null, { reason: 'contact has opted out' });
    return { kind: 'opted_out' };
  }
  const version = await deps.db.workflowVersion.findUniqueOrThrow({ where: { workflowId_version: { workflowId, version: workflow.currentVersion } } });
  const compiled = cache.compile(version.id, version.definition);
  const reentry = (version.definition as { reentry?: string }).reentry ?? 'after_completion';
  const [snapshot] = initialTransition(compiled.machine);
  const stored = storeSnapshot(snapshot);
  const now = deps.clock.now();
  const trace = injectTraceContext();

  const result = await deps.db.$transaction(async (tx): Promise<TriggerResult> => {
    await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtextextended(${`${workflowId}:${contactId}`}, 0))`;
    const latest = await tx.execution.findFirst({ where: { workflowId, contactId }, orderBy: { createdAt: 'desc' }, select: { id: true, status: true, createdAt: true } });
    const running = latest && (RUNNING_STATUSES as string[]).includes(latest.status);
    if (latest && running && now.getTime() - latest.createdAt.getTime() < DEDUPLICATION_WINDOW_MS) return { kind: 'duplicate', executionId: latest.id };
    if (latest && (reentry === 'never' || (reentry === 'after_completion' && running))) return { kind: 'already_enrolled', executionId: latest.id };
    const execution = await tx.execution.create({
      data: {
        accountId,
        workflowId,
        workflowVersionId: version.id,
        contactId,
        status: 'QUEUED',
        snapshot: stored as unknown as Prisma.InputJsonValue,
        totalSteps: progressOf(compiled, stored, compiled.totalSteps).totalSteps,
        goalEvent: compiled.goalEvent,
        payload: (request.payload ?? {}) as Prisma.InputJsonValue,
        traceContext: trace,
        createdAt: now,
        updatedAt: now,
      },
      select: { id: true },
    });
    await tx.executionLog.create({
      data: { executionId: execution.id, accountId, workflowId, contactId, eventType: 'execution_started', status: 'QUEUED', stepIndex: 0, timestamp: now, details: { workflow_version: version.version } },
    });
    return { kind: 'started', executionId: execution.id };
  });

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
  await deps.db.executionLog.create({
    data: {
      accountId: entry.accountId,
      workflowId: entry.workflowId,
      contactId: entry.contactId,
      executionId: entry.executionId,
      eventType: entry.eventType,
      status: 'BLOCKED',
      timestamp: deps.clock.now(),
      details: maskPii(entry.details) as Prisma.InputJsonValue,
    },
  });
  deps.metrics.executionEvents.inc({ event_type: entry.eventType });
  deps.logger.info(entry.eventType, { account_id: entry.accountId, workflow_id: entry.workflowId, contact_id: entry.contactId, execution_id: entry.executionId ?? undefined });
}
