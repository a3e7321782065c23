import { runAction, type ActionResult } from '../actions/run-action.ts';
import { evaluateCondition } from '../definition/condition.ts';
import { parseDuration } from '../definition/duration.ts';
import type { ActionStep } from '../definition/schema.ts';
import { withSpan } from '../observability/tracing.ts';
import type { StepJob } from '../queue/step-queue.ts';
import { acquireSlot } from './admission.ts';
import { commitChange, type Change, type Committed } from './commit.ts';
import { loadExecution, type LoadedExecution } from './load.ts';
import { notifyFailure } from './notify.ts';
import type { StoredSnapshot } from './snapshot.ts';
import type { EngineDeps, LogEntry } from './types.ts';
import type { WorkflowCache } from './workflow-cache.ts';

/** What a processed job came to, for metrics and tests. */
export type StepOutcome = 'stale' | 'missing' | 'waiting_in_line' | 'rescheduled' | 'conflict' | 'committed';

/**
 * Processes one job: restores the execution, checks the job is still current (its version), and
 * does the one piece of work the snapshot says is due. Safe to run twice for the same job: a second
 * run finds a newer version and stops, and provider calls carry the step's idempotency key.
 */
export async function processStep(deps: EngineDeps, cache: WorkflowCache, job: StepJob): Promise<StepOutcome> {
  let loaded = await loadExecution(deps, cache, job.executionId);
  if (!loaded) return 'missing';
  if (loaded.row.version !== job.version) return 'stale';
  const recovered: LogEntry[] = job.recovered ? [{ eventType: 'recovered', status: 'INFO', details: { version: job.version } }] : [];
  const now = deps.clock.now();

  switch (loaded.row.status) {
    case 'QUEUED': {
      if (loaded.row.waiting) return 'stale';
      const admitted = await admit(deps, loaded);
      if (!admitted) return 'waiting_in_line';
      loaded = admitted;
      break;
    }
    case 'ACTIVE':
    case 'PAUSED':
      break;
    default:
      return 'stale';
  }

  const { row, workflow } = loaded;
  const stored = row.snapshot as unknown as StoredSnapshot;
  const step = workflow.steps.get(stored.value)?.step;
  if (!step) return 'stale';

  // A job that arrives before its time (clock skew, a promoted job) is put back until then.
  if (row.nextRunAt && row.nextRunAt.getTime() > now.getTime() + 5) {
    return (await commitChange(deps, loaded, { logs: recovered })) ? 'rescheduled' : 'conflict';
  }
  if (row.contact.deletedAt) {
    return done(await commitChange(deps, loaded, { event: { type: 'CANCEL', reason: 'contact_deleted' }, logs: recovered }));
  }

  const base = { stepId: step.id, stepIndex: row.currentStepIndex };
  switch (step.type) {
    case 'wait': {
      if (row.status === 'ACTIVE') {
        // Admitted at a wait step (a workflow that starts with a wait): start its timer now.
        const delayMs = parseDuration(step.config.duration)!;
        const resumeAt = new Date(now.getTime() + delayMs);
        return done(await commitChange(deps, loaded, {
          status: 'PAUSED',
          nextRunAt: resumeAt,
          logs: [...recovered, { ...base, eventType: 'wait_started', status: 'PAUSED', details: { duration_ms: delayMs, resume_at: resumeAt.toISOString() } }],
            }));
      }
      const latenessMs = row.nextRunAt ? Math.max(0, now.getTime() - row.nextRunAt.getTime()) : 0;
      deps.metrics.timerLateness.observe(latenessMs / 1000);
      return done(await commitChange(deps, loaded, {
        event: { type: 'TIMER_FIRED' },
        logs: [...recovered, { ...base, eventType: 'wait_completed', status: 'SUCCESS', details: { lateness_ms: latenessMs } }],
        }));
    }
    case 'condition': {
      const result = evaluateCondition(step.config, { ...row.contact, attributes: (row.contact.attributes ?? {}) as Record<string, unknown> });
      return done(await commitChange(deps, loaded, {
        event: { type: 'CONDITION_RESULT', result },
        logs: [...recovered, { ...base, eventType: 'condition_evaluated', status: 'SUCCESS', details: { result, condition: step.config } }],
        }));
    }
    default:
      return runActionStep(deps, loaded, step, job, recovered);
  }
}

