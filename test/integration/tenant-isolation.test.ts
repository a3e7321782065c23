import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccount, issueApiKey } from '../../src/api/api-keys.ts';
import { responses } from '../../src/api/openapi.ts';
import { startHarness, type ApiResponse, type Harness } from '../helpers/harness.ts';

// Two accounts in one database. Account B's key must see none of account A's resources: every
// attempt is a 404 (never a 403 or 409, which would reveal that the resource exists), and A's rows
// are byte-for-byte the same afterwards. The worker is off so nothing changes rows in the background.

const waitThenTag = {
  goal: { event: 'appointment_booked' },
  steps: [
    { id: 'pause', type: 'wait', config: { duration: '2 hours' } },
    { id: 'tag', type: 'add_tag', config: { tag: 'nurtured' } },
  ],
};

describe('tenant isolation', () => {
  let h: Harness;
  let b: { account_id: string; user_id: string; api_key: string };
  const a = {} as {
    contact: { id: string; email: string };
    workflowId: string;
    running: string;
    finished: string;
    failed: string;
    keyId: string;
    secondUserId: string;
    secondUserKey: string;
  };
  let bContactId: string;
  let bWorkflowId: string;

  /** Every row account A owns, in a stable order. */
  const rowsOfA = async () => {
    const accountId = h.account.account_id;
    const workflows = await h.db.workflow.findMany({ where: { accountId }, orderBy: { id: 'asc' } });
    return {
      account: await h.db.account.findUniqueOrThrow({ where: { id: accountId } }),
      users: await h.db.user.findMany({ where: { accountId }, orderBy: { id: 'asc' } }),
      apiKeys: await h.db.apiKey.findMany({ where: { accountId }, orderBy: { id: 'asc' } }),
      contacts: await h.db.contact.findMany({ where: { accountId }, orderBy: { id: 'asc' } }),
      workflows,
      versions: await h.db.workflowVersion.findMany({
        where: { workflowId: { in: workflows.map((w) => w.id) } },
        orderBy: { id: 'asc' },
      }),
      executions: await h.db.execution.findMany({ where: { accountId }, orderBy: { id: 'asc' } }),
      logs: await h.db.executionLog.findMany({ where: { accountId }, orderBy: { id: 'asc' } }),
    };
  };

  /** A 404 with the bare error body: nothing of the resource, not even that it exists. */
  const expectHidden = (response: ApiResponse, what: string) => {
    expect(response.status, `${what}: ${JSON.stringify(response.body)}`).toBe(404);
    const body = responses.error.parse(response.body);
    expect(Object.keys(body).sort()).toEqual(['error', 'request_id']);
    expect(body.error).toMatch(/^(contact|workflow|execution|API key) not found$/);
    const text = JSON.stringify(body);
    for (const secret of [
      a.contact.id,
      a.contact.email,
      a.workflowId,
      a.running,
      a.finished,
      a.failed,
      a.keyId,
      h.account.account_id,
      h.account.user_id,
    ]) {
      expect(text).not.toContain(secret);
    }
  };

  beforeAll(async () => {
    h = await startHarness({ worker: false });
    b = await createAccount(h.db, { name: 'Account B', adminEmail: 'admin-b@example.com' });

    a.contact = await h.createContact({ email: 'secret-a@example.com', tags: ['vip'], attributes: { plan: 'gold' } });
    a.workflowId = (await h.createWorkflow(waitThenTag, 'A nurture')).id;
    a.running = await h.trigger(a.workflowId, a.contact.id);
    a.finished = await h.trigger(a.workflowId, (await h.createContact()).id);
    await h.db.execution.update({
      where: { id: a.finished },
      data: { status: 'COMPLETED', completionReason: 'completed', finishedAt: new Date() },
    });
    a.failed = await h.trigger(a.workflowId, (await h.createContact()).id);
    await h.db.execution.update({
      where: { id: a.failed },
      data: {
        status: 'FAILED',
        completionReason: 'failed',
        snapshot: { value: 'failed', context: { steps: 0, failedStep: 'pause', reason: 'failed' } },
      },
    });
    const extraKey = await h.api.post('/api-keys', { name: 'A second key' });
    a.keyId = extraKey.body.id;

    // A second user of account A with a key of its own, to see whose id a cancellation records.
    const user = await h.db.user.create({
      data: { accountId: h.account.account_id, email: 'operator@example.com', role: 'operator' },
    });
    const issued = issueApiKey();
    await h.db.apiKey.create({
      data: {
        accountId: h.account.account_id,
        userId: user.id,
        keyHash: issued.hash,
        prefix: issued.prefix,
        name: 'operator',
      },
    });
    a.secondUserId = user.id;
    a.secondUserKey = issued.apiKey;

    const bContact = await h.api.post('/contacts', { email: 'b-contact@example.com', opted_in: true }, b.api_key);
    expect(bContact.status).toBe(201);
    bContactId = bContact.body.id;
    const bWorkflow = await h.api.post(
      '/workflows',
      { name: 'B flow', definition: waitThenTag, status: 'active' },
      b.api_key,
    );
    expect(bWorkflow.status).toBe(201);
    bWorkflowId = bWorkflow.body.id;
  });
  afterAll(() => h?.stop());

  it("gives account B a 404 for every one of account A's resources and leaves A's rows unchanged", async () => {
    const before = await rowsOfA();
    expect(before.executions.map((e) => e.status).sort()).toEqual(['COMPLETED', 'FAILED', 'QUEUED']);
    const key = b.api_key;
    const c = `/contacts/${a.contact.id}`;
    const w = `/workflows/${a.workflowId}`;

    // Contacts
    expectHidden(await h.api.get(c, key), 'GET contact');
    expectHidden(await h.api.patch(c, { opted_in: false, email: 'stolen@example.com' }, key), 'PATCH contact');
    expectHidden(await h.api.delete(c, key), 'DELETE contact');
    expectHidden(await h.api.post(`${c}/tags`, { tag: 'hacked' }, key), 'POST tag');
    expectHidden(await h.api.delete(`${c}/tags/vip`, key), 'DELETE tag');
    expectHidden(await h.api.post(`${c}/events`, { name: 'appointment_booked' }, key), 'POST event (A goal)');

    // Workflows
    expectHidden(await h.api.get(w, key), 'GET workflow');
    expectHidden(await h.api.put(`${w}/definition`, { definition: waitThenTag }, key), 'PUT definition');
    expectHidden(await h.api.post(`${w}/activate`, undefined, key), 'activate');
    expectHidden(await h.api.post(`${w}/pause`, undefined, key), 'pause');
    expectHidden(await h.api.post(`${w}/trigger`, { contact_id: bContactId }, key), 'trigger with own contact');
    expectHidden(await h.api.post(`${w}/trigger`, { contact_id: a.contact.id }, key), "trigger with A's contact");
    expectHidden(await h.api.get(`${w}/executions`, key), 'list executions');
    expectHidden(await h.api.get(`${w}/executions?status=QUEUED&page=1&limit=100`, key), 'list executions filtered');
    expectHidden(await h.api.get(`${w}/machine`, key), 'machine');

    // Executions: running, finished and failed alike (a 409 would reveal the status).
    for (const id of [a.running, a.finished, a.failed]) {
      expectHidden(await h.api.get(`/executions/${id}`, key), 'GET execution');
      expectHidden(await h.api.get(`/executions/${id}/logs?page=1&limit=100`, key), 'logs');
      expectHidden(await h.api.post(`/executions/${id}/cancel`, undefined, key), 'cancel');
      expectHidden(await h.api.post(`/executions/${id}/retry`, undefined, key), 'retry');
    }

    // API keys: revoking another account's key, including the one that authenticates A.
    expectHidden(await h.api.delete(`/api-keys/${a.keyId}`, key), 'revoke API key');
    const aKeys = await h.db.apiKey.findMany({ where: { accountId: h.account.account_id } });
    for (const k of aKeys) expectHidden(await h.api.delete(`/api-keys/${k.id}`, key), 'revoke API key');

    // B's own resources never list A's.
    const bKeys = responses.apiKeys.parse((await h.api.get('/api-keys', key)).body);
    expect(bKeys.data.map((k) => k.user_id)).toEqual([b.user_id]);
    expect(bKeys.data.some((k) => aKeys.some((ak) => ak.id === k.id))).toBe(false);
    const bExecutions = await h.api.get(`/workflows/${bWorkflowId}/executions`, key);
    expect(bExecutions.status).toBe(200);
    expect(bExecutions.body.pagination.total).toBe(0);
    const bSettings = responses.settings.parse((await h.api.get('/account/settings', key)).body);
    expect(bSettings.admin_email).toBe('admin-b@example.com');
    expect(
      (await h.api.patch('/account/settings', { max_retry_attempts: 9, admin_email: 'changed-b@example.com' }, key))
        .status,
    ).toBe(200);

    expect(await rowsOfA()).toEqual(before);
    // A still sees and controls all of it.
    expect((await h.api.get(c)).body.email).toBe('secret-a@example.com');
    expect((await h.api.get('/account/settings')).body).toMatchObject({
      max_retry_attempts: 3,
      admin_email: 'admin@example.com',
    });
    for (const k of aKeys) expect(k.revokedAt).toBeNull();
  });

  it("refuses a trigger that names another account's contact", async () => {
    const before = await rowsOfA();
    const bRowsBefore = await h.db.execution.count({ where: { accountId: b.account_id } });
    const response = await h.api.post(`/workflows/${a.workflowId}/trigger`, { contact_id: bContactId });
    expectHidden(response, "A triggers with B's contact");
    expect(response.body.error).toBe('contact not found');
    const reverse = await h.api.post(`/workflows/${bWorkflowId}/trigger`, { contact_id: a.contact.id }, b.api_key);
    expectHidden(reverse, "B triggers with A's contact");
    expect(reverse.body.error).toBe('contact not found');
    expect(await rowsOfA()).toEqual(before);
    expect(await h.db.execution.count({ where: { accountId: b.account_id } })).toBe(bRowsBefore);
    expect(await h.db.execution.count({ where: { contactId: bContactId } })).toBe(0);
  });

  it("records the calling user's id in the execution_cancelled log", async () => {
    const byOperator = await h.api.post(`/executions/${a.running}/cancel`, undefined, a.secondUserKey);
    expect(byOperator.status).toBe(200);
    expect(responses.execution.parse(byOperator.body).status).toBe('CANCELLED');
    const operatorLogs = (await h.logsOf(a.running)).filter((l) => l.eventType === 'execution_cancelled');
    expect(operatorLogs).toHaveLength(1);
    expect(operatorLogs[0]!.userId).toBe(a.secondUserId);
    expect(operatorLogs[0]!.userId).not.toBe(h.account.user_id);
    const viaApi = await h.api.get(`/executions/${a.running}/logs?limit=100`);
    const entry = viaApi.body.data.find((l: { event_type: string }) => l.event_type === 'execution_cancelled');
    expect(responses.log.parse(entry).user_id).toBe(a.secondUserId);

    const another = await h.trigger(a.workflowId, (await h.createContact()).id);
    const byAdmin = await h.api.post(`/executions/${another}/cancel`);
    expect(byAdmin.status).toBe(200);
    const adminLogs = (await h.logsOf(another)).filter((l) => l.eventType === 'execution_cancelled');
    expect(adminLogs.map((l) => l.userId)).toEqual([h.account.user_id]);

    // Account B's earlier attempts left no cancellation of its own anywhere.
    const bLogs = await h.db.executionLog.findMany({ where: { userId: b.user_id } });
    expect(bLogs).toEqual([]);
  });
});
