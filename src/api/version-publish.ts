import { compileWorkflow } from '../compiler/compile.ts';
import type { Definition } from '../definition/schema.ts';
import { compiledVersion } from '../engine/load.ts';
import { moveRunningExecutions } from '../engine/move-execution.ts';
import type { ApiDeps } from './context.ts';

/** What a new version does to the running executions of older ones (`in_flight`). */
export type InFlight = 'keep' | 'move';

/** No version has this id: with it, every version of a workflow is an "other" one. */
const NO_VERSION = '00000000-0000-0000-0000-000000000000';

/**
 * The answer of a dry run of a publish: how many running executions of older versions would move to
 * the new definition (their step id is in it) and how many would stay. With `keep`, none moves. Reads
 * one count; writes nothing, not even the version.
 */
export async function previewPublish(
  deps: ApiDeps,
  workflowId: string,
  definition: Definition,
  inFlight: InFlight,
): Promise<{ would_move: number; would_stay: number }> {
  const stepIds = [...compileWorkflow(definition).steps.keys()];
  const { wouldMove, wouldStay } = await deps.store.countMovable(workflowId, NO_VERSION, stepIds);
  return inFlight === 'move'
    ? { would_move: wouldMove, would_stay: wouldStay }
    : { would_move: 0, would_stay: wouldMove + wouldStay };
}

/**
 * Moves the running executions of older versions to the version just published (engine/move-execution.ts),
 * in bounded pages, each page in one transaction of version-checked commits logging `version_migrated`
 * with the caller's user id. Called after the publish committed, in a transaction that held the workflow's
 * current-version lock (flowmachine_current_version_lock.sql): every execution created on an older version
 * is committed by then, so the pages see it, and every later one starts on the new version.
 */
export async function moveToPublished(
  deps: ApiDeps,
  target: { accountId: string; workflowId: string; versionId: string; version: number; userId: string },
): Promise<{ moved: number; stayed: number }> {
  const versions = await deps.db.workflowVersion.findMany({
    where: { workflowId: target.workflowId },
    select: { id: true, version: true },
  });
  const workflow = await compiledVersion(deps, deps.cache, target.versionId);
  return moveRunningExecutions(deps, deps.cache, {
    ...target,
    workflow,
    versions: new Map(versions.map((v) => [v.id, v.version])),
  });
}
