import { initialTransition, transition } from 'xstate';
import {
  CASE_EVENT,
  FINAL_STATES,
  type CompiledWorkflow,
  type ExecutionEvent,
  type FinalState,
  VARIANT_EVENT,
} from '../compiler/compile.ts';
import type { PrismaClient, Tx } from '../db/client.ts';
import { stepIndexOf, storedSnapshotSchema, type StoredSnapshot } from './snapshot.ts';
import { TERMINAL_STATUSES } from './types.ts';
import { WorkflowCache } from './workflow-cache.ts';

/**
 * Consistency checks over a whole database: the invariants the engine keeps between an execution's
 * row, its snapshot, its log and its account, read from one consistent snapshot of the database
 * (a read-only REPEATABLE READ transaction), so they hold even while workers are running.
 */

/** Every kind of violation the check can report. */
export const VIOLATION_KINDS = [
  /** The stored snapshot does not parse, or names a state its workflow does not have. */
  'snapshot_invalid',
  /** Status and snapshot disagree (final state ↔ terminal status, PAUSED off a wait step, `waiting` outside QUEUED, completion reason). */
  'status_mismatch',
  /** `current_step_index` is not what the snapshot's `context.steps` gives (the 1-based position of its step, 0 before the first, the steps done once completed). */
  'step_index_mismatch',
  /** A terminal execution without `finished_at`, or with a pending `next_run_at`. */
  'terminal_fields',
  /** A PAUSED execution without `next_run_at`. */
  'paused_without_timer',
  /** A slot shard's `used` differs from the number of the account's ACTIVE executions holding one of its slots. */
  'active_count_mismatch',
  /** The quotas of an account's slot shards add up neither to its limit nor to 0 (a limit lowered below use). */
  'slot_quota_mismatch',
  /** An account has more ACTIVE executions than its concurrency limit, other than after the limit was lowered (its slots then have no quota). */
  'active_over_limit',
  /** The number of steps the log records as finished differs from the snapshot's `context.steps`, or a step finished twice. */
  'log_step_count',
  /** The finished steps of the log, replayed through the workflow's machine, do not lead to the snapshot. */
  'log_path',
  /** Not exactly one `execution_started` entry. */
  'started_log',
  /** A terminal execution without exactly one terminal entry matching its status, or a running one with one. */
  'terminal_log',
  /** An entry after the terminal one other than a notification (or a refused duplicate trigger). */
  'log_after_terminal',
  /** A running execution nobody has touched for too long, or a timer overdue for too long. */
  'stuck',
  /**
   * The stats counters (workflow_counts and its unfolded deltas) differ from the executions of a version
   * in a status at a step, or count fewer log entries of a type at a step than the workflow's log holds
   * (more is right once LOG_RETENTION_DAYS dropped old entries).
   */
  'counts_mismatch',
] as const;
export type ViolationKind = (typeof VIOLATION_KINDS)[number];

/** One broken invariant. */
export interface Violation {
  kind: ViolationKind;
  execution_id?: string;
  account_id?: string;
  message: string;
}

/** What {@link checkConsistency} found. */
export interface ConsistencyReport {
  ok: boolean;
  checked_at: string;
  executions: number;
  accounts: number;
  violations_total: number;
  violations_by_kind: Record<ViolationKind, number>;
  /** The violations, at most `maxListed` of them. */
  violations: Violation[];
}

/** Options of {@link checkConsistency}. */
export interface ConsistencyOptions {
  /** Reference time of the stuck checks. @defaultValue the current time */
  now?: Date;
  /**
   * A running execution counts as stuck when it is ACTIVE (no timer) or QUEUED (not in the
   * account's waiting line) and untouched for longer than this, or when its timer (wait, retry
   * back-off) is overdue by more than this. @defaultValue 300000 (5 minutes)
   */
  stuckAfterMs?: number;
  /** Most violations listed in the report (all are counted). @defaultValue 1000 */
  maxListed?: number;
  /** Executions read per batch. @defaultValue 500 */
  batchSize?: number;
}

