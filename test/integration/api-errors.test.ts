import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OPERATIONS, responses } from '../../src/api/openapi.ts';
import { startHarness, type ApiResponse, type Harness } from '../helpers/harness.ts';

// Every error path of every route of the REST API, through real HTTP against the real Postgres and
// Redis. The worker runs, so finished executions exist for the 409 cases.

const UNKNOWN_ID = '00000000-0000-4000-8000-000000000000';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** Things an error body must never carry: stack frames, source locations, SQL or driver text. */
const LEAK =
  /\bat\s+\S+\s+\(|\.ts:\d+|node_modules|prisma|\bSELECT\b|\bINSERT\b|\bUPDATE\s+"|\bWHERE\b|invalid input syntax|stack/i;

const tagStep = { steps: [{ id: 'tag', type: 'add_tag', config: { tag: 'done' } }] };
const waitStep = {
  steps: [
    { id: 'pause', type: 'wait', config: { duration: '2 hours' } },
    { id: 'tag', type: 'add_tag', config: { tag: 'x' } },
  ],
};

interface Issue {
  path: string;
  message: string;
}

/** Checks the contract's error body and returns it: `{error, request_id, ...details}`, no internals. */
function expectError(response: ApiResponse, status: number, message?: string | RegExp) {
  expect(response.status, JSON.stringify(response.body)).toBe(status);
  const body = responses.error.parse(response.body);
  expect(typeof body.error).toBe('string');
  expect(body.request_id).toBe(response.headers.get('x-request-id'));
  expect(body.request_id).toBeTruthy();
  expect(JSON.stringify(body)).not.toMatch(LEAK);
  if (message !== undefined) expect(body.error).toMatch(message);
  return body as typeof body & { issues?: Issue[] };
}

/** Checks a 400 and that every path in `paths` is named by an issue. */
function expectIssues(response: ApiResponse, where: 'body' | 'query' | 'params', paths: string[]) {
  const body = expectError(response, 400, `invalid request ${where}`);
  expect(Object.keys(body).sort()).toEqual(['error', 'issues', 'request_id']);
  const named = (body.issues ?? []).map((issue) => issue.path);
  for (const issue of body.issues ?? []) expect(issue.message).toEqual(expect.any(String));
  expect(named).toEqual(expect.arrayContaining(paths));
  return body.issues ?? [];
}

const concretePath = (path: string, id: string) => path.replace('{id}', id).replace('{tag}', 'some-tag');

describe('API error paths', () => {
  let h: Harness;
  let contactId: string;
  let workflowId: string;
  let send: (
    method: string,
    path: string,
    options?: { body?: string; headers?: Record<string, string> },
  ) => Promise<ApiResponse>;

  beforeAll(async () => {
    h = await startHarness();
    contactId = (await h.createContact()).id;
    workflowId = (await h.createWorkflow(tagStep, 'Tagger')).id;
    // Plain fetch with full control of the headers (the harness always adds a Bearer key).
    send = async (method, path, options = {}) => {
      const response = await fetch(`${h.baseUrl}${path}`, {
        method,
        headers: options.headers ?? {},
        body: options.body,
      });
      const text = await response.text();
      let body: unknown = text;
      try {
        body = text ? JSON.parse(text) : null;
      } catch {
        /* not JSON */
      }
      return { status: response.status, body, headers: response.headers };
    };
  });
  afterAll(() => h?.stop());

  /** A valid body for each route that takes one, so only the part under test is wrong. */
  const validBody = (method: string, path: string): unknown => {
    if (method === 'post' && path === '/api/v1/contacts') return { email: 'valid@example.com', opted_in: true };
    if (method === 'patch' && path.startsWith('/api/v1/contacts/')) return { opted_in: true };
    if (path.endsWith('/tags') && method === 'post') return { tag: 'vip' };
    if (path.endsWith('/events')) return { name: 'appointment_booked' };
    if (method === 'post' && path === '/api/v1/workflows') return { name: 'W', definition: tagStep };
    if (path.endsWith('/definition')) return { definition: tagStep };
    if (path === '/api/v1/workflows/validate') return { definition: tagStep };
    if (path.endsWith('/trigger')) return { contact_id: contactId };
    if (path.endsWith('/enrollments')) return { contact_ids: [contactId] };
    // The dry run of one contact stores nothing.
    if (path.endsWith('/test')) return { contact: {} };
    // Bulk cancel/retry: a dry run, so the valid body changes nothing.
    if (path.endsWith('/executions/cancel') || path.endsWith('/executions/retry')) return { dry_run: true };
    if (path === '/api/v1/account/settings' && method === 'patch') return { max_retry_attempts: 3 };
    if (path === '/api/v1/api-keys' && method === 'post') return { name: 'k' };
    return undefined;
  };

  describe('authentication', () => {
    const authenticated = OPERATIONS.filter((op) => op.auth !== false);

    it('answers 401 without an Authorization header on every /api/v1 route', async () => {
      expect(authenticated.length).toBeGreaterThan(20);
      for (const op of authenticated) {
        const response = await send(op.method.toUpperCase(), concretePath(op.path, UNKNOWN_ID));
        const body = expectError(response, 401, /missing or malformed Authorization header/);
        expect(Object.keys(body).sort(), `${op.method} ${op.path}`).toEqual(['error', 'request_id']);
      }
    });

    it('answers 401 to malformed Authorization headers', async () => {
      const malformed = [
        'Basic dXNlcjpwYXNz',
        'Bearer',
        'Bearer ',
        'Token fm_abc',
        h.account.api_key,
        `Bearer ${h.account.api_key} extra`,
        `Bearer${h.account.api_key}`,
      ];
      for (const authorization of malformed) {
        const response = await send('GET', '/api/v1/account/settings', { headers: { authorization } });
        expectError(response, 401, /missing or malformed Authorization header/);
      }
    });

    it('answers 401 to an unknown key on every /api/v1 route', async () => {
      for (const op of authenticated) {
        const response = await send(op.method.toUpperCase(), concretePath(op.path, UNKNOWN_ID), {
          headers: { authorization: 'Bearer fm_thisKeyWasNeverIssuedByTheServer00' },
        });
        expectError(response, 401, 'invalid or revoked API key');
      }
      // A key differing from a real one in its last character is unknown too.
      const near = `${h.account.api_key.slice(0, -1)}${h.account.api_key.endsWith('A') ? 'B' : 'A'}`;
      expectError(await h.api.get('/account/settings', near), 401, 'invalid or revoked API key');
    });

    it('refuses a revoked key within 5 seconds of its revocation', async () => {
      const created = await h.api.post('/api-keys', { name: 'short-lived' });
      expect(created.status).toBe(201);
      const key = responses.apiKey.parse(created.body);
      expect(key.api_key.startsWith(key.prefix)).toBe(true);
      // Warm the authentication cache with the key, so the revocation has to outlive a cached entry.
      expect((await h.api.get('/account/settings', key.api_key)).status).toBe(200);

      const revoked = await h.api.delete(`/api-keys/${key.id}`);
      expect(revoked.status).toBe(204);
      expect(revoked.body).toBeNull();
      const revokedAt = Date.now();
      const deadline = revokedAt + 5_000 + 1_000; // the cache bound, plus one request's worth of slack
      let last: ApiResponse;
      for (;;) {
        last = await h.api.get('/account/settings', key.api_key);
        if (last.status === 401 || Date.now() > deadline) break;
        expect(last.status).toBe(200);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expectError(last, 401, 'invalid or revoked API key');
      expect(Date.now()).toBeLessThanOrEqual(deadline);

      const listed = responses.apiKeys.parse((await h.api.get('/api-keys')).body);
      expect(listed.data.find((k) => k.id === key.id)?.revoked_at).toEqual(expect.any(String));
      // Revoking twice: the key is no longer revocable.
      expectError(await h.api.delete(`/api-keys/${key.id}`), 404, 'API key not found');
      // The caller's own key is untouched.
      expect((await h.api.get('/account/settings')).status).toBe(200);
    });

    it('needs no key for the operations endpoints', async () => {
      for (const op of OPERATIONS.filter((o) => o.auth === false)) {
        const response = await send('GET', op.path);
        expect(response.status, op.path).toBe(200);
      }
    });
  });

  describe('request ids', () => {
    it('echoes a sane x-request-id on success and on errors', async () => {
      const ok = await send('GET', '/health', { headers: { 'x-request-id': 'trace-42.a_B' } });
      expect(ok.headers.get('x-request-id')).toBe('trace-42.a_B');
      const failed = await h.api.raw('GET', `/api/v1/contacts/${UNKNOWN_ID}`, undefined, {
        'x-request-id': 'my-request-1',
      });
      const body = expectError(failed, 404);
      expect(body.request_id).toBe('my-request-1');
    });

    it('generates one when it is absent or not sane', async () => {
      const first = await send('GET', '/api/v1/account/settings');
      const second = await send('GET', '/api/v1/account/settings');
      const firstId = expectError(first, 401).request_id!;
      expect(firstId).toMatch(UUID);
      expect(expectError(second, 401).request_id).not.toBe(firstId);
      for (const insane of ['has space', 'x'.repeat(101), 'semi;colon', '<script>']) {
        const response = await send('GET', '/api/v1/account/settings', { headers: { 'x-request-id': insane } });
        expect(response.headers.get('x-request-id')).toMatch(UUID);
        expect(expectError(response, 401).request_id).toMatch(UUID);
      }
      const ok = await h.api.get('/account/settings');
      expect(ok.headers.get('x-request-id')).toMatch(UUID);
    });
  });

  describe('request bodies', () => {
    const bodyRoutes = () =>
      OPERATIONS.filter((op) => op.body).map((op) => ({
        op,
        path: concretePath(op.path, op.path.startsWith('/api/v1/workflows/') ? workflowId : contactId),
      }));

    it('answers 400 to invalid JSON on every route that takes a body', async () => {
      for (const { op, path } of bodyRoutes()) {
        for (const text of ['{"email":', "{'a':1}", '{"a":1,}', 'null', '"a string"', '42', 'true', '{"a":1}{"b":2}']) {
          const response = await h.api.raw(op.method.toUpperCase(), path, text);
          const body = expectError(response, 400, 'request body is not valid JSON');
          expect(Object.keys(body).sort()).toEqual(['error', 'request_id']);
        }
      }
    });

    it('answers 400 to JSON that is not an object', async () => {
      expectIssues(await h.api.post('/contacts', []), 'body', ['body']);
      expectIssues(await h.api.post('/contacts', [{ email: 'a@example.com', opted_in: true }]), 'body', ['body']);
    });

    it('answers 413 to a body over 100 kB', async () => {
      const huge = JSON.stringify({
        email: 'a@example.com',
        opted_in: true,
        attributes: { blob: 'x'.repeat(101 * 1024) },
      });
      const before = await h.db.contact.count();
      for (const { op, path } of bodyRoutes()) {
        expectError(await h.api.raw(op.method.toUpperCase(), path, huge), 413, 'request body is too large');
      }
      expect(await h.db.contact.count()).toBe(before);
      // Just under the limit the body is read and validated (attributes are capped at 16 KB).
      const under = JSON.stringify({
        email: 'a@example.com',
        opted_in: true,
        attributes: { blob: 'x'.repeat(90 * 1024) },
      });
      expectIssues(await h.api.raw('POST', '/api/v1/contacts', under), 'body', ['body.attributes']);
    });

    it('answers 415 to a body that is not JSON', async () => {
      for (const { op, path } of bodyRoutes()) {
        for (const [type, text] of [
          ['text/plain', 'hello'],
          ['application/x-www-form-urlencoded', 'email=a%40b.co&opted_in=true'],
          ['application/xml', '<a/>'],
        ] as const) {
          const response = await h.api.raw(op.method.toUpperCase(), path, text, { 'content-type': type });
          expectError(response, 415, 'request body must be application/json');
        }
      }
      // A JSON body with a charset parameter is JSON.
      const ok = await h.api.raw(
        'POST',
        '/api/v1/contacts',
        JSON.stringify({ email: 'charset@example.com', opted_in: true }),
        { 'content-type': 'application/json; charset=utf-8' },
      );
      expect(ok.status).toBe(201);
    });

    it('refuses unknown fields with 400 on every route that takes a body (bodies are strict)', async () => {
      const counts = async () => [
        await h.db.contact.count(),
        await h.db.workflow.count(),
        await h.db.workflowVersion.count(),
        await h.db.apiKey.count(),
        await h.db.execution.count(),
      ];
      const before = await counts();
      for (const { op, path } of bodyRoutes()) {
        const valid = validBody(op.method, op.path) as Record<string, unknown>;
        expect(valid, `${op.method} ${op.path}`).toBeTypeOf('object');
        for (const extra of ['unexpected', '__proto__', 'constructor', 'id', 'account_id']) {
          const text = JSON.stringify(valid).replace(/^\{/, `{${JSON.stringify(extra)}:{"polluted":true},`);
          const issues = expectIssues(await h.api.raw(op.method.toUpperCase(), path, text), 'body', []);
          expect(
            issues.some((issue) => issue.path === `body.${extra}` && issue.message === 'unknown field'),
            `${op.method} ${op.path} ${extra}`,
          ).toBe(true);
        }
      }
      expect(await counts()).toEqual(before);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    });
  });

  describe('validation names the path of each invalid field', () => {
    it('POST /contacts', async () => {
      expectIssues(await h.api.post('/contacts', {}), 'body', ['body.email', 'body.opted_in']);
      expectIssues(
        await h.api.post('/contacts', {
          email: 'not-an-email',
          opted_in: 'yes',
          phone: 'call me',
          tags: ['ok', ' '],
          timezone: '',
          attributes: ['a'],
        }),
        'body',
        ['body.email', 'body.opted_in', 'body.phone', 'body.tags.1', 'body.timezone', 'body.attributes'],
      );
      expectIssues(await h.api.post('/contacts', { email: 5, opted_in: 1, tags: 'vip' }), 'body', [
        'body.email',
        'body.opted_in',
        'body.tags',
      ]);
      expectIssues(
        await h.api.post('/contacts', {
          email: 'a@example.com',
          opted_in: true,
          tags: Array.from({ length: 101 }, (_, i) => `t${i}`),
        }),
        'body',
        ['body.tags'],
      );
    });

    it('PATCH /contacts/{id}', async () => {
      expectIssues(await h.api.patch(`/contacts/${contactId}`, { opted_in: 'no' }), 'body', ['body.opted_in']);
      expectIssues(await h.api.patch(`/contacts/${contactId}`, { email: 'x', phone: 12 }), 'body', [
        'body.email',
        'body.phone',
      ]);
      const stored = await h.db.contact.findUniqueOrThrow({ where: { id: contactId } });
      expect(stored.optedIn).toBe(true);
    });

    it('POST /contacts/{id}/tags and DELETE /contacts/{id}/tags/{tag}', async () => {
      expectIssues(await h.api.post(`/contacts/${contactId}/tags`, {}), 'body', ['body.tag']);
      expectIssues(await h.api.post(`/contacts/${contactId}/tags`, { tag: '   ' }), 'body', ['body.tag']);
      expectIssues(await h.api.post(`/contacts/${contactId}/tags`, { tag: 'x'.repeat(101) }), 'body', ['body.tag']);
      expectIssues(await h.api.post(`/contacts/${contactId}/tags`, { tag: ['vip'] }), 'body', ['body.tag']);
      expectIssues(await h.api.delete(`/contacts/${contactId}/tags/%20%20`), 'params', ['params.tag']);
      expectIssues(await h.api.delete(`/contacts/${contactId}/tags/${'x'.repeat(101)}`), 'params', ['params.tag']);
    });

    it('POST /contacts/{id}/events', async () => {
      expectIssues(await h.api.post(`/contacts/${contactId}/events`, {}), 'body', ['body.name']);
      expectIssues(await h.api.post(`/contacts/${contactId}/events`, { name: '', properties: 'p' }), 'body', [
        'body.name',
        'body.properties',
      ]);
    });

    it('POST /workflows and PUT /workflows/{id}/definition', async () => {
      expectIssues(await h.api.post('/workflows', {}), 'body', ['body.name', 'body.definition']);
      expectIssues(await h.api.post('/workflows', { name: '  ', definition: tagStep, status: 'running' }), 'body', [
        'body.name',
        'body.status',
      ]);
      const invalid = await h.api.post('/workflows', {
        name: 'Bad',
        definition: {
          steps: [
            { id: '1st', type: 'teleport' },
            { id: 'w', type: 'wait', config: { duration: 'soon' } },
          ],
        },
      });
      const body = expectError(invalid, 400, 'invalid workflow definition');
      const paths = (body.issues ?? []).map((issue) => issue.path);
      expect(paths.length).toBeGreaterThanOrEqual(2);
      expect(paths.every((path) => path.startsWith('definition.'))).toBe(true);
      expect(paths).toEqual(
        expect.arrayContaining([
          expect.stringMatching(/^definition\.steps\.0/),
          expect.stringMatching(/^definition\.steps\.1\.config\.duration/),
        ]),
      );
      expectIssues(await h.api.put(`/workflows/${workflowId}/definition`, {}), 'body', ['body.definition']);
      expectError(
        await h.api.put(`/workflows/${workflowId}/definition`, { definition: { steps: [] } }),
        400,
        'invalid workflow definition',
      );
      const stored = await h.db.workflow.findUniqueOrThrow({ where: { id: workflowId } });
      expect(stored.currentVersion).toBe(1);
    });

    it('POST /workflows/{id}/trigger', async () => {
      expectIssues(await h.api.post(`/workflows/${workflowId}/trigger`, {}), 'body', ['body.contact_id']);
      expectIssues(
        await h.api.post(`/workflows/${workflowId}/trigger`, { contact_id: 'not-a-uuid', payload: ['x'] }),
        'body',
        ['body.contact_id', 'body.payload'],
      );
      expect(await h.db.execution.count({ where: { workflowId } })).toBe(0);
    });

    it('GET /workflows/{id}/executions query', async () => {
      const list = (query: string) => h.api.get(`/workflows/${workflowId}/executions?${query}`);
      expectIssues(await list('limit=0'), 'query', ['query.limit']);
      expectIssues(await list('limit=101'), 'query', ['query.limit']);
      expectIssues(await list('limit=ten'), 'query', ['query.limit']);
      expectIssues(await list('limit=2.5'), 'query', ['query.limit']);
      expectIssues(await list('limit=1&limit=2'), 'query', ['query.limit']);
      expectIssues(await list('page=0'), 'query', ['query.page']);
      expectIssues(await list('page=-3'), 'query', ['query.page']);
      expectIssues(await list('page=NaN'), 'query', ['query.page']);
      expectIssues(await list('status=DONE'), 'query', ['query.status']);
      expectIssues(await list('status=failed'), 'query', ['query.status']);
      expectIssues(await list('from=2026-13-45'), 'query', ['query.from']);
      expectIssues(await list('from=yesterday'), 'query', ['query.from']);
      expectIssues(await list('to=2026-02-30T25:00:00Z'), 'query', ['query.to']);
      expectIssues(await list('from=x&to=y&page=z&limit=w&status=v'), 'query', [
        'query.from',
        'query.to',
        'query.page',
        'query.limit',
        'query.status',
      ]);
      const unknown = expectIssues(await list('sort=created_at'), 'query', ['query.sort']);
      expect(unknown.every((issue) => issue.message === 'unknown field')).toBe(true);
      expect((await list('status=FAILED&from=2026-01-01&to=2026-12-31T23:59:59Z&page=1&limit=100')).status).toBe(200);
    });

    it('GET /executions/{id}/logs query', async () => {
      const id = await h.trigger(workflowId, (await h.createContact()).id);
      expectIssues(await h.api.get(`/executions/${id}/logs?page=0`), 'query', ['query.page']);
      expectIssues(await h.api.get(`/executions/${id}/logs?limit=101`), 'query', ['query.limit']);
      expectIssues(await h.api.get(`/executions/${id}/logs?limit=-1&page=x`), 'query', ['query.limit', 'query.page']);
      expectIssues(await h.api.get(`/executions/${id}/logs?status=FAILED`), 'query', ['query.status']);
    });

    it('POST /api-keys', async () => {
      const before = await h.db.apiKey.count();
      expectIssues(await h.api.post('/api-keys', { name: '' }), 'body', ['body.name']);
      expectIssues(await h.api.post('/api-keys', { name: 7 }), 'body', ['body.name']);
      expectIssues(await h.api.post('/api-keys', { name: 'k'.repeat(101) }), 'body', ['body.name']);
      expect(await h.db.apiKey.count()).toBe(before);
    });
  });

  describe('ids', () => {
    const withId = OPERATIONS.filter((op) => op.path.includes('{id}'));

    it('answers 400 naming params to a non-uuid id on every route that takes one', async () => {
      expect(withId.length).toBeGreaterThan(15);
      for (const op of withId) {
        for (const bad of [
          'not-a-uuid',
          '123',
          UNKNOWN_ID.slice(0, -1),
          `${UNKNOWN_ID}0`,
          'zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz',
          "1' OR '1'='1",
        ]) {
          const body = validBody(op.method, op.path);
          const response = await h.api.raw(
            op.method.toUpperCase(),
            concretePath(op.path, encodeURIComponent(bad)),
            body === undefined ? undefined : JSON.stringify(body),
          );
          expectIssues(response, 'params', ['params']);
        }
      }
    });

    it('answers 404 to an unknown id on every route that takes one', async () => {
      for (const op of withId) {
        const body = validBody(op.method, op.path);
        const response = await h.api.raw(
          op.method.toUpperCase(),
          concretePath(op.path, UNKNOWN_ID),
          body === undefined ? undefined : JSON.stringify(body),
        );
        const error = expectError(response, 404, / not found$/);
        expect(Object.keys(error).sort()).toEqual(['error', 'request_id']);
      }
    });

    it('answers 404 to a trigger naming an unknown or deleted contact', async () => {
      expectError(
        await h.api.post(`/workflows/${workflowId}/trigger`, { contact_id: UNKNOWN_ID }),
        404,
        'contact not found',
      );
      const gone = await h.createContact();
      expect((await h.api.delete(`/contacts/${gone.id}`)).status).toBe(204);
      expectError(
        await h.api.post(`/workflows/${workflowId}/trigger`, { contact_id: gone.id }),
        404,
        'contact not found',
      );
      expectError(await h.api.get(`/contacts/${gone.id}`), 404, 'contact not found');
      expectError(await h.api.delete(`/contacts/${gone.id}`), 404, 'contact not found');
      expect(await h.db.execution.count({ where: { contactId: gone.id } })).toBe(0);
    });
  });

  describe('conflicts', () => {
    it('answers 409 to cancel or retry of a finished execution', async () => {
      const id = await h.trigger(workflowId, (await h.createContact()).id);
      await h.waitForExecution(id, (e) => e.status === 'COMPLETED');
      const before = await h.db.execution.findUniqueOrThrow({ where: { id } });
      const cancel = expectError(
        await h.api.post(`/executions/${id}/cancel`),
        409,
        'cannot cancel an execution with status COMPLETED',
      );
      expect(cancel.status).toBe('COMPLETED');
      const retry = expectError(
        await h.api.post(`/executions/${id}/retry`),
        409,
        'cannot retry an execution with status COMPLETED',
      );
      expect(retry.status).toBe('COMPLETED');
      const after = await h.db.execution.findUniqueOrThrow({ where: { id } });
      expect(after).toEqual(before);
      expect(
        (await h.logsOf(id)).some((log) => log.eventType === 'execution_cancelled' || log.eventType === 'manual_retry'),
      ).toBe(false);
    });

    it('answers 409 to retry of a running execution and to a second cancel', async () => {
      const waiting = (await h.createWorkflow(waitStep, 'Waiter')).id;
      const id = await h.trigger(waiting, (await h.createContact()).id);
      await h.waitForExecution(id, (e) => e.status === 'PAUSED');
      expectError(await h.api.post(`/executions/${id}/retry`), 409, 'cannot retry an execution with status PAUSED');
      const cancelled = await h.api.post(`/executions/${id}/cancel`);
      expect(cancelled.status).toBe(200);
      expect(cancelled.body.status).toBe('CANCELLED');
      const again = expectError(
        await h.api.post(`/executions/${id}/cancel`),
        409,
        'cannot cancel an execution with status CANCELLED',
      );
      expect(again.status).toBe('CANCELLED');
      expectError(await h.api.post(`/executions/${id}/retry`), 409, 'cannot retry an execution with status CANCELLED');
      expect((await h.logsOf(id)).filter((log) => log.eventType === 'execution_cancelled')).toHaveLength(1);
    });
  });

  describe('unknown routes', () => {
    it('answers 404 with the error body', async () => {
      expectError(await send('GET', '/nope'), 404, 'no route for GET /nope');
      expectError(await send('POST', '/health'), 404, 'no route for POST /health');
      expectError(await h.api.get('/nope'), 404, 'no route for GET /api/v1/nope');
      expectError(await h.api.get('/contacts'), 404, 'no route for GET /api/v1/contacts');
      expectError(
        await h.api.delete(`/workflows/${workflowId}`),
        404,
        `no route for DELETE /api/v1/workflows/${workflowId}`,
      );
      expectError(await h.api.raw('PUT', `/api/v1/contacts/${contactId}`, '{}'), 404, /^no route for PUT/);
      expectError(await send('GET', '/api/v2/contacts'), 404);
      // Under /api/v1 authentication comes first: no route is revealed to an unauthenticated caller.
      expectError(await send('GET', '/api/v1/nope'), 401);
    });
  });

  describe('account settings', () => {
    it('reads the defaults', async () => {
      const response = await h.api.get('/account/settings');
      expect(response.status).toBe(200);
      expect(responses.settings.parse(response.body)).toEqual({
        concurrent_executions_per_account: 100,
        max_retry_attempts: 3,
        retry_base_delay_seconds: 60,
        error_notification: true,
        admin_email: 'admin@example.com',
        default_timezone: 'UTC',
        frequency_caps: [],
      });
    });

    it('refuses every invalid field with its path and changes nothing', async () => {
      const before = await h.db.account.findUniqueOrThrow({ where: { id: h.account.account_id } });
      const cases: [Record<string, unknown>, string[]][] = [
        [{ concurrent_executions_per_account: 0 }, ['body.concurrent_executions_per_account']],
        [{ concurrent_executions_per_account: 100_001 }, ['body.concurrent_executions_per_account']],
        [{ concurrent_executions_per_account: '10' }, ['body.concurrent_executions_per_account']],
        [{ max_retry_attempts: -1 }, ['body.max_retry_attempts']],
        [{ max_retry_attempts: 21 }, ['body.max_retry_attempts']],
        [{ max_retry_attempts: 2.5 }, ['body.max_retry_attempts']],
        [{ retry_base_delay_seconds: 0 }, ['body.retry_base_delay_seconds']],
        [{ retry_base_delay_seconds: 86_401 }, ['body.retry_base_delay_seconds']],
        [{ error_notification: 'yes' }, ['body.error_notification']],
        [{ error_notification: null }, ['body.error_notification']],
        [{ admin_email: 'nobody' }, ['body.admin_email']],
        [{ default_timezone: 'Mars/Olympus_Mons' }, ['body.default_timezone']],
        [{ default_timezone: '' }, ['body.default_timezone']],
        [
          { admin_email: 5, max_retry_attempts: 'x', error_notification: 0 },
          ['body.admin_email', 'body.max_retry_attempts', 'body.error_notification'],
        ],
      ];
      for (const [body, paths] of cases) expectIssues(await h.api.patch('/account/settings', body), 'body', paths);
      expectIssues(await h.api.patch('/account/settings', { max_retry_attempts: 5, name: 'renamed' }), 'body', [
        'body.name',
      ]);
      const after = await h.db.account.findUniqueOrThrow({ where: { id: h.account.account_id } });
      expect(after).toEqual(before);
    });

    it('changes only the given fields', async () => {
      const empty = await h.api.patch('/account/settings', {});
      expect(empty.status).toBe(200);
      const response = await h.api.patch('/account/settings', {
        max_retry_attempts: 5,
        admin_email: '  Ops@Example.COM ',
      });
      expect(response.status).toBe(200);
      expect(responses.settings.parse(response.body)).toEqual({
        concurrent_executions_per_account: 100,
        max_retry_attempts: 5,
        retry_base_delay_seconds: 60,
        error_notification: true,
        admin_email: 'ops@example.com',
        default_timezone: 'UTC',
        frequency_caps: [],
      });
      expect((await h.api.get('/account/settings')).body).toEqual(response.body);
      const restored = await h.api.patch('/account/settings', {
        max_retry_attempts: 3,
        admin_email: 'admin@example.com',
      });
      expect(restored.body.max_retry_attempts).toBe(3);
    });
  });

  describe('GET /health', () => {
    it('answers 200 when Postgres and Redis answer', async () => {
      const response = await send('GET', '/health');
      expect(response.status).toBe(200);
      expect(response.body).toEqual({ status: 'ok', postgres: true, redis: true });
      expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    });
  });
});
