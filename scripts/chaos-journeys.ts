/**
 * The journeys of the chaos run (issue #18): contacts that enter a workflow by an event, wait for
 * another event with a timeout, and may leave by an exit event, while the run's faults go on. Each
 * journey contact has a kind: the order never comes (`timeout`), comes well before the timeout
 * (`order`), comes within a few hundred milliseconds of it (`order_race`: event and timer race, and the
 * version check must let exactly one of them through), or the contact unsubscribes at a seeded moment
 * (`exit`). Some entries are sent twice at once with one Idempotency-Key. The checks below hold each
 * execution to what the API answered: an order the answer lists as `resumed` took the `received`
 * branch, one it does not list the `timeout` branch; an exit listed as `exited` ended the execution
 * `CANCELLED/exit_event` and nothing was sent after it; every step went out under one key.
 */
import type { PrismaClient } from '../src/db/client.ts';
import { STEP_FINISHED_EVENTS } from '../src/engine/consistency.ts';
import type { ChaosViolation, FaultWindow, RecordedRequest } from './chaos-checker.ts';

/** What happens to a journey contact after it entered. */
export const JOURNEY_KINDS = ['timeout', 'order', 'order_race', 'exit'] as const;
export type JourneyKind = (typeof JOURNEY_KINDS)[number];

/** Event names of the journey workflow. */
export const JOURNEY_EVENTS = { entry: 'cart_abandoned', order: 'order_placed', exit: 'unsubscribed' } as const;

/** One journey contact of the run and what is done to it. */
export interface PlannedJourney {
  index: number;
  contactId: string;
  kind: JourneyKind;
  /** `order`: after the wait started; `order_race`: relative to the timeout; `exit`: after the entry. */
  offsetMs: number;
  /** The entry is sent twice at once with the same Idempotency-Key: one execution must result. */
  doubleEntry: boolean;
  /** Set once the API answered the entry with this contact enrolled (or refused a repeat as a duplicate). */
  entered?: boolean;
  /**
   * The order or exit event, once sent: `applied` when the answer lists the execution as resumed or
   * exited, `refused` when it answered without it, `error` when no answer can be trusted.
   */
  result?: 'applied' | 'refused' | 'error';
  /** When the event's answer came back (epoch ms). */
  doneAt?: number;
}

/** Steps of the journey on each branch of its wait. */
export const JOURNEY_PATHS = {
  received: ['j_welcome', 'j_await', 'j_thanks', 'j_bye'],
  timeout: ['j_welcome', 'j_await', 'j_reminder', 'j_bye'],
} as const;
/** The journey's steps that call the email provider. */
export const JOURNEY_MESSAGE_STEPS = new Set(['j_welcome', 'j_thanks', 'j_reminder', 'j_bye']);

/**
 * The journey workflow: entered on `cart_abandoned` (when the cart is worth something), a welcome, a
 * `wait_for_event` for `order_placed` with a timeout of `timeoutSeconds`, a thank-you or a reminder,
 * and a goodbye; `unsubscribed` ends it. Re-entry `never`: a repeated entry must not start a second one.
 */
export function journeyWorkflow(timeoutSeconds: number) {
  const email = (id: string, subject: string) => ({
    id,
    type: 'send_email',
    config: { subject, body: 'Cart {{payload.cart}}' },
  });
  return {
    trigger: {
      type: 'event',
      event: JOURNEY_EVENTS.entry,
      where: { field: 'payload.total', operator: 'greater_than', value: 0 },
    },
    exit: { event: JOURNEY_EVENTS.exit },
    reentry: 'never',
    steps: [
      email('j_welcome', 'Your cart'),
      {
        id: 'j_await',
        type: 'wait_for_event',
        config: { event: JOURNEY_EVENTS.order, timeout: `${timeoutSeconds} seconds` },
        branches: {
          received: [email('j_thanks', 'Thanks for your order')],
          timeout: [email('j_reminder', 'Still there?')],
        },
      },
      email('j_bye', 'Goodbye'),
    ],
  };
}

