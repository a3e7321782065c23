import { afterAll, afterEach, describe, it, expect } from 'vitest';
import { context, propagation, SpanStatusCode, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import {
  addSpanEvent,
  injectTraceContext,
  startTracing,
  tracer,
  withExtractedContext,
  withSpan,
} from '../../src/observability/tracing.ts';

const exporter = new InMemorySpanExporter();
const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
provider.register();

afterEach(() => exporter.reset());
afterAll(async () => {
  await provider.shutdown();
  trace.disable();
  context.disable();
});

describe('trace context across a queue hop', () => {
  it('makes the job span a child of the span that enqueued it', async () => {
    const { carrier, parent } = tracer.startActiveSpan('trigger', (span) => {
      const injected = injectTraceContext();
      span.end();
      return { carrier: injected, parent: span.spanContext() };
    });
    expect(carrier.traceparent).toBe(`00-${parent.traceId}-${parent.spanId}-01`);

    // Runs outside the parent's context, as a worker would.
    const result = await withExtractedContext({ ...carrier }, () =>
      withSpan('action send_email', { 'execution.id': 'e-1', step_index: 2, skipped: undefined }, async () => 'sent'),
    );
    expect(result).toBe('sent');

    const child = exporter.getFinishedSpans().find((span) => span.name === 'action send_email');
    expect(child?.spanContext().traceId).toBe(parent.traceId);
    expect(child?.parentSpanContext?.spanId).toBe(parent.spanId);
    expect(child?.attributes).toEqual({ 'execution.id': 'e-1', step_index: 2 });
    expect(child?.status.code).toBe(SpanStatusCode.UNSET);
  });

  it('starts a new trace when there is no carrier or no active span', async () => {
    expect(injectTraceContext()).toEqual({});
    await withExtractedContext(undefined, () => withSpan('root', {}, async () => undefined));
    const [root] = exporter.getFinishedSpans();
    expect(root?.parentSpanContext).toBeUndefined();
  });
});

describe('withSpan', () => {
  it('records the exception with masked PII, sets ERROR status, rethrows and ends the span', async () => {
    const failure = new Error('provider rejected john@example.com');
    await expect(withSpan('action', { contact: 'john@example.com' }, async () => Promise.reject(failure))).rejects.toBe(
      failure,
    );
    const [span] = exporter.getFinishedSpans();
    expect(span?.ended).toBe(true);
    expect(span?.status).toEqual({ code: SpanStatusCode.ERROR, message: 'provider rejected j***@example.com' });
    expect(span?.attributes.contact).toBe('j***@example.com');
    const event = span?.events.find((e) => e.name === 'exception');
    expect(event?.attributes?.['exception.message']).toBe('provider rejected j***@example.com');
    expect(event?.attributes?.['exception.type']).toBe('Error');
    expect(String(event?.attributes?.['exception.stacktrace'])).not.toContain('john@');
  });

  it('handles thrown non-errors', async () => {
    await expect(withSpan('action', {}, async () => Promise.reject('plain failure'))).rejects.toBe('plain failure');
    const [span] = exporter.getFinishedSpans();
    expect(span?.status).toEqual({ code: SpanStatusCode.ERROR, message: 'plain failure' });
  });

  it('gives fn the active span', async () => {
    await withSpan('outer', {}, async (span) => {
      expect(trace.getActiveSpan()).toBe(span);
    });
  });

  it('starts the span at options.startTime when given', async () => {
    const startTime = Date.now() - 5_000;
    await withSpan('release', {}, async () => undefined, { startTime });
    const [span] = exporter.getFinishedSpans();
    expect(span!.startTime).toEqual([Math.floor(startTime / 1000), (startTime % 1000) * 1e6]);
  });
});

describe('addSpanEvent', () => {
  it('adds a masked event to the active span, and does nothing without one', async () => {
    addSpanEvent('refused', { reason: 'queue_full' }); // no active span: nothing to add it to, no error
    await withSpan('request', {}, async () => {
      addSpanEvent('refused', { reason: 'queue_full', ready: 3, to: 'john@example.com', absent: undefined });
    });
    const [span] = exporter.getFinishedSpans();
    expect(span!.events.map((e) => [e.name, e.attributes])).toEqual([
      ['refused', { reason: 'queue_full', ready: 3, to: 'j***@example.com' }],
    ]);
  });
});

describe('startTracing', () => {
  it('is a no-op without OTLP configuration', async () => {
    const saved = { ...process.env };
    for (const name of ['OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'OTEL_TRACES_EXPORTER']) {
      delete process.env[name];
    }
    try {
      const fieldsBefore = propagation.fields();
      const tracing = await startTracing({ serviceName: 'unit' });
      expect(propagation.fields()).toEqual(fieldsBefore);
      await expect(tracing.shutdown()).resolves.toBeUndefined();
    } finally {
      process.env = saved;
    }
  });

  it('stays off with OTEL_TRACES_EXPORTER=none', async () => {
    const saved = { ...process.env };
    process.env.OTEL_TRACES_EXPORTER = 'none';
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = 'http://127.0.0.1:4318';
    try {
      const fieldsBefore = propagation.fields();
      await (await startTracing()).shutdown();
      expect(propagation.fields()).toEqual(fieldsBefore);
    } finally {
      process.env = saved;
    }
  });
});
