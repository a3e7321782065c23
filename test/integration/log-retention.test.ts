import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManualClock } from '../../src/clock.ts';
import { loadConfig } from '../../src/config.ts';
import { checkConsistency } from '../../src/engine/consistency.ts';
import { createSweeper, LOG_MAINTENANCE_MS } from '../../src/engine/sweeper.ts';
import { emails, withWait } from '../fixtures/workflows.ts';
import { startHarness, type Harness } from '../helpers/harness.ts';

const BIN = path.resolve(import.meta.dirname, '../../bin/flowmachine.mjs');
const DAY_MS = 86_400_000;

// execution_logs and contact_events are partitioned by month (migration partitioned_logs). On a manual
// clock: the sweeper creates months ahead; LOG_RETENTION_DAYS=30 drops the months wholly older, but the
// rows of an execution still running move to the default partition and stay; the API, the consistency
// check and the stats read across partitions as before. No worker runs: the test moves every execution.
describe('partitioned logs and LOG_RETENTION_DAYS', () => {
  let h: Harness;
  const clock = createManualClock(new Date('2026-01-10T09:00:00.000Z'));
  let sweep: ReturnType<typeof createSweeper>;
  /** finished: completed in January; running: waits from January to May; recent: started in April. */
  const e = {} as Record<'finished' | 'running' | 'recent', string>;
  let workflowId: string;
  let longWaitId: string;
  let contactId: string;

  const partitionsOf = async (table: string) =>
    (
      await h.deps.pool.query<{ name: string }>(
        `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = $1::regclass ORDER BY 1`,
        [table],
      )
    ).rows.map((row) => row.name);
  /** The partition each of an execution's log rows is stored in, in id order. */
  const placesOf = async (executionId: string) =>
    (
      await h.deps.pool.query<{ place: string }>(
        'SELECT tableoid::regclass::text AS place FROM execution_logs WHERE execution_id = $1 ORDER BY id',
        [executionId],
      )
    ).rows.map((row) => row.place);
  const statusOf = async (id: string) => (await h.db.execution.findUniqueOrThrow({ where: { id } })).status;
  const runToEnd = async (id: string) => {
    while (!['COMPLETED', 'FAILED', 'CANCELLED'].includes(await statusOf(id))) await h.step(id);
  };
  const logsOf = async (id: string) => (await h.api.get(`/executions/${id}/logs?limit=100`)).body;

  beforeAll(async () => {
    h = await startHarness({ worker: false, clock, env: { LOG_RETENTION_DAYS: '30' } });
    sweep = createSweeper(h.deps);
  });
  afterAll(() => h?.stop());

  it('creates the current month and the next two ahead, once', async () => {
    const report = await sweep();
    expect(report.partitionsCreated).toBe(6); // 2026-01..03 of both tables
    expect(report.partitionsDropped).toBe(0);
    for (const table of ['execution_logs', 'contact_events']) {
      expect(await partitionsOf(table)).toEqual(
        expect.arrayContaining([`${table}_p202601`, `${table}_p202602`, `${table}_p202603`, `${table}_default`]),
      );
    }
    clock.advance(LOG_MAINTENANCE_MS);
    expect((await sweep()).partitionsCreated).toBe(0);
  });

  it('logs January in its month', async () => {
    workflowId = (await h.createWorkflow(emails(2))).id;
    contactId = (await h.createContact()).id;
    e.finished = await h.trigger(workflowId, contactId);
    await runToEnd(e.finished);
    longWaitId = (await h.createWorkflow(withWait('120 days'), 'Long wait')).id;
    e.running = await h.trigger(longWaitId, contactId);
    await h.step(e.running);
    expect(await statusOf(e.running)).toBe('PAUSED');
    expect((await h.api.post(`/contacts/${contactId}/events`, { name: 'january_event' })).status).toBe(202);
    expect(new Set(await placesOf(e.finished))).toEqual(new Set(['execution_logs_p202601']));
    expect(new Set(await placesOf(e.running))).toEqual(new Set(['execution_logs_p202601']));
  });

  it('drops January once it is older than the retention, keeping the running execution’s rows', async () => {
    clock.set(new Date('2026-04-15T09:00:00.000Z'));
    e.recent = await h.trigger(workflowId, contactId);
    await runToEnd(e.recent);
    expect((await h.api.post(`/contacts/${contactId}/events`, { name: 'april_event' })).status).toBe(202);
    const stats = async () =>
      Promise.all([workflowId, longWaitId].map(async (id) => (await h.api.get(`/workflows/${id}/stats`)).body));
    const statsBefore = await stats();
    const runningBefore = await logsOf(e.running);
    expect(runningBefore.data.length).toBeGreaterThan(0);

    const report = await sweep();
    // April..June are created; January goes (one month per table per upkeep), February next time.
    expect(report.partitionsCreated).toBe(6);
    expect(report.partitionsDropped).toBe(2);
    expect(await partitionsOf('execution_logs')).not.toContain('execution_logs_p202601');
    expect(await partitionsOf('contact_events')).not.toContain('contact_events_p202601');
    expect(await partitionsOf('execution_logs')).toContain('execution_logs_p202602');

    // The finished execution's January log is gone; the running one's is whole, ids and times kept.
    expect((await logsOf(e.finished)).data).toEqual([]);
    expect(await logsOf(e.running)).toEqual(runningBefore);
    expect(new Set(await placesOf(e.running))).toEqual(new Set(['execution_logs_default']));
    expect((await logsOf(e.recent)).data.length).toBeGreaterThan(0);
    // Events older than the retention went; newer ones stay.
    expect((await h.db.contactEvent.findMany({ where: { contactId } })).map((event) => event.name)).toEqual([
      'april_event',
    ]);
    expect(await h.db.logRetention.findMany({ orderBy: { tableName: 'asc' } })).toMatchObject([
      { tableName: 'contact_events', partitionsDropped: 1, rowsKept: 0 },
      { tableName: 'execution_logs', partitionsDropped: 1, rowsKept: runningBefore.data.length },
    ]);
    // The stats are not made from rows retention drops, and the kept rows are not counted again.
    expect(await stats()).toEqual(statsBefore);
    expect(h.logLines.some((line) => line.includes('execution_logs_p202601'))).toBe(true);

    // The next upkeep drops February; March still holds days inside the retention.
    expect((await sweep()).partitionsDropped).toBe(0); // not due yet
    clock.advance(LOG_MAINTENANCE_MS);
    expect((await sweep()).partitionsDropped).toBe(2);
    expect(await partitionsOf('execution_logs')).not.toContain('execution_logs_p202602');
    expect(await partitionsOf('execution_logs')).toContain('execution_logs_p202603');
  });

  it('the running execution goes on with its whole log, and the check finds nothing wrong', async () => {
    clock.set(new Date('2026-05-11T09:00:00.000Z')); // its wait is over
    await sweep(); // promotes the timer
    await runToEnd(e.running);
    expect(await statusOf(e.running)).toBe('COMPLETED');
    const { data } = await logsOf(e.running);
    expect(data[0]).toMatchObject({ event_type: 'execution_started' });
    expect(data.at(-1)).toMatchObject({ event_type: 'execution_completed' });
    expect(new Set(await placesOf(e.running))).toEqual(new Set(['execution_logs_default', 'execution_logs_p202605']));
    const report = await checkConsistency(h.db, { now: clock.now() });
    expect(report.violations).toEqual([]);
    expect(report.executions).toBe(3);
    // `flowmachine check` agrees (every execution has ended, so the wall clock's stuck checks find nothing).
    const cli = spawnSync(process.execPath, [BIN, 'check'], {
      env: { ...process.env, DATABASE_URL: h.config.DATABASE_URL, LOG_LEVEL: 'error' },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(cli.status, cli.stderr).toBe(0);
    expect(JSON.parse(cli.stdout)).toMatchObject({ ok: true, executions: 3, violations_total: 0 });
  });

  it('still finds a missing start of a log retention did not touch', async () => {
    await h.deps.pool.query(`DELETE FROM execution_logs WHERE execution_id = $1 AND event_type = 'execution_started'`, [
      e.recent,
    ]);
    const report = await checkConsistency(h.db, { now: clock.now() });
    expect(report.violations).toEqual([
      expect.objectContaining({ kind: 'started_log', execution_id: e.recent, message: '0 execution_started entries' }),
    ]);
  });

  it('drops the default partition’s old rows once their execution has ended', async () => {
    clock.advance(30 * DAY_MS); // 2026-06-10: April is due (March went at the last upkeep), May is not
    // A reader holding the table (a long report) makes the upkeep give up after its lock timeout, not
    // wait: the sweep goes on, logs it, and the next sweep tries again.
    const reader = await h.deps.pool.connect();
    try {
      await reader.query('BEGIN');
      await reader.query('SELECT count(*) FROM execution_logs');
      const blocked = await sweep();
      expect(blocked.partitionsCreated + blocked.partitionsDropped).toBe(0);
      expect(
        h.logLines.some((line) => line.includes('log partition upkeep failed') && line.includes('lock timeout')),
      ).toBe(true);
    } finally {
      await reader.query('ROLLBACK');
      reader.release();
    }
    const report = await sweep();
    expect(report.partitionsDropped).toBe(2);
    expect(await partitionsOf('execution_logs')).not.toContain('execution_logs_p202604');
    // The running execution has ended: its January rows go; its May rows are within the retention.
    expect(new Set(await placesOf(e.running))).toEqual(new Set(['execution_logs_p202605']));
    expect((await logsOf(e.running)).data.at(-1)).toMatchObject({ event_type: 'execution_completed' });
  });

  it('takes an insert at any time: outside every month in the default, moved when its month is created', async () => {
    const insert = (at: string) =>
      h.deps.pool.query<{ place: string }>(
        `INSERT INTO execution_logs (account_id, event_type, status, timestamp) VALUES ($1, 'trigger_refused', 'BLOCKED', $2)
         RETURNING tableoid::regclass::text AS place`,
        [h.account.account_id, at],
      );
    expect((await insert('2031-06-01T00:00:00Z')).rows).toEqual([{ place: 'execution_logs_default' }]);
    expect((await insert('1999-01-01T00:00:00Z')).rows).toEqual([{ place: 'execution_logs_default' }]);
    const event = await h.db.contactEvent.create({
      data: { accountId: h.account.account_id, contactId, name: 'future', createdAt: new Date('2031-06-02T00:00:00Z') },
    });
    clock.set(new Date('2031-06-15T00:00:00.000Z'));
    expect((await sweep()).partitionsCreated).toBe(6);
    const moved = await h.deps.pool.query<{ place: string }>(
      `SELECT tableoid::regclass::text AS place FROM execution_logs WHERE timestamp = '2031-06-01T00:00:00Z'`,
    );
    expect(moved.rows).toEqual([{ place: 'execution_logs_p203106' }]);
    expect(await h.db.contactEvent.findFirstOrThrow({ where: { id: event.id } })).toEqual(event);
    // The 1999 row, of no execution, is older than the retention: the default partition's upkeep deleted it.
    expect((await h.deps.pool.query(`SELECT 1 FROM execution_logs WHERE timestamp < '2000-01-01'`)).rowCount).toBe(0);
  });

  it('refuses a retention that is not a whole number of days at startup', () => {
    expect(() => loadConfig({ LOG_RETENTION_DAYS: 'abc' })).toThrow(
      'invalid configuration: LOG_RETENTION_DAYS: must be a whole number of days (0 keeps logs forever)',
    );
    expect(() => loadConfig({ LOG_RETENTION_DAYS: '-1' })).toThrow(
      'invalid configuration: LOG_RETENTION_DAYS: must be 0 (keep forever) or more days',
    );
    expect(loadConfig({}).LOG_RETENTION_DAYS).toBe(0);
    expect(loadConfig({ LOG_RETENTION_DAYS: '90' }).LOG_RETENTION_DAYS).toBe(90);
  });
});
