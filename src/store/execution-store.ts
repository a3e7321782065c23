import type { Account, Contact, Execution } from '../generated/prisma/client.ts';

/**
 * The engine's only door to Postgres: what it reads for a job, the one call that commits a step, the
 * triggers and enrollments, admission to free slots and the sweeper's reads. The implementation
 * (postgres-store.ts) owns how: the statements (src/sql/), the group commit, the slot shards, the column
 * names and the contact's JSON shape. Everything here is atomic per call.
 */
export interface ExecutionStore {
  /** An execution (optionally only within `accountId`) with its contact, account and workflow name. */
  load(executionId: string, accountId?: string): Promise<ExecutionRow | null>;
  /** Several executions of the account, as {@link load} reads each, in one call; those not found are left out. */
  loadMany(executionIds: readonly string[], accountId: string): Promise<ExecutionRow[]>;
  /**
   * The execution of a step's job, admitted in the same call when it is at the job's version and either
   * QUEUED and not waiting in line, or PAUSED with its timer due by `now` + `dueToleranceMs` (`flowmachine_admit_loaded`).
   */
  loadForJob(
    job: { executionId: string; version: number },
    now: Date,
    dueToleranceMs: number,
  ): Promise<LoadedForJob | null>;
  /** A workflow version's definition, as stored. */
  definitionOf(versionId: string): Promise<unknown>;
  /** Commits one step (`flowmachine_commit`); null when the execution is no longer at `request.version`. */
  commit(request: CommitRequest): Promise<CommitResult | null>;
  /**
   * Commits steps of several executions in one transaction (a bulk operation's batch), answered in request
   * order; null for each execution no longer at its request's version.
   */
  commitMany(requests: CommitRequest[]): Promise<(CommitResult | null)[]>;
  /** Enrolls one contact with every guard checked in the same call (`flowmachine_trigger`). */
  trigger(call: TriggerCall): Promise<TriggerAnswer>;
  /** The status and current version of a workflow of the account, for a bulk enrollment. */
  enrollTarget(workflowId: string, accountId: string): Promise<EnrollTarget | null>;
  /** Enrolls up to 100 contacts in one call, each checked as a trigger checks it (`flowmachine_enroll_many`). */
  enrollMany(call: EnrollManyCall): Promise<EnrolledRow[]>;
  /** Stores the `BLOCKED` entries of refused triggers of one workflow. */
  logRefusals(refusal: RefusalRows): Promise<void>;
  /** Admits up to `limit` executions waiting in line for the account's free slots; returns their jobs. */
  admitWaiting(accountId: string, limit: number): Promise<JobRef[]>;
  /** Running executions of a contact, all of them or those with the goal `goalEvent`. */
  runningOfContact(contactId: string, options?: { accountId: string; goalEvent: string }): Promise<string[]>;
  /** Executions of the contact waiting for the event `name` (`wait_for_event`), by the index of waiting ones. */
  waitingFor(contactId: string, name: string): Promise<string[]>;
  /** Running executions of the contact whose workflow version exits on the event `name`. */
  exitingOn(contactId: string, accountId: string, name: string): Promise<string[]>;
  /** The active workflows of the account whose current version is entered by the event `name`. */
  enteredBy(accountId: string, name: string): Promise<{ workflowId: string; versionId: string }[]>;
  /**
   * Adds or removes a tag of the account's contact and, when an add is new, enrolls the contact in the
   * workflows that tag enters, in one transaction (`flowmachine_tag_contact`); null when there is no such contact.
   */
  tagContact(change: TagContactChange): Promise<TaggedContact | null>;
  /** Soft-deletes a contact of the account; false when there is none (or it is deleted already). */
  deleteContact(contactId: string, accountId: string, now: Date): Promise<boolean>;
  /**
   * The frequency-cap check of one message (`flowmachine_cap_send`): records it as sent to the contact and
   * answers null, or answers when the caps next allow it; atomic with the count, and counted once per step.
   */
  capSend(call: CapSendCall): Promise<Date | null>;
  /** Logs one attempt at a failure notification, if it still is the next one (`flowmachine_log_notification`). */
  logNotification(attempt: NotificationAttempt): Promise<boolean>;
  /** Running executions of the workflow on versions other than `versionId`, by id after `after`, at most `limit`. */
  runningOnOtherVersions(workflowId: string, versionId: string, after: string, limit: number): Promise<string[]>;
  /** Of those, how many are at one of `stepIds` (would move to a version with them) and how many are not. */
  countMovable(
    workflowId: string,
    versionId: string,
    stepIds: string[],
  ): Promise<{ wouldMove: number; wouldStay: number }>;
  /**
   * Folds up to `limit` deltas of the stats counters into their totals (`flowmachine_fold_counts`); 0 when
   * another process is folding or none are left.
   */
  foldCounts(limit: number): Promise<number>;
  /** Vacuums the folded deltas away (a fold deletes them), unless another process is at it. */
  vacuumCounts(): Promise<void>;
  /** The sweeper's reads and its one repair. */
  sweep: SweepQueries;
}

