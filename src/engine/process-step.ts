import { type Inline, commitDecision, type Committed, policyOf } from './commit.ts';
import {
  type Decision,
  decideChange,
  decideStep,
  deferSend,
  gateJob,
  type Pending,
  recoveredLogs,
  type StepContext,
  traceOf,
} from './decide-step.ts';
import { executeEffect } from './effects.ts';
import { type LoadedExecution, loadForJob } from './load.ts';
import { notifyFailure } from './notify.ts';
import type { EngineDeps } from './types.ts';
import type { StepJob } from './work.ts';
import type { WorkflowCache } from './workflow-cache.ts';

/** What a processed job came to, for metrics and tests. */
export type StepOutcome = 'stale' | 'missing' | 'waiting_in_line' | 'rescheduled' | 'conflict' | 'committed' | 'staged';

/**
 * A job as the worker hands it over: `redelivered` when BullMQ gives it out again (a worker died, or
 * it threw); `loaded` when the worker runs the step right after the previous one, with `pending` what
 * that one staged instead of committing (see decide-step.ts).
 */
export type StepRun = StepJob & { redelivered?: boolean; loaded?: LoadedExecution; pending?: Pending };

/**
 * One engine step: load the execution (admitting it in the same call), decide whether the job may run
 * ({@link gateJob}), execute the effect its state is at (effects.ts), decide what that changes
 * ({@link decideStep}) and commit it (commit.ts). Safe to run twice for the same job: a second run finds
 * a newer version and stops, and provider calls carry the step's idempotency key. With `inline`, a next
 * step due at once is handed back to the caller instead of being enqueued.
 */
export async function processStep(
  deps: EngineDeps,
  cache: WorkflowCache,
  job: StepRun,
  inline?: Inline,
): Promise<StepOutcome> {
  // A job handed over in line starts from an admitted execution; any other is loaded, and admitted (or its
  // due timer resumed) in the same call.
  const read = job.loaded ? { loaded: job.loaded, admitted: null } : await loadForJob(deps, cache, job);
  const gate = gateJob(job, read, deps.clock.now());
  if (gate.kind === 'stop') {
    if (gate.resumeLostChain) await resumeAfterLostChain(deps, read!.loaded);
    return gate.outcome;
  }
  const context = (canContinue: boolean): StepContext => ({
    loaded: gate.loaded,
    now: deps.clock.now(),
    policy: policyOf(deps),
    pending: job.pending,
    canContinue,
  });
  const logs = recoveredLogs(job);
  switch (gate.kind) {
    case 'reschedule': {
      const at = context(false);
      return outcomeOf(await commit(deps, at, decideChange(at, { logs }), undefined), 'rescheduled');
    }
    case 'cancel': {
      const at = context(!!inline);
      const change = { event: { type: 'CANCEL', reason: 'contact_deleted' } as const, logs };
      return outcomeOf(await commit(deps, at, decideChange(at, change), inline));
    }
    case 'run': {
      // A message due outside the workflow's send window is deferred, not sent.
      const before = context(!!inline);
      const deferred = deferSend(before, gate.effect);
      if (deferred) return outcomeOf(await commit(deps, before, deferred, inline));
      const outcome = await executeEffect(deps, gate.loaded, gate.effect);
      const at = context(!!inline);
      const decision = decideStep(at, gate.effect, outcome, logs);
      const committed = await commit(deps, at, decision, inline);
      if (decision?.failure !== undefined && committed?.finished === 'failed')
        await notify(deps, at, decision, committed);
      return outcomeOf(committed);
    }
  }
}

const commit = (deps: EngineDeps, context: StepContext, decision: Decision | null, inline: Inline | undefined) =>
  decision ? commitDecision(deps, context, decision, inline) : Promise.resolve(null);

const outcomeOf = (committed: Committed | null, done: StepOutcome = 'committed'): StepOutcome =>
  committed ? (committed.staged ? 'staged' : done) : 'conflict';

/** Tells the account's admin that the step failed the execution (when the account wants to know). */
async function notify(deps: EngineDeps, { loaded: { row } }: StepContext, decision: Decision, committed: Committed) {
  if (!row.account.errorNotification) return;
  await notifyFailure(deps, {
    executionId: row.id,
    accountId: row.accountId,
    version: committed.version,
    adminEmail: row.account.adminEmail,
    workflowName: row.workflow.name,
    error: decision.failure!,
  });
}

/**
 * A job given out again after its worker died (or threw) while running the execution's steps in line
 * may find the execution moved on with no job left for its current step: enqueue that one. Its id
 * makes this a no-op when the job exists.
 */
async function resumeAfterLostChain(deps: EngineDeps, { row }: LoadedExecution) {
  // An ACTIVE execution with a timer still to come has its job delayed in Redis (or the sweeper rebuilds it).
  if (row.status !== 'ACTIVE' || (row.nextRunAt && row.nextRunAt.getTime() > deps.clock.now().getTime())) return;
  await deps.queue.enqueue(
    [{ executionId: row.id, version: row.version, recovered: true, trace: traceOf(row) }],
    (error) =>
      deps.logger.warn('enqueue failed; the sweeper will retry', { execution_id: row.id, error: error.message }),
  );
}
