import { runAction, type ActionResult } from '../actions/run-action.ts';
import { dateAfter } from '../clock.ts';
import { evaluateCondition } from '../definition/condition.ts';
import { parseDuration } from '../definition/duration.ts';
import type { ActionStep } from '../definition/schema.ts';
import { maskText } from '../observability/mask.ts';
import { withSpan } from '../observability/tracing.ts';
import type { StepJob } from './work.ts';
import { rateLimitDelayMs, retryDelayMs } from './backoff.ts';
import { commitChange, traceOf, type Change, type Committed, type Inline, type Pending } from './commit.ts';
import { loadForJob, type LoadedExecution } from './load.ts';
import { notifyFailure } from './notify.ts';
import { stepPosition, type StoredSnapshot } from './snapshot.ts';
import type { EngineDeps, LogEntry } from './types.ts';
import type { WorkflowCache } from './workflow-cache.ts';

/** What a processed job came to, for metrics and tests. */
export type StepOutcome = 'stale' | 'missing' | 'waiting_in_line' | 'rescheduled' | 'conflict' | 'committed' | 'staged';

/**
 * A job as the worker hands it over: `redelivered` when BullMQ gives it out again (a worker died, or
 * it threw); `loaded` when the worker runs the step right after the previous one, with `pending` what
 * that one staged instead of committing (see commit.ts).
 */
export type StepRun = StepJob & { redelivered?: boolean; loaded?: LoadedExecution; pending?: Pending };

