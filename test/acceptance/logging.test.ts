import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containsPlainPii } from '../../src/observability/mask.ts';
import { sequential } from '../fixtures/workflows.ts';
import { startHarness, type Harness } from '../helpers/harness.ts';

describe('Feature: Execution Logging and Audit', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(() => h.stop());

  it('Scenario: Log all execution events', async () => {
    const workflow = await h.createWorkflow(sequential);
    const contact = await h.createContact();
    h.provider.setLatency(15);
    const before = Date.now();
    const id = await h.trigger(workflow.id, contact.id);
    await h.waitForExecution(id, (e) => e.status === 'COMPLETED');
    const after = Date.now();
    const logs = await h.logsOf(id);
    const count = (type: string) => logs.filter((l) => l.eventType === type).length;
    expect(count('execution_started')).toBe(1);
    expect(count('action_started')).toBe(3);
    expect(count('action_completed')).toBe(3);
    expect(count('execution_completed')).toBe(1);
    for (const log of logs) {
      expect(log.executionId).toBe(id);
      expect(log.timestamp.getTime()).toBeGreaterThanOrEqual(before - 1_000);
      expect(log.timestamp.getTime()).toBeLessThanOrEqual(after + 1_000);
    }
    const completed = logs.filter((l) => l.eventType === 'action_completed');
    expect(completed.map((l) => l.stepIndex)).toEqual([1, 2, 3]);
    // duration_ms is measured: the provider holds each answer 15 ms.
    const email = completed.find((l) => l.stepId === 'welcome')!;
    expect(email.durationMs).toBeGreaterThanOrEqual(14);
    const started = logs.find((l) => l.eventType === 'action_started' && l.stepId === 'welcome')!;
    expect(email.timestamp.getTime() - started.timestamp.getTime()).toBeGreaterThanOrEqual(email.durationMs! - 2);
    // Timestamps keep milliseconds.
    expect(logs.some((l) => l.timestamp.getMilliseconds() !== 0)).toBe(true);
    h.provider.setLatency(0);
  });

  it('Scenario: Mask sensitive data in logs', async () => {
    const workflow = await h.createWorkflow({
      steps: [
        {
          id: 'personal',
          type: 'send_email',
          config: {
            subject: 'Your account {{email}}',
            body: 'Hi! Call +1 555 123 4567 or write to jane.doe@example.com. Your key: fm_abcdefghijklmnopqrstuvwxyz123456, token=s3cr3t-t0k3n',
          },
        },
        { id: 'text', type: 'send_sms', config: { body: 'Reply to john@example.com' } },
      ],
    });
    const contact = await h.createContact({ email: 'john.smith@example.com', phone: '+15551234567' });
    const id = await h.trigger(workflow.id, contact.id);
    await h.waitForExecution(id, (e) => e.status === 'COMPLETED');

    // The provider got the real message; the logs never do.
    expect(h.provider.received.find((r) => r.body.execution_id === id)?.body.to).toBe('john.smith@example.com');
    const started = (await h.logsOf(id)).find((l) => l.eventType === 'action_started' && l.stepId === 'personal')!;
    const config = (started.details as { action_config: Record<string, string> }).action_config;
    expect(config.to).toBe('j***@example.com');
    expect(config.subject).toBe('Your account j***@example.com');
    expect(config.body).toContain('j***@example.com');
    expect(config.body).not.toContain('fm_abcdefghijklmnopqrstuvwxyz123456');
    expect(config.body).toContain('[REDACTED]');
    expect(config.body).not.toContain('s3cr3t-t0k3n');
    expect(config.body).not.toContain('555 123 4567');

    // Nothing unmasked anywhere: every execution log row, every API log response, every log line.
    const allLogs = await h.db.executionLog.findMany();
    for (const log of allLogs) expect(containsPlainPii(JSON.stringify(log.details)), JSON.stringify(log.details)).toBe(false);
    const api = await h.api.get(`/executions/${id}/logs?limit=100`);
    expect(containsPlainPii(JSON.stringify(api.body))).toBe(false);
    expect(h.logLines.length).toBeGreaterThan(10);
    for (const line of h.logLines) {
      expect(containsPlainPii(line), line).toBe(false);
      expect(line).not.toContain(h.account.api_key);
    }
  });
});
