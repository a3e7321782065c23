/**
 * The chaos run's workload model and its final checks: what each execution's inputs imply, and
 * whether the database and the provider's record of requests agree with that after the run.
 * The checks read the run's own database once everything has stopped.
 */
import type { PrismaClient } from '../src/db/client.ts';
import {
  checkConsistency,
  replayFinishedSteps,
  STEP_FINISHED_EVENTS,
  TERMINAL_LOGS,
  type ConsistencyReport,
} from '../src/engine/consistency.ts';
import { WorkflowCache } from '../src/engine/workflow-cache.ts';

/** What a contact's data makes of its execution when nothing interferes. */
export const FATES = ['basic', 'vip', 'vip_no_phone', 'rejected', 'doomed'] as const;
export type Fate = (typeof FATES)[number];

/** An outside action on a running execution, fired at a seeded moment. */
export const INTERVENTIONS = ['cancel', 'delete', 'goal_early', 'goal_race', 'cancel_vs_goal'] as const;
export type InterventionKind = (typeof INTERVENTIONS)[number];

/** One planned intervention and, once fired, what the API answered. */
export interface Intervention {
  kind: InterventionKind;
  /** After the trigger (`goal_race`: relative to the wait's resume time). */
  offsetMs: number;
  /** `applied`: the API reports it stopped the execution; `refused`: it was already finished; `error`: unknown. */
  result?: 'applied' | 'refused' | 'error';
  /** When the API call that decided the result returned (epoch ms). */
  doneAt?: number;
  /** `cancel_vs_goal`: which of the two concurrent calls reports it stopped the execution. */
  winner?: 'cancel' | 'goal' | 'both';
}

/** One contact of the run and what is done to it. */
export interface PlannedExecution {
  index: number;
  contactId: string;
  fate: Fate;
  intervention: Intervention | null;
  /** Triggered twice at once (a double click): exactly one execution must result. */
  doubleTrigger: boolean;
  /** Tags added through the API while the execution runs (`ok` once the API answered 200); none may be lost. */
  tagAdds: { tag: string; offsetMs: number; ok?: boolean }[];
  /** Set once the API accepted the trigger (202, or 200/409 after a retried request). */
  triggered?: boolean;
}

/** How the fake provider answered a request. */
export type Answer = 'ok' | 'failure' | 'rate_limited' | 'hang' | 'rejected';

/** One request the fake providers received, attributed to an execution and step. */
export interface RecordedRequest {
  key: string | undefined;
  /** From the body (`execution_id`), or `null` for webhooks, which name their contact (`ref`). */
  executionId: string | null;
  ref: number | null;
  stepId: string;
  at: number;
  answer: Answer;
}

/** A span of time in which the provider failed on purpose. */
export interface FaultWindow {
  kind: string;
  start: number;
  end: number;
}

/** Everything the run recorded, for the checks. */
export interface ChaosRecord {
  plan: PlannedExecution[];
  requests: RecordedRequest[];
  /** Provider outages (503 and hangs), to tell an injected failure from an unexplained one. */
  outages: FaultWindow[];
  maxRetryAttempts: number;
  /** Problems of the processes themselves (a graceful shutdown that did not exit 0, an unexpected exit). */
  processProblems: string[];
  /** Consistency checks run while the faults were going on (stuck executions aside). */
  live: { checks: number; violations: string[]; maxActive: number; maxWaiting: number };
  /** Executions started outside `plan` (journeys and A/B, checked by chaos-journeys.ts and chaos-splits.ts), for the balance. */
  otherExecutions?: number;
}

