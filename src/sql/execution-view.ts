import type { Pool } from '../db/client.ts';
import { run } from '../db/sql.ts';

/** An execution of the account, with the columns the API's serializeExecution shows. */
const FIND_EXECUTION = {
  name: 'api-find-execution',
  text: `SELECT id, workflow_id AS "workflowId", workflow_version_id AS "workflowVersionId", contact_id AS "contactId", status, snapshot,
    current_step_index AS "currentStepIndex", total_steps AS "totalSteps", retry_count AS "retryCount", completion_reason AS "completionReason",
    last_error AS "lastError", next_run_at AS "nextRunAt", created_at AS "createdAt", updated_at AS "updatedAt", finished_at AS "finishedAt",
    trace_context AS "traceContext",
    (SELECT version FROM workflow_versions v WHERE v.id = workflow_version_id) AS "workflowVersion"
    FROM executions WHERE id = $1 AND account_id = $2`,
};

/** An execution of the account as the API shows it, or null. */
export async function findExecution<View>(pool: Pool, executionId: string, accountId: string): Promise<View | null> {
  const [execution] = await run<View>(pool, FIND_EXECUTION, [executionId, accountId]);
  return execution ?? null;
}
