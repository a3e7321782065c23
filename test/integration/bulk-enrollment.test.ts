import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccount } from '../../src/api/api-keys.ts';
import { responses } from '../../src/api/openapi.ts';
import { stepJobId } from '../../src/queue/step-queue.ts';
import { startHarness, type Harness } from '../helpers/harness.ts';

const tagThenMail = {
  steps: [
    { id: 'tag', type: 'add_tag', config: { tag: 'enrolled' } },
    { id: 'mail', type: 'send_email', config: { subject: 'Hi', body: 'Welcome' } },
  ],
};

// POST /workflows/{id}/enrollments: many contacts in one request, each as a trigger would enroll it.
describe('bulk enrollment', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ worker: true });
  });
  afterAll(() => h.stop());

  it('enrolls every eligible contact, answers one outcome per contact, and runs each execution', async () => {
    const workflow = await h.createWorkflow({
      steps: [...tagThenMail.steps, { id: 'pause', type: 'wait', config: { duration: '1 hour' } }],
    });
    const fresh = await Promise.all(Array.from({ length: 110 }, () => h.createContact()));
    const optedOut = await h.createContact({ opted_in: false });
    const deleted = await h.createContact();
    expect((await h.api.delete(`/contacts/${deleted.id}`)).status).toBe(204);
    const other = await createAccount(h.db, { name: 'Other', adminEmail: 'other@example.com' });
    const foreign = (await h.api.post('/contacts', { email: 'foreign@example.com', opted_in: true }, other.api_key))
      .body as { id: string };
    const running = await h.createContact();
    const runningId = await h.trigger(workflow.id, running.id);
    const unknown = randomUUID();

    const ids = [
      ...fresh.map((c) => c.id),
      optedOut.id,
      deleted.id,
      foreign.id,
      running.id,
      unknown,
      fresh[0]!.id.toUpperCase(),
    ];
    const response = await h.api.post(`/workflows/${workflow.id}/enrollments`, {
      contact_ids: ids,
      payload: { source: 'import' },
    });
    expect(response.status).toBe(200);
    expect(responses.enrolled.safeParse(response.body).success).toBe(true);
    const { started, results } = response.body as {
      started: number;
      results: { contact_id: string; outcome: string; execution_id: string | null }[];
    };
    expect(started).toBe(110);
    expect(results.map((r) => r.contact_id)).toEqual(ids.slice(0, -1)); // the repeated contact is answered once
    const outcomeOf = (id: string) => results.find((r) => r.contact_id === id)!;
    expect(outcomeOf(optedOut.id)).toEqual({ contact_id: optedOut.id, outcome: 'opted_out', execution_id: null });
    expect(outcomeOf(deleted.id).outcome).toBe('contact_not_found');
    expect(outcomeOf(foreign.id).outcome).toBe('contact_not_found');
    expect(outcomeOf(unknown).outcome).toBe('contact_not_found');
    expect(outcomeOf(running.id)).toEqual({ contact_id: running.id, outcome: 'duplicate', execution_id: runningId });

    const startedIds = results.filter((r) => r.outcome === 'started').map((r) => r.execution_id!);
    expect(new Set(startedIds).size).toBe(110);
    // Polled as one count: an awaited condition, not a sleep.
    const deadline = Date.now() + 80_000;
    while (
      (await h.db.execution.count({ where: { id: { in: startedIds }, status: 'PAUSED' } })) < 110 &&
      Date.now() < deadline
    ) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const rows = await h.db.execution.findMany({ where: { id: { in: startedIds } } });
    expect(rows.filter((row) => row.status !== 'PAUSED').map((row) => [row.status, row.waiting, row.version])).toEqual(
      [],
    );
    expect(rows.every((row) => (row.payload as { source?: string }).source === 'import')).toBe(true);
    // One email per execution, each under its own key (a starved test machine can make BullMQ hand a
    // job out twice: the second request carries the same key).
    expect(new Set(h.provider.requestsTo('/email').map((r) => r.idempotencyKey)).size).toBe(111);
    const refusals = await h.db.executionLog.findMany({ where: { workflowId: workflow.id, status: 'BLOCKED' } });
    expect(refusals.map((log) => [log.eventType, log.contactId]).sort()).toEqual(
      [
        ['deduplication_blocked', running.id],
        ['opt_out_blocked', optedOut.id],
      ].sort(),
    );
  }, 90_000);

  it('enrolls a contact again only as the workflow reentry rule allows', async () => {
    const workflow = await h.createWorkflow({ ...tagThenMail, reentry: 'never' });
    const contact = await h.createContact();
    const first = await h.api.post(`/workflows/${workflow.id}/enrollments`, { contact_ids: [contact.id] });
    const id = first.body.results[0].execution_id as string;
    await h.waitForExecution(id, (e) => e.status === 'COMPLETED');
    const again = await h.api.post(`/workflows/${workflow.id}/enrollments`, { contact_ids: [contact.id] });
    expect(again.body).toEqual({
      started: 0,
      results: [{ contact_id: contact.id, outcome: 'already_enrolled', execution_id: id }],
    });
  });

  it('refuses a request as a whole, changing nothing, when the workflow or the body is wrong', async () => {
    const contact = await h.createContact();
    const paused = await h.createWorkflow(tagThenMail, 'Paused', 'paused');
    const active = await h.createWorkflow(tagThenMail);
    const count = () => h.db.execution.count();
    const before = await count();
    const cases: [string, unknown, number][] = [
      [`/workflows/${paused.id}/enrollments`, { contact_ids: [contact.id] }, 400],
      [`/workflows/${randomUUID()}/enrollments`, { contact_ids: [contact.id] }, 404],
      [`/workflows/not-a-uuid/enrollments`, { contact_ids: [contact.id] }, 400],
      [`/workflows/${active.id}/enrollments`, { contact_ids: [] }, 400],
      [`/workflows/${active.id}/enrollments`, { contact_ids: ['nope'] }, 400],
      [`/workflows/${active.id}/enrollments`, { contact_ids: Array.from({ length: 1001 }, () => randomUUID()) }, 400],
      [`/workflows/${active.id}/enrollments`, { contact_ids: [contact.id], extra: true }, 400],
      [`/workflows/${active.id}/enrollments`, { contact_id: contact.id }, 400],
    ];
    for (const [path, body, status] of cases) {
      const response = await h.api.post(path, body);
      expect(response.status, `${path} ${JSON.stringify(body).slice(0, 80)}`).toBe(status);
      expect(response.body.error).toBeTypeOf('string');
    }
    const other = await createAccount(h.db, { name: 'Other 2', adminEmail: 'other2@example.com' });
    expect(
      (await h.api.post(`/workflows/${active.id}/enrollments`, { contact_ids: [contact.id] }, other.api_key)).status,
    ).toBe(404);
    expect(await count()).toBe(before);
  });
});

