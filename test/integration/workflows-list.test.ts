import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccount } from '../../src/api/api-keys.ts';
import { responses } from '../../src/api/openapi.ts';
import { emailThenWait, sequential } from '../fixtures/workflows.ts';
import { startHarness, type Harness } from '../helpers/harness.ts';

// `GET /workflows` (CONTRACT.md, added for the designer's view): the account's workflows, newest first,
// paginated, each with its current version and its executions by status. No worker runs, so the
// executions stay where the test puts them.

const page = responses.pagination;
const list = (h: Harness, query = '', key?: string) => h.api.get(`/workflows${query}`, key);

describe('GET /workflows', () => {
  let h: Harness;
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    h = await startHarness({ worker: false });
    ids.draft = (await h.createWorkflow(sequential, 'Draft one', 'draft')).id;
    ids.paused = (await h.createWorkflow(sequential, 'Paused one', 'paused')).id;
    ids.active = (await h.createWorkflow(emailThenWait, 'Active one', 'active')).id;
    // Two QUEUED executions, one of them cancelled; and a second version of the active workflow.
    const first = await h.trigger(ids.active, (await h.createContact()).id);
    await h.trigger(ids.active, (await h.createContact()).id);
    expect((await h.api.post(`/executions/${first}/cancel`)).status).toBe(200);
    expect((await h.api.put(`/workflows/${ids.active}/definition`, { definition: sequential })).status).toBe(200);
  });
  afterAll(() => h?.stop());

  it('lists the workflows newest first with their current version and executions by status', async () => {
    const response = await list(h);
    expect(response.status).toBe(200);
    const body = responses.workflowSummary.array().parse(response.body.data);
    expect(page.parse(response.body.pagination)).toEqual({ total: 3, page: 1, limit: 20, total_pages: 1 });
    expect(body.map((w) => w.name)).toEqual(['Active one', 'Paused one', 'Draft one']);
    expect(body[0]).toMatchObject({
      id: ids.active,
      status: 'active',
      version: 2,
      executions: { QUEUED: 1, ACTIVE: 0, PAUSED: 0, COMPLETED: 0, FAILED: 0, CANCELLED: 1 },
    });
    expect(body[2]!.executions).toEqual({ QUEUED: 0, ACTIVE: 0, PAUSED: 0, COMPLETED: 0, FAILED: 0, CANCELLED: 0 });
    // A list item carries no definition: a page of a hundred stays small.
    expect(body[0]).not.toHaveProperty('definition');
  });

  it('filters by status and pages', async () => {
    const paused = await list(h, '?status=paused');
    expect(paused.body.data.map((w: { id: string }) => w.id)).toEqual([ids.paused]);
    expect(paused.body.pagination.total).toBe(1);
    const second = await list(h, '?page=2&limit=2');
    expect(second.body.data.map((w: { id: string }) => w.id)).toEqual([ids.draft]);
    expect(second.body.pagination).toEqual({ total: 3, page: 2, limit: 2, total_pages: 2 });
    const beyond = await list(h, '?page=9&limit=2');
    expect(beyond.body).toMatchObject({ data: [], pagination: { total: 3, page: 9 } });
  });

  it("shows only the caller's account", async () => {
    const other = await createAccount(h.db, { name: 'Other', adminEmail: 'other@example.com' });
    const response = await list(h, '', other.api_key);
    expect(response.status).toBe(200);
    expect(response.body).toEqual({ data: [], pagination: { total: 0, page: 1, limit: 20, total_pages: 0 } });
  });

  it('refuses bad input with the path of each problem, and a missing key with 401', async () => {
    for (const [query, path] of [
      ['?status=running', 'query.status'],
      ['?page=0', 'query.page'],
      ['?limit=101', 'query.limit'],
      ['?limit=abc', 'query.limit'],
      ['?sort=name', 'query.sort'],
    ] as const) {
      const response = await list(h, query);
      expect(response.status, query).toBe(400);
      expect(response.body.issues.map((i: { path: string }) => i.path)).toContain(path);
    }
    const unauthenticated = await list(h, '', 'not-a-key');
    expect(unauthenticated.status).toBe(401);
    expect(responses.error.parse(unauthenticated.body).error).toMatch(/API key/i);
  });
});
