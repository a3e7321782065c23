import type { CompiledWorkflow } from '../compiler/compile.ts';
import type { ExecutionRow } from '../store/execution-store.ts';
import { DUE_TOLERANCE_MS } from './decide-step.ts';
import type { EngineDeps, LoadedExecution } from './types.ts';
import type { WorkflowCache } from './workflow-cache.ts';

export type { ExecutionRow, LoadedExecution };

/**
 * Loads an execution (optionally only within `accountId`) with its contact, account and workflow
 * name in one round trip, compiling its pinned workflow version on first use.
 */
export async function loadExecution(
  deps: EngineDeps,
  cache: WorkflowCache,
  executionId: string,
  accountId?: string,
): Promise<LoadedExecution | null> {
  const row = await deps.store.load(executionId, accountId);
  return row ? { row, workflow: await compiledVersion(deps, cache, row.workflowVersionId) } : null;
}

/**
 * Loads the execution of a step's job as {@link loadExecution} does and, in the same call, admits it when
 * it is at the job's version and either QUEUED and not waiting in line, or PAUSED with its timer due.
 * `admitted` is the status admission left it in (`ACTIVE`, or `QUEUED` when it joined the waiting line),
 * null when there was none; the row is as read before the admission.
 */
export async function loadForJob(
  deps: EngineDeps,
  cache: WorkflowCache,
  job: { executionId: string; version: number },
): Promise<{ loaded: LoadedExecution; admitted: string | null } | null> {
  const read = await deps.store.loadForJob(job, deps.clock.now(), DUE_TOLERANCE_MS);
  if (!read) return null;
  const workflow = await compiledVersion(deps, cache, read.row.workflowVersionId);
  return { loaded: { row: read.row, workflow }, admitted: read.admitted };
}

/** The compiled machine of a workflow version, read from Postgres only the first time. */
export async function compiledVersion(
  deps: EngineDeps,
  cache: WorkflowCache,
  versionId: string,
): Promise<CompiledWorkflow> {
  return cache.get(versionId) ?? cache.compile(versionId, await deps.store.definitionOf(versionId));
}
