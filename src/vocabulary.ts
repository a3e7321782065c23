/**
 * The words of flowmachine, defined once for every layer (the API, the engine, the store and the SQL it
 * hands them to): execution statuses, log event types and completion reasons. Step types are the
 * definition's own (`Step['type']`, definition/schema.ts).
 */

/** Execution statuses (CONTRACT.md). */
export const EXECUTION_STATUSES = ['QUEUED', 'ACTIVE', 'PAUSED', 'COMPLETED', 'FAILED', 'CANCELLED'] as const;
export type ExecutionStatus = (typeof EXECUTION_STATUSES)[number];
export const TERMINAL_STATUSES: readonly ExecutionStatus[] = ['COMPLETED', 'FAILED', 'CANCELLED'];
/** Statuses with work still to do. */
export const RUNNING_STATUSES: readonly ExecutionStatus[] = ['QUEUED', 'ACTIVE', 'PAUSED'];

/** Every `event_type` of `execution_logs` (CONTRACT.md and the engine's own). */
export const LOG_EVENT_TYPES = [
  'execution_started',
  'action_started',
  'action_completed',
  'action_skipped',
  'action_failed',
  'action_delayed',
  'condition_evaluated',
  'wait_started',
  'wait_completed',
  'retry_scheduled',
  'rate_limit_hit',
  'max_retries_exhausted',
  'skipped_non_retryable_error',
  'notification_sent',
  'notification_failed',
  'goal_achieved',
  'execution_completed',
  'execution_failed',
  'execution_cancelled',
  'manual_retry',
  'recovered',
  'opt_out_blocked',
  'deduplication_blocked',
  // Journeys (CONTRACT.md "Journeys").
  'wait_timed_out',
  'event_received',
  'send_deferred',
  'skipped_opted_out',
  'exited',
  'split_assigned',
  'branch_evaluated',
  // A running execution moved to a new version of its workflow (`in_flight: "move"`).
  'version_migrated',
  'frequency_capped',
] as const;
export type LogEventType = (typeof LOG_EVENT_TYPES)[number];

/** Why an execution ended (`completion_reason`). */
export const COMPLETION_REASONS = [
  'completed',
  'goal_achieved',
  'max_retries_exhausted',
  'cancelled',
  'contact_deleted',
  'exit_event',
] as const;
export type CompletionReason = (typeof COMPLETION_REASONS)[number];