/**
 * Log entries that record a step as finished, with the machine event that finished it. Exactly one
 * per step on the path taken: `action_failed` is not one (a transient failure is retried; a
 * permanent one is followed by `skipped_non_retryable_error`, which is).
 */
export const STEP_FINISHED_EVENTS: Record<string, (details: Record<string, unknown>) => ExecutionEvent | null> = {
  action_completed: () => ({ type: 'STEP_DONE' }),
  action_skipped: () => ({ type: 'STEP_SKIPPED' }),
  skipped_opted_out: () => ({ type: 'STEP_SKIPPED' }),
  skipped_non_retryable_error: () => ({ type: 'STEP_SKIPPED' }),
  condition_evaluated: (details) =>
    typeof details.result === 'boolean' ? { type: 'CONDITION_RESULT', result: details.result } : null,
  wait_completed: () => ({ type: 'TIMER_FIRED' }),
  wait_timed_out: () => ({ type: 'TIMER_FIRED' }),
  event_received: (details) =>
    typeof details.event === 'string' ? { type: 'EVENT_RECEIVED', event: details.event } : null,
  split_assigned: (details) =>
    typeof details.variant === 'string' ? { type: `${VARIANT_EVENT}${details.variant}` } : null,
  branch_evaluated: (details) => (typeof details.case === 'string' ? { type: `${CASE_EVENT}${details.case}` } : null),
};

/** The entry that ends an execution, per terminal status. */
export const TERMINAL_LOGS: Record<string, string> = {
  execution_completed: 'COMPLETED',
  execution_failed: 'FAILED',
  execution_cancelled: 'CANCELLED',
};

/**
 * Entries that may follow the terminal one: the admin notification is sent after the failure is
 * committed, and a duplicate trigger refused while the execution ran is logged after that check.
 * `manual_retry` reopens a FAILED execution and starts a new segment of its log.
 */
export const AFTER_TERMINAL_LOGS = new Set(['notification_sent', 'notification_failed', 'deduplication_blocked']);

/** An execution row as the checks read it. */
export interface CheckedExecution {
  id: string;
  accountId: string;
  workflowVersionId: string;
  status: string;
  snapshot: unknown;
  currentStepIndex: number;
  completionReason: string | null;
  nextRunAt: Date | null;
  finishedAt: Date | null;
  updatedAt: Date;
  createdAt: Date;
  waiting: boolean;
}

/** A log entry as the checks read it. */
export interface CheckedLog {
  id: bigint;
  eventType: string;
  stepId: string | null;
  stepIndex: number | null;
  details: unknown;
}

const isTerminal = (status: string) => (TERMINAL_STATUSES as readonly string[]).includes(status);

/**
 * Checks every execution and account of the database. Reads only; the whole check runs in one
 * REPEATABLE READ transaction so rows and logs are seen as of one instant.
 */
export async function checkConsistency(db: PrismaClient, options: ConsistencyOptions = {}): Promise<ConsistencyReport> {
  const now = options.now ?? new Date();
  const maxListed = options.maxListed ?? 1_000;
  const counts = Object.fromEntries(VIOLATION_KINDS.map((kind) => [kind, 0])) as Record<ViolationKind, number>;
  const listed: Violation[] = [];
  const report = (violation: Violation) => {
    counts[violation.kind] += 1;
    if (listed.length < maxListed) listed.push(violation);
  };

  const { executions, accounts } = await db.$transaction(
    async (tx) => {
      await tx.$executeRaw`SET TRANSACTION READ ONLY`;
      const accountRows = await checkAccounts(tx, report);
      await checkCounts(tx, report);
      const executionCount = await checkExecutions(
        tx,
        { now, stuckAfterMs: options.stuckAfterMs ?? 300_000, batchSize: options.batchSize ?? 500 },
        report,
      );
      return { executions: executionCount, accounts: accountRows };
    },
    { isolationLevel: 'RepeatableRead', timeout: 30 * 60_000, maxWait: 30_000 },
  );
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  return {
    ok: total === 0,
    checked_at: now.toISOString(),
    executions,
    accounts,
    violations_total: total,
    violations_by_kind: counts,
    violations: listed,
  };
}

