import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManualClock } from '../../src/clock.ts';
import { commitDecision, type Inline, policyOf } from '../../src/engine/commit.ts';
import { decideChange } from '../../src/engine/decide-step.ts';
import { loadExecution, loadForJob } from '../../src/engine/load.ts';
import { processStep } from '../../src/engine/process-step.ts';
import { stepJobId } from '../../src/queue/step-queue.ts';
import { startHarness, type Harness } from '../helpers/harness.ts';

const jobsProcessed = async (h: Harness) =>
  (await h.deps.metrics.queueLatency.get()).values.find((v) => v.metricName?.endsWith('_count'))?.value ?? 0;

// A worker runs the steps of an execution that are due at once in the same job, each committed first.
describe('steps due at once run in one job', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ worker: true });
  });
  afterAll(() => h.stop());

  it('a tag, a condition, an action and a wait take one job, with every step logged and committed', async () => {
    const workflow = await h.createWorkflow({
      steps: [
        { id: 'tag', type: 'add_tag', config: { tag: 'welcomed' } },
        {
          id: 'branch',
          type: 'condition',
          config: { has_tag: 'welcomed' },
          branches: {
            true: [
              { id: 'mail', type: 'send_email', config: { subject: 'Hi', body: 'Welcome' } },
              { id: 'pause', type: 'wait', config: { duration: '1 hour' } },
            ],
            false: [],
          },
        },
      ],
    });
    const contact = await h.createContact();
    const before = await jobsProcessed(h);
    const id = await h.trigger(workflow.id, contact.id);
    const paused = await h.waitForExecution(id, (e) => e.status === 'PAUSED');
    expect(await jobsProcessed(h)).toBe(before + 1);
    expect(paused.current_step_index).toBeGreaterThan(0);
    const logs = await h.logsOf(id);
    expect(logs.map((log) => [log.eventType, log.stepId])).toEqual([
      ['execution_started', null],
      ['action_started', 'tag'],
      ['action_completed', 'tag'],
      ['condition_evaluated', 'branch'],
      ['action_started', 'mail'],
      ['action_completed', 'mail'],
      ['wait_started', 'pause'],
    ]);
    // Three commits: the admission, the tag with the condition (staged, see below), the email with its wait.
    expect((await h.db.execution.findUniqueOrThrow({ where: { id } })).version).toBe(3);
    expect((await h.db.contact.findUniqueOrThrow({ where: { id: contact.id } })).tags).toContain('welcomed');
    expect(h.provider.requestsTo('/email')).toHaveLength(1);
  });
});

