/**
 * The A/B part of the chaos run (issue #19): contacts of a second account enter, some of them several
 * times, a workflow with a `split` (50/50), a `branch` on a tag, and email steps under that account's
 * frequency caps (one transactional email bypasses them), while the run's faults go on; midway a new
 * version of the workflow is published with `"in_flight": "move"`, which keeps every step id but one (a
 * wait), so the executions running elsewhere move and those at that wait stay. The checks: one
 * `split_assigned` per execution that passed the split, with the contact's stable variant (split.ts) on
 * every execution of the contact, and the variants' share near their weights; no contact sent more
 * capped emails in a window than a cap allows, each counted in `message_sends`, each capped step sent
 * later rather than dropped, the transactional one never capped; a moved execution logged
 * `version_migrated` once and then ran only steps of the new version, one that was not moved was at the
 * removed step while the move ran; every step went out under one key.
 */
import type { PrismaClient } from '../src/db/client.ts';
import { STEP_FINISHED_EVENTS } from '../src/engine/consistency.ts';
import { assignVariant } from '../src/definition/split.ts';
import type { ChaosViolation, FaultWindow, RecordedRequest } from './chaos-checker.ts';

/** The split step and its variants (weights 50/50). */
export const SPLIT_STEP = 's_split';
export const SPLIT_VARIANTS = [
  { id: 'a', weight: 50 },
  { id: 'b', weight: 50 },
] as const;
type Variant = (typeof SPLIT_VARIANTS)[number]['id'];

/**
 * The caps of the split account: at most 1 email per contact in 3 seconds and 4 in 30 seconds, so a
 * contact's own steps and its overlapping re-entries hit them during the run.
 */
export const SPLIT_CAPS = [
  { channel: 'email', max: 1, per: '3 seconds', perMs: 3_000 },
  { channel: 'email', max: 4, per: '30 seconds', perMs: 30_000 },
] as const;
/** Email steps under the caps; `s_receipt` is transactional and bypasses them. */
export const CAPPED_STEPS = new Set(['s_hello', 's_a_offer', 's_b_offer', 's_bye']);
export const TRANSACTIONAL_STEP = 's_receipt';
/** The step version 2 removes: executions waiting there when it is published stay on version 1. */
export const REMOVED_STEP = 's_hold';
/** Steps that call the email provider. */
const MESSAGE_STEPS = new Set([...CAPPED_STEPS, TRANSACTIONAL_STEP]);
/**
 * How long after its count (`message_sends.sent_at`) a capped email may reach the provider and still be
 * placed in time by its request; one arriving later (its job redone after a worker died between the
 * count and the call) is placed at its count instead.
 */
const SEND_LAG_MS = 1_000;

/** The log entries {@link heldAt} reads, in the order they were written (by id). */
export type HeldLog = { eventType: string; stepId: string | null; timestamp: Date };

/** Entries of a step's commit stamped before the step was decided: the provider call's start, a redelivery. */
const STAMPED_EARLY = new Set(['action_started', 'recovered']);

/**
 * When an execution was at the wait step `stepId`, as its log tells it (epoch ms; Infinity when it never got
 * there, or never left): from its `wait_started`, written by the commit that entered the wait, until the
 * commit that left it. That commit is not the fired timer's own: a worker stages the timer into the next
 * step's commit (decide-step.ts `stagesBefore`), so `wait_completed` is stamped when the timer fired while the
 * row stays at the wait until that step, here an email, has been to the provider and back (a second or more
 * with a slow provider). The end is therefore the next entry stamped when its step was decided: the email's
 * outcome (sent, failed, capped). Every entry is stamped before the commit that writes it, which lands a moment
 * later.
 */
