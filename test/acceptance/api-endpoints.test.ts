import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { responses } from '../../src/api/openapi.ts';
import { emails, sequential } from '../fixtures/workflows.ts';
import { startHarness, type Harness } from '../helpers/harness.ts';

// SPEC "Feature: API Endpoints", the scenarios that need no failure handling, through the real API
// and Postgres. These endpoints only read, so the worker is off and each scenario's state is set up
// deterministically, with no race with a running step: an execution brought to a given step by running
// its jobs one by one, or 50 log entries and executions with given statuses and creation dates written
// directly through Prisma.
describe('Feature: API Endpoints', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ worker: false });
  });
  afterAll(() => h?.stop());

  it('Scenario: Get execution status', async () => {
    // Given an execution at step 3 of 5 with status ACTIVE: steps 1 and 2 done by the engine, the 3rd due
    const workflow = await h.createWorkflow(emails(5), 'Five mails');
    const id = await h.trigger(workflow.id, (await h.createContact()).id);
    expect((await h.api.get(`/executions/${id}`)).body).toMatchObject({
      status: 'QUEUED',
      current_step_index: 0,
      total_steps: 5,
      progress_percent: 0,
    });
    await h.step(id);
    await h.step(id);

    // When I GET /api/v1/executions/{id}
    const response = await h.api.get(`/executions/${id}`);

    // Then the response status is 200 with the execution's progress
    expect(response.status).toBe(200);
    const execution = responses.execution.parse(response.body);
    expect(execution).toMatchObject({
      id,
      workflow_id: workflow.id,
      status: 'ACTIVE',
      current_step: 'email_3',
      current_step_index: 3,
      total_steps: 5,
      progress_percent: 60,
      retry_count: 0,
      completion_reason: null,
      next_run_at: null,
    });
    expect(Date.parse(execution.created_at)).not.toBeNaN();
    expect(Date.parse(execution.updated_at)).not.toBeNaN();
  });

  it('Scenario: Get execution logs with pagination', async () => {
    // Given an execution with 50 log entries (its execution_started entry and 49 more)
    const workflow = await h.createWorkflow(sequential, 'Logged');
    const contact = await h.createContact();
    const id = await h.trigger(workflow.id, contact.id);
    const types = [
      'action_started',
      'action_completed',
      'condition_evaluated',
      'wait_started',
      'wait_completed',
      'retry_scheduled',
      'rate_limit_hit',
    ];
    const start = Date.now();
    await h.db.executionLog.createMany({
      data: Array.from({ length: 49 }, (_, i) => ({
        executionId: id,
        accountId: h.account.account_id,
        workflowId: workflow.id,
        contactId: contact.id,
        eventType: types[i % types.length]!,
        stepIndex: Math.floor(i / 2),
        stepId: `step_${i + 1}`,
        status: i % 5 === 0 ? 'FAILED' : 'SUCCESS',
        durationMs: 10 + i,
        timestamp: new Date(start + i),
        // Written unmasked on purpose: the API must mask whatever it finds.
        details: { seq: i + 2, to: 'john.doe@example.com', phone: '+15551234567' },
      })),
    });
    const all = await h.logsOf(id);
    expect(all).toHaveLength(50);

    // When I GET /api/v1/executions/{id}/logs?page=1&limit=10
    const first = await h.api.get(`/executions/${id}/logs?page=1&limit=10`);

    // Then I receive 10 log entries and the pagination
    expect(first.status).toBe(200);
    expect(first.body.data).toHaveLength(10);
    expect(first.body.pagination).toEqual({ total: 50, page: 1, limit: 10, total_pages: 5 });
    const entries = first.body.data.map((entry: unknown) => responses.log.parse(entry));
    expect(entries[0]).toMatchObject({
      execution_id: id,
      event_type: 'execution_started',
      step_index: 0,
      status: 'QUEUED',
    });
    for (const entry of entries) {
      expect(entry).toEqual(
        expect.objectContaining({
          execution_id: id,
          event_type: expect.any(String),
          step_index: expect.any(Number),
          status: expect.any(String),
          timestamp: expect.any(String),
        }),
      );
      expect(entry).toHaveProperty('duration_ms');
      expect(Date.parse(entry.timestamp)).not.toBeNaN();
    }
    // Oldest first, the rows in insertion order.
    expect(entries.map((e: { id: string }) => e.id)).toEqual(all.slice(0, 10).map((row) => row.id.toString()));
    expect(entries[1]).toMatchObject({
      event_type: 'action_started',
      step_id: 'step_1',
      status: 'FAILED',
      duration_ms: 10,
    });
    // Details are masked: no address or number leaves in clear.
    expect(JSON.stringify(first.body)).not.toContain('john.doe@example.com');
    expect(JSON.stringify(first.body)).not.toContain('+15551234567');
    expect(entries[1].details).toMatchObject({ seq: 2, to: 'j***@example.com' });

    // The last page holds the last 10 entries; past it the data is empty with the same totals.
    const last = await h.api.get(`/executions/${id}/logs?page=5&limit=10`);
    expect(last.status).toBe(200);
    expect(last.body.pagination).toEqual({ total: 50, page: 5, limit: 10, total_pages: 5 });
    expect(last.body.data.map((e: { id: string }) => e.id)).toEqual(all.slice(40).map((row) => row.id.toString()));
    expect(last.body.data.at(-1).details.seq).toBe(50);
    const beyond = await h.api.get(`/executions/${id}/logs?page=6&limit=10`);
    expect(beyond.status).toBe(200);
    expect(beyond.body).toEqual({ data: [], pagination: { total: 50, page: 6, limit: 10, total_pages: 5 } });

    // Every entry is on exactly one page.
    const seen: string[] = [];
    for (let page = 1; page <= 5; page += 1)
      seen.push(
        ...(await h.api.get(`/executions/${id}/logs?page=${page}&limit=10`)).body.data.map((e: { id: string }) => e.id),
      );
    expect(seen).toEqual(all.map((row) => row.id.toString()));
    // The defaults are page 1 and limit 10.
    expect((await h.api.get(`/executions/${id}/logs`)).body.pagination).toEqual({
      total: 50,
      page: 1,
      limit: 10,
      total_pages: 5,
    });
  });

  it('Scenario: List executions with filters', async () => {
    // Given executions of one workflow with different statuses and creation dates
    const workflow = await h.createWorkflow(sequential, 'Filtered');
    const other = await h.createWorkflow(sequential, 'Other');
    const given: [string, string][] = [
      ['FAILED', '2025-12-20T09:00:00.000Z'],
      ['FAILED', '2026-01-05T12:00:00.000Z'],
      ['COMPLETED', '2026-01-10T08:30:00.000Z'],
      ['CANCELLED', '2026-01-20T17:45:00.000Z'],
      ['FAILED', '2026-02-01T00:00:00.000Z'],
      ['ACTIVE', '2026-02-15T10:00:00.000Z'],
      ['FAILED', '2026-03-15T23:59:59.000Z'],
      ['QUEUED', '2026-04-01T06:00:00.000Z'],
    ];
    const ids: Record<string, string> = {};
    for (const [status, createdAt] of given) {
      const id = await h.trigger(workflow.id, (await h.createContact()).id);
      await h.db.execution.update({ where: { id }, data: { status, createdAt: new Date(createdAt) } });
      ids[createdAt] = id;
    }
    // A FAILED execution of another workflow never shows up.
    const foreign = await h.trigger(other.id, (await h.createContact()).id);
    await h.db.execution.update({
      where: { id: foreign },
      data: { status: 'FAILED', createdAt: new Date('2026-02-10T00:00:00.000Z') },
    });
    const idOf = (createdAt: string) => ids[createdAt]!;

    const list = async (query: string) => {
      const response = await h.api.get(`/workflows/${workflow.id}/executions?${query}`);
      expect(response.status, `${query}: ${JSON.stringify(response.body)}`).toBe(200);
      const data = response.body.data.map((entry: unknown) => responses.execution.parse(entry));
      return {
        ids: data.map((e: { id: string }) => e.id),
        data,
        pagination: responses.pagination.parse(response.body.pagination),
      };
    };

    // When I GET /api/v1/workflows/{id}/executions?status=FAILED&from=2026-01-01
    const failed = await list('status=FAILED&from=2026-01-01');

    // Then only the FAILED executions created since then, newest created_at first
    expect(failed.ids).toEqual([
      idOf('2026-03-15T23:59:59.000Z'),
      idOf('2026-02-01T00:00:00.000Z'),
      idOf('2026-01-05T12:00:00.000Z'),
    ]);
    expect(failed.pagination).toEqual({ total: 3, page: 1, limit: 20, total_pages: 1 });
    for (const e of failed.data) expect(e).toMatchObject({ status: 'FAILED', workflow_id: workflow.id });
    const createdAts = failed.data.map((e: { created_at: string }) => Date.parse(e.created_at));
    expect(createdAts).toEqual([...createdAts].sort((x, y) => y - x));
    expect(createdAts.every((t: number) => t >= Date.parse('2026-01-01T00:00:00Z'))).toBe(true);

    // Paginated
    const page1 = await list('status=FAILED&from=2026-01-01&limit=2&page=1');
    expect(page1.ids).toEqual(failed.ids.slice(0, 2));
    expect(page1.pagination).toEqual({ total: 3, page: 1, limit: 2, total_pages: 2 });
    const page2 = await list('status=FAILED&from=2026-01-01&limit=2&page=2');
    expect(page2.ids).toEqual(failed.ids.slice(2));
    expect(page2.pagination).toEqual({ total: 3, page: 2, limit: 2, total_pages: 2 });
    expect((await list('status=FAILED&from=2026-01-01&limit=2&page=3')).ids).toEqual([]);

    // `to` alone, and `from` + `to` (bounds are inclusive, date-times with an offset are accepted)
    expect((await list('to=2026-01-15')).ids).toEqual([
      idOf('2026-01-10T08:30:00.000Z'),
      idOf('2026-01-05T12:00:00.000Z'),
      idOf('2025-12-20T09:00:00.000Z'),
    ]);
    expect((await list('from=2026-01-05T12:00:00Z&to=2026-02-01T00:00:00Z')).ids).toEqual([
      idOf('2026-02-01T00:00:00.000Z'),
      idOf('2026-01-20T17:45:00.000Z'),
      idOf('2026-01-10T08:30:00.000Z'),
      idOf('2026-01-05T12:00:00.000Z'),
    ]);
    expect((await list('from=2026-01-05T13:00:00%2B01:00&to=2026-01-10')).ids).toEqual([
      idOf('2026-01-05T12:00:00.000Z'),
    ]);

    // Combined filters
    expect((await list('status=FAILED&from=2026-01-01&to=2026-02-28')).ids).toEqual([
      idOf('2026-02-01T00:00:00.000Z'),
      idOf('2026-01-05T12:00:00.000Z'),
    ]);
    expect((await list('status=FAILED&to=2025-12-31')).ids).toEqual([idOf('2025-12-20T09:00:00.000Z')]);
    expect((await list('status=ACTIVE&from=2026-02-01&to=2026-02-28')).ids).toEqual([idOf('2026-02-15T10:00:00.000Z')]);
    expect((await list('status=COMPLETED&from=2026-02-01')).ids).toEqual([]);

    // No filter: every execution of the workflow, newest first.
    const everything = await list('');
    expect(everything.ids).toEqual([...given].reverse().map(([, createdAt]) => idOf(createdAt)));
    expect(everything.ids).not.toContain(foreign);
    expect(everything.pagination).toEqual({ total: given.length, page: 1, limit: 20, total_pages: 1 });
  });
});