async function checkAccounts(tx: Tx, report: (v: Violation) => void): Promise<number> {
  // One statement, so the counters and the counts are read at the same instant. An ACTIVE execution with
  // no shard holds a slot of shard 0 (admitted before slots had shards).
  const rows = await tx.$queryRaw<
    {
      id: string;
      limit: number;
      active: number;
      quota: number;
      shards: { shard: number; used: number; holders: number }[];
    }[]
  >`
    WITH holders AS (
      SELECT account_id, coalesce(slot_shard, 0) AS shard, count(*)::int AS holders FROM executions WHERE status = 'ACTIVE' GROUP BY 1, 2),
    shards AS (
      SELECT coalesce(s.account_id, h.account_id) AS account_id, coalesce(s.shard, h.shard) AS shard,
             coalesce(s.used, 0) AS used, coalesce(s.quota, 0) AS quota, coalesce(h.holders, 0) AS holders
      FROM account_slots s FULL JOIN holders h ON h.account_id = s.account_id AND h.shard = s.shard)
    SELECT a.id, a.concurrent_executions_per_account AS "limit", coalesce(sum(s.holders), 0)::int AS active, coalesce(sum(s.quota), 0)::int AS quota,
           coalesce(json_agg(json_build_object('shard', s.shard, 'used', s.used, 'holders', s.holders)) FILTER (WHERE s.shard IS NOT NULL), '[]') AS shards
    FROM accounts a LEFT JOIN shards s ON s.account_id = a.id GROUP BY a.id`;
  for (const row of rows) {
    for (const shard of row.shards.filter((s) => s.used !== s.holders)) {
      report({
        kind: 'active_count_mismatch',
        account_id: row.id,
        message: `slot shard ${shard.shard} counts ${shard.used} but ${shard.holders} ACTIVE executions hold its slots`,
      });
    }
    if (row.quota !== row.limit && row.quota !== 0) {
      report({
        kind: 'slot_quota_mismatch',
        account_id: row.id,
        message: `slot quotas add up to ${row.quota}, not the limit of ${row.limit}`,
      });
    }
    if (row.active > row.limit && row.quota !== 0) {
      report({
        kind: 'active_over_limit',
        account_id: row.id,
        message: `${row.active} ACTIVE executions exceed the limit of ${row.limit}`,
      });
    }
  }
  return rows.length;
}