export function heldAt(logs: readonly HeldLog[], stepId: string): { from: number; until: number } {
  const from = logs.find((l) => l.stepId === stepId && l.eventType === 'wait_started')?.timestamp.getTime() ?? Infinity;
  const fired = logs.findIndex((l) => l.stepId === stepId && l.eventType === 'wait_completed');
  if (fired < 0) return { from, until: Infinity };
  const left = logs.slice(fired + 1).find((l) => !STAMPED_EARLY.has(l.eventType)) ?? logs[fired]!;
  return { from, until: left.timestamp.getTime() };
}

/**
 * How long after the entries it writes a commit may land: they are stamped when its step is decided, and
 * the statement follows at once (through the group commit, sent again alone when its batch failed).
 */
const COMMIT_LAG_MS = 1_000;

/** Re-entries of one contact are this far apart at least: beyond the trigger's 5 s deduplication window. */
export const REENTRY_GAP_MS = { min: 6_000, max: 12_000 } as const;

/** One entry of a split contact (a trigger with an Idempotency-Key) and what the API answered. */
export interface SplitEntry {
  /** After the run's start. */
  atMs: number;
  /** `started`: 202 with an execution; `duplicate`: refused by the deduplication window; `error`: no answer. */
  result?: 'started' | 'duplicate' | 'error';
  executionId?: string;
}

/** One contact of the split workflow: tagged VIP or not, entering one to three times. */
export interface PlannedSplitContact {
  index: number;
  contactId: string;
  vip: boolean;
  entries: SplitEntry[];
}

/**
 * The publish of version 2 with `in_flight: "move"`, and what each attempt answered: one without an
 * answer is sent again, which publishes version 3 (the same steps), and so on.
 */
export interface SplitPublish {
  /** After the run's start. */
  atMs: number;
  attempts: { startedAt: number; doneAt: number; status: number; version?: number; moved?: number; stayed?: number }[];
}

/**
 * The split workflow, version 1 or 2: an email, the split (variant `a` an email at once, `b` a 1 s wait
 * then an email), a branch (VIP: a transactional receipt; else a tag), a 3 s wait (`s_hold`, gone in
 * version 2) and a goodbye. Re-entry `always`: a contact may run several at once, and the caps count
 * across them.
 */
export function splitWorkflow(version: 1 | 2) {
  const email = (id: string, subject: string, transactional = false) => ({
    id,
    type: 'send_email',
    config: {
      subject: `${subject} (v${version})`,
      body: 'Hello {{first_name}}',
      ...(transactional ? { transactional } : {}),
    },
  });
  return {
    reentry: 'always',
    steps: [
      email('s_hello', 'Hello'),
      {
        id: SPLIT_STEP,
        type: 'split',
        config: { variants: SPLIT_VARIANTS },
        branches: {
          a: [email('s_a_offer', 'Offer A')],
          b: [{ id: 's_b_pause', type: 'wait', config: { duration: '1 second' } }, email('s_b_offer', 'Offer B')],
        },
      },
      {
        id: 's_branch',
        type: 'branch',
        config: { cases: [{ id: 'vip', when: { has_tag: 'VIP' } }] },
        branches: {
          vip: [email(TRANSACTIONAL_STEP, 'Your receipt', true)],
          default: [{ id: 's_note', type: 'add_tag', config: { tag: 'ab-regular' } }],
        },
      },
      ...(version === 1 ? [{ id: REMOVED_STEP, type: 'wait', config: { duration: '3 seconds' } }] : []),
      email('s_bye', 'Goodbye'),
    ],
  };
}

/** The steps a contact takes on a version, given its variant and its tag. */
export function splitPath(version: number, variant: Variant, vip: boolean): string[] {
  return [
    's_hello',
    SPLIT_STEP,
    ...(variant === 'a' ? ['s_a_offer'] : ['s_b_pause', 's_b_offer']),
    's_branch',
    vip ? TRANSACTIONAL_STEP : 's_note',
    ...(version === 1 ? [REMOVED_STEP] : []),
    's_bye',
  ];
}

/** The contact's variant by the stable hash of split.ts. */
export const expectedVariant = (contactId: string) => assignVariant(contactId, SPLIT_STEP, SPLIT_VARIANTS) as Variant;

