import type { CompiledWorkflow } from '../compiler/compile.ts';
import { applyToBatch, type Build, type DecideOn } from './control.ts';
import { type Change, dueEffect, snapshotOf } from './decide-step.ts';
import type { LoadedExecution } from './load.ts';
import { RUNNING_STATUSES, type EngineDeps } from './types.ts';
import type { WorkflowCache } from './workflow-cache.ts';

/**
 * Moving running executions to a new version of their workflow (`PUT /workflows/{id}/definition` with
 * `"in_flight": "move"`). Each execution moves through the engine's commit with its version check
 * (a page of them in one transaction): it keeps its snapshot (the step it is at, the steps done), its status, its timer (`next_run_at`)
 * and its place in the waiting line, and takes the new version's machine, goal event and progress
 * totals. An execution whose step id is not in the new version stays on its own version.
 *
 * An execution PAUSED at a `wait_for_event` whose event the new version changed waits for the new
 * event from then on, with the timeout it already had: the step of the new version is the one it is
 * at, and an event of the old name no longer resumes it (`version_migrated` names both events).
 */

/** The version executions move to. */
export interface MoveTarget {
  accountId: string;
  workflowId: string;
  versionId: string;
  version: number;
  workflow: CompiledWorkflow;
  /** The caller, recorded in the `version_migrated` entry. */
  userId: string | null;
  /** The workflow's version numbers by version id, for the entry's `from_version`. */
  versions: ReadonlyMap<string, number>;
}

/** Largest page of execution ids one move reads, and moves in one transaction. */
export const MOVE_PAGE_SIZE = 200;

/**
 * Whether `versionId` is older than the target. `target.versions` was read after the target's publish
 * committed, so it holds every version up to the target's; one it does not hold is newer. A move never
 * takes an execution back: of two publishes close together, the older one's pages leave the executions
 * the newer one has moved already.
 */
function isOlder(versionId: string, target: MoveTarget): boolean {
  const version = target.versions.get(versionId);
  return version !== undefined && version < target.version;
}

/**
 * The move of one execution to `target` (pure): when it is running on an older version and its step is
 * in the new one, the change logging `version_migrated`, to be decided by the new version's machine;
 * otherwise why it does not move (`stayed`: its step is gone; `gone`: it ended, or is on the target or a newer
 * version already).
 */
export function moveChange(loaded: LoadedExecution, target: MoveTarget): Change | { refuse: 'stayed' | 'gone' } {
  const { row } = loaded;
  if (!(RUNNING_STATUSES as readonly string[]).includes(row.status) || !isOlder(row.workflowVersionId, target))
    return { refuse: 'gone' };
  const stored = snapshotOf(row);
  if (!target.workflow.steps.has(stored.value)) return { refuse: 'stayed' };
  const before = dueEffect(loaded.workflow, stored);
  const after = dueEffect(target.workflow, stored);
  const eventOf = (effect: typeof before) => (effect?.type === 'awaitEvent' ? effect.params.event : null);
  const waitingEvent =
    row.status === 'PAUSED' && eventOf(before) !== eventOf(after)
      ? { waiting_event: { from: eventOf(before), to: eventOf(after) } }
      : {};
  return {
    rewind: stored,
    moveTo: { versionId: target.versionId, goalEvent: target.workflow.goalEvent },
    userId: target.userId,
    logs: [
      {
        eventType: 'version_migrated',
        status: row.status,
        stepId: stored.value,
        details: {
          from_version: target.versions.get(row.workflowVersionId) ?? null,
          to_version: target.version,
          ...waitingEvent,
        },
      },
    ],
  };
}

/**
 * Moves every running execution of the workflow that is on another version to `target`, in keyset pages
 * of at most {@link MOVE_PAGE_SIZE} ids (one statement each, no transaction held across pages), each page
 * in one transaction of version-checked commits (control.ts `applyToBatch`: one that a worker changed
 * meanwhile is moved again on its own). The new version's machine decides each change from the snapshot
 * as it is, so nothing runs and the timer is kept; the job the old version left in Redis is removed and
 * the one for the new version enqueued.
 */
export async function moveRunningExecutions(
  deps: EngineDeps,
  cache: WorkflowCache,
  target: MoveTarget,
): Promise<{ moved: number; stayed: number }> {
  let moved = 0;
  const stayed = new Set<string>();
  const build: Build = (loaded) => {
    const change = moveChange(loaded, target);
    if ('refuse' in change && change.refuse === 'stayed') stayed.add(loaded.row.id);
    return change;
  };
  const onTarget: DecideOn = ({ row }) => ({ row, workflow: target.workflow });
  let after = '00000000-0000-0000-0000-000000000000';
  for (;;) {
    const ids = await deps.store.runningOnOtherVersions(target.workflowId, target.versionId, after, MOVE_PAGE_SIZE);
    moved += await applyToBatch(deps, cache, target.accountId, ids, build, onTarget);
    if (ids.length < MOVE_PAGE_SIZE) return { moved, stayed: stayed.size };
    after = ids[ids.length - 1]!;
  }
}
