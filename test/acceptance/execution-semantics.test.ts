import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManualClock } from '../../src/clock.ts';
import { stepJobId } from '../../src/queue/step-queue.ts';
import { branching, emails, sequential, withWait } from '../fixtures/workflows.ts';
import { startHarness, type Harness } from '../helpers/harness.ts';

// Worker-less harness with a manual clock: the test takes each job the engine enqueued out of Redis
// and runs it, so every intermediate state and every scheduled delay can be checked exactly.
describe('Execution semantics (SPEC: branching, waits, state, cancel, deletion, goals)', () => {
  let h: Harness;
  const clock = createManualClock(new Date('2026-03-01T09:00:00.000Z'));
  beforeAll(async () => {
    h = await startHarness({ worker: false, clock });
  });
  afterAll(() => h.stop());

  const run = async (id: string, steps: number) => {
    for (let i = 0; i < steps; i += 1) await h.step(id);
    return h.db.execution.findUniqueOrThrow({ where: { id } });
  };

  it('Scenario: Handle conditional branching', async () => {
    const workflow = await h.createWorkflow(branching);
    const vip = await h.createContact({ tags: ['VIP'] });
    const regular = await h.createContact();
    const vipRun = await h.trigger(workflow.id, vip.id);
    const regularRun = await h.trigger(workflow.id, regular.id);
    await run(vipRun, 2); // welcome, then the condition
    const afterCondition = await h.api.get(`/executions/${vipRun}`);
    expect(afterCondition.body.current_step).toBe('vip_sms');
    const evaluated = (await h.logsOf(vipRun)).find((l) => l.eventType === 'condition_evaluated');
    expect(evaluated).toMatchObject({ stepId: 'vip', stepIndex: 2, status: 'SUCCESS' }); // the condition at step 2
    expect(evaluated!.details).toMatchObject({ result: true });
    expect((await run(vipRun, 2)).status).toBe('COMPLETED');
    expect((await run(regularRun, 4)).status).toBe('COMPLETED');
    const stepsOf = async (id: string) =>
      (await h.logsOf(id)).filter((l) => l.eventType === 'action_completed').map((l) => l.stepId);
    expect(await stepsOf(vipRun)).toEqual(['welcome', 'vip_sms', 'done_tag']);
    expect(await stepsOf(regularRun)).toEqual(['welcome', 'regular_email', 'done_tag']);
    const regularEvaluated = (await h.logsOf(regularRun)).find((l) => l.eventType === 'condition_evaluated');
    expect(regularEvaluated!.details).toMatchObject({ result: false });
  });

  it('Scenario: Process wait step correctly', async () => {
    const workflow = await h.createWorkflow(withWait('2 hours'));
    const contact = await h.createContact();
    const id = await h.trigger(workflow.id, contact.id);
    const startedAt = clock.now();
    await h.step(id); // the welcome email; its commit enters the wait step

    const paused = await h.api.get(`/executions/${id}`);
    expect(paused.body.status).toBe('PAUSED');
    expect(paused.body.next_run_at).toBe(new Date(startedAt.getTime() + 2 * 3_600_000).toISOString());
    const row = await h.db.execution.findUniqueOrThrow({ where: { id } });
    const job = await h.deps.queue.queue.getJob(stepJobId(id, row.version));
    expect(job?.opts.delay).toBe(2 * 3_600_000);
    expect(await job?.getState()).toBe('delayed');
    expect((await h.logsOf(id)).map((l) => l.eventType)).toContain('wait_started');

    // Two hours later the timer job resumes the execution.
    clock.advance(2 * 3_600_000);
    await h.step(id);
    const resumed = await h.db.execution.findUniqueOrThrow({ where: { id } });
    expect(resumed.status).toBe('ACTIVE');
    expect(resumed.nextRunAt).toBeNull();
    await h.step(id);
    expect((await h.db.execution.findUniqueOrThrow({ where: { id } })).status).toBe('COMPLETED');
    const types = (await h.logsOf(id)).map((l) => l.eventType);
    expect(types.indexOf('wait_completed')).toBeGreaterThan(types.indexOf('wait_started'));
  });

  it('a timer job that arrives early is put back until it is due', async () => {
    const workflow = await h.createWorkflow(withWait('30 seconds'));
    const id = await h.trigger(workflow.id, (await h.createContact()).id);
    await run(id, 1);
    clock.advance(10_000);
    const early = await h.step(id);
    expect(early.outcome).toBe('rescheduled');
    const row = await h.db.execution.findUniqueOrThrow({ where: { id } });
    expect(row.status).toBe('PAUSED');
    const job = await h.deps.queue.queue.getJob(stepJobId(id, row.version));
    expect(job?.opts.delay).toBe(20_000);
  });

  it('Scenario: Persist state after each action', async () => {
    const workflow = await h.createWorkflow(emails(5));
    const id = await h.trigger(workflow.id, (await h.createContact()).id);
    await run(id, 2); // steps 1 and 2 done: the execution is processing the action at step 3
    const before = await h.db.execution.findUniqueOrThrow({ where: { id } });
    expect(before).toMatchObject({ status: 'ACTIVE', currentStepIndex: 3 });
    expect((before.snapshot as { value: string }).value).toBe('email_3');
    clock.advance(1_000);
    await h.step(id);
    const after = await h.db.execution.findUniqueOrThrow({ where: { id } });
    expect(after.currentStepIndex).toBe(4);
    expect(after.updatedAt.getTime()).toBe(clock.now().getTime());
    expect(after.version).toBe(before.version + 1);
    const stepLogs = (await h.logsOf(id)).filter((l) => l.stepIndex === 3);
    expect(stepLogs.map((l) => [l.eventType, l.stepId])).toEqual([
      ['action_started', 'email_3'],
      ['action_completed', 'email_3'],
    ]);
    const next = await h.deps.queue.queue.getJob(stepJobId(id, after.version));
    expect(next?.data).toMatchObject({ executionId: id, version: after.version });
  });

  it('Scenario: Cancel active execution', async () => {
    const workflow = await h.createWorkflow(emails(10));
    const id = await h.trigger(workflow.id, (await h.createContact()).id);
    await run(id, 2); // at step 3 of 10
    const row = await h.db.execution.findUniqueOrThrow({ where: { id } });
    expect(await h.deps.queue.queue.getJob(stepJobId(id, row.version))).toBeDefined();
    const sentBefore = h.provider.received.length;
    const response = await h.api.post(`/executions/${id}/cancel`);
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({ status: 'CANCELLED', current_step_index: 3, total_steps: 10 });
    expect(await h.deps.queue.queue.getJob(stepJobId(id, row.version))).toBeUndefined();
    const cancelled = (await h.logsOf(id)).find((l) => l.eventType === 'execution_cancelled');
    const key = await h.db.apiKey.findFirstOrThrow({ where: { accountId: h.account.account_id } });
    expect(cancelled?.userId).toBe(key.userId);
    expect(h.provider.received.length).toBe(sentBefore);
    // A job that was already running when the cancel landed finds a newer version and stops.
    expect(
      await (await import('../../src/engine/process-step.ts')).processStep(h.deps, h.deps.cache, {
        executionId: id,
        version: row.version,
      }),
    ).toBe('stale');
    expect((await h.api.post(`/executions/${id}/cancel`)).status).toBe(409);
  });

  it('an execution cancelled before its first step started stays at index 0', async () => {
    const workflow = await h.createWorkflow(emails(3));
    const id = await h.trigger(workflow.id, (await h.createContact()).id);
    const response = await h.api.post(`/executions/${id}/cancel`);
    expect(response.body).toMatchObject({
      status: 'CANCELLED',
      current_step_index: 0,
      total_steps: 3,
      progress_percent: 0,
    });
  });

  it('Scenario: Handle contact deletion during execution', async () => {
    const workflow = await h.createWorkflow(sequential);
    const contact = await h.createContact({ email: 'deleted@example.com' });
    const id = await h.trigger(workflow.id, contact.id);
    await run(id, 1);
    expect((await h.api.delete(`/contacts/${contact.id}`)).status).toBe(204);
    const execution = await h.api.get(`/executions/${id}`);
    expect(execution.body).toMatchObject({ status: 'CANCELLED', completion_reason: 'contact_deleted' });
    const types = (await h.logsOf(id)).map((l) => l.eventType);
    expect(types).toContain('execution_cancelled');
    expect(types).not.toContain('notification_sent');
    expect(h.provider.received.filter((r) => r.body.step_id === 'error_notification')).toHaveLength(0);
    expect((await h.api.get(`/contacts/${contact.id}`)).status).toBe(404);
  });

  it('a contact deleted behind the API is noticed by the worker at the next step', async () => {
    const workflow = await h.createWorkflow(sequential);
    const contact = await h.createContact();
    const id = await h.trigger(workflow.id, contact.id);
    await run(id, 1);
    await h.db.contact.update({ where: { id: contact.id }, data: { deletedAt: clock.now() } });
    await h.step(id);
    const row = await h.db.execution.findUniqueOrThrow({ where: { id } });
    expect(row).toMatchObject({ status: 'CANCELLED', completionReason: 'contact_deleted' });
  });

  it('Scenario: Exit workflow on goal achievement', async () => {
    const workflow = await h.createWorkflow(emails(10));
    const contact = await h.createContact();
    const id = await h.trigger(workflow.id, contact.id);
    await run(id, 4); // at step 5 of 10
    const row = await h.db.execution.findUniqueOrThrow({ where: { id } });
    const sentBefore = h.provider.received.length;
    const response = await h.api.post(`/contacts/${contact.id}/events`, { name: 'appointment_booked' });
    expect(response.status).toBe(202);
    expect(response.body.goal_completed_executions).toEqual([id]);
    const done = await h.api.get(`/executions/${id}`);
    expect(done.body).toMatchObject({
      status: 'COMPLETED',
      completion_reason: 'goal_achieved',
      current_step_index: 5,
      total_steps: 10,
      progress_percent: 100,
    });
    expect(await h.deps.queue.queue.getJob(stepJobId(id, row.version))).toBeUndefined();
    expect((await h.logsOf(id)).map((l) => l.eventType)).toContain('goal_achieved');
    expect(h.provider.received.length).toBe(sentBefore);
    // Other events and other workflows' goals leave executions alone.
    const other = await h.trigger((await h.createWorkflow(emails(2))).id, contact.id);
    expect(
      (await h.api.post(`/contacts/${contact.id}/events`, { name: 'newsletter_opened' })).body
        .goal_completed_executions,
    ).toEqual([]);
    expect((await h.db.execution.findUniqueOrThrow({ where: { id: other } })).status).toBe('QUEUED');
  });

  it('a goal reached during a wait completes the paused execution', async () => {
    const workflow = await h.createWorkflow(withWait('2 hours'));
    const contact = await h.createContact();
    const id = await h.trigger(workflow.id, contact.id);
    await run(id, 1);
    const paused = await h.db.execution.findUniqueOrThrow({ where: { id } });
    expect(paused.status).toBe('PAUSED');
    expect(await h.deps.queue.queue.getJob(stepJobId(id, paused.version))).toBeDefined();
    await h.api.post(`/contacts/${contact.id}/events`, { name: 'appointment_booked' });
    expect((await h.db.execution.findUniqueOrThrow({ where: { id } })).completionReason).toBe('goal_achieved');
    expect(await h.deps.queue.queue.getJob(stepJobId(id, paused.version))).toBeUndefined();
  });

  it('a wait beyond the timer horizon stays in Postgres until the sweeper promotes it', async () => {
    const { createSweeper } = await import('../../src/engine/sweeper.ts');
    const sweep = createSweeper(h.deps);
    await sweep();
    const workflow = await h.createWorkflow(withWait('3 days'));
    const id = await h.trigger(workflow.id, (await h.createContact()).id);
    await run(id, 1);
    const paused = await h.db.execution.findUniqueOrThrow({ where: { id } });
    expect(paused.status).toBe('PAUSED');
    expect(await h.deps.queue.queue.getJob(stepJobId(id, paused.version))).toBeUndefined();
    await sweep();
    expect(await h.deps.queue.queue.getJob(stepJobId(id, paused.version))).toBeUndefined();
    clock.advance(3 * 86_400_000 - h.config.TIMER_PROMOTE_AHEAD_MS - 1_000); // not yet within TIMER_PROMOTE_AHEAD_MS
    await sweep();
    expect(await h.deps.queue.queue.getJob(stepJobId(id, paused.version))).toBeUndefined();
    clock.advance(1_500); // due in 500 ms: within it
    await sweep();
    const promoted = await h.deps.queue.queue.getJob(stepJobId(id, paused.version));
    expect(promoted?.opts.delay).toBe(paused.nextRunAt!.getTime() - clock.now().getTime());
    clock.advance(500);
    await h.step(id);
    expect((await h.db.execution.findUniqueOrThrow({ where: { id } })).status).toBe('ACTIVE');
  });

  it('re-entry rules: after_completion refuses a second enrollment while one runs; never refuses always', async () => {
    const once = await h.createWorkflow({ ...sequential, reentry: 'never' });
    const contact = await h.createContact();
    const id = await h.trigger(once.id, contact.id);
    clock.advance(6_000); // past the deduplication window
    const again = await h.api.post(`/workflows/${once.id}/trigger`, { contact_id: contact.id });
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ error: 'Contact already enrolled', execution_id: id });
    await run(id, 3);
    expect((await h.api.post(`/workflows/${once.id}/trigger`, { contact_id: contact.id })).status).toBe(409);

    const repeat = await h.createWorkflow(sequential);
    const first = await h.trigger(repeat.id, contact.id);
    clock.advance(6_000);
    expect((await h.api.post(`/workflows/${repeat.id}/trigger`, { contact_id: contact.id })).status).toBe(409);
    await run(first, 3);
    expect((await h.api.post(`/workflows/${repeat.id}/trigger`, { contact_id: contact.id })).status).toBe(202);
  });
});