/**
 * Processes one job: restores the execution, checks the job is still current (its version), and
 * does the one piece of work the snapshot says is due. Safe to run twice for the same job: a second
 * run finds a newer version and stops, and provider calls carry the step's idempotency key. With
 * `inline`, a next step due at once is handed back to the caller instead of being enqueued.
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
  if (!read) return 'missing';
  let { loaded } = read;
  if (loaded.row.version !== job.version) {
    if (job.redelivered && loaded.row.version > job.version) await resumeAfterLostChain(deps, loaded);
    return 'stale';
  }
  const recovered: LogEntry[] = job.recovered
    ? [{ eventType: 'recovered', status: 'INFO', details: { version: job.version } }]
    : [];
  const now = deps.clock.now();

  // Not admitted: the account has no free slot, so the execution waits in line (holding no job).
  if (read.admitted === 'QUEUED') return 'waiting_in_line';
  if (read.admitted === 'ACTIVE')
    loaded = { ...loaded, row: { ...loaded.row, status: 'ACTIVE', version: loaded.row.version + 1 } };
  switch (loaded.row.status) {
    case 'QUEUED':
      // Waiting in line: its job comes when a slot frees.
      return loaded.row.waiting ? 'stale' : 'waiting_in_line';
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
    return (await commitChange(deps, loaded, { logs: recovered }, undefined, job.pending)) ? 'rescheduled' : 'conflict';
  }
  if (row.contact.deletedAt) {
    return done(
      await commitChange(
        deps,
        loaded,
        { event: { type: 'CANCEL', reason: 'contact_deleted' }, logs: recovered },
        inline,
        job.pending,
      ),
    );
  }

  const base = { stepId: step.id, stepIndex: stepPosition(stored) };
  let change: Change;
  let failure: string | undefined;
  switch (step.type) {
    case 'wait': {
      // ACTIVE at a wait step: admitted there (a workflow that starts with a wait), or with its timer
      // resumed (next_run_at kept), in the load or from the waiting line.
      if (row.status === 'ACTIVE' && !row.nextRunAt) {
        // Admitted at a wait step: start its timer now.
        const delayMs = parseDuration(step.config.duration)!;
        const resumeAt = dateAfter(now, delayMs);
        change = {
          status: 'PAUSED',
          nextRunAt: resumeAt,
          logs: [
            ...recovered,
            {
              ...base,
              eventType: 'wait_started',
              status: 'PAUSED',
              details: { duration_ms: delayMs, resume_at: resumeAt.toISOString() },
            },
          ],
        };
        break;
      }
      const latenessMs = row.nextRunAt ? Math.max(0, now.getTime() - row.nextRunAt.getTime()) : 0;
      deps.metrics.timerLateness.observe(latenessMs / 1000);
      change = {
        event: { type: 'TIMER_FIRED' },
        logs: [
          ...recovered,
          { ...base, eventType: 'wait_completed', status: 'SUCCESS', details: { lateness_ms: latenessMs } },
        ],
      };
      break;
    }
    case 'condition': {
      const result = evaluateCondition(step.config, {
        ...row.contact,
        attributes: (row.contact.attributes ?? {}) as Record<string, unknown>,
      });
      change = {
        event: { type: 'CONDITION_RESULT', result },
        logs: [
          ...recovered,
          { ...base, eventType: 'condition_evaluated', status: 'SUCCESS', details: { result, condition: step.config } },
        ],
      };
      break;
    }
    default:
      ({ change, failure } = await runActionStep(deps, loaded, step, recovered));
  }
  const committed = await commitChange(deps, loaded, change, inline, job.pending);
  if (failure !== undefined && committed?.finished === 'failed' && row.account.errorNotification) {
    await notifyFailure(deps, {
      executionId: row.id,
      accountId: row.accountId,
      version: committed.version,
      adminEmail: row.account.adminEmail,
      workflowName: row.workflow.name,
      error: failure,
    });
  }
  return done(committed);
}

/** Runs an action step's provider call and turns its outcome into the change to commit. */
async function runActionStep(
  deps: EngineDeps,
  loaded: LoadedExecution,
  step: ActionStep,
  recovered: LogEntry[],
): Promise<{ change: Change; failure?: string }> {
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
        accountId: row.accountId,
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

  const base = { stepId: step.id, stepIndex: stepPosition(row.snapshot as unknown as StoredSnapshot) };
  const caps = {
    maxRetryAfterSeconds: deps.config.MAX_RETRY_AFTER_SECONDS,
    maxRetryDelaySeconds: deps.config.MAX_RETRY_DELAY_SECONDS,
  };
  const logs: LogEntry[] = [
    ...recovered,
    {
      ...base,
      eventType: 'action_started',
      status: 'STARTED',
      timestamp: startedAt,
      details: { action_type: step.type, attempt: row.retryCount + 1, ...result.details },
    },
  ];
  const finishedAt = deps.clock.now();
  const change = (extra: Omit<Change, 'logs'>, ...entries: LogEntry[]): Change => ({
    ...extra,
    logs: [...logs, ...entries.map((entry) => ({ timestamp: finishedAt, ...entry }))],
  });

  switch (result.kind) {
    case 'success':
      return {
        change: change(
          { event: { type: 'STEP_DONE' }, retryCount: 0, lastError: null, tagChange: result.tagChange },
          {
            ...base,
            eventType: 'action_completed',
            status: 'SUCCESS',
            durationMs,
            details: { action_type: step.type },
          },
        ),
      };
    case 'skipped':
      return {
        change: change(
          { event: { type: 'STEP_SKIPPED' }, retryCount: 0 },
          { ...base, eventType: 'action_skipped', status: 'SKIPPED', durationMs, details: { reason: result.reason } },
        ),
      };
    case 'permanent':
      return {
        change: change(
          { event: { type: 'STEP_SKIPPED' }, retryCount: 0, lastError: maskText(result.error) },
          {
            ...base,
            eventType: 'action_failed',
            status: 'FAILED',
            durationMs,
            details: { error: result.error, http_status: result.status, retryable: false },
          },
          { ...base, eventType: 'skipped_non_retryable_error', status: 'SKIPPED', details: { error: result.error } },
        ),
      };
    case 'rate_limited': {
      const delayMs = rateLimitDelayMs(
        result.retryAfterMs,
        retryDelayMs(row.account.retryBaseDelaySeconds, row.retryCount, caps),
        caps,
      );
      const resumeAt = dateAfter(finishedAt, delayMs);
      const held = result.details.held === true;
      if (!held) deps.metrics.rateLimitHits.inc({ provider: result.providerKind });
      return {
        change: change(
          { nextRunAt: resumeAt, lastError: maskText(result.error) },
          {
            ...base,
            eventType: held ? 'action_delayed' : 'rate_limit_hit',
            status: 'DELAYED',
            durationMs,
            details: {
              provider: result.provider,
              retry_after_seconds: delayMs / 1000,
              resume_at: resumeAt.toISOString(),
            },
          },
        ),
      };
    }
    case 'transient': {
      const failedLog: LogEntry = {
        ...base,
        eventType: 'action_failed',
        status: 'FAILED',
        durationMs,
        details: { error: result.error, http_status: result.status, retryable: true },
      };
      if (row.retryCount < row.account.maxRetryAttempts) {
        const delayMs = retryDelayMs(row.account.retryBaseDelaySeconds, row.retryCount, caps);
        const delaySeconds = delayMs / 1000;
        deps.metrics.retries.inc({ action_type: step.type });
        return {
          change: change(
            {
              retryCount: row.retryCount + 1,
              nextRunAt: dateAfter(finishedAt, delayMs),
              lastError: maskText(result.error),
            },
            failedLog,
            {
              ...base,
              eventType: 'retry_scheduled',
              status: 'SCHEDULED',
              details: { delay_seconds: delaySeconds, retry_count: row.retryCount + 1, error: result.error },
            },
          ),
        };
      }
      return {
        change: change({ event: { type: 'STEP_FAILED' }, lastError: maskText(result.error), notify: true }, failedLog, {
          ...base,
          eventType: 'max_retries_exhausted',
          status: 'FAILED',
          details: { retry_count: row.retryCount, error: result.error },
        }),
        failure: maskText(result.error),
      };
    }
  }
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

const done = (committed: Committed | null): StepOutcome =>
  committed ? (committed.staged ? 'staged' : 'committed') : 'conflict';