async function checkCounts(tx: Tx, report: (v: Violation) => void): Promise<void> {
  // One statement, so counters and rows are read at the same instant. Executions are compared per
  // version; log entries per workflow (a moved execution's earlier entries count under its old version).
  const rows = await tx.$queryRaw<
    { account_id: string; workflow_id: string; key: string; counted: number; actual: number; exact: boolean }[]
  >`
    WITH counted AS (
      SELECT c.workflow_id, CASE WHEN c.event_type = '' THEN c.workflow_version_id END AS version_id,
             c.status, c.step_id, c.completion_reason, c.event_type, sum(c.n)::bigint AS n
      FROM (SELECT workflow_id, workflow_version_id, status, step_id, completion_reason, event_type, n FROM workflow_counts
            UNION ALL
            SELECT workflow_id, workflow_version_id, status, step_id, completion_reason, event_type, n FROM workflow_count_deltas) c
      WHERE EXISTS (SELECT 1 FROM workflows w WHERE w.id = c.workflow_id)
      GROUP BY 1, 2, 3, 4, 5, 6),
    actual AS (
      SELECT k.workflow_id, k.workflow_version_id AS version_id, k.status, k.step_id, k.completion_reason, '' AS event_type, count(*) AS n
        FROM executions r, LATERAL flowmachine_count_as(r) k GROUP BY 1, 2, 3, 4, 5
      UNION ALL
      SELECT e.workflow_id, NULL::uuid, '', l.step_id, '', l.event_type, count(*)
        FROM execution_logs l JOIN executions e ON e.id = l.execution_id
        WHERE l.step_id IS NOT NULL AND NOT (l.event_type = 'action_started' AND flowmachine_count_attempt(l.details) > 1)
        GROUP BY 1, 2, 3, 4, 5, 6)
    SELECT w.account_id, w.id AS workflow_id,
           concat_ws(' ', 'version ' || v.version, nullif(k.status, ''), nullif(k.completion_reason, ''),
                     'step ' || nullif(k.step_id, ''), nullif(k.event_type, '')) AS key,
           coalesce(c.n, 0)::int AS counted, coalesce(a.n, 0)::int AS actual, k.event_type = '' AS exact
    FROM counted c FULL JOIN actual a ON a.workflow_id = c.workflow_id AND a.version_id IS NOT DISTINCT FROM c.version_id
      AND a.status = c.status AND a.step_id = c.step_id AND a.completion_reason = c.completion_reason AND a.event_type = c.event_type
    CROSS JOIN LATERAL (SELECT coalesce(c.workflow_id, a.workflow_id) AS workflow_id, coalesce(c.version_id, a.version_id) AS version_id,
                               coalesce(c.status, a.status) AS status, coalesce(c.step_id, a.step_id) AS step_id,
                               coalesce(c.completion_reason, a.completion_reason) AS completion_reason,
                               coalesce(c.event_type, a.event_type) AS event_type) k
    JOIN workflows w ON w.id = k.workflow_id
    LEFT JOIN workflow_versions v ON v.id = k.version_id
    WHERE CASE WHEN k.event_type = '' THEN coalesce(c.n, 0) <> coalesce(a.n, 0) ELSE coalesce(c.n, 0) < coalesce(a.n, 0) END`;
  for (const row of rows)
    report({
      kind: 'counts_mismatch',
      account_id: row.account_id,
      message: `workflow ${row.workflow_id}, ${row.key}: counted ${row.counted}, ${row.exact ? '' : 'at least '}${row.actual} stored`,
    });
}

async function checkExecutions(
  tx: Tx,
  options: { now: Date; stuckAfterMs: number; batchSize: number },
  report: (v: Violation) => void,
): Promise<number> {
  const cache = new WorkflowCache();
  const invalid = new Set<string>();
  // LOG_RETENTION_DAYS may have dropped the log rows of finished executions from before this time.
  const retention = await tx.logRetention.findUnique({ where: { tableName: 'execution_logs' } });
  const checkOptions = { ...options, logsPrunedBefore: retention?.prunedBefore ?? null };
  let cursor: string | undefined;
  let checked = 0;
  for (;;) {
    const rows: CheckedExecution[] = await tx.execution.findMany({
      where: cursor ? { id: { gt: cursor } } : {},
      orderBy: { id: 'asc' },
      take: options.batchSize,
      select: {
        id: true,
        accountId: true,
        workflowVersionId: true,
        status: true,
        snapshot: true,
        currentStepIndex: true,
        completionReason: true,
        nextRunAt: true,
        finishedAt: true,
        updatedAt: true,
        createdAt: true,
        waiting: true,
      },
    });
    if (rows.length === 0) break;
    const versions = [...new Set(rows.map((r) => r.workflowVersionId))].filter(
      (id) => !cache.get(id) && !invalid.has(id),
    );
    for (const version of await tx.workflowVersion.findMany({
      where: { id: { in: versions } },
      select: { id: true, definition: true },
    })) {
      try {
        cache.compile(version.id, version.definition);
      } catch {
        invalid.add(version.id);
      }
    }
    const logs = await tx.executionLog.findMany({
      where: { executionId: { in: rows.map((r) => r.id) } },
      orderBy: { id: 'asc' },
      select: { id: true, executionId: true, eventType: true, stepId: true, stepIndex: true, details: true },
    });
    const byExecution = new Map<string, CheckedLog[]>(rows.map((r) => [r.id, []]));
    for (const log of logs) byExecution.get(log.executionId!)!.push(log);
    for (const row of rows) {
      for (const violation of checkExecution(
        row,
        byExecution.get(row.id) ?? [],
        cache.get(row.workflowVersionId) ?? null,
        checkOptions,
      ))
        report(violation);
    }
    checked += rows.length;
    cursor = rows.at(-1)!.id;
  }
  return checked;
}