describe('the execution a committed step hands to the next one', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ worker: false });
  });
  afterAll(() => h.stop());

  it('is what a fresh load reads, the contact as just committed included', async () => {
    const workflow = await h.createWorkflow({
      steps: [
        { id: 'tag', type: 'add_tag', config: { tag: 'vip' } },
        { id: 'mail', type: 'send_email', config: { subject: 'Hi', body: 'x' } },
      ],
    });
    const contact = await h.createContact({ tags: ['lead'] });
    const id = await h.trigger(workflow.id, contact.id);
    const inline: Inline = {};
    // Admission, then the add_tag step, committing into `inline`.
    expect(await processStep(h.deps, h.deps.cache, { executionId: id, version: 0 }, inline)).toBe('committed');
    expect(await h.deps.queue.queue.getJob(stepJobId(id, inline.next!.version))).toBeUndefined();
    const fresh = (await loadExecution(h.deps, h.deps.cache, id))!;
    const { loaded, ...job } = inline.next!;
    expect(job).toMatchObject({ executionId: id, version: fresh.row.version, delayMs: 0 });
    const comparable = (row: typeof fresh.row) => ({
      ...row,
      updatedAt: row.updatedAt.getTime(),
      contact: { ...row.contact, tags: [...row.contact.tags].sort() },
    });
    expect(comparable(loaded.row)).toEqual(comparable(fresh.row));
    expect(loaded.row.contact.tags.sort()).toEqual(['lead', 'vip']);
  });

  const tagThenBranch = {
    steps: [
      { id: 'tag', type: 'add_tag', config: { tag: 'vip' } },
      {
        id: 'branch',
        type: 'condition',
        config: { has_tag: 'vip' },
        branches: { true: [{ id: 'mail', type: 'send_email', config: { subject: 'Hi', body: 'x' } }], false: [] },
      },
    ],
  };

  it('stages a tag followed by a condition, and commits both with the condition, the tag seen by it', async () => {
    const workflow = await h.createWorkflow(tagThenBranch);
    const contact = await h.createContact({ tags: ['lead'] });
    const id = await h.trigger(workflow.id, contact.id);
    const first: Inline = {};
    // Admission (committed), then the tag step: a condition comes next, so the tag is staged.
    expect(await processStep(h.deps, h.deps.cache, { executionId: id, version: 0 }, first)).toBe('staged');
    const admitted = (await loadExecution(h.deps, h.deps.cache, id))!;
    expect([admitted.row.version, admitted.row.contact.tags]).toEqual([1, ['lead']]);
    expect((await h.logsOf(id)).map((log) => log.eventType)).toEqual(['execution_started']);
    expect(first.next).toMatchObject({ version: 1, pending: { tagChange: { op: 'add', tag: 'vip' } } });
    expect(first.next!.loaded.row.contact.tags).toEqual(['lead', 'vip']);
    // The condition: an email comes next, so the staged tag and the condition are committed, in one call.
    const second: Inline = {};
    expect(await processStep(h.deps, h.deps.cache, first.next!, second)).toBe('committed');
    const row = await h.db.execution.findUniqueOrThrow({ where: { id } });
    // Admitted at step 1; the tag and the condition done, at step 3.
    expect([admitted.row.currentStepIndex, row.version, row.currentStepIndex, second.next?.version]).toEqual([
      1, 2, 3, 2,
    ]);
    expect((await h.db.contact.findUniqueOrThrow({ where: { id: contact.id } })).tags).toEqual(['lead', 'vip']);
    const logs = await h.logsOf(id);
    expect(logs.map((log) => [log.eventType, log.stepId, log.stepIndex])).toEqual([
      ['execution_started', null, 0],
      ['action_started', 'tag', 1],
      ['action_completed', 'tag', 1],
      ['condition_evaluated', 'branch', 2],
    ]);
    expect(logs.at(-1)!.details).toMatchObject({ result: true });
  });

  it('loses nothing when a staged step is abandoned: the job of the committed version does it again', async () => {
    const workflow = await h.createWorkflow(tagThenBranch);
    const contact = await h.createContact();
    const id = await h.trigger(workflow.id, contact.id);
    expect(await processStep(h.deps, h.deps.cache, { executionId: id, version: 0 }, {})).toBe('staged');
    // The worker died here. The sweeper or BullMQ hands the execution's version 1 out again.
    expect(
      await processStep(h.deps, h.deps.cache, { executionId: id, version: 1, recovered: true, redelivered: true }),
    ).toBe('committed');
    expect(await processStep(h.deps, h.deps.cache, { executionId: id, version: 2 })).toBe('committed');
    const events = (await h.logsOf(id)).map((log) => log.eventType);
    expect(events).toEqual([
      'execution_started',
      'recovered',
      'action_started',
      'action_completed',
      'condition_evaluated',
    ]);
    expect((await h.db.contact.findUniqueOrThrow({ where: { id: contact.id } })).tags).toEqual(['vip']);
  });

  it('loads and admits a new execution in one call, and admits nothing for another version or twice', async () => {
    const workflow = await h.createWorkflow(tagThenBranch);
    const id = await h.trigger(workflow.id, (await h.createContact()).id);
    const active = () => h.activeSlots();
    const before = await active();
    expect(await loadForJob(h.deps, h.deps.cache, { executionId: crypto.randomUUID(), version: 0 })).toBeNull();
    expect((await loadForJob(h.deps, h.deps.cache, { executionId: id, version: 3 }))!.admitted).toBeNull();
    const read = (await loadForJob(h.deps, h.deps.cache, { executionId: id, version: 0 }))!;
    // The row as read before the admission, and what the admission did.
    expect([read.admitted, read.loaded.row.status, read.loaded.row.version]).toEqual(['ACTIVE', 'QUEUED', 0]);
    const row = await h.db.execution.findUniqueOrThrow({ where: { id } });
    expect([row.status, row.version, await active()]).toEqual(['ACTIVE', 1, before + 1]);
    expect((await loadForJob(h.deps, h.deps.cache, { executionId: id, version: 1 }))!.admitted).toBeNull();
    expect(await active()).toBe(before + 1);
  });

  it('a step that pauses or finishes hands nothing on and enqueues its timer as usual', async () => {
    const workflow = await h.createWorkflow({
      steps: [
        { id: 'tag', type: 'add_tag', config: { tag: 'x' } },
        { id: 'pause', type: 'wait', config: { duration: '1 hour' } },
      ],
    });
    const contact = await h.createContact();
    const id = await h.trigger(workflow.id, contact.id);
    await h.step(id); // admission + tag
    const loaded = (await loadExecution(h.deps, h.deps.cache, id))!;
    await h.deps.queue.remove(id, loaded.row.version);
    const inline: Inline = {};
    const context = { loaded, now: h.deps.clock.now(), policy: policyOf(h.deps), canContinue: true };
    const change = {
      logs: [],
      status: 'PAUSED' as const,
      nextRunAt: new Date(h.deps.clock.now().getTime() + 3_600_000),
    };
    const committed = await commitDecision(h.deps, context, decideChange(context, change)!, inline);
    expect(committed?.status).toBe('PAUSED');
    expect(inline.next).toBeUndefined();
    expect(await h.deps.queue.queue.getJob(stepJobId(id, committed!.version))).toBeDefined();
  });
});

