import { FlowmachineError } from '../errors.ts';
import { maskPii } from '../observability/mask.ts';
import { injectTraceContext, startLinkedRootSpan, withSpan } from '../observability/tracing.ts';
import { compileWorkflow } from '../compiler/compile.ts';
import type { Definition } from '../definition/schema.ts';
import { compiledVersion } from './load.ts';
import { initialOf } from './snapshot.ts';
import type { EngineDeps } from './types.ts';
import type { WorkflowCache } from './workflow-cache.ts';

/** A second trigger for the same workflow and contact within this window of a running execution is ignored. */
export const DEDUPLICATION_WINDOW_MS = 5_000;

export interface TriggerRequest {
  accountId: string;
  workflowId: string;
  contactId: string;
  payload?: Record<string, unknown>;
  /**
   * Whether the version the execution would start on takes this entry (an event entry: its trigger is
   * the event and its `where` holds). Checked on that very version, which the enrollment starts on only
   * while it is current: a publish between the caller's read and the enrollment cannot start an
   * execution whose trigger the event does not match. When false on the current version, nothing is written.
   */
  admits?: (definition: Definition) => boolean;
}

/** Every way a trigger can end (CONTRACT.md `POST /workflows/{id}/trigger`). */
export type TriggerResult =
  | { kind: 'started'; executionId: string }
  | { kind: 'duplicate'; executionId: string }
  | { kind: 'workflow_not_found' }
  | { kind: 'contact_not_found' }
  | { kind: 'inactive' }
  | { kind: 'opted_out' }
  | { kind: 'already_enrolled'; executionId: string }
  | { kind: 'not_admitted' };

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