/** An execution row with what one engine step needs: its contact, account settings and workflow name. */
export type ExecutionRow = Omit<Execution, 'seq' | 'slotShard' | 'notifyPending' | 'notifyAttempts' | 'notifyAfter'> & {
  contact: Pick<
    Contact,
    'id' | 'accountId' | 'email' | 'phone' | 'optedIn' | 'timezone' | 'attributes' | 'tags' | 'deletedAt'
  >;
  account: Pick<
    Account,
    | 'id'
    | 'name'
    | 'adminEmail'
    | 'concurrentExecutionsPerAccount'
    | 'maxRetryAttempts'
    | 'retryBaseDelaySeconds'
    | 'errorNotification'
    | 'defaultTimezone'
    | 'frequencyCaps'
  >;
  workflow: { name: string };
};

/** A job's load: the row as read before admission, and what admission did (`ACTIVE`, `QUEUED` in line, or null). */
export interface LoadedForJob {
  row: ExecutionRow;
  admitted: string | null;
}

/** A job's reference to an execution at a version. */
export interface JobRef {
  executionId: string;
  version: number;
}

/** What a commit does with the account's concurrency slots (an ACTIVE execution holds one). */
export type SlotOp = 'keep' | 'release' | 'acquire' | 'acquire_in_line';

/** One stored execution_logs row. */
export interface LogRow {
  account_id: string;
  workflow_id: string;
  contact_id: string;
  event_type: string;
  status: string;
  step_index: number | null;
  step_id: string | null;
  duration_ms: number | null;
  timestamp: string;
  user_id: string | null;
  details: Record<string, unknown>;
}

/** One step's commit: the row fields to set at `version + 1`, its log rows, its tag change and its slot operation. */
export interface CommitRequest {
  id: string;
  version: number;
  /** Row fields by the row's field names (status, snapshot, next run time, counters…). */
  set: Record<string, unknown>;
  logs: LogRow[];
  tagChange?: { op: 'add' | 'remove'; tag: string };
  /** Contact attributes merged into the stored ones (`attributes || patch`); absent: none. */
  attributes?: Record<string, unknown>;
  slot: SlotOp;
}

/** A commit's answer: the status the execution is in (admission may have put it in line) and what it freed. */
export interface CommitResult {
  new_status: 'QUEUED' | 'ACTIVE' | 'PAUSED' | 'COMPLETED' | 'FAILED' | 'CANCELLED';
  new_waiting: boolean;
  /** Executions of the account admitted into the slot this commit gave back. */
  admitted: JobRef[] | null;
  /** The contact as committed (with the step's tag change), when the execution is ACTIVE. */
  contact: ExecutionRow['contact'] | null;
  /** Executions started (QUEUED) by the tag the step added: their first jobs are to be enqueued. */
  enrolled: JobRef[] | null;
}

/** One trigger: who is enrolled where, and the new execution's initial values (JSON texts). */
export interface TriggerCall {
  account: string;
  workflow: string;
  contact: string;
  /** The version the caller compiled (null: none yet, answered `stale` with the current one). */
  version: string | null;
  reentry: string | null;
  windowMs: number;
  snapshot: string | null;
  totalSteps: number | null;
  goalEvent: string | null;
  payload: string;
  trace: string;
  now: Date;
}

/** A trigger's answer: its outcome, the execution concerned, and the workflow's current version. */
export interface TriggerAnswer {
  kind:
    | 'started'
    | 'duplicate'
    | 'already_enrolled'
    | 'workflow_not_found'
    | 'contact_not_found'
    | 'inactive'
    | 'opted_out'
    | 'stale';
  execution: string | null;
  versionId: string | null;
}

/** A tag change made through the API. */
export interface TagContactChange {
  accountId: string;
  contactId: string;
  op: 'add' | 'remove';
  tag: string;
  now: Date;
}

