import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createApp } from '../../src/api/app.ts';
import { OPERATIONS, responses, savedWorkflow } from '../../src/api/openapi.ts';
import { startHarness, type ApiResponse, type Harness } from '../helpers/harness.ts';

// The OpenAPI document against the Express router (both directions) and against real responses of a
// full flow: every body parses with the documented zod schema, every status is documented.

const UNKNOWN_ID = '00000000-0000-4000-8000-000000000000';
const tagOnly = {
  steps: [
    { id: 'tag', type: 'add_tag', config: { tag: 'welcomed' } },
    { id: 'mail', type: 'send_email', config: { subject: 'Hi', body: 'Welcome' } },
  ],
};
const waiting = {
  goal: { event: 'appointment_booked' },
  steps: [
    { id: 'pause', type: 'wait', config: { duration: '2 hours' } },
    { id: 'tag', type: 'add_tag', config: { tag: 'late' } },
  ],
};

interface DocumentedOperation {
  summary: string;
  parameters?: { name: string; in: string }[];
  requestBody?: unknown;
  responses: Record<string, { description: string; content?: Record<string, { schema: unknown }> }>;
  security?: unknown[];
}
interface Document {
  openapi: string;
  info: { title: string; version: string };
  paths: Record<string, Record<string, DocumentedOperation>>;
  security: unknown[];
}

/** `METHOD /path/{param}` of every route the Express app registers, found by walking its router stack. */
function registeredRoutes(app: ReturnType<typeof createApp>): string[] {
  const found: string[] = [];
  type Layer = {
    rawPath?: unknown;
    route?: { path: string; methods: Record<string, boolean> };
    handle?: { stack?: Layer[] };
  };
  const walk = (stack: Layer[], prefix: string) => {
    for (const layer of stack) {
      if (layer.route) {
        const path = `${prefix}${layer.route.path}`.replace(/:(\w+)/g, '{$1}');
        for (const [method, on] of Object.entries(layer.route.methods))
          if (on && method !== '_all') found.push(`${method.toUpperCase()} ${path}`);
      } else if (layer.handle?.stack) {
        const mount = typeof layer.rawPath === 'string' && layer.rawPath !== '/' ? layer.rawPath : '';
        walk(layer.handle.stack, `${prefix}${mount}`);
      }
    }
  };
  walk((app as unknown as { router: { stack: Layer[] } }).router.stack, '');
  return found;
}

const key = (op: { method: string; path: string }) => `${op.method.toUpperCase()} ${op.path}`;

