import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { Worker, type Job } from 'bullmq';
import type { Cluster, Redis } from 'ioredis';
import type { Inline } from '../engine/commit.ts';
import { processStep, type StepRun } from '../engine/process-step.ts';
import type { EngineDeps } from '../engine/types.ts';
import type { WorkflowCache } from '../engine/workflow-cache.ts';
import { withExtractedContext, withSpan } from '../observability/tracing.ts';
import { STEP_QUEUE, stepJobSchema } from './step-queue.ts';

/** How many steps of one execution a job may run in a row before handing the next to the queue. */
const MAX_STEPS_PER_JOB = 32;

/** A step worker, with what its supervisor (worker-supervisor.ts) reads of it. */
export interface StepWorker {
  worker: Worker;
  /** Jobs it is running now. */
  active(): number;
  /** When it last started a job, or was created (ms since the epoch). */
  lastStartedAt(): number;
}

/**
 * Consumer side of the step queue: one BullMQ worker whose processor is one engine step, followed
 * by the execution's next steps while they are due at once. A job BullMQ hands out again after its
 * worker died (stalled) or threw is marked recovered and redelivered.
 */
export function createStepWorker(deps: EngineDeps, cache: WorkflowCache, connection: Redis | Cluster): StepWorker {
  let active = 0;
  let lastStartedAt = Date.now();
  const workerId = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  const worker = new Worker(
    STEP_QUEUE,
    async (job: Job) => {
      const parsed = stepJobSchema.safeParse(job.data);
      if (!parsed.success) {
        deps.logger.error('dropped malformed job', {
          job_id: job.id,
          issues: parsed.error.issues.map((i) => i.message),
        });
        return 'malformed';
      }
      const redelivered = job.attemptsStarted > 1 || (job.stalledCounter ?? 0) > 0;
      const data = { ...parsed.data, recovered: parsed.data.recovered || redelivered, redelivered };
      const dueAt = job.timestamp + (job.opts.delay ?? 0);
      deps.metrics.queueLatency.observe({ job: 'step' }, Math.max(0, Date.now() - dueAt) / 1000);
      active += 1;
      lastStartedAt = Date.now();
      deps.metrics.workerJobsActive.set(active);
      try {
        return await withExtractedContext(data.trace, async () => {
          // Steps due at once (a tag, a condition, the next action) run in this job, up to a bound, each
          // committed before the next starts or staged into its commit (commit.ts); a worker that is
          // closing commits what it staged and hands the rest to the queue.
          let next: StepRun | undefined = data;
          let outcome = 'stale';
          for (let steps = 0; next; steps += 1) {
            const inline: Inline = {};
            const current: StepRun = next;
            outcome = await withSpan(
              'execution step',
              {
                'flowmachine.execution_id': current.executionId,
                'flowmachine.version': current.version,
                'flowmachine.recovered': current.recovered,
                'flowmachine.worker_id': workerId,
              },
              async (span) => {
                const result = await processStep(
                  deps,
                  cache,
                  current,
                  steps < MAX_STEPS_PER_JOB - 1 && !worker.closing ? inline : undefined,
                );
                span.setAttribute('flowmachine.step_outcome', result);
                return result;
              },
            );
            next = inline.next;
          }
          return outcome;
        });
      } finally {
        active -= 1;
        deps.metrics.workerJobsActive.set(active);
      }
    },
    {
      connection,
      name: workerId,
      prefix: deps.config.QUEUE_PREFIX,
      concurrency: deps.config.WORKER_CONCURRENCY,
      lockDuration: deps.config.WORKER_LOCK_MS,
      stalledInterval: Math.max(1_000, Math.floor(deps.config.WORKER_LOCK_MS / 2)),
      maxStalledCount: 10,
    },
  );
  worker.on('failed', (job, error) => deps.logger.error('step job failed', { job_id: job?.id, error: error.message }));
  worker.on('error', (error) => deps.logger.error('worker error', { error: error.message }));
  return { worker, active: () => active, lastStartedAt: () => lastStartedAt };
}