/** Plans the split contacts: a tenth of the run's size, entries spread over `loadMs`. */
export function planSplits(
  random: { next: () => number; between: (min: number, max: number) => number },
  count: number,
  loadMs: number,
  newId: () => string,
): PlannedSplitContact[] {
  return Array.from({ length: count }, (_, index) => {
    const times = random.next() < 0.4 ? 1 : random.next() < 0.6 ? 2 : 3;
    let atMs = random.between(0, loadMs);
    const entries: SplitEntry[] = [];
    for (let i = 0; i < times; i += 1) {
      entries.push({ atMs });
      atMs += random.between(REENTRY_GAP_MS.min, REENTRY_GAP_MS.max);
    }
    return { index, contactId: newId(), vip: random.next() < 0.3, entries };
  });
}

/** What the split checks counted, for the report. */
export interface SplitFindings {
  contacts: number;
  executions: number;
  /** Contacts per variant, and executions that passed the split. */
  variants: Record<string, number>;
  splitExecutions: number;
  /** `frequency_capped` entries, the executions with one, and the transactional receipts sent uncapped. */
  capped: number;
  cappedExecutions: number;
  transactional: number;
  /** Capped emails that reached the provider more than SEND_LAG_MS after their count (placed at the count). */
  lateSends: number;
  /** Executions moved to version 2, left on version 1 at the removed step, started on version 2. */
  moved: number;
  stayed: number;
  startedOnNew: number;
  /** Entries refused by the deduplication window (a retried trigger landing near the next one). */
  duplicates: number;
}

/** Inputs of {@link checkSplits}. */
export interface SplitRecord {
  contacts: PlannedSplitContact[];
  publish: SplitPublish;
  /** The workflow's version ids by number. */
  versionIds: Map<number, string>;
  requests: RecordedRequest[];
  outages: FaultWindow[];
  maxRetryAttempts: number;
}

