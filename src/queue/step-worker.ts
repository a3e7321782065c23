import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { processStep } from '../engine/process-step.ts';
import type { EngineDeps } from '../engine/types.ts';
import type { WorkflowCache } from '../engine/workflow-cache.ts';
import { withExtractedContext, withSpan } from '../observability/tracing.ts';
import { STEP_QUEUE, stepJobSchema } from './step-queue.ts';

/**
 * Consumer side of the step queue: one BullMQ worker whose processor is one engine step. A job
 * BullMQ hands out again after its worker died (stalled) is marked recovered.
 */
export function createStepWorker(deps: EngineDeps, cache: WorkflowCache, connection: Redis): Worker {
  let active = 0;
  const workerId = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  const worker = new Worker(
    STEP_QUEUE,
    async (job: Job) => {
      const parsed = stepJobSchema.safeParse(job.data);
      if (!parsed.success) {
        deps.logger.error('dropped malformed job', { job_id: job.id, issues: parsed.error.issues.map((i) => i.message) });
        return 'malformed';
      }
      const data = { ...parsed.data, recovered: parsed.data.recovered || job.attemptsStarted > 1 || (job.stalledCounter ?? 0) > 0 };
      const dueAt = job.timestamp + (job.opts.delay ?? 0);
      deps.metrics.queueLatency.observe({ job: 'step' }, Math.max(0, Date.now() - dueAt) / 1000);
      active += 1;
      deps.metrics.workerJobsActive.set(active);
      try {
        return await withExtractedContext(data.trace, () =>
          withSpan('execution step', { 'flowmachine.execution_id': data.executionId, 'flowmachine.version': data.version, 'flowmachine.recovered': data.recovered, 'flowmachine.worker_id': workerId }, async (span) => {
            const outcome = await processStep(deps, cache, data);
            span.setAttribute('flowmachine.step_outcome', outcome);
            return outcome;
          }),
        );
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
  return worker;
}
