import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sequential } from '../fixtures/workflows.ts';
import { startHarness, type Harness } from '../helpers/harness.ts';

describe('Feature: Sequential Action Processing', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(() => h.stop());

  it('Scenario: Execute actions in correct sequence', async () => {
    const workflow = await h.createWorkflow(sequential);
    const contact = await h.createContact({ attributes: { first_name: 'John' } });
    const id = await h.trigger(workflow.id, contact.id);
    const done = await h.waitForExecution(id, (e) => e.status === 'COMPLETED');
    expect(done).toMatchObject({
      current_step_index: 3,
      total_steps: 3,
      progress_percent: 100,
      completion_reason: 'completed',
    });

    const logs = await h.logsOf(id);
    const completed = logs.filter((l) => l.eventType === 'action_completed');
    expect(completed.map((l) => l.stepId)).toEqual(['welcome', 'tag', 'sms']);
    expect(completed.every((l) => l.status === 'SUCCESS')).toBe(true);
    expect(completed.map((l) => l.stepIndex)).toEqual([1, 2, 3]);

    // The provider saw the email, then the SMS, each with its own stable idempotency key.
    const sent = h.provider.received.filter((r) => r.body.execution_id === id);
    expect(sent.map((r) => r.path)).toEqual(['/email', '/sms']);
    expect(sent.map((r) => r.idempotencyKey)).toEqual([`${id}:welcome`, `${id}:sms`]);
    expect(sent[0]!.body.subject).toBe('Hi John');
    const stored = await h.db.contact.findUniqueOrThrow({ where: { id: contact.id } });
    expect(stored.tags).toContain('welcomed');
  });
});
