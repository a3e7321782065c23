import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { TEMPLATE_LIMITS } from '../../src/definition/template.ts';
import { startHarness, type Harness } from '../helpers/harness.ts';

// Findings 3–5 of the security review: unbounded rendered text, JSON injection into webhook bodies,
// provider error text with personal data kept raw in last_error.
describe('templates through the API, the engine and the provider', () => {
  let h: Harness;
  // The fake provider listens on 127.0.0.1, which webhooks may reach only when allowed.
  beforeAll(async () => {
    h = await startHarness({ env: { WEBHOOK_ALLOWED_HOSTS: '127.0.0.1' } });
  });
  afterAll(() => h.stop());
  beforeEach(async () => {
    await h.api.patch('/account/settings', { max_retry_attempts: 3, retry_base_delay_seconds: 60 });
  });

  /** Runs a one-webhook workflow (then a tag step) for a contact with these attributes; returns what the hook received. */
  const runHook = async (body: unknown, attributes: Record<string, unknown>) => {
    const path = `/hook-${Math.random().toString(36).slice(2)}`;
    const workflow = await h.createWorkflow({
      steps: [{ id: 'hook', type: 'webhook', config: { url: `${h.provider.url}${path}`, body } }],
    });
    const contact = await h.createContact({ attributes });
    const id = await h.trigger(workflow.id, contact.id);
    await h.waitForExecution(id, (e) => e.status === 'COMPLETED');
    const received = h.provider.requestsTo(path);
    expect(received).toHaveLength(1);
    return { body: received[0]!.body, id };
  };

  const hostile = 'x","is_admin":true,"y":"';

  it('a JSON string body gets exactly its own keys, with the hostile value as a literal string', async () => {
    const { body } = await runHook('{"name":"{{first_name}}"}', { first_name: hostile });
    expect(body).toEqual({ name: hostile });
    expect(Object.keys(body)).toEqual(['name']);
  });

  it('quotes and backslashes in contact data keep the JSON valid', async () => {
    const tricky = 'O\'Brien "the \\ one"\n\t\u0001 }{';
    const { body } = await runHook('{"name": "{{first_name}}", "note": "from {{first_name}}!"}', {
      first_name: tricky,
    });
    expect(body).toEqual({ name: tricky, note: `from ${tricky}!` });
  });

  it('templates every string value of an object body, nested and in arrays, and leaves keys alone', async () => {
    const body = {
      '{{first_name}}': 'key stays',
      contact: { name: '{{first_name}}', plan: 'plan: {{plan}}', lists: [['{{plan}}', 7], { deep: '{{first_name}}' }] },
      count: 3,
      flag: false,
      none: null,
    };
    const { body: received } = await runHook(body, { first_name: hostile, plan: 'pro' });
    expect(received).toEqual({
      '{{first_name}}': 'key stays',
      contact: { name: hostile, plan: 'plan: pro', lists: [['pro', 7], { deep: hostile }] },
      count: 3,
      flag: false,
      none: null,
    });
  });

  it('a body that starts like JSON without being valid JSON gets JSON-escaped values', async () => {
    const { body } = await runHook('{"age": {{age}}, "name": "{{first_name}}"}', { age: 42, first_name: hostile });
    expect(body).toEqual({ age: 42, name: hostile });
  });

  it('refuses oversized bodies and too many placeholders at POST /workflows, with the path', async () => {
    const hook = (body: unknown) => ({
      steps: [{ id: 'hook', type: 'webhook', config: { url: 'https://hooks.example.com/x', body } }],
    });
    for (const body of [
      'x'.repeat(50_001),
      { text: 'y'.repeat(50_001) },
      '{{a}}'.repeat(TEMPLATE_LIMITS.placeholders + 1),
    ]) {
      const response = await h.api.post('/workflows', { name: 'too big', definition: hook(body) });
      expect(response.status).toBe(400);
      expect(response.body.issues.map((i: { path: string }) => i.path)).toEqual(['definition.steps.0.config.body']);
    }
    const email = { steps: [{ id: 'mail', type: 'send_email', config: { subject: 'Hi', body: '{{a}}'.repeat(101) } }] };
    const response = await h.api.post('/workflows', { name: 'too many', definition: email });
    expect(response.status).toBe(400);
    expect(response.body.issues).toEqual([
      { path: 'definition.steps.0.config.body', message: 'may hold at most 100 placeholders' },
    ]);
  });

  it.each([
    [
      'a value over the per-placeholder limit',
      'Bio: {{bio}}',
      'b'.repeat(16_000),
      'value of {{bio}} exceeds 2000 characters',
    ],
    [
      'a message over the per-message limit',
      '{{bio}}'.repeat(60),
      'b'.repeat(2_000),
      'rendered body exceeds 100000 characters',
    ],
  ])('%s fails the step non-retryably, sends nothing and the execution goes on', async (_, template, bio, error) => {
    const workflow = await h.createWorkflow({
      steps: [
        { id: 'mail', type: 'send_email', config: { subject: 'Hi', body: template } },
        { id: 'tag', type: 'add_tag', config: { tag: 'after' } },
      ],
    });
    const contact = await h.createContact({ attributes: { bio } });
    const sentBefore = h.provider.requestsTo('/email').length;
    const id = await h.trigger(workflow.id, contact.id);
    const execution = await h.waitForExecution(id, (e) => e.status === 'COMPLETED');
    expect(h.provider.requestsTo('/email').length).toBe(sentBefore);
    expect(execution.retry_count).toBe(0);
    const logs = await h.logsOf(id);
    expect(logs.find((l) => l.eventType === 'action_failed')?.details).toMatchObject({ error, retryable: false });
    expect(logs.find((l) => l.eventType === 'skipped_non_retryable_error')?.details).toEqual({ error });
    expect(logs.filter((l) => l.eventType === 'retry_scheduled')).toHaveLength(0);
    expect(logs.some((l) => l.eventType === 'action_completed' && l.stepId === 'tag')).toBe(true);
    // The log keeps the template, not a 100 KB render.
    const started = logs.find((l) => l.eventType === 'action_started')!;
    expect(started.details).toMatchObject({ action_config: { body: template, fields: ['bio'] } });
    expect(JSON.stringify(started.details).length).toBeLessThan(1_000);
  });

  it('an SMS renders to at most 10,000 characters', async () => {
    const workflow = await h.createWorkflow({
      steps: [{ id: 'sms', type: 'send_sms', config: { body: '{{bio}}'.repeat(6) } }],
    });
    const id = await h.trigger(workflow.id, (await h.createContact({ attributes: { bio: 's'.repeat(2_000) } })).id);
    const execution = await h.waitForExecution(id, (e) => e.status === 'COMPLETED');
    expect(execution.last_error).toBe('rendered body exceeds 10000 characters');
  });

  it('a provider error naming a phone number is kept masked in last_error, the API and the admin notification', async () => {
    const providerError = "The 'To' number +15551234567 is invalid";
    await h.api.patch('/account/settings', {
      max_retry_attempts: 0,
      error_notification: true,
      admin_email: 'ops@example.com',
    });
    const workflow = await h.createWorkflow({
      steps: [
        { id: 'sms', type: 'send_sms', config: { body: 'Hi' } },
        { id: 'again', type: 'send_sms', config: { body: 'Hi again' } },
      ],
    });
    const contact = await h.createContact({ phone: '+15551234567' });
    // Permanent (400): skipped, the execution goes on; transient (503) with no retries left: failed.
    h.provider.script({ status: 400, body: { error: providerError } }, { status: 503, body: { error: providerError } });
    const id = await h.trigger(workflow.id, contact.id);
    const execution = await h.waitForExecution(id, (e) => e.status === 'FAILED');
    const rows = await h.deps.pool.query<{ last_error: string }>('SELECT last_error FROM executions WHERE id = $1', [
      id,
    ]);
    for (const stored of [rows.rows[0]!.last_error, execution.last_error]) {
      expect(stored).toContain('503');
      expect(stored).toContain('+*********67');
      expect(stored).not.toContain('5551234567');
    }
    const api = await h.api.get(`/executions/${id}/logs?limit=100`);
    expect(JSON.stringify(api.body)).not.toContain('5551234567');
    await h.provider.waitFor(() => h.provider.requestsTo('/email').some((r) => r.body.execution_id === id));
    const notice = h.provider.requestsTo('/email').find((r) => r.body.execution_id === id)!;
    expect(JSON.stringify(notice.body)).not.toContain('5551234567');
  });
});
