import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containsPlainPii } from '../../src/observability/mask.ts';
import { sequential } from '../fixtures/workflows.ts';
import { startHarness, type Harness } from '../helpers/harness.ts';

describe('Feature: Execution Logging and Audit', () => {
  let h: Harness;
  beforeAll(async () => {
    // The webhook scenario calls the fake provider on 127.0.0.1, which webhooks may reach only when allowed.
    h = await startHarness({ env: { WEBHOOK_ALLOWED_HOSTS: '127.0.0.1' } });
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
    // The template is kept, not its render: placeholders stay placeholders.
    expect(config.subject).toBe('Your account {{email}}');
    expect(config.body).toContain('j***@example.com');
    expect(config.body).not.toContain('fm_abcdefghijklmnopqrstuvwxyz123456');
    expect(config.body).toContain('[REDACTED]');
    expect(config.body).not.toContain('s3cr3t-t0k3n');
    expect(config.body).not.toContain('555 123 4567');

    // Nothing unmasked anywhere: every execution log row, every API log response, every log line.
    const allLogs = await h.db.executionLog.findMany();
    for (const log of allLogs)
      expect(containsPlainPii(JSON.stringify(log.details)), JSON.stringify(log.details)).toBe(false);
    const api = await h.api.get(`/executions/${id}/logs?limit=100`);
    expect(containsPlainPii(JSON.stringify(api.body))).toBe(false);
    expect(h.logLines.length).toBeGreaterThan(10);
    for (const line of h.logLines) {
      expect(containsPlainPii(line), line).toBe(false);
      expect(line).not.toContain(h.account.api_key);
    }
  });
  it('Scenario: Mask sensitive data in logs — names and addresses in message bodies stay out of every log', async () => {
    const name = 'Johnathan';
    const surname = 'Smithers';
    const street = '42 Wallaby Way';
    await h.api.patch('/account/settings', { max_retry_attempts: 0, error_notification: false });
    const workflow = await h.createWorkflow({
      steps: [
        {
          id: 'letter',
          type: 'send_email',
          config: {
            subject: 'For {{first_name}} {{last_name}}',
            body: 'Dear {{first_name}} {{last_name}}, we ship to {{address}}.',
          },
        },
        { id: 'text', type: 'send_sms', config: { body: 'Hi {{first_name}}, parcel for {{address}} is on its way' } },
        {
          id: 'hook',
          type: 'webhook',
          config: {
            url: `${h.provider.url}/crm`,
            body: { customer: '{{first_name}} {{last_name}}', ship_to: ['{{address}}'] },
          },
        },
        // A body over its limit: the step fails with an error that names the placeholder, never the data.
        { id: 'long', type: 'send_sms', config: { body: '{{note}}' } },
      ],
    });
    const contact = await h.createContact({
      email: 'johnathan.smithers@example.com',
      phone: '+15557654321',
      attributes: {
        first_name: name,
        last_name: surname,
        address: street,
        note: `${name} ${surname}, ${street}. `.repeat(100),
      },
    });
    const linesBefore = h.logLines.length;
    const id = await h.trigger(workflow.id, contact.id);
    await h.waitForExecution(id, (e) => e.status === 'COMPLETED');

    // The provider gets the personal text rendered.
    const sent = h.provider.received.filter((r) => r.body.execution_id === id || r.path === '/crm');
    expect(sent.find((r) => r.path === '/email')?.body).toMatchObject({
      subject: `For ${name} ${surname}`,
      body: `Dear ${name} ${surname}, we ship to ${street}.`,
    });
    expect(sent.find((r) => r.path === '/sms')?.body.body).toBe(`Hi ${name}, parcel for ${street} is on its way`);
    expect(h.provider.requestsTo('/crm').at(-1)?.body).toEqual({ customer: `${name} ${surname}`, ship_to: [street] });

    // The logs keep the templates and the names of the fields they read.
    const logs = await h.logsOf(id);
    const configOf = (stepId: string) =>
      (
        logs.find((l) => l.eventType === 'action_started' && l.stepId === stepId)!.details as {
          action_config: Record<string, unknown>;
        }
      ).action_config;
    expect(configOf('letter')).toEqual({
      to: 'j***@example.com',
      subject: 'For {{first_name}} {{last_name}}',
      body: 'Dear {{first_name}} {{last_name}}, we ship to {{address}}.',
      fields: ['first_name', 'last_name', 'address'],
    });
    expect(configOf('text')).toMatchObject({
      to: '+*********21',
      body: 'Hi {{first_name}}, parcel for {{address}} is on its way',
      fields: ['first_name', 'address'],
    });
    // Stored as jsonb, an object body's keys come back in jsonb's order: compare the field names as a set.
    expect((configOf('hook').fields as string[]).toSorted()).toEqual(['address', 'first_name', 'last_name']);

    const execution = await h.api.get(`/executions/${id}`);
    expect(execution.body.last_error).toBe('value of {{note}} exceeds 2000 characters');
    const apiLogs = await h.api.get(`/executions/${id}/logs?limit=100`);
    expect(apiLogs.body.data.length).toBe(logs.length);
    const stored = await h.db.executionLog.findMany();
    const places = [
      [
        'execution_logs rows',
        JSON.stringify(stored, (_, value) => (typeof value === 'bigint' ? String(value) : value)),
      ],
      ['GET /executions/{id}', JSON.stringify(execution.body)],
      ['GET /executions/{id}/logs', JSON.stringify(apiLogs.body)],
      ['log lines', h.logLines.slice(linesBefore).join('\n')],
    ] as const;
    expect(h.logLines.length).toBeGreaterThan(linesBefore + 10);
    for (const [where, text] of places) {
      for (const secret of [name, surname, 'Wallaby', 'johnathan.smithers', '5557654321'])
        expect(text, `${secret} in ${where}`).not.toContain(secret);
      expect(containsPlainPii(text), where).toBe(false);
    }
  });
});
