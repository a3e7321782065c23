import { Queue, type JobsOptions } from 'bullmq';
import type { Cluster, Redis } from 'ioredis';
import { Batcher } from '../db/batch.ts';
import type { StepWork, WorkQueue } from '../engine/work.ts';

export { stepJobSchema, type StepJob, type StepWork } from '../engine/work.ts';

/** Name of the one queue that carries execution work. */
export const STEP_QUEUE = 'steps';

/**
 * BullMQ hands out jobs without a priority before prioritized ones, so giving only first jobs a
 * priority lets running executions (next steps, fired timers, retries) finish ahead of a backlog of
 * new triggers: timer lateness is bounded by the work in flight, not by the triggers waiting.
 */
const FIRST_JOB_PRIORITY = 1;

/** The job id is derived from the execution version, so adding the same work twice is a no-op. */
export const stepJobId = (executionId: string, version: number) => `${executionId}.${version}`;

const JOB_OPTIONS: JobsOptions = {
  removeOnComplete: true,
  removeOnFail: true,
  // Infrastructure errors (database briefly down) are retried; the sweeper covers anything beyond.
  attempts: 5,
  backoff: { type: 'exponential', delay: 500 },
};

/** Work of this many jobs (a bulk enrollment, a sweep) is a batch already: it is added on its own. */
const ALONE = 64;

/** Adds the jobs of several callers in one `addBulk` (one pipeline, one round trip). */
async function addJobs(queue: Queue, lists: StepWork[][]): Promise<undefined[]> {
  await queue.addBulk(
    lists.flat().map(({ delayMs, first, ...data }) => ({
      name: 'step',
      data,
      opts: {
        ...JOB_OPTIONS,
        jobId: stepJobId(data.executionId, data.version),
        delay: Math.max(0, Math.round(delayMs ?? 0)),
        ...(first ? { priority: FIRST_JOB_PRIORITY } : {}),
      },
    })),
  );
  return lists.map(() => undefined);
}

/** Producer side of the step queue, on BullMQ. */
export class StepQueue implements WorkQueue {
  readonly queue: Queue;
  /** Jobs added while two `addBulk` are in flight go together in the next (see db/batch.ts). */
  private readonly adds: Batcher<Queue, StepWork[], undefined>;

  constructor(
    private readonly connection: Redis | Cluster,
    prefix: string,
  ) {
    this.queue = new Queue(STEP_QUEUE, { connection, prefix });
    this.adds = new Batcher(this.queue, addJobs);
  }

  /**
   * Enqueues work; duplicates of a job already in Redis are ignored by BullMQ. Never throws: work is
   * enqueued after its Postgres commit, and anything lost here is rebuilt by the sweeper.
   */
  async enqueue(work: StepWork[], onError: (error: Error) => void): Promise<void> {
    await this.add(work).catch(onError);
  }

  /** Enqueues work, failing if Redis does not take it. */
  async add(work: StepWork[]): Promise<void> {
    if (work.length >= ALONE) await addJobs(this.queue, [work]);
    else if (work.length > 0) await this.adds.submit(work);
  }

  /** The work whose job is not in Redis (completed, lost, or never added); one round trip. */
  async missing(work: StepWork[]): Promise<StepWork[]> {
    if (work.length === 0) return [];
    // On a cluster a pipeline must stay in one slot: every job key is under the queue's hash-tagged prefix.
    const pipeline = this.connection.pipeline();
    for (const w of work) pipeline.exists(this.queue.toKey(stepJobId(w.executionId, w.version)));
    const found = (await pipeline.exec()) ?? [];
    return work.filter((_, i) => found[i]?.[1] !== 1);
  }

  async ready(): Promise<number> {
    const counts = await this.queue.getJobCounts('wait', 'prioritized');
    return (counts.wait ?? 0) + (counts.prioritized ?? 0);
  }

  /** When the earliest delayed job is due (ms since the epoch), or null if none is delayed. */
  async nextDelayedAt(): Promise<number | null> {
    // BullMQ scores a delayed job by its due time times 0x1000 plus a counter (getDelayedScore.lua).
    const [, score] = await this.connection.zrange(this.queue.toKey('delayed'), 0, 0, 'WITHSCORES');
    return score === undefined ? null : Math.floor(Number(score) / 0x1000);
  }

  /** Removes the pending job of an execution at `version`, if it is waiting or delayed (a running job is left to finish). */
  async remove(executionId: string, version: number): Promise<void> {
    await this.queue.remove(stepJobId(executionId, version)).catch(() => 0);
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}
