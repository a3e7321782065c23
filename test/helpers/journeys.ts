import { expect } from 'vitest';
import { processStep, type StepOutcome } from '../../src/engine/process-step.ts';
import { stepJobId } from '../../src/queue/step-queue.ts';
import { TERMINAL_STATUSES, type ExecutionStatus } from '../../src/vocabulary.ts';
import type { ApiResponse, Harness } from './harness.ts';

/** Most jobs {@link createJourneyDriver}'s loops run for one execution before they give up. */
const MAX_JOBS = 30;

const ended = (status: string) => TERMINAL_STATUSES.includes(status as ExecutionStatus);

/** The answer of `POST /contacts/{id}/events` (CONTRACT.md "Journeys", Entry). */
export interface EventAnswer {
  enrolled: { workflow_id: string; execution_id: string }[];
  blocked: { workflow_id: string; reason: string }[];
  resumed: string[];
  goals: string[];
}

/**
 * Drives journeys in a worker-less harness the way the acceptance tests need it: each loop takes the
 * jobs the engine enqueued (`h.step`) until the execution waits or ends, so a test never depends on
 * how many jobs the engine splits a step into; plus the look-ups the journey tests share.
 */
export function createJourneyDriver(h: Harness) {
  const rowOf = (id: string) => h.db.execution.findUniqueOrThrow({ where: { id } });

  /** Runs the execution's jobs until it is PAUSED or has ended (at least one job unless it has ended). */
  const settle = async (id: string) => {
    for (let jobs = 0; jobs < MAX_JOBS; jobs += 1) {
      if (ended((await rowOf(id)).status)) break;
      await h.step(id);
      const row = await rowOf(id);
      if (row.status === 'PAUSED' || ended(row.status)) return row;
    }
    const row = await rowOf(id);
    if (!ended(row.status)) throw new Error(`execution ${id} neither waits nor ended after ${MAX_JOBS} jobs`);
    return row;
  };

  /** Runs the execution's jobs until it has ended; every wait on the way must be due by the clock. */
  const finish = async (id: string) => {
    for (let jobs = 0; jobs < MAX_JOBS; jobs += 1) {
      const row = await rowOf(id);
      if (ended(row.status)) return row;
      await h.step(id);
    }
    throw new Error(`execution ${id} did not end after ${MAX_JOBS} jobs: ${(await rowOf(id)).status}`);
  };

  /**
   * Takes the job of the execution's current version out of Redis without running it, so a test can
   * run it later, beside something else (a race) or after the execution moved on (a stale job).
   */
  const takeJob = async (id: string) => {
    const row = await rowOf(id);
    const job = await h.deps.queue.queue.getJob(stepJobId(id, row.version));
    if (!job) throw new Error(`no job in Redis for execution ${id} at version ${row.version}`);
    await job.remove();
    const data = job.data;
    /** Runs the job as a worker would. */
    return { data, run: (): Promise<StepOutcome> => processStep(h.deps, h.deps.cache, data) };
  };

  /** The event types of the execution's log, oldest first. */
  const eventTypes = async (id: string) => (await h.logsOf(id)).map((log) => log.eventType);

  /** The log entries of one event type, oldest first. */
  const logsOfType = async (id: string, type: string) => (await h.logsOf(id)).filter((log) => log.eventType === type);

  /** The emails and SMS the provider received for the execution (optionally for one step). */
  const messagesOf = (executionId: string, stepId?: string) =>
    h.provider.received.filter(
      (request) =>
        (request.path === '/email' || request.path === '/sms') &&
        request.body.execution_id === executionId &&
        (stepId === undefined || request.body.step_id === stepId),
    );

  /** `POST /contacts/{id}/events`, with an `Idempotency-Key` when `key` is given. */
  const sendEvent = (
    contactId: string,
    name: string,
    properties?: Record<string, unknown>,
    key?: string,
  ): Promise<ApiResponse> =>
    h.api.raw(
      'POST',
      `/api/v1/contacts/${contactId}/events`,
      properties === undefined ? { name } : { name, properties },
      key === undefined ? {} : { 'idempotency-key': key },
    );

  /** Sends an event, checks the 202 and the answer's shape, and returns the answer. */
  const event = async (contactId: string, name: string, properties?: Record<string, unknown>) => {
    const response = await sendEvent(contactId, name, properties);
    expect(response.status, JSON.stringify(response.body)).toBe(202);
    expectEventAnswer(response.body);
    return response.body as EventAnswer;
  };

  /** Every execution of the workflow for the contact, oldest first. */
  const executionsOf = (workflowId: string, contactId: string) =>
    h.db.execution.findMany({ where: { workflowId, contactId }, orderBy: { seq: 'asc' } });

  return { rowOf, settle, finish, takeJob, eventTypes, logsOfType, messagesOf, sendEvent, event, executionsOf };
}

/** Checks that `body` has the four lists of the events answer, each entry of the contract's shape. */
export function expectEventAnswer(body: unknown): asserts body is EventAnswer {
  expect(body).toMatchObject({
    enrolled: expect.any(Array),
    blocked: expect.any(Array),
    resumed: expect.any(Array),
    goals: expect.any(Array),
  });
  const answer = body as EventAnswer;
  for (const entry of answer.enrolled)
    expect(entry).toMatchObject({ workflow_id: expect.any(String), execution_id: expect.any(String) });
  for (const entry of answer.blocked)
    expect(entry).toMatchObject({ workflow_id: expect.any(String), reason: expect.stringMatching(/\S/) });
  for (const id of [...answer.resumed, ...answer.goals]) expect(id).toEqual(expect.any(String));
}

/**
 * Checks that `response` refuses a definition with 400 and names `path` (such as
 * `definition.steps.0.config.time`) among its issues, each with a message.
 */
export function expectDefinitionIssue(response: ApiResponse, path: string) {
  expect(response.status, JSON.stringify(response.body)).toBe(400);
  expect(response.body.error).toBe('invalid workflow definition');
  const issues = response.body.issues as { path: string; message: string }[];
  for (const issue of issues) expect(issue.message).toEqual(expect.any(String));
  expect(issues.map((issue) => issue.path)).toContain(path);
}

export type JourneyDriver = ReturnType<typeof createJourneyDriver>;
