import { trace } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRuntime, type Runtime } from '../../src/runtime.ts';
import { withWait } from '../fixtures/workflows.ts';
import { startHarness, type Harness } from '../helpers/harness.ts';

// One execution is one trace: the trigger request, every queue hop, every step, across two workers
// and a wait. Spans are collected in memory from the real engine.
describe('tracing', () => {
  const exporter = new InMemorySpanExporter();
  const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  let h: Harness;
  const workers: Runtime[] = [];

  beforeAll(async () => {
    provider.register();
    h = await startHarness({ worker: false });
  });
  afterAll(async () => {
    for (const worker of workers) await worker.stop();
    await h.stop();
    await provider.shutdown();
    trace.disable();
  });

  it('follows one execution across two workers and a wait in one trace', async () => {
    const startWorker = async () => {
      const runtime = await startRuntime(h.config, { api: false, worker: true }, { logger: h.deps.logger });
      workers.push(runtime);
      return runtime;
    };
    const first = await startWorker();
    const workflow = await h.createWorkflow(withWait('1 second'));
    h.provider.script({ status: 503 }); // the first attempt fails: a span with an error outcome
    await h.api.patch('/account/settings', { retry_base_delay_seconds: 1 });
    const id = await h.trigger(workflow.id, (await h.createContact()).id);
    await h.waitForExecution(id, (e) => e.status === 'PAUSED');
    await first.stop();
    await startWorker();
    await h.waitForExecution(id, (e) => e.status === 'COMPLETED');

    const spans = exporter.getFinishedSpans();
    const root = spans.find((s) => s.name === 'trigger execution' && s.attributes['flowmachine.execution_id'] === id)!;
    expect(root).toBeDefined();
    const traceId = root.spanContext().traceId;
    const steps = spans.filter((s) => s.name === 'execution step' && s.attributes['flowmachine.execution_id'] === id);
    expect(steps.length).toBeGreaterThanOrEqual(4); // failed attempt, retry, wait resume, SMS
    expect(new Set(steps.map((s) => s.spanContext().traceId))).toEqual(new Set([traceId]));
    expect(new Set(steps.map((s) => s.attributes['flowmachine.worker_id'])).size).toBe(2);
    for (const step of steps) expect(step.parentSpanContext?.spanId).toBe(root.spanContext().spanId);

    const actions = spans.filter((s) => s.name.startsWith('action ') && s.spanContext().traceId === traceId);
    expect(
      actions.map((s) => [
        s.attributes['flowmachine.step_id'],
        s.attributes['flowmachine.outcome'],
        s.attributes['flowmachine.attempt'],
      ]),
    ).toEqual([
      ['welcome', 'transient', 1],
      ['welcome', 'success', 2],
      ['follow_up', 'success', 1],
    ]);
    for (const action of actions) {
      expect(action.attributes).toMatchObject({
        'flowmachine.execution_id': id,
        'flowmachine.workflow_id': workflow.id,
      });
      expect(action.attributes['flowmachine.workflow_version_id']).toEqual(expect.any(String));
      expect(action.attributes['flowmachine.action_type']).toMatch(/send_(email|sms)/);
    }
  }, 60_000);

  it('gives each execution of a bulk enrollment a trace of its own, linked to the request', async () => {
    const workflow = await h.createWorkflow(withWait('1 hour'));
    const contacts = await Promise.all(Array.from({ length: 3 }, () => h.createContact()));
    const response = await h.api.post(`/workflows/${workflow.id}/enrollments`, {
      contact_ids: contacts.map((c) => c.id),
    });
    const ids = (response.body.results as { execution_id: string }[]).map((r) => r.execution_id);
    const spans = exporter.getFinishedSpans();
    const bulk = spans.find(
      (s) => s.name === 'bulk enrollment' && s.attributes['flowmachine.workflow_id'] === workflow.id,
    )!;
    const roots = ids.map(
      (id) => spans.find((s) => s.name === 'trigger execution' && s.attributes['flowmachine.execution_id'] === id)!,
    );
    expect(new Set(roots.map((root) => root.spanContext().traceId)).size).toBe(3);
    for (const [i, root] of roots.entries()) {
      expect(root.parentSpanContext).toBeUndefined();
      expect(root.links.map((link) => link.context.spanId)).toEqual([bulk.spanContext().spanId]);
      const row = await h.db.execution.findUniqueOrThrow({ where: { id: ids[i]! } });
      expect((row.traceContext as { traceparent: string }).traceparent).toContain(root.spanContext().spanId);
    }
  });
});
