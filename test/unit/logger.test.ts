import { PassThrough } from 'node:stream';
import { afterAll, describe, it, expect } from 'vitest';
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { createLogger, silentLogger, type Logger } from '../../src/observability/logger.ts';
import { containsPlainPii } from '../../src/observability/mask.ts';

/** A logger writing into memory, and a function returning the parsed lines written so far. */
function capture(options: { level?: string } = {}): {
  logger: Logger;
  lines: () => Promise<Record<string, unknown>[]>;
} {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const logger = createLogger({ ...options, service: 'test-service', stream });
  return {
    logger,
    lines: async () => {
      // winston hands lines to the transport asynchronously.
      await new Promise((resolve) => setImmediate(resolve));
      return text
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Record<string, unknown>);
    },
  };
}

describe('createLogger', () => {
  it('skips entries below its level before formatting them, and follows a level changed later', async () => {
    const { logger, lines } = capture({ level: 'info' });
    let formatted = 0;
    // Masking walks nested objects; winston itself only copies the top level.
    const meta = {
      nested: {
        get detail() {
          formatted += 1;
          return 'x';
        },
      },
    };
    logger.log('http', 'request', meta);
    logger.debug('details', meta);
    logger.level = 'http';
    logger.log('http', 'request', { route: '/api/v1/workflows/:id/trigger' });
    expect(formatted).toBe(0);
    expect((await lines()).map((line) => [line.level, line.message, line.route])).toEqual([
      ['http', 'request', '/api/v1/workflows/:id/trigger'],
    ]);
  });

  it('writes JSON lines with level, message, ISO timestamp, service and metadata', async () => {
    const { logger, lines } = capture();
    logger.info('execution started', { execution_id: '123e4567-e89b-12d3-a456-426614174000', step_index: 2 });
    const [line] = await lines();
    expect(line).toMatchObject({
      level: 'info',
      message: 'execution started',
      service: 'test-service',
      execution_id: '123e4567-e89b-12d3-a456-426614174000',
      step_index: 2,
    });
    expect(line?.timestamp).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    expect(line).not.toHaveProperty('trace_id');
  });

  it('masks PII and secrets in the message and all metadata', async () => {
    const { logger, lines } = capture();
    logger.warn('send to john@example.com failed, call +15551234567', {
      to: 'jane@example.com',
      contact: { phone: '+4915112345678', email: 'bob@example.org' },
      headers: { authorization: 'Bearer fm_abcdefghijklmnopqrstuvwxyz' },
      api_key: 'fm_abcdefghijklmnopqrstuvwxyz',
      error: new Error('provider rejected alice@example.net'),
    });
    logger.child({ account_id: 'acc', admin_email: 'admin@example.com' }).info('child line');
    const written = await lines();
    const raw = JSON.stringify(written);
    expect(containsPlainPii(raw)).toBe(false);
    expect(raw).not.toContain('fm_abc');
    expect(written[0]).toMatchObject({
      message: 'send to j***@example.com failed, call +*********67',
      to: 'j***@example.com',
      contact: { phone: '+***********78', email: 'b***@example.org' },
      headers: { authorization: '[REDACTED]' },
      api_key: '[REDACTED]',
      error: { name: 'Error', message: 'provider rejected a***@example.net' },
    });
    expect(written[1]).toMatchObject({ account_id: 'acc', admin_email: 'a***@example.com', message: 'child line' });
  });

  it('masks errors logged directly, stack included', async () => {
    const { logger, lines } = capture();
    logger.error(new Error('bounce for john@example.com'));
    const [line] = await lines();
    expect(line?.message).toBe('bounce for j***@example.com');
    expect(String(line?.stack)).toContain('j***@example.com');
    expect(containsPlainPii(JSON.stringify(line))).toBe(false);
  });

  it('filters by level', async () => {
    const { logger, lines } = capture({ level: 'warn' });
    logger.debug('hidden');
    logger.info('hidden too');
    logger.warn('shown');
    logger.error('shown too');
    expect((await lines()).map((line) => line.message)).toEqual(['shown', 'shown too']);
  });

  it('defaults the level to LOG_LEVEL, then info', async () => {
    const previous = process.env.LOG_LEVEL;
    try {
      process.env.LOG_LEVEL = 'debug';
      expect(createLogger({ stream: new PassThrough() }).level).toBe('debug');
      delete process.env.LOG_LEVEL;
      expect(createLogger({ stream: new PassThrough() }).level).toBe('info');
    } finally {
      if (previous === undefined) delete process.env.LOG_LEVEL;
      else process.env.LOG_LEVEL = previous;
    }
  });

  describe('inside an active span', () => {
    const contextManager = new AsyncLocalStorageContextManager().enable();
    context.setGlobalContextManager(contextManager);
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(new InMemorySpanExporter())] });
    trace.setGlobalTracerProvider(provider);
    afterAll(async () => {
      await provider.shutdown();
      trace.disable();
      context.disable();
    });

    it('adds trace_id and span_id of the active span', async () => {
      const { logger, lines } = capture();
      const tracer = trace.getTracer('logger-test');
      const ids = tracer.startActiveSpan('work', (span) => {
        logger.info('inside');
        span.end();
        return span.spanContext();
      });
      logger.info('outside');
      const [inside, outside] = await lines();
      expect(inside).toMatchObject({ trace_id: ids.traceId, span_id: ids.spanId });
      expect(ids.traceId).toMatch(/^[0-9a-f]{32}$/);
      expect(outside).not.toHaveProperty('trace_id');
    });
  });
});

describe('silentLogger', () => {
  it('accepts every call and writes nothing', () => {
    const logger = silentLogger();
    expect(() => {
      logger.error('nothing', { email: 'john@example.com' });
      logger.child({ a: 1 }).info('nothing either');
    }).not.toThrow();
    expect(logger.silent).toBe(true);
  });
});
