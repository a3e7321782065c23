/**
 * Glossary
 * - execution: one contact's run through one pinned version of a workflow; a row in `executions`
 *   holding the XState snapshot, the status and an optimistic `version`.
 * - step: one entry of a definition (an action, a wait or a condition); a state of the compiled machine.
 * - effect: a named action the machine asks for (`executeAction`, `evaluateCondition`, `startTimer`,
 *   `finishExecution`). Effects are data; the engine persists the snapshot that asks for them first.
 * - timer: a wait or a retry back-off; `next_run_at` in Postgres and a delayed job in Redis.
 * - goal: a contact event that completes every running execution of workflows that name it.
 */
import type { Clock } from '../clock.ts';
import type { Config } from '../config.ts';
import type { BatcherRegistry } from '../db/batch.ts';
import type { Pool, PrismaClient } from '../db/client.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { WebhookGuard } from '../providers/webhook-guard.ts';
import type { Cluster, Redis } from 'ioredis';
import type { EmailChannel } from '../providers/email-channel.ts';
import type { WorkQueue } from './work.ts';

/** Execution statuses (CONTRACT.md). */
export const EXECUTION_STATUSES = ['QUEUED', 'ACTIVE', 'PAUSED', 'COMPLETED', 'FAILED', 'CANCELLED'] as const;
export type ExecutionStatus = (typeof EXECUTION_STATUSES)[number];
export const TERMINAL_STATUSES: readonly ExecutionStatus[] = ['COMPLETED', 'FAILED', 'CANCELLED'];
/** Statuses with work still to do. */
export const RUNNING_STATUSES: readonly ExecutionStatus[] = ['QUEUED', 'ACTIVE', 'PAUSED'];

/** Everything the engine touches, assembled once in the entry points. */
export interface EngineDeps {
  db: PrismaClient;
  /** The same connections without the ORM, for the statements on the step and trigger paths. */
  pool: Pool;
  /** Group commit: the batchers of the pool's statements (db/batch.ts). */
  batchers: BatcherRegistry;
  queue: WorkQueue;
  /** Plain Redis connection for cross-process state (provider rate-limit windows). */
  redis: Redis | Cluster;
  clock: Clock;
  config: Config;
  logger: Logger;
  metrics: Metrics;
  /** Where `send_email` steps and admin notifications go (HTTP, SMTP or nowhere). */
  email: EmailChannel;
  /** Send-time address checks of webhook steps, and their connection pools. */
  webhooks: WebhookGuard;
}

/** One entry of an execution's log, before it is masked and stored. */
export interface LogEntry {
  eventType: string;
  status: string;
  stepIndex?: number | null;
  stepId?: string | null;
  durationMs?: number | null;
  timestamp?: Date;
  userId?: string | null;
  details?: Record<string, unknown>;
}