describe('a job given out again after its worker died in the middle of a chain', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ worker: false });
  });
  afterAll(() => h.stop());

  it('enqueues the step the chain did not get to, and only when redelivered', async () => {
    const workflow = await h.createWorkflow({
      steps: [
        { id: 'tag', type: 'add_tag', config: { tag: 'x' } },
        { id: 'mail', type: 'send_email', config: { subject: 'Hi', body: 'x' } },
      ],
    });
    const contact = await h.createContact();
    const id = await h.trigger(workflow.id, contact.id);
    // The chain committed admission and the tag step, then its worker died before running the email step.
    const inline: Inline = {};
    expect(await processStep(h.deps, h.deps.cache, { executionId: id, version: 0 }, inline)).toBe('committed');
    const current = inline.next!.version;
    expect(await h.deps.queue.queue.getJob(stepJobId(id, current))).toBeUndefined();

    // A job at its old version that was not redelivered (a duplicate) changes nothing.
    expect(await processStep(h.deps, h.deps.cache, { executionId: id, version: 0 })).toBe('stale');
    expect(await h.deps.queue.queue.getJob(stepJobId(id, current))).toBeUndefined();

    // The same job given out again by BullMQ puts the missing step back on the queue.
    expect(await processStep(h.deps, h.deps.cache, { executionId: id, version: 0, redelivered: true })).toBe('stale');
    const job = await h.deps.queue.queue.getJob(stepJobId(id, current));
    expect(job?.data).toMatchObject({ executionId: id, version: current, recovered: true });
    expect((await h.step(id)).outcome).toBe('committed');
    expect(h.provider.requestsTo('/email')).toHaveLength(1);
  });
});