async function enroll(deps: EngineDeps, cache: WorkflowCache, request: TriggerRequest): Promise<TriggerResult> {
  const { accountId, workflowId, contactId } = request;
  const payload = JSON.stringify(request.payload ?? {});
  const trace = injectTraceContext();
  // The version last seen current is compiled here already; when Postgres says another one is current
  // (or none was seen yet), that one is compiled and the call made again.
  for (let versionId = cache.latestVersion(workflowId); ; ) {
    const compiled = versionId === undefined ? undefined : await compiledVersion(deps, cache, versionId);
    // A version that does not take the entry is never enrolled on: the call names no version, so it only
    // answers which one is current, and when that is this one the entry is not admitted.
    const admitted = !compiled || !request.admits || request.admits(compiled.definition);
    const initial = compiled && cache.initialOf(compiled);
    // flowmachine_trigger answers every call with one row.
    const row = await deps.store.trigger({
      account: accountId,
      workflow: workflowId,
      contact: contactId,
      version: admitted ? (versionId ?? null) : null,
      reentry: compiled?.reentry ?? null,
      windowMs: DEDUPLICATION_WINDOW_MS,
      snapshot: initial?.snapshot ?? null,
      totalSteps: initial?.totalSteps ?? null,
      goalEvent: compiled?.goalEvent ?? null,
      payload,
      trace: JSON.stringify(trace),
      now: deps.clock.now(),
    });
    const { kind, execution } = row;
    if (row.versionId) cache.sawLatestVersion(workflowId, row.versionId);
    switch (kind) {
      case 'stale':
        if (!row.versionId)
          throw new FlowmachineError('missing_version', `workflow ${workflowId} has no row for its current version`);
        if (!admitted && row.versionId === versionId) return { kind: 'not_admitted' };
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

/** Stores and logs the refusals of one kind for some contacts of one workflow. */
async function logRefusals(
  deps: EngineDeps,
  refusal: { accountId: string; workflowId: string; eventType: string; details: Record<string, unknown> },
  refused: { contactId: string; executionId: string | null }[],
) {
  if (refused.length === 0) return;
  await deps.store.logRefusals({ ...refusal, now: deps.clock.now(), details: maskPii(refusal.details), refused });
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
 * one read of the workflow and, per {@link ENROLL_CHUNK} contacts, one call (which checks each contact as a trigger does) and one
 * queue call. Not atomic across chunks: each chunk is committed and its first jobs enqueued before the
 * next, so an error in a later chunk (answered 500) leaves the earlier ones running, never stranded.
 * A chunk called after a publish committed enrolls in the version published, with the values stored with
 * it (flowmachine_enroll_many), not in the one read here.
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
  const workflow = await deps.store.enrollTarget(workflowId, accountId);
  if (!workflow) return { kind: 'workflow_not_found' };
  if (workflow.workflowStatus !== 'active') return { kind: 'inactive' };
  if (!workflow.versionId)
    throw new FlowmachineError('missing_version', `workflow ${workflowId} has no row for its current version`);
  const compiled = await compiledVersion(deps, cache, workflow.versionId);
  const outcomes = new Map<string, { outcome: EnrollmentOutcome; executionId?: string }>();
  const refusal = { accountId, workflowId, eventType: 'opt_out_blocked', details: { reason: 'contact has opted out' } };
  const initial = cache.initialOf(compiled);
  const now = deps.clock.now();
  const optedOut: { contactId: string; executionId: null }[] = [];
  const duplicates: { contactId: string; executionId: string }[] = [];
  // Sorted, so concurrent enrollments take the pairs' advisory locks in one order.
  const sorted = [...contactIds].sort();
  // Each chunk commits on its own and its executions are enqueued at once, before the next chunk: a
  // later chunk that fails leaves no committed execution without its first job.
  for (let i = 0; i < sorted.length; i += ENROLL_CHUNK) {
    const chunk = sorted.slice(i, i + ENROLL_CHUNK);
    const news: { executionId: string; trace: Record<string, string> }[] = [];
    const spans = chunk.map((contactId) =>
      startLinkedRootSpan('trigger execution', {
        'flowmachine.workflow_id': workflowId,
        'flowmachine.contact_id': contactId,
      }),
    );
    try {
      const rows = await deps.store.enrollMany({
        accountId,
        workflowId,
        versionId: workflow.versionId,
        version: workflow.version!,
        contactIds: chunk,
        reentry: compiled.reentry,
        windowMs: DEDUPLICATION_WINDOW_MS,
        snapshot: initial.snapshot,
        totalSteps: initial.totalSteps,
        goalEvent: compiled.goalEvent,
        payload: JSON.stringify(request.payload ?? {}),
        traces: spans.map((s) => s.carrier),
        now,
      });
      rows.forEach((row, index) => {
        const span = spans[index]!;
        span.span.setAttribute('flowmachine.trigger_result', row.kind);
        if (row.execution === null) {
          outcomes.set(row.contact, { outcome: row.kind });
          if (row.kind === 'opted_out') optedOut.push({ contactId: row.contact, executionId: null });
          return;
        }
        outcomes.set(row.contact, { outcome: row.kind, executionId: row.execution });
        span.span.setAttribute('flowmachine.execution_id', row.execution);
        if (row.kind === 'started') news.push({ executionId: row.execution, trace: span.carrier });
        if (row.kind === 'duplicate') duplicates.push({ contactId: row.contact, executionId: row.execution });
      });
    } finally {
      for (const { span } of spans) span.end();
    }
    await started(deps, accountId, workflowId, news);
  }
  await logRefusals(deps, refusal, optedOut);
  await logRefusals(
    deps,
    { ...refusal, eventType: 'deduplication_blocked', details: { reason: 'duplicate trigger ignored' } },
    duplicates,
  );
  return { kind: 'done', outcomes: contactIds.map((contactId) => ({ contactId, ...outcomes.get(contactId)! })) };
}

/** A tag added to or removed from a contact through the API. */
export interface TagChangeRequest {
  accountId: string;
  contactId: string;
  op: 'add' | 'remove';
  tag: string;
}

/**
 * Changes a contact's tag and, when the tag is new, enrolls the contact in the active workflows that tag
 * enters (`trigger: {type: "tag_added"}`), in the same transaction (flowmachine_tag_contact): a crash can
 * neither lose nor double an enrollment. Then enqueues the new executions' first jobs (the sweeper does
 * if this process dies first) and logs the refusals as a trigger would. False when there is no such contact.
 */
export async function changeTag(deps: EngineDeps, request: TagChangeRequest): Promise<boolean> {
  const tagged = await deps.store.tagContact({ ...request, now: deps.clock.now() });
  if (!tagged) return false;
  const { accountId, contactId } = request;
  for (const { workflow, kind, execution } of tagged.enrolled) {
    if (kind === 'started') await started(deps, accountId, workflow, [{ executionId: execution!, trace: {} }]);
    else if (kind === 'opted_out')
      await logRefusals(
        deps,
        { accountId, workflowId: workflow, eventType: 'opt_out_blocked', details: { reason: 'contact has opted out' } },
        [{ contactId, executionId: null }],
      );
    else if (kind === 'duplicate')
      await logRefusals(
        deps,
        {
          accountId,
          workflowId: workflow,
          eventType: 'deduplication_blocked',
          details: { reason: 'duplicate trigger ignored' },
        },
        [{ contactId, executionId: execution }],
      );
  }
  return true;
}

/**
 * What a workflow version stores besides its definition, so Postgres can find and enroll by its entry:
 * the event or tag that enters it, and what a new execution starts with (flowmachine_enroll_tagged).
 */
export function versionEntryOf(definition: Definition) {
  const compiled = compileWorkflow(definition);
  const { snapshot, totalSteps } = initialOf(compiled);
  const { trigger } = definition;
  return {
    entryEvent: trigger.type === 'event' ? trigger.event : null,
    entryTag: trigger.type === 'tag_added' ? trigger.tag : null,
    enrollment: {
      snapshot,
      total_steps: totalSteps,
      reentry: compiled.reentry,
      goal_event: compiled.goalEvent,
      window_ms: DEDUPLICATION_WINDOW_MS,
    },
  };
}
