import type { CompiledWorkflow } from '../compiler/compile.ts';
import { commitChange } from './commit.ts';
import { dueEffect, snapshotOf } from './decide-step.ts';
import { loadExecution } from './load.ts';
import { RUNNING_STATUSES, type EngineDeps } from './types.ts';
import type { WorkflowCache } from './workflow-cache.ts';

/**
 * Moving running executions to a new version of their workflow (`PUT /workflows/{id}/definition` with
 * `"in_flight": "move"`). Each execution moves on its own, through the engine's commit with its version
 * check: it keeps its snapshot (the step it is at, the steps done), its status, its timer (`next_run_at`)
 * and its place in the waiting line, and takes the new version's machine, goal event and progress
 * totals. An execution whose step id is not in the new version stays on its own version.
 *
 * An execution PAUSED at a `wait_for_event` whose event the new version changed waits for the new
 * event from then on, with the timeout it already had: the step of the new version is the one it is
 * at, and an event of the old name no longer resumes it (`version_migrated` names both events).
 */

/** The version executions move to. */
export interface MoveTarget {
  workflowId: string;
  versionId: string;
  version: number;
  workflow: CompiledWorkflow;
  /** The caller, recorded in the `version_migrated` entry. */
  userId: string | null;
  /** The workflow's version numbers by version id, for the entry's `from_version`. */
  versions: ReadonlyMap<string, number>;
}

/** Largest page of execution ids one move reads (and then moves one by one). */
export const MOVE_PAGE_SIZE = 500;

/** What a move did to one execution. */
export type MoveOutcome = 'moved' | 'stayed' | 'gone';

/**
 * Moves one execution to `target` when it is running on another version and its step is in the new
 * one; retries on a version conflict (a worker committed a step meanwhile) with the row as it is then.
 * The job its old version left in Redis is removed and the one for the new version enqueued by the commit.
 */
export async function moveExecution(
  deps: EngineDeps,
  cache: WorkflowCache,
  executionId: string,
  target: MoveTarget,
): Promise<MoveOutcome> {
  for (let attempt = 0; attempt < 20; attempt += 1) {
    const loaded = await loadExecution(deps, cache, executionId);
    if (!loaded || !(RUNNING_STATUSES as readonly string[]).includes(loaded.row.status)) return 'gone';
    const { row } = loaded;
    if (row.workflowVersionId === target.versionId) return 'gone';
    const stored = snapshotOf(row);
    if (!target.workflow.steps.has(stored.value)) return 'stayed';
    const from = target.versions.get(row.workflowVersionId) ?? null;
    const before = dueEffect(loaded.workflow, stored);
    const after = dueEffect(target.workflow, stored);
    const eventOf = (effect: typeof before) => (effect?.type === 'awaitEvent' ? effect.params.event : null);
    const waitingEvent =
      row.status === 'PAUSED' && eventOf(before) !== eventOf(after)
        ? { waiting_event: { from: eventOf(before), to: eventOf(after) } }
        : {};
    // The new version's machine decides from here on: the change is resolved against it (progress,
    // the event waited for), with the snapshot as it is, so nothing runs and the timer is kept.
    const committed = await commitChange(
      deps,
      { row, workflow: target.workflow },
      {
        rewind: stored,
        moveTo: { versionId: target.versionId, goalEvent: target.workflow.goalEvent },
        userId: target.userId,
        logs: [
          {
            eventType: 'version_migrated',
            status: row.status,
            stepId: stored.value,
            details: { from_version: from, to_version: target.version, ...waitingEvent },
          },
        ],
      },
    );
    if (committed) {
      await deps.queue.remove(executionId, row.version);
      return 'moved';
    }
  }
  throw new Error(`execution ${executionId} kept changing; giving up its move`);
}

/**
 * Moves every running execution of the workflow that is on another version to `target`, in keyset pages
 * of at most {@link MOVE_PAGE_SIZE} ids (one statement each, no transaction held across pages), each
 * execution in its own commit.
 */
export async function moveRunningExecutions(
  deps: EngineDeps,
  cache: WorkflowCache,
  target: MoveTarget,
): Promise<{ moved: number; stayed: number }> {
  let moved = 0;
  let stayed = 0;
  let after = '00000000-0000-0000-0000-000000000000';
  for (;;) {
    const ids = await deps.store.runningOnOtherVersions(target.workflowId, target.versionId, after, MOVE_PAGE_SIZE);
    for (const id of ids) {
      const outcome = await moveExecution(deps, cache, id, target);
      if (outcome === 'moved') moved += 1;
      if (outcome === 'stayed') stayed += 1;
    }
    if (ids.length < MOVE_PAGE_SIZE) return { moved, stayed };
    after = ids[ids.length - 1]!;
  }
}