describe('a due timer resumes in the load of its job', () => {
  const clock = createManualClock(new Date('2026-04-01T12:00:00.000Z'));
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ worker: false, clock });
  });
  afterAll(() => h.stop());

  const emailWaitSms = {
    steps: [
      { id: 'mail', type: 'send_email', config: { subject: 'Hi', body: 'x' } },
      { id: 'pause', type: 'wait', config: { duration: '1 hour' } },
      { id: 'text', type: 'send_sms', config: { body: 'x' } },
    ],
  };
  /** An execution started and paused at its wait; returns its id and paused version. */
  const paused = async () => {
    const id = await h.trigger((await h.createWorkflow(emailWaitSms)).id, (await h.createContact()).id);
    await h.step(id); // admission and the email, which starts the wait
    const row = await h.db.execution.findUniqueOrThrow({ where: { id } });
    expect([row.status, row.nextRunAt?.getTime()]).toEqual(['PAUSED', clock.now().getTime() + 3_600_000]);
    return { id, version: row.version, due: row.nextRunAt };
  };

  it('takes its slot in the load, and writes wait_completed with the commit of the action after it', async () => {
    const { id, version, due } = await paused();
    expect((await loadForJob(h.deps, h.deps.cache, { executionId: id, version }))!.admitted).toBeNull(); // not due yet
    clock.advance(3_600_000);
    const slots = await h.activeSlots();
    const inline: Inline = {};
    expect(await processStep(h.deps, h.deps.cache, { executionId: id, version }, inline)).toBe('staged');
    // Resumed in the load (committed, its slot taken, its timer kept); the fired timer is staged.
    const resumed = await h.db.execution.findUniqueOrThrow({ where: { id } });
    expect([resumed.status, resumed.version, resumed.nextRunAt, await h.activeSlots()]).toEqual([
      'ACTIVE',
      version + 1,
      due,
      slots + 1,
    ]);
    expect((await h.logsOf(id)).map((log) => log.eventType)).not.toContain('wait_completed');
    expect(inline.next!.pending!.logRows.map((log) => log.event_type)).toEqual(['wait_completed']);
    // The SMS step commits the fired timer with itself, in one call.
    expect(await processStep(h.deps, h.deps.cache, inline.next!, {})).toBe('committed');
    const done = await h.db.execution.findUniqueOrThrow({ where: { id } });
    expect([done.status, done.version, await h.activeSlots()]).toEqual(['COMPLETED', version + 2, slots]);
    expect((await h.logsOf(id)).map((log) => log.eventType).slice(-5)).toEqual([
      'wait_started',
      'wait_completed',
      'action_started',
      'action_completed',
      'execution_completed',
    ]);
    expect(h.provider.requestsTo('/sms')).toHaveLength(1);
  });

  it('loses nothing when its worker dies with the fired timer staged: the job given out again has the resumed execution fire it', async () => {
    const { id, version } = await paused();
    clock.advance(3_600_000);
    expect(await processStep(h.deps, h.deps.cache, { executionId: id, version }, {})).toBe('staged');
    // The worker died here. BullMQ gives its job out again: it finds the execution resumed, and enqueues its due step.
    expect(await processStep(h.deps, h.deps.cache, { executionId: id, version, redelivered: true })).toBe('stale');
    expect(await h.deps.queue.queue.getJob(stepJobId(id, version + 1))).toBeDefined();
    expect((await h.step(id)).outcome).toBe('committed'); // the timer fires
    expect((await h.step(id)).outcome).toBe('committed'); // the SMS
    expect((await h.db.execution.findUniqueOrThrow({ where: { id } })).status).toBe('COMPLETED');
    const events = (await h.logsOf(id)).map((log) => log.eventType);
    expect(events.slice(events.indexOf('wait_started'))).toEqual([
      'wait_started',
      'recovered',
      'wait_completed',
      'action_started',
      'action_completed',
      'execution_completed',
    ]);
  });
});
