import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * The Prometheus metrics of one process. Names are the contract with `ops/prometheus/alerts.yml` and the
 * Grafana dashboard; bucket bounds include each quality-gate threshold (0.5 s, 1 s, 0.2 s) so the
 * quantiles compared against them are exact at the threshold.
 */
export interface Metrics {
  /** The registry holding every metric below plus the default process metrics; serve it at `/metrics`. */
  registry: Registry;
  /** `flowmachine_action_duration_seconds`: time to run one action; `outcome` is e.g. success, retry, failed. */
  actionDuration: Histogram<'action_type' | 'outcome'>;
  /** `flowmachine_queue_latency_seconds`: from when a job was due (enqueued, or its delay elapsed) to when it started. */
  queueLatency: Histogram<'job'>;
  /** `flowmachine_http_request_duration_seconds`: API request durations by method, route pattern and status code. */
  httpDuration: Histogram<'method' | 'route' | 'status'>;
  /** `flowmachine_executions_started_total`: executions created. */
  executionsStarted: Counter;
  /** `flowmachine_executions_finished_total`: executions that ended, by `status` completed, failed or cancelled. */
  executionsFinished: Counter<'status'>;
  /** `flowmachine_execution_events_total`: one per execution log entry, by `event_type`. */
  executionEvents: Counter<'event_type'>;
  /** `flowmachine_contact_events_total`: contact events received, by whether any execution used them. */
  contactEvents: Counter<'outcome'>;
  /** `flowmachine_action_retries_total`: retries scheduled, by action type. */
  retries: Counter<'action_type'>;
  /** `flowmachine_rate_limit_hits_total`: 429 answers from providers. */
  rateLimitHits: Counter<'provider'>;
  /** `flowmachine_timer_lateness_seconds`: how late a wait or retry timer fired after its due time. */
  timerLateness: Histogram;
  /** `flowmachine_db_batch_size`: requests of one `kind` (commit, load, trigger) sent together in one statement (see db/batch.ts). */
  dbBatchSize: Histogram<'kind'>;
  /** `flowmachine_db_batch_failures_total`: batches that failed as a whole, their requests then sent again one by one. */
  dbBatchFailures: Counter<'kind'>;
  /** `flowmachine_worker_jobs_active`: jobs this process is running right now. */
  workerJobsActive: Gauge;
  /** `flowmachine_worker_restarts_total`: step workers replaced because they took no due job (worker-supervisor.ts). */
  workerRestarts: Counter;
  /** Compiled workflow versions dropped from the process's cache to keep it within its byte budget. */
  workflowCacheEvictions: Counter;
  /** `flowmachine_log_partitions_dropped_total`: monthly partitions LOG_RETENTION_DAYS dropped, by `table`. */
  logPartitionsDropped: Counter<'table'>;
  /** `flowmachine_tables_analyzed_total`: ANALYZEs the sweeper ran on tables with stale statistics, by `table` (partitions as their table). */
  tablesAnalyzed: Counter<'table'>;
  /**
   * `flowmachine_timers_released_total`: timers from Postgres whose job the timer release enqueued, by
   * `recovered` (`true` for a walk without a position, after Redis lost its data: those jobs are rebuilt ones).
   */
  timersReleased: Counter<'recovered'>;
  /**
   * `flowmachine_enrollments_refused_total`: bulk enrollments answered 429 before enrolling anyone, by
   * `reason` ({@link ENROLLMENT_REFUSAL_REASONS}; `queue_full`: the queue held ENROLL_QUEUE_LIMIT ready jobs).
   */
  enrollmentsRefused: Counter<'reason'>;
  /** Estimated bytes of the compiled workflow versions the process keeps. */
  workflowCacheBytes: Gauge;
  /** `flowmachine_executions`: executions by `status`, read at scrape time (see {@link setExecutionsByStatusSource}). */
  executionsByStatus: Gauge<'status'>;
  /** `flowmachine_queue_jobs`: queue jobs by `state`, read at scrape time (see {@link setQueueDepthSource}). */
  queueDepth: Gauge<'state'>;
}

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Why a bulk enrollment was refused: the values of `flowmachine_enrollments_refused_total{reason}`. */
export const ENROLLMENT_REFUSAL_REASONS = ['queue_full'] as const;
export type EnrollmentRefusalReason = (typeof ENROLLMENT_REFUSAL_REASONS)[number];

