import type { BatcherRegistry } from '../db/batch.ts';
import type { Pool } from '../db/client.ts';
import { admitWaiting } from '../sql/admission.ts';
import { commitSteps } from '../sql/commit-steps.ts';
import { deleteContact, enteredBy, exitingOn, runningOfContact, tagContact, waitingFor } from '../sql/contacts.ts';
import { enrollMany, readEnrollTarget } from '../sql/enroll-many.ts';
import { insertRefusals, logNotification } from '../sql/execution-logs.ts';
import { loadExecution, loadExecutions, loadForJobs, readDefinition } from '../sql/load-executions.ts';
import { capSend } from '../sql/frequency-caps.ts';
import { sweepQueries } from '../sql/sweep.ts';
import { triggers } from '../sql/trigger.ts';
import { countMovable, runningOnOtherVersions } from '../sql/version-migration.ts';
import { foldCounts, vacuumCounts } from '../sql/workflow-stats.ts';
import type { ExecutionStore } from './execution-store.ts';

/**
 * The execution store on Postgres. The statements of the hot paths (a job's load, a step's commit, a
 * trigger) go through the group commit: requests that arrive while earlier batches are in flight are
 * sent together in one statement (db/batch.ts); the others are single statements.
 */
export function createPostgresStore(pool: Pool, batchers: BatcherRegistry): ExecutionStore {
  const loads = batchers.of('load', loadForJobs);
  const commits = batchers.of('commit', commitSteps);
  const triggerCalls = batchers.of('trigger', triggers);
  return {
    load: (executionId, accountId) => loadExecution(pool, executionId, accountId ?? null),
    loadMany: (executionIds, accountId) => loadExecutions(pool, executionIds, accountId),
    loadForJob: async ({ executionId, version }, now, dueToleranceMs) =>
      (await loads.submit({ executionId, version, now, dueToleranceMs })) ?? null,
    definitionOf: (versionId) => readDefinition(pool, versionId),
    commit: (request) => commits.submit(request),
    // A batch of its own, not through the group commit: it must not hold up the workers' commits.
    commitMany: (requests) => commitSteps(pool, requests),
    // flowmachine_trigger answers every call with one row.
    trigger: async (call) => (await triggerCalls.submit(call))!,
    enrollTarget: (workflowId, accountId) => readEnrollTarget(pool, workflowId, accountId),
    enrollMany: (call) => enrollMany(pool, call),
    logRefusals: (refusal) => insertRefusals(pool, refusal),
    admitWaiting: (accountId, limit) => admitWaiting(pool, accountId, limit),
    runningOfContact: (contactId, goal) => runningOfContact(pool, contactId, goal),
    waitingFor: (contactId, name) => waitingFor(pool, contactId, name),
    exitingOn: (contactId, accountId, name) => exitingOn(pool, contactId, accountId, name),
    enteredBy: (accountId, name) => enteredBy(pool, accountId, name),
    tagContact: (change) => tagContact(pool, change),
    deleteContact: (contactId, accountId, now) => deleteContact(pool, contactId, accountId, now),
    capSend: (call) => capSend(pool, call),
    logNotification: (attempt) => logNotification(pool, attempt),
    runningOnOtherVersions: (workflowId, versionId, after, limit) =>
      runningOnOtherVersions(pool, workflowId, versionId, after, limit),
    countMovable: (workflowId, versionId, stepIds) => countMovable(pool, workflowId, versionId, stepIds),
    foldCounts: (limit) => foldCounts(pool, limit),
    vacuumCounts: () => vacuumCounts(pool),
    sweep: sweepQueries(pool),
  };
}
