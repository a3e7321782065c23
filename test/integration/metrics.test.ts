import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRuntime } from '../../src/runtime.ts';
import { withWait } from '../fixtures/workflows.ts';
import { startHarness, type Harness } from '../helpers/harness.ts';

/** Value of the first sample of `name` (optionally with a label fragment) in Prometheus text. */
const sample = (text: string, name: string, labels = '') => {
  const line = text.split('\n').find((l) => l.startsWith(name) && !l.startsWith('#') && l.includes(labels));
  return line ? Number(line.split(' ').at(-1)) : NaN;
};

// After an end-to-end run with a retry, a rate limit and a wait, /metrics shows every metric the
// SPEC's quality gates and the dashboard use, with real values.
describe('GET /metrics', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(() => h.stop());

  it('exposes every metric with real values', async () => {
    await h.api.patch('/account/settings', { retry_base_delay_seconds: 1 });
    const workflow = await h.createWorkflow(withWait('1 second'));
    h.provider.script({ status: 503 }, { status: 200 }, { status: 429, retryAfter: '1' });
    const id = await h.trigger(workflow.id, (await h.createContact()).id);
    await h.waitForExecution(id, (e) => e.status === 'COMPLETED', 30_000);
    const response = await fetch(`${h.baseUrl}/metrics`);
    expect(response.headers.get('content-type')).toContain('text/plain');
    const text = await response.text();

    expect(
      sample(text, 'flowmachine_action_duration_seconds_count', 'action_type="send_email",outcome="success"'),
    ).toBe(1);
    expect(sample(text, 'flowmachine_action_duration_seconds_count', 'outcome="transient"')).toBe(1);
    expect(sample(text, 'flowmachine_queue_latency_seconds_count')).toBeGreaterThanOrEqual(4);
    expect(
      sample(
        text,
        'flowmachine_http_request_duration_seconds_count',
        'route="/api/v1/workflows/:id/trigger",status="202"',
      ),
    ).toBe(1);
    expect(sample(text, 'flowmachine_executions_started_total')).toBe(1);
    expect(sample(text, 'flowmachine_executions_finished_total', 'status="completed"')).toBe(1);
    expect(sample(text, 'flowmachine_execution_events_total', 'event_type="wait_completed"')).toBe(1);
    expect(sample(text, 'flowmachine_action_retries_total', 'action_type="send_email"')).toBe(1);
    expect(sample(text, 'flowmachine_rate_limit_hits_total', 'provider="sms"')).toBe(1);
    expect(sample(text, 'flowmachine_timer_lateness_seconds_count')).toBe(1);
    expect(sample(text, 'flowmachine_worker_jobs_active')).toBe(0);
    expect(sample(text, 'flowmachine_executions', 'status="COMPLETED"')).toBe(1);
    expect(text).toMatch(/flowmachine_queue_jobs\{state="(waiting|delayed|active|failed)"\}/);
    expect(text).toContain('flowmachine_process_resident_memory_bytes');
  }, 60_000);

  it('a worker-only process serves /metrics and /health on METRICS_PORT', async () => {
    const worker = await startRuntime(
      { ...h.config, METRICS_PORT: 0 },
      { api: false, worker: true },
      { logger: h.deps.logger },
    );
    try {
      expect(await (await fetch(`http://127.0.0.1:${worker.port}/health`)).json()).toEqual({
        status: 'ok',
        postgres: true,
        redis: true,
      });
      expect(await (await fetch(`http://127.0.0.1:${worker.port}/metrics`)).text()).toContain(
        'flowmachine_worker_jobs_active',
      );
      expect((await fetch(`http://127.0.0.1:${worker.port}/api/v1/contacts`)).status).toBe(404);
    } finally {
      await worker.stop();
    }
  });
});