/** What a tag change did: whether the tag is new, and the enrollments it made (or was refused). */
export interface TaggedContact {
  added: boolean;
  enrolled: { workflow: string; kind: TriggerAnswer['kind']; execution: string | null }[];
}

/** A workflow's status and current version. */
export interface EnrollTarget {
  workflowStatus: string;
  versionId: string | null;
  version: number | null;
}

/** One call of a bulk enrollment of contacts (sorted) in a workflow checked to be active at `versionId`. */
export interface EnrollManyCall {
  accountId: string;
  workflowId: string;
  versionId: string;
  version: number;
  contactIds: string[];
  reentry: string;
  windowMs: number;
  snapshot: string;
  totalSteps: number;
  goalEvent: string | null;
  payload: string;
  /** One trace carrier per contact, in order. */
  traces: Record<string, string>[];
  now: Date;
}

/** What a bulk enrollment did for one contact. */
export type EnrolledRow =
  | { contact: string; kind: 'started' | 'duplicate' | 'already_enrolled'; execution: string }
  | { contact: string; kind: 'contact_not_found' | 'opted_out'; execution: null };

/** The refusals of one kind, for some contacts of one workflow (`executionId`: the execution a duplicate hit). */
export interface RefusalRows {
  accountId: string;
  workflowId: string;
  eventType: string;
  now: Date;
  details: Record<string, unknown>;
  refused: { contactId: string; executionId: string | null }[];
}

/** One capped message about to be sent: whose, by which step, and the caps of its channel. */
export interface CapSendCall {
  accountId: string;
  contactId: string;
  channel: string;
  executionId: string;
  stepId: string;
  caps: { max: number; per_ms: number }[];
  now: Date;
}

/** One attempt at a failure notification, logged only if attempt `attempt` is still the next one. */
export interface NotificationAttempt {
  executionId: string;
  version: number;
  attempt: number;
  eventType: string;
  status: string;
  details: Record<string, unknown>;
  nextAt: Date | null;
}

/** A failure whose admin notification is due. */
export interface UnnotifiedFailure {
  executionId: string;
  accountId: string;
  version: number;
  adminEmail: string;
  workflowName: string;
  error: string;
  attempt: number;
}

/** An execution with work to rebuild in Redis. */
export interface SweptExecution {
  id: string;
  version: number;
  nextRunAt: Date | null;
  traceContext: unknown;
}

/** A place in the order timers are promoted in: (nextRunAt, id). */
export interface TimerPosition {
  at: Date;
  id: string;
}

/** The sweeper's reads (each bounded or small) and its one repair. */
export interface SweepQueries {
  /** Timers due by `horizon` after the keyset position `after` (none: from the first), by (nextRunAt, id), at most `limit`. */
  timers(horizon: Date, after: TimerPosition | null, limit: number): Promise<SweptExecution[]>;
  /**
   * Due work untouched since `staleBefore` (all of it when `all`), by id after `cursor`, at most `limit`;
   * overdue timers only among those due before `timersBefore` (none when null).
   */
  stuck(
    staleBefore: Date,
    all: boolean,
    cursor: string | null,
    limit: number,
    timersBefore: Date | null,
  ): Promise<SweptExecution[]>;
  /** Spreads again the slots of accounts whose lowered limit they are back under. */
  respread(): Promise<void>;
  /** Accounts with executions in line and free slots. */
  accountsWithRoom(): Promise<{ id: string; free: number }[]>;
  /** Failures to notify: first attempts older than `firstBefore`, retries due by `now`. */
  unnotified(firstBefore: Date, now: Date): Promise<UnnotifiedFailure[]>;
  /** Creates the log tables' monthly partitions for `now`'s month and the next ones; returns how many it created. */
  createLogPartitions(now: Date): Promise<number>;
  /** LOG_RETENTION_DAYS: drops the log partitions whose month ended by `before`, keeping running executions' rows. */
  dropLogPartitions(before: Date): Promise<DroppedLogRows[]>;
  /** Analyzes the tables whose statistics are stale (flowmachine_analyze_stale); returns their names. */
  analyzeStale(): Promise<string[]>;
}

/** What one retention call removed: a partition dropped (`rowsDeleted` null), or old rows of a default partition. */
export interface DroppedLogRows {
  table: 'execution_logs' | 'contact_events';
  partition: string;
  /** Rows of running executions moved to the default partition before the partition went. */
  rowsKept: number;
  rowsDeleted: number | null;
}
