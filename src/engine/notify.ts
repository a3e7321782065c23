import { run } from '../db/sql.ts';
import { maskPii } from '../observability/mask.ts';
import { sendProviderRequest } from '../providers/http-provider.ts';
import type { EngineDeps } from './types.ts';

/** A failure to tell an account's admin about: the execution at the version its failure was committed. */
export interface FailureNotice {
  executionId: string;
  accountId: string;
  version: number;
  adminEmail: string;
  workflowName: string;
  error: string;
}

/** Logs the notification once per failure, clearing `notify_pending` (migration `notification_recovery`). */
const LOG_NOTIFICATION = { name: 'notification-log', text: 'SELECT flowmachine_log_notification($1::uuid, $2::integer, $3, $4, $5::jsonb) AS logged' };

/**
 * Emails the account's admin that an execution failed, through the email provider, and logs
 * `notification_sent` (or `notification_failed`). Runs after the failure is committed, so a broken
 * notification can never lose the execution's state; the commit leaves `notify_pending` set until the
 * notification is logged, so the sweeper notifies a failure whose worker died first. The idempotency
 * key is the same on both paths, and of two notifying the same failure only the first logs it.
 */
export async function notifyFailure(deps: EngineDeps, notice: FailureNotice): Promise<void> {
  const { executionId, accountId, version, adminEmail, workflowName, error } = notice;
  const message = {
    to: adminEmail,
    subject: `Workflow "${workflowName}" failed for an execution`,
    body: `Execution ${executionId} of workflow "${workflowName}" failed: ${error}`,
    execution_id: executionId,
    step_id: 'error_notification',
    workflow_name: workflowName,
    error_message: error,
  };
  const outcome = deps.config.EMAIL_HTTP_URL
    ? await sendProviderRequest(
        { url: deps.config.EMAIL_HTTP_URL, body: message, idempotencyKey: `${executionId}:error_notification:${version}`, timeoutMs: deps.config.PROVIDER_TIMEOUT_MS },
        deps.clock,
      )
    : ({ kind: 'success', status: 0 } as const);
  const sent = outcome.kind === 'success';
  const eventType = sent ? 'notification_sent' : 'notification_failed';
  const details = sent
    ? { to: adminEmail, workflow_name: workflowName, error_message: error, delivered: Boolean(deps.config.EMAIL_HTTP_URL) }
    : { to: adminEmail, error: outcome.error };
  const logged = await run<{ logged: boolean }>(deps.pool, LOG_NOTIFICATION, [executionId, version, eventType, sent ? 'SUCCESS' : 'FAILED', JSON.stringify(maskPii(details))])
    .then(([row]) => row?.logged === true)
    .catch((e: Error) => {
      deps.logger.error('notification log failed; the sweeper will notify again', { execution_id: executionId, error: e.message });
      return false;
    });
  if (!logged) return;
  deps.metrics.executionEvents.inc({ event_type: eventType });
  deps.logger.info(eventType, { execution_id: executionId, account_id: accountId, ...details });
}
