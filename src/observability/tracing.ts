import {
  context,
  propagation,
  SpanStatusCode,
  trace,
  type Attributes,
  type Span,
  type TimeInput,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { maskText } from './mask.ts';

/**
 * Installs the W3C `traceparent` propagator unless one is registered already (by the SDK or a test's
 * tracer provider), so {@link injectTraceContext} works whether or not exporting is on.
 */
function ensurePropagator(): void {
  if (propagation.fields().length === 0) propagation.setGlobalPropagator(new W3CTraceContextPropagator());
}
ensurePropagator();

/** The tracer for all flowmachine spans; it follows whichever tracer provider is registered. */
export const tracer = trace.getTracer('flowmachine');

/** Handle returned by {@link startTracing}. */
export interface Tracing {
  /** Flushes pending spans (best effort, never rejects) and stops exporting. */
  shutdown(): Promise<void>;
}

/**
 * Starts the OpenTelemetry Node SDK exporting traces over OTLP/HTTP, but only when
 * `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set, or `OTEL_TRACES_EXPORTER`
 * names an exporter; otherwise, or with `OTEL_TRACES_EXPORTER=none`, it does nothing. The service name is
 * `OTEL_SERVICE_NAME`, else `options.serviceName`, else `flowmachine`. Only traces are exported: metrics
 * are served by prom-client and logs go to standard output.
 */
export async function startTracing(options: { serviceName?: string } = {}): Promise<Tracing> {
  const env = process.env;
  const exporter = env.OTEL_TRACES_EXPORTER?.trim();
  const enabled =
    exporter !== 'none' &&
    Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || exporter);
  if (!enabled) return { shutdown: async () => {} };

  // ESM modules are instrumented through this loader hook; it must be in place before they load.
  const { register } = await import('node:module');
  register('@opentelemetry/instrumentation/hook.mjs', import.meta.url);
  // Loaded lazily: the SDK is heavy and most test and CLI runs never export.
  const [
    { NodeSDK },
    { OTLPTraceExporter },
    { HttpInstrumentation },
    { IORedisInstrumentation },
    { PgInstrumentation },
    { PrismaInstrumentation },
    { UndiciInstrumentation },
  ] = await Promise.all([
    import('@opentelemetry/sdk-node'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/instrumentation-http'),
    import('@opentelemetry/instrumentation-ioredis'),
    import('@opentelemetry/instrumentation-pg'),
    import('@prisma/instrumentation'),
    import('@opentelemetry/instrumentation-undici'),
  ]);
  const sdk = new NodeSDK({
    serviceName: env.OTEL_SERVICE_NAME || options.serviceName || 'flowmachine',
    // Any other OTEL_TRACES_EXPORTER value (console, zipkin, a list) is left to the SDK to resolve.
    ...(!exporter || exporter === 'otlp' ? { traceExporter: new OTLPTraceExporter() } : {}),
    // HTTP (the API's server spans; provider calls go through undici), Postgres (Prisma and node-postgres) and Redis spans.
    instrumentations: [
      new HttpInstrumentation(),
      new UndiciInstrumentation(),
      new PrismaInstrumentation(),
      new PgInstrumentation(),
      new IORedisInstrumentation(),
    ],
    metricReaders: [],
    logRecordProcessors: [],
  });
  // Let the SDK install the propagators named by OTEL_PROPAGATORS in place of the fallback one.
  propagation.disable();
  sdk.start();
  ensurePropagator();
  // Spans are best effort: an unreachable collector must not turn a clean exit into a crash.
  return { shutdown: () => sdk.shutdown().catch(() => {}) };
}

/**
 * The W3C trace context (`traceparent`, `tracestate`) of the active context as a plain object, to put
 * into queue job data. Empty when no span is active.
 */
export function injectTraceContext(): Record<string, string> {
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return carrier;
}

/**
 * Starts the root span of a trace of its own, linked to the active span (one execution of a bulk
 * enrollment gets its own trace, linked to the request's). Returns the span, to end, and its context
 * as {@link injectTraceContext} would give it.
 */
export function startLinkedRootSpan(
  name: string,
  attributes: Attributes,
): { span: Span; carrier: Record<string, string> } {
  const active = trace.getActiveSpan()?.spanContext();
  const span = tracer.startSpan(name, { root: true, attributes, links: active ? [{ context: active }] : [] });
  const carrier: Record<string, string> = {};
  propagation.inject(trace.setSpan(context.active(), span), carrier);
  return { span, carrier };
}

/** Runs `fn` inside the trace context carried by `carrier` (as made by {@link injectTraceContext}). */
export function withExtractedContext<T>(carrier: Record<string, string> | undefined, fn: () => T): T {
  if (!carrier) return fn();
  return context.with(propagation.extract(context.active(), carrier), fn);
}

/** Span attributes as the engine gives them: undefined ones are dropped, strings are PII-masked. */
export type SpanFields = Record<string, string | number | boolean | undefined>;

function maskedAttributes(fields: SpanFields): Attributes {
  const defined: Attributes = {};
  for (const [key, value] of Object.entries(fields)) {
    if (value !== undefined) defined[key] = typeof value === 'string' ? maskText(value) : value;
  }
  return defined;
}

/**
 * Runs `fn` inside a new active span named `name` with the given attributes (undefined ones dropped,
 * strings PII-masked). When `fn` throws, the span records the masked exception and gets status ERROR,
 * and the error is rethrown. The span always ends. `options.startTime` starts it earlier than now, for
 * work that is known to deserve a span only once it has begun (the timer release finding due timers).
 */
export function withSpan<T>(
  name: string,
  attributes: SpanFields,
  fn: (span: Span) => Promise<T>,
  options: { startTime?: TimeInput } = {},
): Promise<T> {
  return tracer.startActiveSpan(name, { attributes: maskedAttributes(attributes), ...options }, async (span) => {
    try {
      return await fn(span);
    } catch (error) {
      const message = maskText(error instanceof Error ? error.message : String(error));
      const stack = error instanceof Error && error.stack ? { stack: maskText(error.stack) } : {};
      span.recordException({ name: error instanceof Error ? error.name : 'Error', message, ...stack });
      span.setStatus({ code: SpanStatusCode.ERROR, message });
      throw error;
    } finally {
      span.end();
    }
  });
}

/**
 * Adds an event to the active span (in the API, the request's HTTP server span when tracing is on), with
 * attributes as {@link withSpan} takes them. Does nothing when no span is active.
 */
export function addSpanEvent(name: string, attributes: SpanFields): void {
  trace.getActiveSpan()?.addEvent(name, maskedAttributes(attributes));
}