/** Steps of the chaos workflow on each fate's path (the doomed path ends failing at `doom`). */
export const PATHS: Record<Fate, string[]> = {
  basic: ['welcome', 'tag', 'pause', 'fate', 'reject_check', 'vip', 'offer', 'goodbye'],
  vip: ['welcome', 'tag', 'pause', 'fate', 'reject_check', 'vip', 'vip_sms', 'goodbye'],
  vip_no_phone: ['welcome', 'tag', 'pause', 'fate', 'reject_check', 'vip', 'vip_sms', 'goodbye'],
  rejected: ['welcome', 'tag', 'pause', 'fate', 'reject_check', 'reject', 'goodbye'],
  doomed: ['welcome', 'tag', 'pause', 'fate', 'doom'],
};
/** Steps that end in a permanent error and are skipped, per fate. */
const SKIPPED: Partial<Record<Fate, string>> = { vip_no_phone: 'vip_sms', rejected: 'reject' };
/** Steps that call the email/SMS provider (the one that suffers outages). */
const MAIN_PROVIDER_STEPS = new Set(['welcome', 'offer', 'vip_sms', 'goodbye']);

/**
 * The chaos workflow: actions, a wait, conditions on an attribute and a tag, webhooks to a provider
 * that always fails (`doomed`) and one that always refuses (`rejected`), and a goal.
 */
export function chaosWorkflow(urls: { broken: string; rejecting: string }, waitSeconds: number) {
  const hook = (id: string, url: string) => ({
    id,
    type: 'webhook',
    config: { url, method: 'POST', body: '{"ref": {{ref}}}' },
  });
  return {
    goal: { event: 'appointment_booked' },
    reentry: 'never',
    steps: [
      { id: 'welcome', type: 'send_email', config: { subject: 'Welcome {{first_name}}', body: 'Glad to have you.' } },
      { id: 'tag', type: 'add_tag', config: { tag: 'welcomed' } },
      { id: 'pause', type: 'wait', config: { duration: `${waitSeconds} seconds` } },
      {
        id: 'fate',
        type: 'condition',
        config: { field: 'plan', operator: 'equals', value: 'doomed' },
        branches: {
          true: [hook('doom', `${urls.broken}/doom`)],
          false: [
            {
              id: 'reject_check',
              type: 'condition',
              config: { field: 'plan', operator: 'equals', value: 'rejected' },
              branches: {
                true: [hook('reject', `${urls.rejecting}/reject`)],
                false: [
                  {
                    id: 'vip',
                    type: 'condition',
                    config: { has_tag: 'VIP' },
                    branches: {
                      true: [{ id: 'vip_sms', type: 'send_sms', config: { body: 'Your VIP offer' } }],
                      false: [{ id: 'offer', type: 'send_email', config: { subject: 'An offer', body: 'For you.' } }],
                    },
                  },
                ],
              },
            },
          ],
        },
      },
      { id: 'goodbye', type: 'send_email', config: { subject: 'Thanks', body: 'See you soon.' } },
    ],
  };
}

/** Every kind of violation the run can find; a clean run reports 0 of each. */
export const CHAOS_VIOLATIONS = [
  'trigger_failed',
  'executions_per_contact',
  'not_finished',
  'wrong_outcome',
  'wrong_path',
  'retries_not_exhausted',
  'two_keys',
  'wrong_key',
  'not_delivered',
  'request_for_unreached_step',
  'notification_twice',
  'counters',
  'process',
  'consistency',
  'consistency_live',
  'lost_tag',
  'split_variant',
  'split_share',
  'frequency_cap',
  'cap_uncounted',
  'cap_not_resumed',
  'transactional_capped',
  'version_move',
  'move_missed',
] as const;
export type ChaosViolation = (typeof CHAOS_VIOLATIONS)[number];