/** Checks the split contacts' executions, the caps and the move; reports through `fail`. */
export async function checkSplits(
  db: PrismaClient,
  record: SplitRecord,
  fail: (kind: ChaosViolation, message: string) => void,
): Promise<SplitFindings> {
  const contactIds = record.contacts.map((c) => c.contactId);
  const executions = await db.execution.findMany({
    where: { contactId: { in: contactIds } },
    select: {
      id: true,
      contactId: true,
      status: true,
      completionReason: true,
      snapshot: true,
      createdAt: true,
      finishedAt: true,
      workflowVersionId: true,
    },
  });
  const logs = await db.executionLog.findMany({
    where: { executionId: { in: executions.map((e) => e.id) } },
    orderBy: { id: 'asc' },
    select: { id: true, executionId: true, eventType: true, stepId: true, timestamp: true, details: true },
  });
  const sends = await db.messageSend.findMany({ where: { contactId: { in: contactIds } } });
  const versionOf = new Map([...record.versionIds].map(([number, id]) => [id, number]));
  const group = <T, K>(items: T[], keyOf: (item: T) => K) => {
    const groups = new Map<K, T[]>();
    for (const item of items) groups.set(keyOf(item), [...(groups.get(keyOf(item)) ?? []), item]);
    return groups;
  };
  const byContact = group(executions, (e) => e.contactId);
  const logsOf = group(logs, (l) => l.executionId!);
  const requestsOf = group(
    record.requests.filter((r) => r.executionId && r.stepId !== 'error_notification'),
    (r) => r.executionId!,
  );
  const sendOf = new Map(sends.map((s) => [`${s.executionId}:${s.stepId}`, s]));
  const inOutage = (start: number, end: number) => record.outages.some((w) => start <= w.end && end >= w.start);
  const answered = record.publish.attempts.filter((a) => a.status === 200 && a.version !== undefined);
  /** Executions that logged a move to each version. */
  const movedTo = new Map<number, number>();

  const findings: SplitFindings = {
    contacts: record.contacts.length,
    executions: executions.length,
    variants: {},
    splitExecutions: 0,
    capped: 0,
    cappedExecutions: 0,
    transactional: 0,
    lateSends: 0,
    moved: 0,
    stayed: 0,
    startedOnNew: 0,
    duplicates: 0,
  };
  for (const contact of record.contacts) {
    const who = `split contact ${contact.index}`;
    const variant = expectedVariant(contact.contactId);
    const own = byContact.get(contact.contactId) ?? [];
    const started = contact.entries.filter((e) => e.result === 'started');
    findings.duplicates += contact.entries.filter((e) => e.result === 'duplicate').length;
    const unknown = contact.entries.filter((e) => e.result === undefined || e.result === 'error').length;
    if (own.length < started.length || own.length > started.length + unknown)
      fail('executions_per_contact', `${who}: ${own.length} executions for ${started.length} started entries`);
    if (unknown > 0) fail('trigger_failed', `${who}: ${unknown} entries got no answer`);
    let reachedSplit = false;
    /** The contact's capped emails: when each reached the provider, and when the engine counted it. */
    const delivered: { key: string; at: number; counted: number }[] = [];

    for (const row of own) {
      const id = row.id;
      const ownLogs = logsOf.get(id) ?? [];
      const snapshot = row.snapshot as { value: string; context: { failedStep: string | null } };
      const outcome = `${row.status}/${row.completionReason ?? ''}`;
      const label = `${who} ${id}`;
      if (!['COMPLETED', 'FAILED', 'CANCELLED'].includes(row.status)) {
        fail('not_finished', `${label} is still ${row.status} at ${snapshot.value}`);
        continue;
      }
      const finished = ownLogs.filter((l) => l.eventType in STEP_FINISHED_EVENTS);
      const steps = finished.map((l) => l.stepId!);

      // The split: one entry when passed, with the contact's stable variant.
      const assigned = ownLogs.filter((l) => l.eventType === 'split_assigned');
      const variants = assigned.map((l) => String((l.details as { variant?: unknown }).variant));
      if (steps.includes(SPLIT_STEP)) {
        reachedSplit = true;
        findings.splitExecutions += 1;
        if (assigned.length !== 1 || variants[0] !== variant)
          fail(
            'split_variant',
            `${label}: split_assigned [${variants.join(', ')}], expected exactly one "${variant}" (the contact's hash)`,
          );
      } else if (assigned.length > 0)
        fail('split_variant', `${label}: ${assigned.length} split_assigned but the split never finished`);

      // The versions: the one it started on, then each move once, from the version it was on to a later
      // one, ending on the one it is on; after its first move only steps of the new versions (all of
      // them those of version 2).
      const migrations = ownLogs.filter((l) => l.eventType === 'version_migrated');
      const moves = migrations.map((l) => l.details as { from_version?: number; to_version?: number });
      const move = migrations[0];
      const finalVersion = versionOf.get(row.workflowVersionId) ?? 0;
      const startVersion = moves[0]?.from_version ?? finalVersion;
      const chain = [startVersion, ...moves.map((m) => m.to_version ?? 0)];
      if (
        !moves.every((m, i) => m.from_version === chain[i] && m.to_version! > m.from_version!) ||
        chain.at(-1) !== finalVersion
      )
        fail('version_move', `${label}: moved along versions ${chain.join(' > ')}, now on version ${finalVersion}`);
      for (const m of moves) movedTo.set(m.to_version ?? 0, (movedTo.get(m.to_version ?? 0) ?? 0) + 1);
      if (move) {
        findings.moved += 1;
        const newSteps = splitPath(2, variant, contact.vip);
        const after = finished.filter((l) => l.id > move.id).map((l) => l.stepId!);
        if (!newSteps.includes(move.stepId ?? '') || after.some((step) => !newSteps.includes(step)))
          fail(
            'version_move',
            `${label}: moved at ${move.stepId}, then ran ${after.join(' > ') || 'nothing'}; the new version has ${newSteps.join(' > ')}`,
          );
      } else if (finalVersion >= 2) findings.startedOnNew += 1;
      // Running through a publish on an older version without moving to it: only at the step it removed,
      // where the move read it (between the publish's start and its answer).
      const held = heldAt(ownLogs, REMOVED_STEP);
      const iso = (ms: number) => (Number.isFinite(ms) ? new Date(ms).toISOString() : 'never');
      for (const publish of answered) {
        const through =
          row.createdAt.getTime() < publish.startedAt - 1_000 &&
          (row.finishedAt?.getTime() ?? Infinity) > publish.doneAt &&
          finalVersion < publish.version! &&
          !moves.some((m) => m.to_version === publish.version);
        if (!through) continue;
        if (startVersion === 1 && held.from <= publish.doneAt && held.until + COMMIT_LAG_MS >= publish.startedAt)
          findings.stayed += 1;
        else
          fail(
            'move_missed',
            `${label} ran through the publish of version ${publish.version} on version ${finalVersion} without moving, not at ${REMOVED_STEP} then (there from ${iso(held.from)} until ${iso(held.until)}; the publish ran from ${iso(publish.startedAt)} to ${iso(publish.doneAt)}; ${steps.join(' > ')})`,
          );
      }

      // The path: the old version's up to the step it moved at, the new version's from there.
      const before = splitPath(startVersion, variant, contact.vip);
      const later = splitPath(finalVersion, variant, contact.vip);
      const path = move
        ? [
            ...before.slice(0, Math.max(0, before.indexOf(move.stepId ?? ''))),
            ...later.slice(Math.max(0, later.indexOf(move.stepId ?? ''))),
          ]
        : later;
      const onPath = steps.every((step, i) => path[i] === step);
      let ok: boolean;
      if (outcome === 'COMPLETED/completed') ok = steps.join() === path.join();
      else if (outcome === 'FAILED/max_retries_exhausted') {
        // Only when injected outages hit every attempt of a message step.
        const failedStep = snapshot.context.failedStep ?? '';
        const attempts = ownLogs.filter(
          (l) =>
            l.eventType === 'action_failed' &&
            l.stepId === failedStep &&
            (l.details as { retryable?: boolean }).retryable,
        );
        ok =
          onPath &&
          path[steps.length] === failedStep &&
          MESSAGE_STEPS.has(failedStep) &&
          attempts.length === record.maxRetryAttempts + 1 &&
          attempts.every((log) => inOutage(log.timestamp.getTime() - 1_500, log.timestamp.getTime() + 50));
      } else ok = false;
      if (!ok)
        fail('wrong_outcome', `${label} ended ${outcome} at ${snapshot.value} after ${steps.join(' > ') || 'no step'}`);

      // Caps: each capped step sent later, not dropped; the transactional one never held back nor counted.
      const capped = ownLogs.filter((l) => l.eventType === 'frequency_capped');
      findings.capped += capped.length;
      if (capped.length > 0) findings.cappedExecutions += 1;
      for (const log of capped) {
        if (log.stepId === TRANSACTIONAL_STEP)
          fail('transactional_capped', `${label}: the transactional ${TRANSACTIONAL_STEP} was frequency_capped`);
        else if (
          !steps.includes(log.stepId!) &&
          !(row.status === 'FAILED' && snapshot.context.failedStep === log.stepId)
        )
          fail('cap_not_resumed', `${label}: ${log.stepId} was frequency_capped and never sent (${outcome})`);
      }
      if (sendOf.has(`${id}:${TRANSACTIONAL_STEP}`))
        fail('transactional_capped', `${label}: the transactional ${TRANSACTIONAL_STEP} was counted in message_sends`);

      // Provider requests: one key per step, only for steps it reached.
      const reached = new Set([...steps, ...(onPath && path[steps.length] ? [path[steps.length]!] : [])]);
      const keys = new Map<string, Set<string | undefined>>();
      const requests = requestsOf.get(id) ?? [];
      for (const request of requests) {
        keys.set(request.stepId, (keys.get(request.stepId) ?? new Set()).add(request.key));
        if (!reached.has(request.stepId))
          fail('request_for_unreached_step', `${label}: request for ${request.stepId} after ${steps.join(' > ')}`);
        if (request.key !== `${id}:${request.stepId}`)
          fail('wrong_key', `${label}: ${request.stepId} sent with key ${request.key}`);
      }
      for (const [step, set] of keys)
        if (set.size > 1) fail('two_keys', `${label}: ${step} sent under ${set.size} keys`);
      if (steps.includes(TRANSACTIONAL_STEP)) findings.transactional += 1;
      for (const step of CAPPED_STEPS) {
        const first = requests.filter((r) => r.stepId === step).sort((a, b) => a.at - b.at)[0];
        if (!first) continue;
        const count = sendOf.get(`${id}:${step}`);
        if (!count) {
          fail('cap_uncounted', `${label}: ${step} reached the provider but was never counted in message_sends`);
          continue;
        }
        const counted = count.sentAt.getTime();
        if (first.at - counted > SEND_LAG_MS) findings.lateSends += 1;
        delivered.push({ key: `${id}:${step}`, at: first.at - counted > SEND_LAG_MS ? counted : first.at, counted });
      }
    }
    if (reachedSplit) findings.variants[variant] = (findings.variants[variant] ?? 0) + 1;

    // No window of a cap holds more of the contact's emails than it allows: by the engine's count, and
    // by the provider's record (each email placed within SEND_LAG_MS after its count, so a window
    // SEND_LAG_MS shorter must hold no more than `max`).
    const counts = sends
      .filter((s) => s.contactId === contact.contactId && s.channel === 'email')
      .map((s) => s.sentAt.getTime())
      .sort((a, b) => a - b);
    const arrivals = delivered.map((d) => d.at).sort((a, b) => a - b);
    for (const cap of SPLIT_CAPS) {
      for (let i = 0; i + cap.max < counts.length; i += 1)
        if (counts[i + cap.max]! - counts[i]! < cap.perMs)
          fail(
            'frequency_cap',
            `${who}: ${cap.max + 1} emails counted within ${counts[i + cap.max]! - counts[i]!} ms (cap ${cap.max} per ${cap.per})`,
          );
      for (let i = 0; i + cap.max < arrivals.length; i += 1)
        if (arrivals[i + cap.max]! - arrivals[i]! < cap.perMs - SEND_LAG_MS)
          fail(
            'frequency_cap',
            `${who}: ${cap.max + 1} emails reached the provider within ${arrivals[i + cap.max]! - arrivals[i]!} ms (cap ${cap.max} per ${cap.per})`,
          );
    }
  }

  // Each publish answered what happened: as many executions moved to its version as it says.
  for (const publish of answered)
    if (publish.moved !== (movedTo.get(publish.version!) ?? 0))
      fail(
        'version_move',
        `the publish of version ${publish.version} answered ${publish.moved} moved, ${movedTo.get(publish.version!) ?? 0} logged version_migrated to it`,
      );
  if (answered.length === 0) fail('version_move', 'no publish of a new version was answered 200');

  // The variants' share: within 4.5 standard deviations of the weights (a false alarm about once in 150,000 runs).
  const n = Object.values(findings.variants).reduce((a, b) => a + b, 0);
  const total = SPLIT_VARIANTS.reduce((sum, v) => sum + v.weight, 0);
  for (const { id, weight } of SPLIT_VARIANTS) {
    const p = weight / total;
    const share = (findings.variants[id] ?? 0) / Math.max(1, n);
    if (n > 0 && Math.abs(share - p) > 4.5 * Math.sqrt((p * (1 - p)) / n) + 1 / n)
      fail('split_share', `variant ${id}: ${findings.variants[id] ?? 0} of ${n} contacts, weight ${weight}/${total}`);
  }
  return findings;
}
