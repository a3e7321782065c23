import type { Account, Contact, Execution, ExecutionLog, Workflow } from '../generated/prisma/client.ts';
import { publicCaps } from '../definition/frequency-caps.ts';
import { EXECUTION_STATUSES } from '../engine/types.ts';
import { maskPii, maskText } from '../observability/mask.ts';

/**
 * `progress_percent`: the position of the execution's step over the longest path it is on, rounded
 * down (step 3 of 5 is 60; 0 before the first step). 100 means COMPLETED: an execution still at (or
 * stopped at) its last step shows 99. See README "Execution status and progress".
 */
export function progressPercent(execution: Pick<Execution, 'status' | 'currentStepIndex' | 'totalSteps'>): number {
  if (execution.status === 'COMPLETED') return 100;
  if (execution.totalSteps === 0) return 0;
  return Math.min(99, Math.floor((100 * execution.currentStepIndex) / execution.totalSteps));
}

/** The columns of an execution the API shows. */
export type ExecutionView = Pick<
  Execution,
  | 'id'
  | 'workflowId'
  | 'workflowVersionId'
  | 'contactId'
  | 'status'
  | 'snapshot'
  | 'currentStepIndex'
  | 'totalSteps'
  | 'retryCount'
  | 'completionReason'
  | 'lastError'
  | 'nextRunAt'
  | 'createdAt'
  | 'updatedAt'
  | 'finishedAt'
  | 'traceContext'
>;

const TRACEPARENT = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/;

/** The trace id of the W3C `traceparent` an execution stores (its trigger's trace), or null. */
export function traceIdOf(traceContext: unknown): string | null {
  const traceparent = (traceContext as { traceparent?: unknown } | null)?.traceparent;
  const match = typeof traceparent === 'string' ? TRACEPARENT.exec(traceparent) : null;
  // An all-zero trace id is the W3C "invalid" id: no trace was recorded.
  return match && !/^0+$/.test(match[1]!) ? match[1]! : null;
}

export const serializeExecution = (e: ExecutionView) => ({
  id: e.id,
  workflow_id: e.workflowId,
  workflow_version_id: e.workflowVersionId,
  contact_id: e.contactId,
  status: e.status,
  current_step: (e.snapshot as { value?: string }).value ?? null,
  current_step_index: e.currentStepIndex,
  total_steps: e.totalSteps,
  progress_percent: progressPercent(e),
  retry_count: e.retryCount,
  completion_reason: e.completionReason,
  // Stored masked already (rows written before that are masked here).
  last_error: e.lastError === null ? null : maskText(e.lastError),
  next_run_at: e.nextRunAt?.toISOString() ?? null,
  created_at: e.createdAt.toISOString(),
  updated_at: e.updatedAt.toISOString(),
  finished_at: e.finishedAt?.toISOString() ?? null,
  trace_id: traceIdOf(e.traceContext),
});

export const serializeLog = (log: ExecutionLog) => ({
  id: log.id.toString(),
  execution_id: log.executionId,
  event_type: log.eventType,
  step_index: log.stepIndex,
  step_id: log.stepId,
  status: log.status,
  timestamp: log.timestamp.toISOString(),
  duration_ms: log.durationMs,
  user_id: log.userId,
  // Stored masked already; masked again so nothing unmasked can leave through the API.
  details: maskPii(log.details),
});

export const serializeContact = (c: Contact) => ({
  id: c.id,
  email: c.email,
  phone: c.phone,
  opted_in: c.optedIn,
  timezone: c.timezone,
  tags: c.tags,
  attributes: c.attributes,
  created_at: c.createdAt.toISOString(),
  updated_at: c.updatedAt.toISOString(),
});

export const serializeWorkflow = (w: Workflow, definition: unknown) => ({
  id: w.id,
  name: w.name,
  status: w.status,
  version: w.currentVersion,
  definition,
  created_at: w.createdAt.toISOString(),
  updated_at: w.updatedAt.toISOString(),
});

/**
 * A workflow in `GET /workflows`: no definition (a page may hold a hundred), its current version and
 * its executions by status (every status, 0 when none).
 */
export const serializeWorkflowSummary = (w: Workflow, counts: { status: string; n: number }[]) => ({
  id: w.id,
  name: w.name,
  status: w.status,
  version: w.currentVersion,
  executions: Object.fromEntries(
    EXECUTION_STATUSES.map((status) => [status, counts.find((c) => c.status === status)?.n ?? 0]),
  ),
  created_at: w.createdAt.toISOString(),
  updated_at: w.updatedAt.toISOString(),
});

export const serializeSettings = (a: Account) => ({
  concurrent_executions_per_account: a.concurrentExecutionsPerAccount,
  max_retry_attempts: a.maxRetryAttempts,
  retry_base_delay_seconds: a.retryBaseDelaySeconds,
  error_notification: a.errorNotification,
  admin_email: a.adminEmail,
  default_timezone: a.defaultTimezone,
  frequency_caps: publicCaps(a.frequencyCaps),
});