/**
 * The invariants of one execution, given its row, its log in insertion order and its compiled
 * workflow (`null` when the stored definition no longer compiles). Pure.
 *
 * Retention (LOG_RETENTION_DAYS) drops whole months of log rows, oldest first, but never those of an
 * execution running at the time: so an execution created before `logsPrunedBefore` whose log lacks its
 * `execution_started` entry had its earlier rows dropped while it was finished. Its log is not checked
 * (its row and snapshot still are); a running execution keeps its whole log and is checked in full,
 * as is any execution whose `execution_started` entry is there.
 */
export function checkExecution(
  row: CheckedExecution,
  logs: CheckedLog[],
  workflow: CompiledWorkflow | null,
  options: { now: Date; stuckAfterMs: number; logsPrunedBefore?: Date | null },
): Violation[] {
  const violations: Violation[] = [];
  const add = (kind: ViolationKind, message: string) =>
    violations.push({ kind, execution_id: row.id, account_id: row.accountId, message });
  const terminal = isTerminal(row.status);

  // Row fields that do not need the snapshot.
  if (terminal && !row.finishedAt) add('terminal_fields', `${row.status} without finished_at`);
  if (terminal && row.nextRunAt)
    add('terminal_fields', `${row.status} with next_run_at ${row.nextRunAt.toISOString()}`);
  if (row.status === 'PAUSED' && !row.nextRunAt) add('paused_without_timer', 'PAUSED without next_run_at');
  if (row.waiting && row.status !== 'QUEUED') add('status_mismatch', `waiting in line with status ${row.status}`);
  checkStuck(row, options, add);

  // Log structure (not of a log whose start retention dropped: see above).
  const started = logs.filter((l) => l.eventType === 'execution_started').length;
  const pruned = started === 0 && !!options.logsPrunedBefore && row.createdAt < options.logsPrunedBefore;
  if (!pruned) checkLogStructure(row, logs, started, add);

  // Finished steps: one entry per step of the path.
  const finished = logs.filter((l) => l.eventType in STEP_FINISHED_EVENTS);
  const perStep = new Map<string, number>();
  for (const entry of finished) perStep.set(String(entry.stepId), (perStep.get(String(entry.stepId)) ?? 0) + 1);
  if (!pruned)
    for (const [stepId, count] of perStep)
      if (count > 1) add('log_step_count', `step ${stepId} finished ${count} times`);

  // The snapshot itself.
  const parsed = storedSnapshotSchema.safeParse(row.snapshot);
  if (!parsed.success) {
    add(
      'snapshot_invalid',
      `snapshot does not parse: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
    return violations;
  }
  const stored = parsed.data;
  if (!pruned && perStep.size !== stored.context.steps)
    add('log_step_count', `${perStep.size} steps finished in the log, snapshot context.steps ${stored.context.steps}`);
  // Index 0 (not started) is possible only for an execution never admitted: no step in its log, and not
  // running or failed. Whether a pruned log had steps is unknown: either reading is accepted.
  const begun =
    row.currentStepIndex !== 0 ||
    ['ACTIVE', 'PAUSED', 'FAILED'].includes(row.status) ||
    logs.some((l) => l.stepId !== null);
  const expectedIndex = stepIndexOf(stored, begun);
  if (row.currentStepIndex !== expectedIndex && !(pruned && row.currentStepIndex === stepIndexOf(stored, !begun))) {
    add(
      'step_index_mismatch',
      `current_step_index ${row.currentStepIndex}, expected ${expectedIndex} (snapshot context.steps ${stored.context.steps})`,
    );
  }
  // A message its contact's frequency cap holds back is PAUSED at its step: the step's last entry says so
  // (a move to another version, logged at the same step, changes nothing about it).
  const capped =
    logs.findLast((l) => l.stepId === stored.value && l.eventType !== 'version_migrated')?.eventType ===
    'frequency_capped';
  checkStatus(row, stored, workflow, capped, add);
  if (!pruned && workflow && perStep.size === finished.length) checkPath(stored, logs, finished, workflow, add);
  return violations;
}

/** One `execution_started` entry, one terminal entry matching a terminal status (none while running), nothing after it but notifications. */
function checkLogStructure(
  row: CheckedExecution,
  logs: CheckedLog[],
  started: number,
  add: (kind: ViolationKind, message: string) => void,
) {
  const terminal = isTerminal(row.status);
  if (started !== 1) add('started_log', `${started} execution_started entries`);
  const lastRetry = logs.findLastIndex((l) => l.eventType === 'manual_retry');
  const segment = logs.slice(lastRetry + 1);
  const ends = segment.filter((l) => l.eventType in TERMINAL_LOGS).map((l) => l.eventType);
  if (terminal ? ends.length !== 1 || TERMINAL_LOGS[ends[0]!] !== row.status : ends.length > 0) {
    add('terminal_log', `${ends.length > 0 ? ends.join(', ') : 'no terminal entry'} for a ${row.status} execution`);
  }
  const end = segment.findIndex((l) => l.eventType in TERMINAL_LOGS);
  const after =
    end < 0
      ? []
      : segment.slice(end + 1).filter((l) => !(l.eventType in TERMINAL_LOGS) && !AFTER_TERMINAL_LOGS.has(l.eventType));
  if (after.length > 0)
    add('log_after_terminal', `entries after ${segment[end]!.eventType}: ${after.map((l) => l.eventType).join(', ')}`);
}

function checkStuck(
  row: CheckedExecution,
  options: { now: Date; stuckAfterMs: number },
  add: (kind: ViolationKind, message: string) => void,
) {
  const limit = options.now.getTime() - options.stuckAfterMs;
  const age = (date: Date) => `${Math.round((options.now.getTime() - date.getTime()) / 1000)} s`;
  if (row.status === 'PAUSED' || (row.status === 'ACTIVE' && row.nextRunAt)) {
    if (row.nextRunAt && row.nextRunAt.getTime() < limit)
      add('stuck', `${row.status} with a timer overdue by ${age(row.nextRunAt)}`);
  } else if (
    (row.status === 'ACTIVE' || (row.status === 'QUEUED' && !row.waiting)) &&
    row.updatedAt.getTime() < limit
  ) {
    add('stuck', `${row.status} and untouched for ${age(row.updatedAt)}`);
  }
}

function checkStatus(
  row: CheckedExecution,
  stored: StoredSnapshot,
  workflow: CompiledWorkflow | null,
  capped: boolean,
  add: (kind: ViolationKind, message: string) => void,
) {
  const final = stored.value in FINAL_STATES ? FINAL_STATES[stored.value as FinalState] : null;
  if (final) {
    if (row.status !== final.status)
      add('status_mismatch', `snapshot is in ${stored.value} but status is ${row.status}`);
    const reason = stored.context.reason ?? final.reason;
    if (row.status === final.status && row.completionReason !== reason)
      add('status_mismatch', `completion_reason ${row.completionReason}, expected ${reason}`);
    return;
  }
  if (isTerminal(row.status))
    add('status_mismatch', `status ${row.status} but the snapshot is at step ${stored.value}`);
  if (!workflow) return;
  const step = workflow.steps.get(stored.value)?.step;
  if (!step) add('snapshot_invalid', `snapshot names ${stored.value}, which is not a step of its workflow`);
  else if (row.status === 'PAUSED' && !pausesAt(workflow, step.type, capped))
    add('status_mismatch', `PAUSED at ${step.type} step ${step.id}`);
}

/**
 * Steps an execution may be PAUSED at: waits, messages a send window defers, and a message its
 * frequency cap holds back (`capped`) (never a split or a branch, decided at once).
 */
function pausesAt(workflow: CompiledWorkflow, type: string, capped: boolean): boolean {
  if (type === 'wait' || type === 'wait_until' || type === 'wait_for_event') return true;
  if (capped && (type === 'send_email' || type === 'send_sms')) return true;
  return !!workflow.definition.send_window && ['send_email', 'send_sms', 'webhook'].includes(type);
}

/** Where replaying finished-step entries led: the state reached, or the first entry off the machine's path. */
export interface Replay {
  at: string;
  problem: string | null;
}

/**
 * Replays finished-step entries (in commit order) through the workflow's machine: each must be the
 * step the execution was at, with `step_index` its 1-based position (the steps finished before it, plus one).
 * Returns the state the entries lead to, e.g. the step a cancelled execution was stopped at. Pure.
 * `from` starts the replay at a step with that many steps finished before it (where the execution moved
 * to this version) instead of at the start.
 */
export function replayFinishedSteps(
  workflow: CompiledWorkflow,
  finished: CheckedLog[],
  from?: { stepId: string; steps: number },
): Replay {
  let [snapshot] = from
    ? [
        workflow.machine.resolveState({
          value: from.stepId,
          context: { steps: from.steps, failedStep: null, reason: null },
        }),
      ]
    : initialTransition(workflow.machine);
  const offset = from?.steps ?? 0;
  for (const [index, entry] of finished.entries()) {
    const at = String(snapshot.value);
    const event = STEP_FINISHED_EVENTS[entry.eventType]?.((entry.details ?? {}) as Record<string, unknown>);
    if (entry.stepId !== at || !event) {
      return {
        at,
        problem: `${entry.eventType} of step ${entry.stepId} while the replayed execution is at ${at}${event ? '' : ' (no condition result, variant or case recorded)'}`,
      };
    }
    if (entry.stepIndex !== offset + index + 1)
      return {
        at,
        problem: `${entry.eventType} of step ${entry.stepId} has step_index ${entry.stepIndex}, expected ${offset + index + 1}`,
      };
    [snapshot] = transition(workflow.machine, snapshot, event);
  }
  return { at: String(snapshot.value), problem: null };
}

/**
 * The replay must end where the snapshot is: a failed execution at the step that failed, a cancelled
 * or goal-completed one at some step (where it was stopped), any other at its snapshot's state. An
 * execution moved to its version (`version_migrated`) is replayed on it from the step it moved at: the
 * steps before were taken on an older version, which may lack them.
 */
function checkPath(
  stored: StoredSnapshot,
  logs: CheckedLog[],
  finished: CheckedLog[],
  workflow: CompiledWorkflow,
  add: (kind: ViolationKind, message: string) => void,
) {
  const move = logs.findLast((l) => l.eventType === 'version_migrated' && l.stepId !== null);
  const after = move ? finished.filter((l) => l.id > move.id) : finished;
  const replay = replayFinishedSteps(
    workflow,
    after,
    move ? { stepId: move.stepId!, steps: finished.length - after.length } : undefined,
  );
  if (replay.problem) return add('log_path', replay.problem);
  const expected =
    stored.value === 'failed'
      ? stored.context.failedStep
      : stored.value === 'cancelled' || stored.value === 'goal_achieved'
        ? replay.at in FINAL_STATES
          ? null
          : replay.at
        : stored.value;
  if (replay.at !== expected)
    add(
      'log_path',
      `the log leads to ${replay.at} but the snapshot is ${stored.value}${stored.value === 'failed' ? ` (failed at ${stored.context.failedStep})` : ''}`,
    );
}