/** What the journey checks counted, for the report. */
export interface JourneyFindings {
  /** Outcomes by kind and branch, e.g. `order_race received` or `exit exit_event`. */
  outcomes: Record<string, number>;
  /** Executions the accepted entries started (each exactly one). */
  executions: number;
  /**
   * Exited executions whose timed-out wait was still staged when the exit landed, so that the timeout
   * branch's first message, already under way, went out after the exit.
   */
  lateAfterTimer: number;
}

/** Inputs of {@link checkJourneys}: the plan, the provider's record and the run's outage windows. */
export interface JourneyRecord {
  journeys: PlannedJourney[];
  requests: RecordedRequest[];
  outages: FaultWindow[];
  maxRetryAttempts: number;
}

/** Checks every journey contact's execution against what its events were answered; reports through `fail`. */
export async function checkJourneys(
  db: PrismaClient,
  record: JourneyRecord,
  fail: (kind: ChaosViolation, message: string) => void,
): Promise<JourneyFindings> {
  const contacts = record.journeys.map((j) => j.contactId);
  const executions = await db.execution.findMany({
    where: { contactId: { in: contacts } },
    select: { id: true, contactId: true, status: true, completionReason: true, snapshot: true, finishedAt: true },
  });
  const logs = await db.executionLog.findMany({
    where: { executionId: { in: executions.map((e) => e.id) } },
    orderBy: { id: 'asc' },
    select: { executionId: true, eventType: true, stepId: true, timestamp: true, details: true },
  });
  const byContact = new Map<string, typeof executions>();
  for (const execution of executions)
    byContact.set(execution.contactId, [...(byContact.get(execution.contactId) ?? []), execution]);
  const logsOf = new Map<string, typeof logs>();
  for (const log of logs) logsOf.set(log.executionId!, [...(logsOf.get(log.executionId!) ?? []), log]);
  const requestsOf = new Map<string, RecordedRequest[]>();
  for (const request of record.requests)
    if (request.executionId)
      requestsOf.set(request.executionId, [...(requestsOf.get(request.executionId) ?? []), request]);
  const inOutage = (start: number, end: number) => record.outages.some((w) => start <= w.end && end >= w.start);

  const outcomes: Record<string, number> = {};
  let lateAfterTimer = 0;
  for (const journey of record.journeys) {
    const own = byContact.get(journey.contactId) ?? [];
    const who = `journey ${journey.index} (${journey.kind} ${journey.result ?? 'not sent'})`;
    if (own.length !== 1) {
      if (own.length > 0 || journey.entered) fail('executions_per_contact', `${who}: ${own.length} executions`);
      else fail('trigger_failed', `${who}: no execution (the API never accepted the entry)`);
      continue;
    }
    const row = own[0]!;
    const id = row.id;
    const snapshot = row.snapshot as { value: string; context: { failedStep: string | null } };
    const outcome = `${row.status}/${row.completionReason ?? ''}`;
    if (!['COMPLETED', 'FAILED', 'CANCELLED'].includes(row.status)) {
      fail('not_finished', `${who}: ${id} is still ${row.status} at ${snapshot.value}`);
      continue;
    }
    const ownLogs = logsOf.get(id) ?? [];
    const finished = ownLogs.filter((l) => l.eventType in STEP_FINISHED_EVENTS);
    const steps = finished.map((l) => l.stepId!);
    const branch = finished.some((l) => l.eventType === 'event_received')
      ? 'received'
      : finished.some((l) => l.eventType === 'wait_timed_out')
        ? 'timeout'
        : null;
    const onPath = (path: readonly string[]) => steps.every((step, i) => path[i] === step);
    const label = `${journey.kind} ${outcome === 'CANCELLED/exit_event' ? 'exit_event' : (branch ?? outcome)}`;
    outcomes[label] = (outcomes[label] ?? 0) + 1;

    // Which branch the answers allow: an order listed as resumed took `received`, one not listed `timeout`.
    const ordered = journey.kind === 'order' || journey.kind === 'order_race';
    const allowed: ('received' | 'timeout')[] =
      ordered && journey.result === 'applied'
        ? ['received']
        : ordered && journey.result === 'error'
          ? ['received', 'timeout']
          : ['timeout'];
    if (branch && !allowed.includes(branch))
      fail('wrong_path', `${who}: ${id} took the ${branch} branch, the answers allow ${allowed.join(' or ')}`);

    const exitApplied = journey.kind === 'exit' && journey.result === 'applied';
    let ok: boolean;
    if (outcome === 'COMPLETED/completed') {
      ok =
        !exitApplied &&
        branch !== null &&
        steps.join() === JOURNEY_PATHS[branch].join() &&
        (journey.kind !== 'exit' ||
          journey.result === 'error' ||
          (row.finishedAt !== null && journey.doneAt !== undefined && row.finishedAt.getTime() <= journey.doneAt));
    } else if (outcome === 'CANCELLED/exit_event') {
      ok =
        journey.kind === 'exit' &&
        journey.result !== 'refused' &&
        ownLogs.some((l) => l.eventType === 'exited') &&
        (onPath(JOURNEY_PATHS.timeout) || onPath(JOURNEY_PATHS.received));
    } else if (outcome === 'FAILED/max_retries_exhausted') {
      // Only when injected outages hit every attempt of a message step.
      const failedStep = snapshot.context.failedStep ?? '';
      const attempts = ownLogs.filter(
        (l) =>
          l.eventType === 'action_failed' &&
          l.stepId === failedStep &&
          (l.details as { retryable?: boolean }).retryable,
      );
      ok =
        JOURNEY_MESSAGE_STEPS.has(failedStep) &&
        attempts.length === record.maxRetryAttempts + 1 &&
        attempts.every((log) => inOutage(log.timestamp.getTime() - 1_500, log.timestamp.getTime() + 50));
    } else ok = false;
    if (!ok)
      fail(
        'wrong_outcome',
        `${who}: ${id} ended ${outcome} at ${snapshot.value} after ${steps.join(' > ') || 'no step'}`,
      );

    // Provider requests: only steps it reached (finished, or the next one on its path, where it stopped
    // or failed: a job in flight when the exit landed may still send that one), one key each.
    const reached = new Set(steps);
    for (const path of Object.values(JOURNEY_PATHS))
      if (onPath(path) && path[steps.length]) reached.add(path[steps.length]!);
    // A fired timer is not committed alone but with the next step (decide-step.ts, stagesBefore): a job
    // whose wait had timed out before the exit landed may still send the timeout branch's first message,
    // in flight like any step its job loaded. Only then, and counted apart.
    const waitStarted = ownLogs.find((l) => l.eventType === 'wait_started' && l.stepId === 'j_await');
    const stop = ownLogs.find((l) => l.eventType === 'exited' || l.eventType === 'execution_cancelled');
    const dueAt = Date.parse(String((waitStarted?.details as { resume_at?: unknown } | null)?.resume_at ?? ''));
    const timedOutBeforeStop = stop !== undefined && steps.join() === 'j_welcome' && dueAt <= stop.timestamp.getTime();
    if (timedOutBeforeStop && (requestsOf.get(id) ?? []).some((r) => r.stepId === JOURNEY_PATHS.timeout[2])) {
      reached.add(JOURNEY_PATHS.timeout[2]);
      lateAfterTimer += 1;
    }
    const keys = new Map<string, Set<string | undefined>>();
    for (const request of requestsOf.get(id) ?? []) {
      if (request.stepId === 'error_notification') continue;
      keys.set(request.stepId, (keys.get(request.stepId) ?? new Set()).add(request.key));
      if (!reached.has(request.stepId))
        fail('request_for_unreached_step', `${who}: ${id} request for ${request.stepId} after ${steps.join(' > ')}`);
      if (request.key !== `${id}:${request.stepId}`)
        fail('wrong_key', `${who}: ${id} ${request.stepId} sent with key ${request.key}`);
    }
    for (const [step, set] of keys)
      if (set.size > 1) fail('two_keys', `${who}: ${id} ${step} sent under ${set.size} keys`);
  }
  return { outcomes, executions: executions.length, lateAfterTimer };
}