// A chunk used to commit while the first jobs were enqueued only after the last chunk: an error in a
// later chunk answered 500 and left the earlier chunks' executions in Postgres with no job.
describe('bulk enrollment failing in a later chunk', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ worker: false });
  });
  afterAll(() => h.stop());

  it('leaves every execution of the chunks it committed with its first job', async () => {
    const workflow = await h.createWorkflow(tagThenMail);
    const contacts = (await Promise.all(Array.from({ length: 150 }, () => h.createContact()))).map((c) => c.id).sort();
    const poison = contacts.at(-1)!; // contacts are enrolled in id order: this one is in the second chunk
    await h.deps.pool.query(`CREATE FUNCTION fail_poison() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.contact_id = '${poison}' THEN RAISE EXCEPTION 'poison contact'; END IF; RETURN NEW; END $$`);
    await h.deps.pool.query(
      'CREATE TRIGGER fail_poison BEFORE INSERT ON executions FOR EACH ROW EXECUTE FUNCTION fail_poison()',
    );

    const response = await h.api.post(`/workflows/${workflow.id}/enrollments`, { contact_ids: contacts });
    expect(response.status).toBe(500);
    const committed = await h.db.execution.findMany({ where: { workflowId: workflow.id } });
    expect(committed).toHaveLength(100);
    for (const execution of committed)
      expect(await h.deps.queue.queue.getJob(stepJobId(execution.id, 0)), execution.id).toBeDefined();
  });
});

// With ENROLL_QUEUE_LIMIT, enrollments wait with the caller while the workers are behind, not in Redis.
describe('bulk enrollment while the queue is full', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ worker: false, env: { ENROLL_QUEUE_LIMIT: '3' } });
  });
  afterAll(() => h.stop());

  it('refuses with 429 and Retry-After, enrolling no one, until the workers have taken jobs', async () => {
    const workflow = await h.createWorkflow({ steps: [tagThenMail.steps[1]!] });
    const contacts = await Promise.all(Array.from({ length: 4 }, () => h.createContact()));
    const first = await h.api.post(`/workflows/${workflow.id}/enrollments`, {
      contact_ids: contacts.slice(0, 3).map((c) => c.id),
    });
    expect(first.status).toBe(200);
    expect(await h.deps.queue.ready()).toBe(3);

    const refusals = () => h.metric('flowmachine_enrollments_refused_total', 'reason="queue_full"');
    expect(await refusals()).toBe(0); // served before the first refusal
    const refused = await h.api.post(`/workflows/${workflow.id}/enrollments`, { contact_ids: [contacts[3]!.id] });
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(refused.body).toMatchObject({ error: expect.stringContaining('ENROLL_QUEUE_LIMIT 3') });
    expect(await h.db.execution.count({ where: { contactId: contacts[3]!.id } })).toBe(0);
    expect(await refusals()).toBe(1);
    // One warning with the numbers and ids an operator needs, and nothing about the contacts.
    const warnings = h.logLines.map((line) => JSON.parse(line)).filter((l) => l.message === 'bulk enrollment refused');
    expect(warnings).toEqual([
      {
        level: 'warn',
        message: 'bulk enrollment refused',
        service: 'flowmachine',
        timestamp: expect.any(String),
        reason: 'queue_full',
        ready: 3,
        limit: 3,
        workflow_id: workflow.id,
        account_id: h.account.account_id,
      },
    ]);
    // Bad input is still answered first, and is no refusal.
    expect((await h.api.post(`/workflows/${workflow.id}/enrollments`, { contact_ids: ['x'] })).status).toBe(400);
    expect(await refusals()).toBe(1);

    const ids = (first.body as { results: { execution_id: string }[] }).results.map((r) => r.execution_id);
    await h.step(ids[0]!); // a worker takes one job: the queue is under the limit again
    const accepted = await h.api.post(`/workflows/${workflow.id}/enrollments`, { contact_ids: [contacts[3]!.id] });
    expect(accepted.status).toBe(200);
    expect(accepted.body).toMatchObject({ started: 1 });
    expect(await refusals()).toBe(1);
  });
});
