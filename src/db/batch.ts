import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { Pool } from './client.ts';
import { coerceError } from '../errors.ts';

/** Sends a batch of requests in one round trip through `to` (a pool, a queue) and answers each, in order. */
export type SendBatch<To, In, Out> = (to: To, items: In[]) => Promise<Out[]>;

/** What a batcher reports: each batch's size, and each batch that failed as a whole. */
export interface BatchObserver {
  sent(size: number): void;
  failed(size: number, error: Error): void;
}

/**
 * At most this many batches of one kind are in flight on one pool (or queue) at once. Fewer make bigger
 * batches and cheaper steps (docs/benchmarks.md); with one, a batch waiting on a lock would hold up all
 * the others.
 */
const MAX_IN_FLIGHT = 2;
/** At most this many requests go in one batch. */
const MAX_BATCH = 32;

interface Waiting<In, Out> {
  item: In;
  resolve(out: Out): void;
  reject(error: unknown): void;
}

/**
 * Group commit: requests of one kind (a step's commit, a job's load, a trigger, jobs to enqueue) that
 * arrive while {@link MAX_IN_FLIGHT} batches are in flight wait for the next batch, which sends all of
 * them in one statement (one round trip, one transaction and one WAL flush for all; for jobs, one
 * `addBulk`). A request that finds a batch free goes at once, alone: batching adds no wait below
 * saturation and grows with the load. When a batch fails (a deadlock between batches, an error in one
 * request) nothing of it was written, and each of its requests is sent again alone, so only the
 * request at fault gets the error.
 */
export class Batcher<To, In, Out> {
  private readonly waiting: Waiting<In, Out>[] = [];
  private inFlight = 0;

  constructor(
    private readonly to: To,
    private readonly send: SendBatch<To, In, Out>,
    private readonly observer?: BatchObserver,
  ) {}

  submit(item: In): Promise<Out> {
    return new Promise<Out>((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.inFlight < MAX_IN_FLIGHT && this.waiting.length > 0) {
      const batch = this.waiting.splice(0, MAX_BATCH);
      this.inFlight += 1;
      this.observer?.sent(batch.length);
      void this.flush(batch).finally(() => {
        this.inFlight -= 1;
        this.pump();
      });
    }
  }

  private async flush(batch: Waiting<In, Out>[]): Promise<void> {
    try {
      const outs = await this.send(
        this.to,
        batch.map((w) => w.item),
      );
      batch.forEach((w, i) => w.resolve(outs[i]!));
    } catch (error) {
      if (batch.length === 1) return batch[0]!.reject(error);
      this.observer?.failed(batch.length, coerceError(error));
      await Promise.all(batch.map((w) => this.send(this.to, [w.item]).then(([out]) => w.resolve(out!), w.reject)));
    }
  }
}

/**
 * The batchers of one pool, one per kind of statement, created on first use; each reports its batches
 * as metrics and each failed batch as a warning. Made once per process (in the runtime) and passed in
 * the engine's deps.
 */
export class BatcherRegistry {
  private readonly kinds = new Map<string, Batcher<Pool, unknown, unknown>>();

  constructor(private readonly deps: { pool: Pool; metrics: Metrics; logger: Logger }) {}

  /** The batcher of statements of `kind`, sent by `send`. */
  of<In, Out>(kind: string, send: SendBatch<Pool, In, Out>): Batcher<Pool, In, Out> {
    let batcher = this.kinds.get(kind) as Batcher<Pool, In, Out> | undefined;
    if (!batcher) {
      const { pool, metrics, logger } = this.deps;
      batcher = new Batcher(pool, send, {
        sent: (size) => metrics.dbBatchSize.observe({ kind }, size),
        failed(size, error) {
          metrics.dbBatchFailures.inc({ kind });
          logger.warn('batch failed; its requests are sent again one by one', { kind, size, error: error.message });
        },
      });
      this.kinds.set(kind, batcher as Batcher<Pool, unknown, unknown>);
    }
    return batcher;
  }
}

/** The rows of a batch statement, each carrying `i`, its request's 1-based place, put back in request order. */
export function inRequestOrder<Row>(rows: (Row & { i: number })[], requests: number): (Row | undefined)[] {
  const ordered: (Row | undefined)[] = new Array(requests).fill(undefined);
  for (const { i, ...row } of rows) ordered[i - 1] = row as Row;
  return ordered;
}