/** Creates the metrics in a fresh registry (so tests and several app instances never share state). */
export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'flowmachine_' });
  const registers = [registry];
  const metrics: Metrics = {
    registry,
    actionDuration: new Histogram({
      name: 'flowmachine_action_duration_seconds',
      help: 'Duration of one workflow action.',
      labelNames: ['action_type', 'outcome'] as const,
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    queueLatency: new Histogram({
      name: 'flowmachine_queue_latency_seconds',
      help: 'Time from a queue job being due to a worker starting it.',
      labelNames: ['job'] as const,
      buckets: [...LATENCY_BUCKETS, 30, 60],
      registers,
    }),
    httpDuration: new Histogram({
      name: 'flowmachine_http_request_duration_seconds',
      help: 'Duration of API requests.',
      labelNames: ['method', 'route', 'status'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2.5, 5],
      registers,
    }),
    executionsStarted: new Counter({
      name: 'flowmachine_executions_started_total',
      help: 'Executions created.',
      registers,
    }),
    executionsFinished: new Counter({
      name: 'flowmachine_executions_finished_total',
      help: 'Executions finished, by final status (completed, failed, cancelled).',
      labelNames: ['status'] as const,
      registers,
    }),
    executionEvents: new Counter({
      name: 'flowmachine_execution_events_total',
      help: 'Execution log entries written, by event type.',
      labelNames: ['event_type'] as const,
      registers,
    }),
    contactEvents: new Counter({
      name: 'flowmachine_contact_events_total',
      help: 'Contact events received (POST /contacts/{id}/events), by outcome: used (enrolled, resumed, reached a goal or an exit) or unused.',
      labelNames: ['outcome'] as const,
      registers,
    }),
    retries: new Counter({
      name: 'flowmachine_action_retries_total',
      help: 'Action retries scheduled.',
      labelNames: ['action_type'] as const,
      registers,
    }),
    rateLimitHits: new Counter({
      name: 'flowmachine_rate_limit_hits_total',
      help: 'Rate-limited (429) provider responses.',
      labelNames: ['provider'] as const,
      registers,
    }),
    timerLateness: new Histogram({
      name: 'flowmachine_timer_lateness_seconds',
      help: 'Delay between a timer being due and its job starting.',
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    }),
    dbBatchSize: new Histogram({
      name: 'flowmachine_db_batch_size',
      help: 'Requests sent together in one statement (group commit).',
      labelNames: ['kind'] as const,
      buckets: [1, 2, 4, 8, 16, 32],
      registers,
    }),
    dbBatchFailures: new Counter({
      name: 'flowmachine_db_batch_failures_total',
      help: 'Batches that failed as a whole and were sent again one request at a time.',
      labelNames: ['kind'] as const,
      registers,
    }),
    workerJobsActive: new Gauge({
      name: 'flowmachine_worker_jobs_active',
      help: 'Queue jobs being processed by this process.',
      registers,
    }),
    workerRestarts: new Counter({
      name: 'flowmachine_worker_restarts_total',
      help: 'Step workers replaced because they took no due job for WORKER_STALL_MS.',
      registers,
    }),
    logPartitionsDropped: new Counter({
      name: 'flowmachine_log_partitions_dropped_total',
      help: 'Monthly log partitions dropped by LOG_RETENTION_DAYS.',
      labelNames: ['table'] as const,
      registers,
    }),
    tablesAnalyzed: new Counter({
      name: 'flowmachine_tables_analyzed_total',
      help: 'Tables the sweeper analyzed because their statistics were stale (autovacuum off or behind), by table.',
      labelNames: ['table'] as const,
      registers,
    }),
    timersReleased: new Counter({
      name: 'flowmachine_timers_released_total',
      help: 'Timers released from Postgres to the queue by the timer release, by whether the walk had lost its position (recovered).',
      labelNames: ['recovered'] as const,
      registers,
    }),
    enrollmentsRefused: new Counter({
      name: 'flowmachine_enrollments_refused_total',
      help: 'Bulk enrollments answered 429 before enrolling anyone, by reason (queue_full: ENROLL_QUEUE_LIMIT ready jobs).',
      labelNames: ['reason'] as const,
      registers,
    }),
    workflowCacheEvictions: new Counter({
      name: 'flowmachine_workflow_cache_evictions_total',
      help: 'Compiled workflow versions evicted from the cache (WORKFLOW_CACHE_MB).',
      registers,
    }),
    workflowCacheBytes: new Gauge({
      name: 'flowmachine_workflow_cache_bytes',
      help: 'Estimated size of the compiled workflow versions in the cache.',
      registers,
    }),
    executionsByStatus: new Gauge({
      name: 'flowmachine_executions',
      help: 'Executions by status.',
      labelNames: ['status'] as const,
      registers,
    }),
    queueDepth: new Gauge({
      name: 'flowmachine_queue_jobs',
      help: 'Queue jobs by state.',
      labelNames: ['state'] as const,
      registers,
    }),
  };
  // Every series of a fixed label set is there from the start at 0, so the first increment is a rate.
  for (const recovered of ['false', 'true']) metrics.timersReleased.inc({ recovered }, 0);
  for (const reason of ENROLLMENT_REFUSAL_REASONS) metrics.enrollmentsRefused.inc({ reason }, 0);
  return metrics;
}

/** A scrape-time reader of counts by label value, e.g. `{ ACTIVE: 3, PAUSED: 1 }`. */
export type CountSource = () => Promise<Record<string, number>>;

function installSource<L extends string>(gauge: Gauge<L>, label: L, read: CountSource): void {
  Object.assign(gauge, {
    async collect() {
      // A failing source must not fail the whole scrape; its series are simply absent this time.
      const counts: Record<string, number> = await read().catch(() => ({}));
      gauge.reset();
      for (const [value, count] of Object.entries(counts)) {
        gauge.set({ [label]: value } as Partial<Record<L, string>>, count);
      }
    },
  });
}

/** Makes `flowmachine_executions{status}` report what `read` returns at each scrape (e.g. a GROUP BY status). */
export function setExecutionsByStatusSource(metrics: Metrics, read: CountSource): void {
  installSource(metrics.executionsByStatus, 'status', read);
}

/** Makes `flowmachine_queue_jobs{state}` report what `read` returns at each scrape (e.g. BullMQ job counts). */
export function setQueueDepthSource(metrics: Metrics, read: CountSource): void {
  installSource(metrics.queueDepth, 'state', read);
}
