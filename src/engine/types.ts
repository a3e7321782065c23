/**
 * Glossary: every concept one engine step meets, in the order a job meets them.
 * - execution: one contact's run through one pinned version of a workflow; a row in `executions`
 *   holding the XState snapshot, the status and an optimistic `version` (every commit is at `version + 1`).
 * - step: one entry of a definition (an action, a wait, a condition); a state of the compiled machine.
 * - job: "execution X has work due as of version V" in the queue (engine/work.ts); everything else is read
 *   from Postgres, so any job can be rebuilt from it. A job for an older version is `stale` and does nothing.
 * - recovered / redelivered: a job the sweeper rebuilt after a loss, or one BullMQ gave out again after
 *   its worker died; its step logs `recovered`.
 * - slot: the account's concurrency limit, in shards (`account_slots`); an ACTIVE execution holds one.
 *   A commit's slot operation (`keep`, `release`, `acquire`, `acquire_in_line`) moves it.
 * - admission: taking a slot; done in the same call as a job's load. With no free slot, the execution
 *   waits in line (QUEUED, `waiting`), holding no job, until a commit that frees a slot admits it.
 * - effect: a named action the machine asks for on entering a state (`executeAction`, `evaluateCondition`,
 *   `startTimer`, `finishExecution`). Effects are data; the engine persists the snapshot that asks for them
 *   first, then executes the one due (effects.ts) and decides what its outcome changes (decide-step.ts).
 * - decision: what one step writes (row fields, log rows, tag change, slot operation) and does next:
 *   commit and enqueue, commit and continue in the same job, or stage (see below).
 * - staging: a step that only reads or changes the execution and its contact (a condition, a tag) right
 *   after another is not written alone but with the next step's commit (decide-step.ts `stagesBefore`).
 * - timer: a wait or a retry back-off: `next_run_at` in Postgres and a delayed job in Redis when due within
 *   the horizon (`TIMER_HORIZON_MS`); the sweeper promotes later ones.
 * - goal: a contact event that completes every running execution of workflows that name it.
 * - notification: the email to an account's admin after a failure; `notify_pending` until it is settled.
 */
import type { Clock } from '../clock.ts';
import type { Config } from '../config.ts';
import type { ActionRunner } from '../actions/action.ts';
import type { CompiledWorkflow } from '../compiler/compile.ts';
import type { ExecutionRow, ExecutionStore } from '../store/execution-store.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { WebhookGuard } from '../providers/webhook-guard.ts';
import type { Cluster, Redis } from 'ioredis';
import type { EmailChannel } from '../providers/email-channel.ts';
import type { WorkQueue } from './work.ts';
import type { LogEventType } from '../vocabulary.ts';

export {
  EXECUTION_STATUSES,
  type ExecutionStatus,
  LOG_EVENT_TYPES,
  type LogEventType,
  RUNNING_STATUSES,
  TERMINAL_STATUSES,
} from '../vocabulary.ts';

/** Everything the engine touches, assembled once in the entry points. */
export interface EngineDeps {
  /** The engine's only door to Postgres. */
  store: ExecutionStore;
  /** Runs action steps (provider calls, tags). */
  actions: ActionRunner;
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

/** An execution together with its compiled workflow. */
export interface LoadedExecution {
  row: ExecutionRow;
  workflow: CompiledWorkflow;
}

/** One entry of an execution's log, before it is masked and stored. */
export interface LogEntry {
  eventType: LogEventType;
  status: string;
  stepIndex?: number | null;
  stepId?: string | null;
  durationMs?: number | null;
  timestamp?: Date;
  userId?: string | null;
  details?: Record<string, unknown>;
}