describe('OpenAPI document', () => {
  let h: Harness;
  let document: Document;

  beforeAll(async () => {
    h = await startHarness();
    const response = await h.api.raw('GET', '/openapi.json');
    expect(response.status).toBe(200);
    document = response.body as Document;
  });
  afterAll(() => h?.stop());

  /** Checks a response against the document: its status is listed for the operation, its body parses with the zod schema. */
  const conforms = <T extends z.ZodType>(
    method: string,
    template: string,
    response: ApiResponse,
    schema?: T,
  ): z.infer<T> => {
    const op = OPERATIONS.find((o) => o.method === method && o.path === template);
    expect(op, `${method} ${template} is in OPERATIONS`).toBeDefined();
    const documented = document.paths[template]?.[method];
    expect(
      documented?.responses[String(response.status)],
      `${method} ${template} documents ${response.status}: ${JSON.stringify(response.body)}`,
    ).toBeDefined();
    if (response.status >= 400) return responses.error.parse(response.body) as z.infer<T>;
    if (response.status === op!.ok[0] && op!.ok[1]) op!.ok[1].parse(response.body);
    return (schema ? schema.parse(response.body) : response.body) as z.infer<T>;
  };

  it('is OpenAPI 3.1 and lists exactly the operations of OPERATIONS', () => {
    expect(document.openapi).toMatch(/^3\.1\.\d+$/);
    expect(document.info).toMatchObject({ title: 'flowmachine', version: expect.any(String) });
    const documented = Object.entries(document.paths).flatMap(([path, methods]) =>
      Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(documented.sort()).toEqual(OPERATIONS.map(key).sort());
    expect(new Set(documented).size).toBe(documented.length);
    for (const op of OPERATIONS) {
      const entry = document.paths[op.path]![op.method]!;
      expect(entry.summary).toBe(op.summary);
      expect(entry.responses[String(op.ok[0])]).toBeDefined();
      expect(entry.responses['500']).toBeDefined();
      for (const code of op.errors ?? [])
        expect(entry.responses[String(code)]?.content?.['application/json']?.schema).toBeTypeOf('object');
      if (op.auth === false) {
        expect(entry.security).toEqual([]);
      } else {
        expect(entry.security).toBeUndefined();
        expect(Object.keys(entry.responses)).toContain('401');
      }
      if (op.path.includes('{id}')) {
        expect(entry.parameters).toEqual(
          expect.arrayContaining([expect.objectContaining({ name: 'id', in: 'path', required: true })]),
        );
        expect(Object.keys(entry.responses)).toEqual(expect.arrayContaining(['400', '404']));
      }
      if (op.body)
        expect(entry.requestBody).toMatchObject({
          required: true,
          content: { 'application/json': { schema: expect.any(Object) } },
        });
      for (const name of Object.keys(op.query?.shape ?? {})) {
        expect(entry.parameters).toEqual(expect.arrayContaining([expect.objectContaining({ name, in: 'query' })]));
      }
    }
    expect(document.security).toEqual([{ bearer: [] }]);
  });

  it('documents every route the Express app registers, and registers every documented one', () => {
    const routes = registeredRoutes(createApp(h.deps));
    expect(routes.length).toBeGreaterThan(20);
    const operations = OPERATIONS.map(key);
    expect(routes.filter((route) => !operations.includes(route))).toEqual([]);
    expect(operations.filter((operation) => !routes.includes(operation))).toEqual([]);
    expect(new Set(routes).size).toBe(routes.length);
  });

  it('answers every documented operation with a route (never the "no route" 404) and a documented status', async () => {
    for (const op of OPERATIONS) {
      const path = op.path.replace('{id}', UNKNOWN_ID).replace('{tag}', 'some-tag');
      // Bodies that are refused or harmless: nothing of value is created.
      const body =
        op.method === 'get' || op.method === 'delete'
          ? undefined
          : op.path === '/api/v1/api-keys'
            ? '{"name":"probe"}'
            : '{}';
      const response = await h.api.raw(op.method.toUpperCase(), path, body);
      if (response.status === 404) expect(response.body.error, key(op)).not.toMatch(/^no route for/);
      expect(response.status, key(op)).toBeLessThan(500);
      conforms(op.method, op.path, response);
    }
  });

  it('matches the responses of a full flow', async () => {
    const health = await h.api.raw('GET', '/health');
    expect(conforms('get', '/health', health, responses.health)).toEqual({ status: 'ok', postgres: true, redis: true });
    const metrics = await fetch(`${h.baseUrl}/metrics`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toMatch(/^# (HELP|TYPE) /m);

    // Contacts
    const created = await h.api.post('/contacts', {
      email: 'Flow@Example.com',
      phone: '+15551234567',
      opted_in: true,
      tags: ['lead'],
      timezone: 'Europe/Paris',
      attributes: { first_name: 'Flo' },
    });
    expect(created.status).toBe(201);
    const contact = conforms('post', '/api/v1/contacts', created, responses.contact.strict());
    expect(contact).toMatchObject({ email: 'flow@example.com', tags: ['lead'], opted_in: true });
    conforms('get', '/api/v1/contacts/{id}', await h.api.get(`/contacts/${contact.id}`), responses.contact.strict());
    conforms(
      'patch',
      '/api/v1/contacts/{id}',
      await h.api.patch(`/contacts/${contact.id}`, { timezone: 'UTC' }),
      responses.contact.strict(),
    );
    const tagged = conforms(
      'post',
      '/api/v1/contacts/{id}/tags',
      await h.api.post(`/contacts/${contact.id}/tags`, { tag: 'VIP' }),
      responses.contact.strict(),
    );
    expect(tagged.tags).toEqual(['lead', 'VIP']);
    const untagged = conforms(
      'delete',
      '/api/v1/contacts/{id}/tags/{tag}',
      await h.api.delete(`/contacts/${contact.id}/tags/lead`),
      responses.contact.strict(),
    );
    expect(untagged.tags).toEqual(['VIP']);

    // Workflows
    const workflowResponse = await h.api.post('/workflows', { name: 'Flow', definition: tagOnly, status: 'draft' });
    expect(workflowResponse.status).toBe(201);
    const workflow = conforms('post', '/api/v1/workflows', workflowResponse, savedWorkflow.strict());
    expect(workflow).toMatchObject({ status: 'draft', version: 1 });
    conforms(
      'get',
      '/api/v1/workflows/{id}',
      await h.api.get(`/workflows/${workflow.id}`),
      responses.workflow.strict(),
    );
    const inactive = await h.api.post(`/workflows/${workflow.id}/trigger`, { contact_id: contact.id });
    expect(conforms('post', '/api/v1/workflows/{id}/trigger', inactive, responses.error).error).toBe(
      'Workflow is not active',
    );
    const redefined = conforms(
      'put',
      '/api/v1/workflows/{id}/definition',
      await h.api.put(`/workflows/${workflow.id}/definition`, { definition: tagOnly }),
      savedWorkflow.strict(),
    );
    expect(redefined.version).toBe(2);
    expect(
      conforms(
        'post',
        '/api/v1/workflows/{id}/activate',
        await h.api.post(`/workflows/${workflow.id}/activate`),
        responses.workflow.strict(),
      ).status,
    ).toBe('active');
    const machine = conforms(
      'get',
      '/api/v1/workflows/{id}/machine',
      await h.api.get(`/workflows/${workflow.id}/machine`),
    );
    expect(machine).toMatchObject({ id: expect.any(String), initial: expect.any(String), states: expect.any(Object) });

    // Trigger, wait for completion
    const triggered = await h.api.post(`/workflows/${workflow.id}/trigger`, { contact_id: contact.id });
    expect(triggered.status).toBe(202);
    const { execution_id: executionId } = conforms(
      'post',
      '/api/v1/workflows/{id}/trigger',
      triggered,
      responses.triggered.strict(),
    );
    await h.waitForExecution(executionId, (e) => e.status === 'COMPLETED');
    const execution = conforms(
      'get',
      '/api/v1/executions/{id}',
      await h.api.get(`/executions/${executionId}`),
      responses.execution.strict(),
    );
    expect(execution).toMatchObject({
      id: executionId,
      workflow_id: workflow.id,
      contact_id: contact.id,
      status: 'COMPLETED',
      progress_percent: 100,
      completion_reason: 'completed',
    });

    const logsResponse = await h.api.get(`/executions/${executionId}/logs?page=1&limit=3`);
    expect(logsResponse.status).toBe(200);
    const logs = conforms(
      'get',
      '/api/v1/executions/{id}/logs',
      logsResponse,
      z.strictObject({ data: z.array(responses.log.strict()), pagination: responses.pagination.strict() }),
    );
    expect(logs.data).toHaveLength(3);
    expect(logs.data[0]!.event_type).toBe('execution_started');
    expect(logs.pagination).toMatchObject({ page: 1, limit: 3, total_pages: Math.ceil(logs.pagination.total / 3) });

    // Lists with filters
    const listSchema = z.strictObject({
      data: z.array(responses.execution.strict()),
      pagination: responses.pagination.strict(),
    });
    const today = new Date().toISOString().slice(0, 10);
    const list = conforms(
      'get',
      '/api/v1/workflows/{id}/executions',
      await h.api.get(`/workflows/${workflow.id}/executions?status=COMPLETED&from=${today}&page=1&limit=5`),
      listSchema,
    );
    expect(list.data.map((e) => e.id)).toEqual([executionId]);
    expect(list.pagination).toEqual({ total: 1, page: 1, limit: 5, total_pages: 1 });
    const none = conforms(
      'get',
      '/api/v1/workflows/{id}/executions',
      await h.api.get(`/workflows/${workflow.id}/executions?status=FAILED`),
      listSchema,
    );
    expect(none.data).toEqual([]);
    const badQuery = await h.api.get(`/workflows/${workflow.id}/executions?from=2026-13-45`);
    expect(badQuery.status).toBe(400);
    conforms('get', '/api/v1/workflows/{id}/executions', badQuery);

    // Cancel and retry refused on the finished execution
    const cancelFinished = await h.api.post(`/executions/${executionId}/cancel`);
    expect(cancelFinished.status).toBe(409);
    expect(conforms('post', '/api/v1/executions/{id}/cancel', cancelFinished, responses.error).status).toBe(
      'COMPLETED',
    );
    const retryFinished = await h.api.post(`/executions/${executionId}/retry`);
    expect(retryFinished.status).toBe(409);
    conforms('post', '/api/v1/executions/{id}/retry', retryFinished);

    // A waiting execution: duplicate trigger, cancel, goal event
    const waiter = conforms(
      'post',
      '/api/v1/workflows',
      await h.api.post('/workflows', { name: 'Waiter', definition: waiting, status: 'active' }),
      savedWorkflow.strict(),
    );
    const second = await h.createContact();
    const first = conforms(
      'post',
      '/api/v1/workflows/{id}/trigger',
      await h.api.post(`/workflows/${waiter.id}/trigger`, { contact_id: second.id }),
      responses.triggered.strict(),
    );
    const duplicate = await h.api.post(`/workflows/${waiter.id}/trigger`, { contact_id: second.id });
    expect(duplicate.status).toBe(200);
    expect(
      conforms('post', '/api/v1/workflows/{id}/trigger', duplicate, responses.duplicate.strict()).execution_id,
    ).toBe(first.execution_id);
    await h.waitForExecution(first.execution_id, (e) => e.status === 'PAUSED');
    const cancelled = await h.api.post(`/executions/${first.execution_id}/cancel`);
    expect(cancelled.status).toBe(200);
    expect(conforms('post', '/api/v1/executions/{id}/cancel', cancelled, responses.execution.strict()).status).toBe(
      'CANCELLED',
    );
    const goalContact = await h.createContact();
    const goalExecution = await h.trigger(waiter.id, goalContact.id);
    await h.waitForExecution(goalExecution, (e) => e.status === 'PAUSED');
    const event = await h.api.post(`/contacts/${goalContact.id}/events`, {
      name: 'appointment_booked',
      properties: { source: 'test' },
    });
    expect(event.status).toBe(202);
    expect(conforms('post', '/api/v1/contacts/{id}/events', event, responses.event.strict())).toEqual({
      accepted: true,
      event: 'appointment_booked',
      event_id: expect.any(String),
      enrolled: [],
      blocked: [],
      resumed: [],
      goals: [goalExecution],
      exited: [],
      goal_completed_executions: [goalExecution],
    });
    expect(
      conforms(
        'post',
        '/api/v1/workflows/{id}/pause',
        await h.api.post(`/workflows/${waiter.id}/pause`),
        responses.workflow.strict(),
      ).status,
    ).toBe('paused');

    // Settings and API keys
    conforms('get', '/api/v1/account/settings', await h.api.get('/account/settings'), responses.settings.strict());
    const patched = conforms(
      'patch',
      '/api/v1/account/settings',
      await h.api.patch('/account/settings', { retry_base_delay_seconds: 30 }),
      responses.settings.strict(),
    );
    expect(patched.retry_base_delay_seconds).toBe(30);
    const newKey = await h.api.post('/api-keys', { name: 'ci' });
    expect(newKey.status).toBe(201);
    const issued = conforms('post', '/api/v1/api-keys', newKey, responses.apiKey.strict());
    const keys = conforms(
      'get',
      '/api/v1/api-keys',
      await h.api.get('/api-keys'),
      z.strictObject({ data: z.array(responses.apiKeys.shape.data.element.strict()) }),
    );
    expect(keys.data.map((k) => k.id)).toContain(issued.id);
    expect(JSON.stringify(keys)).not.toContain(issued.api_key);
    const revoke = await h.api.delete(`/api-keys/${issued.id}`);
    expect(revoke.status).toBe(204);
    conforms('delete', '/api/v1/api-keys/{id}', revoke);

    const deleted = await h.api.delete(`/contacts/${second.id}`);
    expect(deleted.status).toBe(204);
    conforms('delete', '/api/v1/contacts/{id}', deleted);
    conforms('get', '/api/v1/contacts/{id}', await h.api.get(`/contacts/${second.id}`));
  });
});
