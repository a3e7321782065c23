import { run } from '../db/sql.ts';
import { maskPii } from '../observability/mask.ts';
import { sendProviderRequest } from '../providers/http-provider.ts';
import type { LoadedExecution } from './load.ts';
import type { EngineDeps } from './types.ts';

const INSERT_NOTIFICATION_LOG = {
  name: 'notification-log',
  text: 'INSERT INTO execution_logs (execution_id, account_id, workflow_id, contact_id, event_type, status, details) VALUES ($1, $2, $3, $4, $5, $6, $7)',
};

/**
 * Emails the account's admin that an execution failed, through the email provider, and logs
 * `notification_sent` (or `notification_failed`). Runs after the failure is committed, so a broken
 * notification can never lose the execution's state.
 */
export async function notifyFailure(deps: EngineDeps, loaded: LoadedExecution, errorMessage: string): Promise<void> {
  const { row } = loaded;
  if (!row.account.errorNotification) return;
  const message = {
    to: row.account.adminEmail,
    subject: `Workflow "${row.workflow.name}" failed for an execution`,
    body: `Execution ${row.id} of workflow "${row.workflow.name}" failed: ${errorMessage}`,
    execution_id: row.id,
    step_id: 'error_notification',
    workflow_name: row.workflow.name,
    error_message: errorMessage,
  };
  const outcome = deps.config.EMAIL_HTTP_URL
    ? await sendProviderRequest(
        { url: deps.config.EMAIL_HTTP_URL, body: message, idempotencyKey: `${row.id}:error_notification:${row.version}`, timeoutMs: deps.config.PROVIDER_TIMEOUT_MS },
        deps.clock,
      )
    : ({ kind: 'success', status: 0 } as const);
  const sent = outcome.kind === 'success';
  const details = sent
    ? { to: row.account.adminEmail, workflow_name: row.workflow.name, error_message: errorMessage, delivered: Boolean(deps.config.EMAIL_HTTP_URL) }
    : { to: row.account.adminEmail, error: outcome.error };
  await run(deps.pool, INSERT_NOTIFICATION_LOG, [
    row.id, row.accountId, row.workflowId, row.contactId, sent ? 'notification_sent' : 'notification_failed', sent ? 'SUCCESS' : 'FAILED', JSON.stringify(maskPii(details)),
  ]).catch((error: Error) => deps.logger.error('notification log failed', { execution_id: row.id, error: error.message }));
  deps.metrics.executionEvents.inc({ event_type: sent ? 'notification_sent' : 'notification_failed' });
  deps.logger.info(sent ? 'notification_sent' : 'notification_failed', { execution_id: row.id, account_id: row.accountId, ...details });
}