async function runActionStep(deps: EngineDeps, loaded: LoadedExecution, step: ActionStep, job: StepJob, recovered: LogEntry[]): Promise<StepOutcome> {
  const { row } = loaded;
  const startedAt = deps.clock.now();
  const started = performance.now();
  const result: ActionResult = await withSpan(
    `action ${step.type}`,
    {
      'flowmachine.execution_id': row.id,
      'flowmachine.workflow_id': row.workflowId,
      'flowmachine.workflow_version_id': row.workflowVersionId,
      'flowmachine.step_id': step.id,
      'flowmachine.action_type': step.type,
      'flowmachine.attempt': row.retryCount + 1,
    },
    async (span) => {
      const outcome = await runAction(deps, step, {
        executionId: row.id,
        stepId: step.id,
        contact: { ...row.contact, attributes: (row.contact.attributes ?? {}) as Record<string, unknown> },
        payload: (row.payload ?? {}) as Record<string, unknown>,
      });
      span.setAttribute('flowmachine.outcome', outcome.kind);
      return outcome;
    },
  );
  const durationMs = Math.round(performance.now() - started);
  deps.metrics.actionDuration.observe({ action_type: step.type, outcome: result.kind }, durationMs / 1000);

  const base = { stepId: step.id, stepIndex: row.currentStepIndex };
  const logs: LogEntry[] = [
    ...recovered,
    { ...base, eventType: 'action_started', status: 'STARTED', timestamp: startedAt, details: { action_type: step.type, attempt: row.retryCount + 1, ...result.details } },
  ];
  const finishedAt = deps.clock.now();
  const change = (extra: Omit<Change, 'logs'>, ...entries: LogEntry[]): Change => ({
    ...extra,
    logs: [...logs, ...entries.map((entry) => ({ timestamp: finishedAt, ...entry }))],
  });

  switch (result.kind) {
    case 'success':
      return done(await commitChange(deps, loaded, change(
        { event: { type: 'STEP_DONE' }, retryCount: 0, lastError: null, tagChange: result.tagChange },
        { ...base, eventType: 'action_completed', status: 'SUCCESS', durationMs, details: { action_type: step.type } },
      )));
    case 'skipped':
      return done(await commitChange(deps, loaded, change(
        { event: { type: 'STEP_SKIPPED' }, retryCount: 0 },
        { ...base, eventType: 'action_skipped', status: 'SKIPPED', durationMs, details: { reason: result.reason } },
      )));
    case 'permanent':
      return done(await commitChange(deps, loaded, change(
        { event: { type: 'STEP_SKIPPED' }, retryCount: 0, lastError: result.error },
        { ...base, eventType: 'action_failed', status: 'FAILED', durationMs, details: { error: result.error, http_status: result.status, retryable: false } },
        { ...base, eventType: 'skipped_non_retryable_error', status: 'SKIPPED', details: { error: result.error } },
      )));
    case 'rate_limited': {
      const resumeAt = new Date(finishedAt.getTime() + result.retryAfterMs);
      const held = result.details.held === true;
      if (!held) deps.metrics.rateLimitHits.inc({ provider: result.provider });
      return done(await commitChange(deps, loaded, change(
        { nextRunAt: resumeAt, lastError: result.error },
        {
          ...base,
          eventType: held ? 'action_delayed' : 'rate_limit_hit',
          status: 'DELAYED',
          durationMs,
          details: { provider: result.provider, retry_after_seconds: result.retryAfterMs / 1000, resume_at: resumeAt.toISOString() },
        },
      )));
    }
    case 'transient': {
      const failedLog: LogEntry = { ...base, eventType: 'action_failed', status: 'FAILED', durationMs, details: { error: result.error, http_status: result.status, retryable: true } };
      if (row.retryCount < row.account.maxRetryAttempts) {
        const delaySeconds = row.account.retryBaseDelaySeconds * 2 ** row.retryCount;
        deps.metrics.retries.inc({ action_type: step.type });
        return done(await commitChange(deps, loaded, change(
          { retryCount: row.retryCount + 1, nextRunAt: new Date(finishedAt.getTime() + delaySeconds * 1000), lastError: result.error },
          failedLog,
          { ...base, eventType: 'retry_scheduled', status: 'SCHEDULED', details: { delay_seconds: delaySeconds, retry_count: row.retryCount + 1, error: result.error } },
        )));
      }
      const committed = await commitChange(deps, loaded, change(
        { event: { type: 'STEP_FAILED' }, lastError: result.error },
        failedLog,
        { ...base, eventType: 'max_retries_exhausted', status: 'FAILED', details: { retry_count: row.retryCount, error: result.error } },
      ));
      if (committed?.finished === 'failed') await notifyFailure(deps, loaded, result.error);
      return done(committed);
    }
  }
}

/** Moves a QUEUED execution to ACTIVE if its account has a free slot; otherwise it waits in line. */
async function admit(deps: EngineDeps, loaded: LoadedExecution): Promise<LoadedExecution | null> {
  const { row } = loaded;
  const admitted = await deps.db.$transaction(async (tx) => {
    const slot = await acquireSlot(tx, row.accountId, true);
    const updated = await tx.execution.updateMany({
      where: { id: row.id, version: row.version },
      data: slot ? { status: 'ACTIVE', version: row.version + 1, updatedAt: deps.clock.now() } : { waiting: true, version: row.version + 1 },
    });
    if (updated.count !== 1) throw new Error('admission conflict');
    return slot;
  }).catch((error: Error) => (error.message === 'admission conflict' ? false : Promise.reject(error)));
  if (!admitted) return null;
  return { ...loaded, row: { ...row, status: 'ACTIVE', version: row.version + 1 } };
}

const done = (committed: Committed | null): StepOutcome => (committed ? 'committed' : 'conflict');