/** What the checks found. */
export interface ChaosFindings {
  violations: Record<ChaosViolation, number>;
  /** A few examples per kind. */
  examples: Partial<Record<ChaosViolation, string[]>>;
  consistency: ConsistencyReport;
  outcomes: Record<string, number>;
  stats: {
    requests: number;
    keys: number;
    /** Requests repeating a key: retries after a failed answer, and duplicates of a delivered step. */
    resendsAfterFailure: number;
    duplicatesAfterSuccess: number;
    /** Requests after the commit that stopped their execution (cancel, deletion, goal). */
    lateInFlight: number;
    lateDuplicates: number;
    lateMaxMs: number;
    /** Normal executions failed because injected outages hit every attempt. */
    failedByOutage: number;
    /** Transient failures that no injected outage explains (timeouts of a busy machine), by error. */
    unexplainedFailures: number;
    unexplainedErrors: Record<string, number>;
    recoveredLogs: number;
    failedWithoutNotification: number;
  };
}

interface LogRow {
  id: bigint;
  executionId: string | null;
  eventType: string;
  stepId: string | null;
  stepIndex: number | null;
  timestamp: Date;
  details: unknown;
}

/** Checks the finished run against its record. */
export async function checkChaosRun(db: PrismaClient, record: ChaosRecord): Promise<ChaosFindings> {
  const violations = Object.fromEntries(CHAOS_VIOLATIONS.map((kind) => [kind, 0])) as Record<ChaosViolation, number>;
  const examples: Partial<Record<ChaosViolation, string[]>> = {};
  const fail = (kind: ChaosViolation, message: string) => {
    violations[kind] += 1;
    if ((examples[kind] ??= []).length < 5) examples[kind]!.push(message);
  };
  for (const problem of record.processProblems) fail('process', problem);
  for (const violation of record.live.violations) fail('consistency_live', violation);

  const consistency = await checkConsistency(db, { stuckAfterMs: 30_000 });
  for (const violation of consistency.violations)
    fail('consistency', `${violation.kind} ${violation.execution_id ?? violation.account_id}: ${violation.message}`);

  const executions = await db.execution.findMany({
    select: {
      id: true,
      contactId: true,
      status: true,
      completionReason: true,
      snapshot: true,
      finishedAt: true,
      workflowVersionId: true,
    },
  });
  const logRows: LogRow[] = await db.executionLog.findMany({
    where: { executionId: { not: null } },
    orderBy: { id: 'asc' },
    select: {
      id: true,
      executionId: true,
      eventType: true,
      stepId: true,
      stepIndex: true,
      timestamp: true,
      details: true,
    },
  });
  const logsOf = groupBy(logRows, (log) => log.executionId!);
  const cache = new WorkflowCache();
  for (const version of await db.workflowVersion.findMany()) cache.compile(version.id, version.definition);
  const tagsOf = new Map(
    (await db.contact.findMany({ select: { id: true, tags: true } })).map((c) => [c.id, new Set(c.tags)]),
  );
  const byContact = groupBy(executions, (execution) => execution.contactId);

  // Requests by execution and step.
  const planByRef = new Map(record.plan.map((p) => [p.index, p]));
  const requestsOf = groupBy(
    record.requests,
    (r) => r.executionId ?? byContact.get(planByRef.get(r.ref ?? -1)?.contactId ?? '')?.[0]?.id ?? 'unknown',
  );

  const outcomes: Record<string, number> = {};
  const stats: ChaosFindings['stats'] = {
    requests: record.requests.length,
    keys: new Set(record.requests.map((r) => r.key)).size,
    resendsAfterFailure: 0,
    duplicatesAfterSuccess: 0,
    lateInFlight: 0,
    lateDuplicates: 0,
    lateMaxMs: 0,
    failedByOutage: 0,
    unexplainedFailures: 0,
    unexplainedErrors: {},
    recoveredLogs: logRows.filter((l) => l.eventType === 'recovered').length,
    failedWithoutNotification: 0,
  };
  const inOutage = (start: number, end: number) => record.outages.some((w) => start <= w.end && end >= w.start);

  for (const planned of record.plan) {
    const own = byContact.get(planned.contactId) ?? [];
    if (own.length === 0) {
      fail(
        planned.triggered ? 'executions_per_contact' : 'trigger_failed',
        `contact ${planned.index}: no execution${planned.triggered ? '' : ' (the API never accepted the trigger)'}`,
      );
      continue;
    }
    if (own.length > 1) fail('executions_per_contact', `contact ${planned.index}: ${own.length} executions`);
    const row = own[0]!;
    const id = row.id;
    const logs = logsOf.get(id) ?? [];
    const snapshot = row.snapshot as { value: string; context: { failedStep: string | null } };
    const outcome = `${row.status}/${row.completionReason ?? ''}`;
    const terminal = ['COMPLETED', 'FAILED', 'CANCELLED'].includes(row.status);
    const label = terminal ? (row.completionReason ?? row.status) : row.status;
    outcomes[label] = (outcomes[label] ?? 0) + 1;
    if (!terminal) {
      fail(
        'not_finished',
        `${id} (${planned.fate}, ${planned.intervention?.kind ?? 'no intervention'}) is still ${row.status} at ${snapshot.value}`,
      );
      continue;
    }

    const finished = logs.filter((l) => l.eventType in STEP_FINISHED_EVENTS);
    const steps = finished.map((l) => l.stepId!);
    // Tags: the step's and the API's, added concurrently, must all be kept.
    const tags = tagsOf.get(planned.contactId) ?? new Set();
    for (const tag of [
      ...planned.tagAdds.filter((t) => t.ok).map((t) => t.tag),
      ...(steps.includes('tag') ? ['welcomed'] : []),
    ]) {
      if (!tags.has(tag))
        fail(
          'lost_tag',
          `contact ${planned.index} (${id}): tag ${tag} was added but is gone; tags are [${[...tags].join(', ')}]`,
        );
    }
    const workflow = cache.get(row.workflowVersionId)!;
    const replay = replayFinishedSteps(workflow, finished);
    const path = PATHS[planned.fate];
    const onPath = steps.every((step, i) => path[i] === step);
    const failures = (step: string) =>
      logs.filter(
        (l) => l.eventType === 'action_failed' && l.stepId === step && (l.details as { retryable?: boolean }).retryable,
      );

    // Failures of main-provider steps that no injected outage explains.
    for (const [i, log] of logs.entries()) {
      if (
        log.eventType !== 'action_failed' ||
        !(log.details as { retryable?: boolean }).retryable ||
        !MAIN_PROVIDER_STEPS.has(log.stepId ?? '')
      )
        continue;
      const started = logs.slice(0, i).findLast((l) => l.eventType === 'action_started' && l.stepId === log.stepId);
      if (inOutage((started?.timestamp ?? log.timestamp).getTime() - 50, log.timestamp.getTime() + 50)) continue;
      stats.unexplainedFailures += 1;
      const error = String((log.details as { error?: unknown }).error ?? 'unknown').slice(0, 60);
      stats.unexplainedErrors[error] = (stats.unexplainedErrors[error] ?? 0) + 1;
    }

    // Reports a failure that did not use up exactly its retries; the outcome itself is right, so it says true.
    const exhausted = (step: string) => {
      const count = failures(step).length;
      const exhaustedLogs = logs.filter((l) => l.eventType === 'max_retries_exhausted').length;
      if (count !== record.maxRetryAttempts + 1 || exhaustedLogs !== 1) {
        fail(
          'retries_not_exhausted',
          `${id} failed at ${step} after ${count} failed attempts (${exhaustedLogs} max_retries_exhausted), expected ${record.maxRetryAttempts + 1}`,
        );
      }
      return true;
    };
    const natural = (): boolean => {
      if (planned.fate === 'doomed') {
        return (
          outcome === 'FAILED/max_retries_exhausted' &&
          snapshot.context.failedStep === 'doom' &&
          steps.join() === path.slice(0, -1).join() &&
          exhausted('doom')
        );
      }
      if (outcome === 'COMPLETED/completed') {
        if (steps.join() !== path.join())
          fail('wrong_path', `${id} (${planned.fate}) completed ${steps.join(' > ')}, expected ${path.join(' > ')}`);
        const skipped = SKIPPED[planned.fate];
        const skips = finished.filter((l) => l.eventType === 'skipped_non_retryable_error').map((l) => l.stepId);
        if (skips.join() !== (skipped ?? ''))
          fail('wrong_path', `${id} (${planned.fate}) skipped [${skips.join()}], expected [${skipped ?? ''}]`);
        return true;
      }
      // A normal execution may fail only if injected outages hit every one of its attempts.
      const failedStep = snapshot.context.failedStep ?? '';
      if (
        outcome !== 'FAILED/max_retries_exhausted' ||
        !MAIN_PROVIDER_STEPS.has(failedStep) ||
        !onPath ||
        path[steps.length] !== failedStep
      )
        return false;
      const attempts = failures(failedStep);
      const explained = attempts.every((log) => {
        const started = logs
          .filter((l) => l.id < log.id && l.eventType === 'action_started' && l.stepId === failedStep)
          .at(-1);
        return inOutage((started?.timestamp ?? log.timestamp).getTime() - 50, log.timestamp.getTime() + 50);
      });
      if (explained && exhausted(failedStep)) stats.failedByOutage += 1;
      return explained;
    };
    const stopOutcome = {
      cancel: 'CANCELLED/cancelled',
      delete: 'CANCELLED/contact_deleted',
      goal_early: 'COMPLETED/goal_achieved',
      goal_race: 'COMPLETED/goal_achieved',
      cancel_vs_goal:
        planned.intervention?.winner === 'goal'
          ? 'COMPLETED/goal_achieved'
          : planned.intervention?.winner === 'cancel'
            ? 'CANCELLED/cancelled'
            : null,
    };
    const stopped = () => {
      if (!planned.intervention) return false;
      const expected = stopOutcome[planned.intervention.kind];
      // An unknown result (an API error) of cancel_vs_goal allows either stop.
      if (
        expected
          ? outcome !== expected
          : !(
              planned.intervention.result === 'error' &&
              ['CANCELLED/cancelled', 'COMPLETED/goal_achieved'].includes(outcome)
            )
      )
        return false;
      if (!onPath || replay.at !== path[steps.length])
        fail('wrong_path', `${id} (${planned.fate}) stopped at ${replay.at} after ${steps.join(' > ')}`);
      return true;
    };
    const finishedBefore = (at: number | undefined) =>
      at !== undefined && row.finishedAt !== null && row.finishedAt.getTime() <= at;

    const intervention = planned.intervention;
    let ok: boolean;
    if (!intervention) ok = natural();
    else if (intervention.result === 'applied')
      ok = stopped() || (intervention.kind === 'delete' && finishedBefore(intervention.doneAt) && natural());
    else if (intervention.result === 'refused') ok = finishedBefore(intervention.doneAt) && natural();
    else ok = stopped() || natural();
    if (!ok) {
      fail(
        'wrong_outcome',
        `${id} (${planned.fate}, ${intervention ? `${intervention.kind} ${intervention.result ?? 'not sent'}${intervention.winner ? ` (${intervention.winner})` : ''}` : 'no intervention'}) ended ${outcome} at ${snapshot.value} after ${steps.join(' > ') || 'no step'}`,
      );
    }

    // Provider requests of this execution.
    const requests = requestsOf.get(id) ?? [];
    const reached = new Set([...steps, replay.at, ...(row.status === 'FAILED' ? ['error_notification'] : [])]);
    const keysOf = new Map<string, Set<string | undefined>>();
    for (const request of requests) {
      keysOf.set(request.stepId, (keysOf.get(request.stepId) ?? new Set()).add(request.key));
      if (!reached.has(request.stepId))
        fail(
          'request_for_unreached_step',
          `${id}: request for ${request.stepId}, which it never reached (${steps.join(' > ')})`,
        );
      const expected =
        request.stepId === 'error_notification'
          ? new RegExp(`^${id}:error_notification:\\d+$`)
          : new RegExp(`^${id}:${request.stepId}$`);
      if (!request.key || !expected.test(request.key))
        fail('wrong_key', `${id}: ${request.stepId} sent with key ${request.key}`);
    }
    for (const [step, keys] of keysOf)
      if (keys.size > 1) fail('two_keys', `${id}: ${step} sent under ${keys.size} keys: ${[...keys].join(', ')}`);
    const byKey = groupBy(requests, (r) => r.key);
    for (const sent of byKey.values()) {
      for (let i = 1; i < sent.length; i += 1) {
        if (sent.slice(0, i).some((r) => r.answer === 'ok')) stats.duplicatesAfterSuccess += 1;
        else stats.resendsAfterFailure += 1;
      }
    }
    // At least once: a step logged as completed was answered with success by the provider.
    for (const log of finished) {
      if (log.eventType !== 'action_completed' || !MAIN_PROVIDER_STEPS.has(log.stepId ?? '')) continue;
      if (!(byKey.get(`${id}:${log.stepId}`) ?? []).some((r) => r.answer === 'ok'))
        fail(
          'not_delivered',
          `${id}: ${log.stepId} logged as completed, but the provider never answered it with success`,
        );
    }
    // After the commit that stopped the execution only calls already in flight can arrive: for the
    // step it was stopped at, or (a job running twice) a step it had finished. Never a later step.
    const stop = logs.find((l) => l.eventType === 'execution_cancelled' || l.eventType === 'goal_achieved');
    if (stop) {
      for (const request of requests.filter(
        (r) => r.at > stop.timestamp.getTime() && r.stepId !== 'error_notification',
      )) {
        if (request.stepId === replay.at) stats.lateInFlight += 1;
        else if (steps.includes(request.stepId)) stats.lateDuplicates += 1;
        stats.lateMaxMs = Math.max(stats.lateMaxMs, request.at - stop.timestamp.getTime());
      }
    }
    if (row.status === 'FAILED') {
      // A notification failing transiently is retried: one entry per attempt, at most one of them sent.
      const notifications = logs.filter(
        (l) => l.eventType === 'notification_sent' || l.eventType === 'notification_failed',
      );
      const attempts = notifications.map((l) => (l.details as { attempt?: number } | null)?.attempt ?? 1);
      const sent = notifications.filter((l) => l.eventType === 'notification_sent').length;
      if (new Set(attempts).size < attempts.length || sent > 1)
        fail(
          'notification_twice',
          `${id}: admin notification entries for attempts ${attempts.join(', ')} (${sent} sent) for one failure`,
        );
      if (notifications.length === 0) stats.failedWithoutNotification += 1;
    }
  }

  // Counters balance: every started execution ended exactly once.
  const count = (types: string[]) => logRows.filter((l) => types.includes(l.eventType)).length;
  const started = count(['execution_started']);
  const ended = count(Object.keys(TERMINAL_LOGS));
  if (started !== executions.length || ended !== started)
    fail('counters', `${executions.length} executions, ${started} execution_started, ${ended} terminal entries`);
  const expectedExecutions = record.plan.filter((p) => p.triggered).length + (record.otherExecutions ?? 0);
  if (executions.length !== expectedExecutions)
    fail('counters', `${executions.length} executions for ${expectedExecutions} accepted triggers`);
  return { violations, examples, consistency, outcomes, stats };
}

function groupBy<T, K>(items: T[], keyOf: (item: T) => K): Map<K, T[]> {
  const groups = new Map<K, T[]>();
  for (const item of items) {
    const key = keyOf(item);
    const group = groups.get(key);
    if (group) group.push(item);
    else groups.set(key, [item]);
  }
  return groups;
}
