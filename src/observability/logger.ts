import { isSpanContextValid, trace } from '@opentelemetry/api';
import winston from 'winston';
import { maskPii } from './mask.ts';

/** The structured logger used across the engine, API and worker. */
export type Logger = winston.Logger;

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /**
   * Lowest level written (`error`, `warn`, `info`, `http`, `verbose`, `debug`, `silly`).
   * @defaultValue `process.env.LOG_LEVEL ?? 'info'`
   */
  level?: string;
  /**
   * Value of the `service` field on every line.
   * @defaultValue `'flowmachine'`
   */
  service?: string;
  /**
   * Where JSON lines go; tests pass a `PassThrough` to read them back.
   * @defaultValue standard output
   */
  stream?: NodeJS.WritableStream;
}

/**
 * Marks log metadata whose fields were already masked with `maskPii` (the engine masks an entry once
 * for Postgres and writes the same fields to the log line), so the logger does not mask them again.
 */
export const PREMASKED = Symbol('premasked');

// Masks the message and every metadata field; runs after `errors()` so stacks are masked too.
const maskFields = winston.format((info) =>
  (info as { [PREMASKED]?: boolean })[PREMASKED] ? info : Object.assign(info, maskPii({ ...info })),
);

// Added after masking, like the timestamp: trace and span ids are hex and must reach the log line untouched.
const traceContext = winston.format((info) => {
  const spanContext = trace.getActiveSpan()?.spanContext();
  if (spanContext && isSpanContextValid(spanContext)) {
    info.trace_id = spanContext.traceId;
    info.span_id = spanContext.spanId;
  }
  return info;
});

/**
 * Creates a winston logger writing one JSON object per line with `level`, `message`, `timestamp`
 * (ISO 8601 with milliseconds), `service`, any metadata, and `trace_id`/`span_id` while an
 * OpenTelemetry span is active. The message and all metadata pass through PII masking first.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const { level = process.env.LOG_LEVEL ?? 'info', service = 'flowmachine', stream } = options;
  // winston formats every entry before its transport drops those below the level: drop them first.
  const enabled = winston.format((info) => logger.isLevelEnabled(info.level) && info);
  const logger = winston.createLogger({
    level,
    defaultMeta: { service },
    format: winston.format.combine(
      enabled(),
      winston.format.errors({ stack: true }),
      maskFields(),
      winston.format.timestamp(),
      traceContext(),
      winston.format.json(),
    ),
    transports: [stream ? new winston.transports.Stream({ stream }) : new winston.transports.Console()],
  });
  return logger;
}

/** A logger that writes nothing, for unit tests of code that takes a {@link Logger}. */
export function silentLogger(): Logger {
  return winston.createLogger({ silent: true });
}
