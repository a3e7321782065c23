import { createServer } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { classifySmtpError, messageIdOf } from '../../src/providers/smtp-provider.ts';
import { sequential } from '../fixtures/workflows.ts';
import { startHarness, type Harness } from '../helpers/harness.ts';
import { startSmtpServer, type TestSmtpServer } from '../helpers/smtp-server.ts';

const types = async (h: Harness, id: string) => (await h.logsOf(id)).map((l) => l.eventType);

// With SMTP_URL set and EMAIL_HTTP_URL not, emails go over SMTP: a real SMTP server, the real API and worker.
describe('email over SMTP', () => {
  let h: Harness;
  let smtp: TestSmtpServer;
  beforeAll(async () => {
    smtp = await startSmtpServer();
    h = await startHarness({ env: { EMAIL_HTTP_URL: '', SMTP_URL: smtp.url, SMTP_FROM: 'flows@example.org' } });
  });
  afterAll(async () => {
    await h.stop();
    await smtp.close();
  });
  beforeEach(async () => {
    await h.api.patch('/account/settings', {
      max_retry_attempts: 3,
      retry_base_delay_seconds: 1,
      error_notification: true,
      admin_email: 'ops@example.com',
    });
  });

  const start = async () => {
    const contact = await h.createContact({ attributes: { first_name: 'Ada' } });
    const id = await h.trigger((await h.createWorkflow(sequential)).id, contact.id);
    return { id, contact };
  };
  const mailsTo = (address: string) => smtp.received.filter((m) => m.to.includes(address));

  it('delivers a send_email step with its rendered subject and body and a Message-ID from the idempotency key', async () => {
    const { id, contact } = await start();
    await h.waitForExecution(id, (e) => e.status === 'COMPLETED');
    const [mail, ...more] = mailsTo(contact.email);
    expect(more).toHaveLength(0);
    expect(mail).toMatchObject({
      from: 'flows@example.org',
      user: 'flow',
      body: 'Welcome Ada, write to support@example.com',
    });
    expect(mail!.headers).toMatchObject({
      subject: 'Hi Ada',
      'message-id': messageIdOf(`${id}:welcome`),
      'idempotency-key': `${id}:welcome`,
    });
    const started = (await h.logsOf(id)).find((l) => l.eventType === 'action_started' && l.stepId === 'welcome');
    expect(started?.details).toMatchObject({ transport: 'smtp', delivered: true, smtp_code: 250 });
    expect(h.provider.requestsTo('/email')).toHaveLength(0);
  });

  it('retries a 451 with back-off and delivers on the retry with the same Message-ID', async () => {
    smtp.script({ stage: 'data', code: 451 });
    const { id, contact } = await start();
    await h.waitForExecution(id, (e) => e.status === 'COMPLETED');
    const logs = await h.logsOf(id);
    expect(logs.find((l) => l.eventType === 'action_failed')?.details).toMatchObject({ retryable: true });
    expect(String((logs.find((l) => l.eventType === 'action_failed')!.details as { error: string }).error)).toContain(
      '451',
    );
    expect(logs.find((l) => l.eventType === 'retry_scheduled')?.details).toMatchObject({
      delay_seconds: 1,
      retry_count: 1,
    });
    const refused = smtp.refused.find((r) => r.mail?.to.includes(contact.email));
    const delivered = mailsTo(contact.email);
    expect(delivered).toHaveLength(1);
    expect(refused?.mail?.headers['message-id']).toBe(messageIdOf(`${id}:welcome`));
    expect(delivered[0]!.headers['message-id']).toBe(refused!.mail!.headers['message-id']);
  });

  it('skips the step on a 550 and goes on', async () => {
    smtp.script({ stage: 'rcpt', code: 550 });
    const { id, contact } = await start();
    await h.waitForExecution(id, (e) => e.status === 'COMPLETED');
    const logs = await h.logsOf(id);
    expect(logs.map((l) => l.eventType)).toContain('skipped_non_retryable_error');
    expect(logs.map((l) => l.eventType)).not.toContain('retry_scheduled');
    expect(logs.find((l) => l.eventType === 'action_failed')?.details).toMatchObject({
      retryable: false,
      error: expect.stringContaining('550'),
    });
    expect(mailsTo(contact.email)).toHaveLength(0);
  });

  it('sends the admin failure notification over SMTP', async () => {
    await h.api.patch('/account/settings', { max_retry_attempts: 0 });
    smtp.script({ stage: 'rcpt', code: 451 });
    const { id } = await start();
    const failed = await h.waitForExecution(id, (e) => e.status === 'FAILED');
    await smtp.waitFor(() => mailsTo('ops@example.com').some((m) => m.body.includes(id)));
    const notice = mailsTo('ops@example.com').find((m) => m.body.includes(id))!;
    expect(notice.headers.subject).toBe('Workflow "Welcome Sequence" failed for an execution');
    const row = await h.db.execution.findUniqueOrThrow({ where: { id } });
    expect(notice.headers['message-id']).toBe(messageIdOf(`${id}:error_notification:${row.version}`));
    expect(failed.status).toBe('FAILED');
    await expect.poll(() => types(h, id)).toContain('notification_sent');
  });
});

describe('SMTP server unreachable', () => {
  let h: Harness;
  beforeAll(async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as { port: number };
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    h = await startHarness({ worker: false, env: { EMAIL_HTTP_URL: '', SMTP_URL: `smtp://127.0.0.1:${port}` } });
  });
  afterAll(() => h.stop());

  it('a refused connection is a transient failure', async () => {
    await h.api.patch('/account/settings', { max_retry_attempts: 3 });
    const id = await h.trigger((await h.createWorkflow(sequential)).id, (await h.createContact()).id);
    await h.step(id);
    const row = await h.db.execution.findUniqueOrThrow({ where: { id } });
    expect(row).toMatchObject({ status: 'ACTIVE', retryCount: 1 });
    const failed = (await h.logsOf(id)).find((l) => l.eventType === 'action_failed');
    expect(failed?.details).toMatchObject({ retryable: true });
    expect(String((failed!.details as { error: string }).error)).toMatch(/^SMTP failed: E/);
  });
});

describe('classifySmtpError', () => {
  it.each([
    [{ responseCode: 550, response: '550 mailbox unavailable' }, 'permanent', 550],
    [{ responseCode: 554, code: 'EMESSAGE' }, 'permanent', 554],
    [{ responseCode: 451, response: '451 try again later' }, 'transient', 451],
    [{ responseCode: 421, code: 'ECONNECTION' }, 'transient', 421],
    [{ code: 'ECONNECTION' }, 'transient', null],
    [{ code: 'ETIMEDOUT' }, 'transient', null],
    [{ code: 'EENVELOPE' }, 'permanent', 0],
    [{}, 'transient', null],
  ])('%o → %s', (fields, kind, status) => {
    expect(classifySmtpError(Object.assign(new Error('x'), fields))).toMatchObject({ kind, status });
  });
});
