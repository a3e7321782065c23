import { z } from 'zod';

/**
 * A job says only "execution X, as of version V, has work due". Everything else (which step,
 * which attempt) is read from Postgres, so any job can be rebuilt from the database.
 */
export const stepJobSchema = z.object({
  executionId: z.string().uuid(),
  version: z.number().int().min(0),
  /** W3C trace context of the execution, carried across queue hops. */
  trace: z.record(z.string(), z.string()).optional(),
  /** Set when the sweeper rebuilt this job after losing it (Redis restart, crash before enqueue). */
  recovered: z.boolean().optional(),
});
export type StepJob = z.infer<typeof stepJobSchema>;

/** One unit of work to put on the queue. */
export interface StepWork extends StepJob {
  delayMs?: number;
  /** The first job of a new execution: taken after the due work of executions already running. */
  first?: boolean;
}

/**
 * Where the engine puts work (implemented on BullMQ by `queue/step-queue.ts`). The engine depends on
 * this interface, never on the queue's module; adding a job that exists already changes nothing.
 */
export interface WorkQueue {
  /** Enqueues work after its commit; never throws (the sweeper rebuilds anything lost), reports to `onError`. */
  enqueue(work: StepWork[], onError: (error: Error) => void): Promise<void>;
  /** Enqueues work, failing if the queue does not take it. */
  add(work: StepWork[]): Promise<void>;
  /** The work whose job is not in the queue (completed, lost, or never added). */
  missing(work: StepWork[]): Promise<StepWork[]>;
  /** How many jobs are ready to run and not yet taken by a worker (due, not delayed). */
  ready(): Promise<number>;
  /** Removes the pending job of an execution at `version`, if it is waiting or delayed. */
  remove(executionId: string, version: number): Promise<void>;
}
