import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it, expect } from 'vitest';
import { createMetrics, setExecutionsByStatusSource, setQueueDepthSource } from '../../src/observability/metrics.ts';

describe('createMetrics', () => {
  it('exposes every metric with its observations in the Prometheus text format', async () => {
    const metrics = createMetrics();
    metrics.actionDuration.observe({ action_type: 'send_email', outcome: 'success' }, 0.12);
    metrics.queueLatency.observe({ job: 'step' }, 0.03);
    metrics.httpDuration.observe({ method: 'GET', route: '/api/v1/executions/:id', status: '200' }, 0.015);
    metrics.executionsStarted.inc();
    metrics.executionsFinished.inc({ status: 'completed' });
    metrics.executionEvents.inc({ event_type: 'action_completed' }, 3);
    metrics.retries.inc({ action_type: 'send_sms' });
    metrics.rateLimitHits.inc({ provider: 'email' });
    metrics.timerLateness.observe(0.2);
    metrics.workerJobsActive.inc(2);
    metrics.timersReleased.inc({ recovered: 'false' }, 500);
    metrics.enrollmentsRefused.inc({ reason: 'queue_full' });
    setExecutionsByStatusSource(metrics, async () => ({ ACTIVE: 7, PAUSED: 2 }));
    setQueueDepthSource(metrics, async () => ({ waiting: 4, delayed: 9 }));

    const text = await metrics.registry.metrics();
    for (const line of [
      'flowmachine_action_duration_seconds_bucket{le="0.5",action_type="send_email",outcome="success"} 1',
      'flowmachine_action_duration_seconds_count{action_type="send_email",outcome="success"} 1',
      'flowmachine_queue_latency_seconds_bucket{le="1",job="step"} 1',
      'flowmachine_http_request_duration_seconds_bucket{le="0.2",method="GET",route="/api/v1/executions/:id",status="200"} 1',
      'flowmachine_executions_started_total 1',
      'flowmachine_executions_finished_total{status="completed"} 1',
      'flowmachine_execution_events_total{event_type="action_completed"} 3',
      'flowmachine_action_retries_total{action_type="send_sms"} 1',
      'flowmachine_rate_limit_hits_total{provider="email"} 1',
      'flowmachine_timer_lateness_seconds_bucket{le="0.25"} 1',
      'flowmachine_timer_lateness_seconds_bucket{le="0.1"} 0',
      'flowmachine_worker_jobs_active 2',
      'flowmachine_timers_released_total{recovered="false"} 500',
      'flowmachine_timers_released_total{recovered="true"} 0',
      'flowmachine_enrollments_refused_total{reason="queue_full"} 1',
      'flowmachine_executions{status="ACTIVE"} 7',
      'flowmachine_executions{status="PAUSED"} 2',
      'flowmachine_queue_jobs{state="waiting"} 4',
      'flowmachine_queue_jobs{state="delayed"} 9',
    ]) {
      expect(text).toContain(line);
    }
    expect(text).toContain('# TYPE flowmachine_action_duration_seconds histogram');
    expect(text).toContain('flowmachine_process_cpu_seconds_total');
  });

  it('serves the series of fixed label sets at 0 before their first increment', async () => {
    const text = await createMetrics().registry.metrics();
    expect(text).toContain('flowmachine_timers_released_total{recovered="false"} 0');
    expect(text).toContain('flowmachine_timers_released_total{recovered="true"} 0');
    expect(text).toContain('flowmachine_enrollments_refused_total{reason="queue_full"} 0');
  });

  it('gives each call its own registry', async () => {
    const first = createMetrics();
    const second = createMetrics();
    first.executionsStarted.inc(5);
    expect(await second.registry.metrics()).toContain('flowmachine_executions_started_total 0');
  });
});

describe('scrape-time sources', () => {
  it('reports the latest counts and drops statuses that disappeared', async () => {
    const metrics = createMetrics();
    let counts: Record<string, number> = { ACTIVE: 3, FAILED: 1 };
    setExecutionsByStatusSource(metrics, async () => counts);
    expect(await metrics.registry.getSingleMetricAsString('flowmachine_executions')).toContain(
      'flowmachine_executions{status="FAILED"} 1',
    );
    counts = { ACTIVE: 5 };
    const text = await metrics.registry.getSingleMetricAsString('flowmachine_executions');
    expect(text).toContain('flowmachine_executions{status="ACTIVE"} 5');
    expect(text).not.toContain('FAILED');
  });

  it('keeps the scrape alive when a source fails', async () => {
    const metrics = createMetrics();
    setQueueDepthSource(metrics, async () => ({ waiting: 1 }));
    await metrics.registry.metrics();
    setQueueDepthSource(metrics, async () => {
      throw new Error('redis down');
    });
    const text = await metrics.registry.metrics();
    expect(text).toContain('# TYPE flowmachine_queue_jobs gauge');
    expect(text).not.toContain('flowmachine_queue_jobs{');
  });
});

// The alert rules, their tests and the dashboard query metrics by name: a renamed or missing metric would
// leave a panel empty and an alert silent.
describe('ops/ files', () => {
  it('name only metrics a flowmachine process serves', async () => {
    const served = new Set<string>();
    for (const metric of await createMetrics().registry.getMetricsAsJSON()) {
      served.add(metric.name);
      if (String(metric.type) === 'histogram')
        for (const part of ['_bucket', '_sum', '_count']) served.add(metric.name + part);
    }
    for (const file of [
      'ops/grafana/dashboards/flowmachine.json',
      'ops/prometheus/alerts.yml',
      'ops/prometheus/alerts.test.yml',
    ]) {
      const named = new Set(
        readFileSync(path.resolve(import.meta.dirname, '../..', file), 'utf8').match(/flowmachine_\w+/g),
      );
      expect(named.size, file).toBeGreaterThan(0);
      expect(
        [...named].filter((name) => !served.has(name)),
        file,
      ).toEqual([]);
    }
  });
});
