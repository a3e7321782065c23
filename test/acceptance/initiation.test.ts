import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stepJobId } from '../../src/queue/step-queue.ts';
import { sequential } from '../fixtures/workflows.ts';
import { startHarness, type Harness } from '../helpers/harness.ts';

// SPEC-WFL-005 "Feature: Workflow Execution Initiation", through the real API, Postgres and Redis.
// The worker is off so the QUEUED state and the job in Redis can be observed.
describe('Feature: Workflow Execution Initiation', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ worker: false });
  });
  afterAll(() => h.stop());

  it('Scenario: Successfully trigger workflow execution', async () => {
    const workflow = await h.createWorkflow(sequential, 'Welcome Sequence');
    const contact = await h.createContact({ email: 'john@example.com', opted_in: true });
    const response = await h.api.post(`/workflows/${workflow.id}/trigger`, { contact_id: contact.id });
    expect(response.status).toBe(202);
    expect(response.body).toEqual({ execution_id: expect.any(String), status: 'QUEUED' });
    const id = response.body.execution_id;
    const row = await h.db.execution.findUniqueOrThrow({ where: { id } });
    expect(row.status).toBe('QUEUED');
    const job = await h.deps.queue.queue.getJob(stepJobId(id, 0));
    expect(job?.data).toMatchObject({ executionId: id, version: 0 });
    // Waiting to be taken, behind the due work of executions already running (step-queue.ts).
    expect(await job?.getState()).toBe('prioritized');
    const logs = await h.logsOf(id);
    expect(logs.map((l) => l.eventType)).toEqual(['execution_started']);
    const second = await h.api.post(`/workflows/${workflow.id}/trigger`, { contact_id: (await h.createContact()).id });
    expect(second.body.execution_id).not.toBe(id);
  });

  it('Scenario: Prevent execution for opted-out contact', async () => {
    const workflow = await h.createWorkflow(sequential, 'Marketing Campaign');
    const contact = await h.createContact({ email: 'jane@example.com', opted_in: false });
    const response = await h.api.post(`/workflows/${workflow.id}/trigger`, { contact_id: contact.id });
    expect(response.status).toBe(403);
    expect(response.body.error).toBe('Contact has opted out');
    expect(await h.db.execution.count({ where: { contactId: contact.id } })).toBe(0);
    const blocked = await h.db.executionLog.findMany({ where: { contactId: contact.id } });
    expect(blocked.map((l) => l.eventType)).toEqual(['opt_out_blocked']);
  });

  it('Scenario: Prevent duplicate execution within deduplication window', async () => {
    const workflow = await h.createWorkflow(sequential, 'Lead Nurture');
    const contact = await h.createContact({ email: 'bob@example.com' });
    const first = await h.api.post(`/workflows/${workflow.id}/trigger`, { contact_id: contact.id });
    const again = await h.api.post(`/workflows/${workflow.id}/trigger`, { contact_id: contact.id });
    expect(again.status).toBe(200);
    expect(again.body).toEqual({
      duplicate: true,
      message: 'duplicate trigger ignored',
      execution_id: first.body.execution_id,
    });
    expect(await h.db.execution.count({ where: { contactId: contact.id } })).toBe(1);
    const logs = await h.db.executionLog.findMany({
      where: { contactId: contact.id, eventType: 'deduplication_blocked' },
    });
    expect(logs).toHaveLength(1);
    expect(logs[0]!.executionId).toBe(first.body.execution_id);
  });

  it('Scenario: Handle inactive workflow trigger', async () => {
    const workflow = await h.createWorkflow(sequential, 'Old Campaign', 'paused');
    const contact = await h.createContact({ email: 'alice@example.com' });
    const response = await h.api.post(`/workflows/${workflow.id}/trigger`, { contact_id: contact.id });
    expect(response.status).toBe(400);
    expect(response.body.error).toBe('Workflow is not active');
    expect(await h.db.execution.count({ where: { contactId: contact.id } })).toBe(0);
  });

  it('a trigger after a new definition version enrolls into that version; earlier executions keep theirs', async () => {
    const workflow = await h.createWorkflow(sequential, 'Versioned');
    const before = await h.trigger(workflow.id, (await h.createContact()).id);
    const redefined = await h.api.put(`/workflows/${workflow.id}/definition`, {
      definition: { steps: [{ id: 'only', type: 'add_tag', config: { tag: 'v2' } }] },
    });
    expect(redefined.status).toBe(200);
    const after = await h.trigger(workflow.id, (await h.createContact()).id);
    const versions = await h.db.workflowVersion.findMany({
      where: { workflowId: workflow.id },
      orderBy: { version: 'asc' },
    });
    const rows = await Promise.all([before, after].map((id) => h.db.execution.findUniqueOrThrow({ where: { id } })));
    expect(rows.map((row) => [row.workflowVersionId, row.totalSteps])).toEqual([
      [versions[0]!.id, 3],
      [versions[1]!.id, 1],
    ]);
    expect(rows.map((row) => (row.snapshot as { value: unknown }).value)).toEqual(['welcome', 'only']);
    expect((await h.logsOf(after)).map((l) => l.details)).toEqual([{ workflow_version: 2 }]);
  });

  it('a workflow whose current version has no row answers 500 and creates nothing', async () => {
    const workflow = await h.createWorkflow(sequential, 'Broken');
    await h.db.workflow.update({ where: { id: workflow.id }, data: { currentVersion: 7 } });
    const contact = await h.createContact();
    const response = await h.api.post(`/workflows/${workflow.id}/trigger`, { contact_id: contact.id });
    expect(response.status).toBe(500);
    expect(response.body).toEqual({ error: 'internal error', request_id: expect.any(String) });
    expect(await h.db.execution.count({ where: { contactId: contact.id } })).toBe(0);
  });
});
