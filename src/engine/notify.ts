import { dateAfter } from '../clock.ts';
import { maskPii } from '../observability/mask.ts';
import type { ProviderOutcome } from '../providers/outcome.ts';
import type { UnnotifiedFailure } from '../store/execution-store.ts';
import type { EngineDeps } from './types.ts';
import { coerceError } from '../errors.ts';

/**
 * A failure to tell an account's admin about: the execution at the version its failure was committed,
 * as the sweeper reads it (`UnnotifiedFailure`); `attempt`, the attempts already made, is 0 (the default)
 * for the first.
 */
export type FailureNotice = Omit<UnnotifiedFailure, 'attempt'> & { attempt?: number };

/** Delay after the first failed attempt; it doubles after each further one. */
export const NOTIFY_BASE_DELAY_MS = 30_000;
/** Longest delay between two attempts. */
export const NOTIFY_MAX_DELAY_MS = 3_600_000;

/**
 * When to try a notification again after attempt number `attempt` (0 for the first) came to `outcome`,
 * or null when it is settled: sent, failed permanently, or that was the last of `maxAttempts`. The delay
 * is 30 s · 2^attempt capped at 1 h, and never shorter than a provider's Retry-After (itself capped at 1 h).
 */
export function resolveNextAttempt(
  outcome: ProviderOutcome,
  attempt: number,
  maxAttempts: number,
  now: Date,
): Date | null {
  if (outcome.kind === 'success' || outcome.kind === 'permanent' || attempt + 1 >= maxAttempts) return null;
  const backoffMs = Math.min(NOTIFY_BASE_DELAY_MS * 2 ** attempt, NOTIFY_MAX_DELAY_MS);
  const retryAfterMs = outcome.kind === 'rate_limited' ? Math.min(outcome.retryAfterMs ?? 0, NOTIFY_MAX_DELAY_MS) : 0;
  return dateAfter(now, Math.max(backoffMs, retryAfterMs));
}

/**
 * Makes one attempt at emailing the account's admin that an execution failed, through the email
 * channel, and logs it: `notification_sent`, or `notification_failed` with the attempt number and either
 * the next attempt's time (a transient failure: the notification stays pending and the sweeper makes
 * that attempt) or `final: true`. Runs after the failure is committed, so a broken notification can
 * never lose the execution's state; the commit leaves `notify_pending` set until the notification is
 * settled, so the sweeper also notifies a failure whose worker died first. Every attempt carries the
 * same idempotency key, and of two senders making the same attempt only the first logs it.
 * Returns whether this call logged the attempt.
 */
export async function notifyFailure(deps: EngineDeps, notice: FailureNotice): Promise<boolean> {
  const { executionId, accountId, version, adminEmail, workflowName, error, attempt = 0 } = notice;
  const outcome = await deps.email.send({
    to: adminEmail,
    subject: `Workflow "${workflowName}" failed for an execution`,
    body: `Execution ${executionId} of workflow "${workflowName}" failed: ${error}`,
    executionId,
    stepId: 'error_notification',
    idempotencyKey: `${executionId}:error_notification:${version}`,
    fields: { workflow_name: workflowName, error_message: error },
  });
  const sent = outcome.kind === 'success';
  const nextAt = resolveNextAttempt(outcome, attempt, deps.config.NOTIFY_MAX_ATTEMPTS, deps.clock.now());
  const eventType = sent ? 'notification_sent' : 'notification_failed';
  const details = sent
    ? {
        to: adminEmail,
        workflow_name: workflowName,
        error_message: error,
        attempt: attempt + 1,
        delivered: deps.email.kind !== 'none',
      }
    : {
        to: adminEmail,
        attempt: attempt + 1,
        error: outcome.error,
        ...(nextAt ? { next_attempt_at: nextAt.toISOString() } : { final: true }),
      };
  const logged = await deps.store
    .logNotification({
      executionId,
      version,
      attempt,
      eventType,
      status: sent ? 'SUCCESS' : 'FAILED',
      details: maskPii(details),
      nextAt,
    })
    .catch((thrown: unknown) => {
      const e = coerceError(thrown);
      deps.logger.error('notification log failed; the sweeper will notify again', {
        execution_id: executionId,
        error: e.message,
      });
      return false;
    });
  if (!logged) return false;
  deps.metrics.executionEvents.inc({ event_type: eventType });
  deps.logger.info(eventType, { execution_id: executionId, account_id: accountId, ...details });
  return true;
}
