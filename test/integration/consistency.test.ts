import { spawnSync } from 'node:child_process';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type PrismaClient } from '../../src/db/client.ts';
import { checkConsistency, type ConsistencyReport, type ViolationKind } from '../../src/engine/consistency.ts';
import { branching, sequential, withWait } from '../fixtures/workflows.ts';
import { startFakeProvider, type FakeProvider } from '../helpers/fake-provider.ts';
import { startHarness, type Harness } from '../helpers/harness.ts';

const BIN = path.resolve(import.meta.dirname, '../../bin/flowmachine.mjs');

// Real executions of every kind end consistent; then each invariant is broken on purpose, one at a
// time, and the check must name it. The engine is stopped before the rows are corrupted.
describe('consistency check', () => {
  let h: Harness;
  let broken: FakeProvider;
  let db: PrismaClient;
  let sql: pg.Client;
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    // `broken` listens on another loopback port than the harness's provider: allow loopback webhooks on any port.
    h = await startHarness({ env: { SWEEP_INTERVAL_MS: '200', WEBHOOK_ALLOWED_HOSTS: '127.0.0.1' } });
    broken = await startFakeProvider();
    broken.setDefault({ status: 503 });
    await h.api.patch('/account/settings', { max_retry_attempts: 1, retry_base_delay_seconds: 1 });

    const finished = (status: string) => (e: { status: string }) => e.status === status;
    const run = async (definition: unknown, contact: Record<string, unknown> = {}) =>
      h.trigger((await h.createWorkflow(definition)).id, (await h.createContact(contact)).id);
    const hook = {
      steps: [
        { id: 'welcome', type: 'send_email', config: { subject: 'Hi', body: 'Hi' } },
        { id: 'hook', type: 'webhook', config: { url: `${broken.url}/hook` } },
      ],
    };

    ids.completed = await run(sequential);
    ids.vip = await run(branching, { tags: ['VIP'] });
    ids.skipped = await run(branching, { tags: ['VIP'], phone: null }); // vip_sms: no phone, a permanent error, skipped
    ids.failed = await run(hook);
    ids.retried = await run(hook);
    ids.cancelled = await run(withWait('1 hour'));
    ids.goal = await run(withWait('1 hour'));
    ids.deleted = await run(withWait('1 hour'));
    ids.paused = await run(withWait('1 hour'));
    for (const key of ['completed', 'vip', 'skipped']) await h.waitForExecution(ids[key]!, finished('COMPLETED'));
    for (const key of ['failed', 'retried']) await h.waitForExecution(ids[key]!, finished('FAILED'));
    // The admin notification is logged after the failure is committed; wait for it.
    for (const key of ['failed', 'retried']) {
      while (!(await h.logsOf(ids[key]!)).some((l) => l.eventType.startsWith('notification_')))
        await new Promise((resolve) => setTimeout(resolve, 25));
    }
    for (const key of ['cancelled', 'goal', 'deleted', 'paused'])
      await h.waitForExecution(ids[key]!, finished('PAUSED'));

    broken.setDefault({ status: 200 });
    expect((await h.api.post(`/executions/${ids.retried}/retry`)).status).toBe(200);
    await h.waitForExecution(ids.retried!, finished('COMPLETED'));
    expect((await h.api.post(`/executions/${ids.cancelled}/cancel`)).status).toBe(200);
    const goal = await h.db.execution.findUniqueOrThrow({ where: { id: ids.goal! } });
    expect(
      (await h.api.post(`/contacts/${goal.contactId}/events`, { name: 'appointment_booked' })).body
        .goal_completed_executions,
    ).toEqual([ids.goal]);
    const deleted = await h.db.execution.findUniqueOrThrow({ where: { id: ids.deleted! } });
    expect((await h.api.delete(`/contacts/${deleted.contactId}`)).status).toBe(204);
  }, 60_000);

  afterAll(async () => {
    await sql?.end();
    await db?.$disconnect();
    await broken?.close();
    await h?.stop();
  });

  const violationsOf = (report: ConsistencyReport) =>
    report.violations.map((v) => `${v.kind} ${v.execution_id ?? v.account_id}: ${v.message}`);

  it('finds nothing wrong after real executions of every kind, while the engine runs', async () => {
    const statuses = await h.db.execution.findMany({ select: { id: true, status: true, completionReason: true } });
    const byId = Object.fromEntries(statuses.map((s) => [s.id, `${s.status}/${s.completionReason ?? ''}`]));
    expect(Object.fromEntries(Object.entries(ids).map(([key, id]) => [key, byId[id]]))).toEqual({
      completed: 'COMPLETED/completed',
      vip: 'COMPLETED/completed',
      skipped: 'COMPLETED/completed',
      failed: 'FAILED/max_retries_exhausted',
      retried: 'COMPLETED/completed',
      cancelled: 'CANCELLED/cancelled',
      goal: 'COMPLETED/goal_achieved',
      deleted: 'CANCELLED/contact_deleted',
      paused: 'PAUSED/',
    });
    const report = await checkConsistency(h.db, { stuckAfterMs: 60_000 });
    expect(violationsOf(report)).toEqual([]);
    expect(report).toMatchObject({ ok: true, executions: 9, accounts: 1, violations_total: 0 });
    expect((await h.logsOf(ids.skipped!)).map((l) => l.eventType)).toContain('skipped_non_retryable_error');
  });

  describe('reports each broken invariant', () => {
    beforeAll(async () => {
      await h.runtime.stop();
      db = createDb(h.config.DATABASE_URL, { max: 2 });
      sql = new pg.Client({ connectionString: h.config.DATABASE_URL });
      await sql.connect();
      await sql.query(`CREATE TABLE keep_executions AS SELECT * FROM executions;
        CREATE TABLE keep_logs AS SELECT * FROM execution_logs; CREATE TABLE keep_accounts AS SELECT * FROM accounts;
        CREATE TABLE keep_slots AS SELECT * FROM account_slots`);
    });

    const restore = () =>
      sql.query(`DELETE FROM execution_logs; DELETE FROM executions;
        INSERT INTO executions SELECT * FROM keep_executions; INSERT INTO execution_logs SELECT * FROM keep_logs;
        UPDATE accounts a SET concurrent_executions_per_account = k.concurrent_executions_per_account FROM keep_accounts k WHERE a.id = k.id;
        DELETE FROM account_slots; INSERT INTO account_slots SELECT * FROM keep_slots;
        SELECT flowmachine_rebuild_counts(id) FROM workflows`);

    const logOf = (key: string, eventType: string) =>
      `(SELECT id FROM execution_logs WHERE execution_id = '${ids[key]}' AND event_type = '${eventType}' ORDER BY id LIMIT 1)`;
    const insertLog = (
      key: string,
      eventType: string,
      stepId: string | null = null,
    ) => `INSERT INTO execution_logs (execution_id, account_id, event_type, step_id, status)
      SELECT id, account_id, '${eventType}', ${stepId ? `'${stepId}'` : 'NULL'}, 'INFO' FROM executions WHERE id = '${ids[key]}'`;
    const update = (key: string, set: string) => `UPDATE executions SET ${set} WHERE id = '${ids[key]}'`;

    const cases: { name: string; kind: ViolationKind; target: string | 'account'; corrupt: () => string }[] = [
      {
        name: 'a snapshot that does not parse',
        kind: 'snapshot_invalid',
        target: 'completed',
        corrupt: () => update('completed', `snapshot = '{"value": 1}'`),
      },
      {
        name: 'a snapshot at a state the workflow lacks',
        kind: 'snapshot_invalid',
        target: 'paused',
        corrupt: () => update('paused', `snapshot = jsonb_set(snapshot, '{value}', '"nowhere"')`),
      },
      {
        name: 'a final state with a running status',
        kind: 'status_mismatch',
        target: 'completed',
        corrupt: () => update('completed', `status = 'ACTIVE'`),
      },
      {
        name: 'a terminal status at a step',
        kind: 'status_mismatch',
        target: 'paused',
        corrupt: () => update('paused', `status = 'CANCELLED', finished_at = now(), next_run_at = NULL`),
      },
      {
        name: 'COMPLETED for a failed machine',
        kind: 'status_mismatch',
        target: 'failed',
        corrupt: () => update('failed', `status = 'COMPLETED'`),
      },
      {
        name: 'a goal completion recorded as a plain completion',
        kind: 'status_mismatch',
        target: 'goal',
        corrupt: () => update('goal', `completion_reason = 'completed'`),
      },
      {
        name: 'PAUSED off a wait step',
        kind: 'status_mismatch',
        target: 'completed',
        corrupt: () =>
          update(
            'completed',
            `status = 'PAUSED', next_run_at = now() + interval '1 hour', finished_at = NULL, snapshot = jsonb_set(snapshot, '{value}', '"sms"')`,
          ),
      },
      {
        name: 'waiting in line while ACTIVE',
        kind: 'status_mismatch',
        target: 'paused',
        corrupt: () => update('paused', `waiting = true`),
      },
      {
        name: 'current_step_index off the snapshot',
        kind: 'step_index_mismatch',
        target: 'vip',
        corrupt: () => update('vip', 'current_step_index = current_step_index + 1'),
      },
      {
        name: 'a PAUSED execution shown as not started',
        kind: 'step_index_mismatch',
        target: 'paused',
        corrupt: () => update('paused', 'current_step_index = 0'),
      },
      {
        name: 'a stopped execution with steps in its log shown as not started',
        kind: 'step_index_mismatch',
        target: 'cancelled',
        corrupt: () => update('cancelled', 'current_step_index = 0'),
      },
      {
        name: 'a terminal execution without finished_at',
        kind: 'terminal_fields',
        target: 'cancelled',
        corrupt: () => update('cancelled', 'finished_at = NULL'),
      },
      {
        name: 'a terminal execution with a timer',
        kind: 'terminal_fields',
        target: 'deleted',
        corrupt: () => update('deleted', `next_run_at = now()`),
      },
      {
        name: 'PAUSED without a timer',
        kind: 'paused_without_timer',
        target: 'paused',
        corrupt: () => update('paused', 'next_run_at = NULL'),
      },
      {
        name: 'a drifted concurrency counter',
        kind: 'active_count_mismatch',
        target: 'account',
        corrupt: () => 'UPDATE account_slots SET used = used + 2',
      },
      {
        name: 'an ACTIVE execution holding a slot its shard does not count',
        kind: 'active_count_mismatch',
        target: 'account',
        corrupt: () => update('paused', `status = 'ACTIVE', slot_shard = 0`),
      },
      {
        name: 'slot quotas off the limit',
        kind: 'slot_quota_mismatch',
        target: 'account',
        corrupt: () => 'UPDATE account_slots SET quota = quota + 1',
      },
      {
        name: 'more ACTIVE executions than the limit',
        kind: 'active_over_limit',
        target: 'account',
        corrupt: () =>
          `UPDATE accounts SET concurrent_executions_per_account = 1; UPDATE account_slots SET used = 2, quota = 1 WHERE shard = 0; ${update('paused', `status = 'ACTIVE', slot_shard = 0`)}; ${update('goal', `status = 'ACTIVE', slot_shard = 0`)}`,
      },
      {
        name: 'a finished step missing from the log',
        kind: 'log_step_count',
        target: 'completed',
        corrupt: () => `DELETE FROM execution_logs WHERE id = ${logOf('completed', 'action_completed')}`,
      },
      {
        name: 'a step finished twice',
        kind: 'log_step_count',
        target: 'vip',
        corrupt: () => insertLog('vip', 'condition_evaluated', 'vip'),
      },
      {
        name: 'a condition result that leads elsewhere',
        kind: 'log_path',
        target: 'vip',
        corrupt: () =>
          `UPDATE execution_logs SET details = '{"result": false}' WHERE id = ${logOf('vip', 'condition_evaluated')}`,
      },
      {
        name: 'steps logged with 0-based indexes',
        kind: 'log_path',
        target: 'completed',
        corrupt: () =>
          `UPDATE execution_logs SET step_index = step_index - 1 WHERE execution_id = '${ids.completed}' AND step_id IS NOT NULL`,
      },
      {
        name: 'steps logged out of order',
        kind: 'log_path',
        target: 'completed',
        corrupt: () =>
          `UPDATE execution_logs SET step_id = CASE step_id WHEN 'welcome' THEN 'tag' WHEN 'tag' THEN 'welcome' ELSE step_id END WHERE execution_id = '${ids.completed}' AND event_type = 'action_completed'`,
      },
      {
        name: 'a second execution_started',
        kind: 'started_log',
        target: 'paused',
        corrupt: () => insertLog('paused', 'execution_started'),
      },
      {
        name: 'a terminal execution without its terminal entry',
        kind: 'terminal_log',
        target: 'cancelled',
        corrupt: () => `DELETE FROM execution_logs WHERE id = ${logOf('cancelled', 'execution_cancelled')}`,
      },
      {
        name: 'a terminal entry of the wrong kind',
        kind: 'terminal_log',
        target: 'cancelled',
        corrupt: () =>
          `UPDATE execution_logs SET event_type = 'execution_completed' WHERE id = ${logOf('cancelled', 'execution_cancelled')}`,
      },
      {
        name: 'a running execution with a terminal entry',
        kind: 'terminal_log',
        target: 'paused',
        corrupt: () => insertLog('paused', 'execution_cancelled'),
      },
      {
        name: 'a step started after the end',
        kind: 'log_after_terminal',
        target: 'goal',
        corrupt: () => insertLog('goal', 'action_started', 'follow_up'),
      },
      {
        name: 'an overdue wait',
        kind: 'stuck',
        target: 'paused',
        corrupt: () => update('paused', `next_run_at = now() - interval '1 hour'`),
      },
      {
        name: 'an ACTIVE execution nobody works on',
        kind: 'stuck',
        target: 'paused',
        corrupt: () =>
          `UPDATE account_slots SET used = 1 WHERE shard = 0; ${update('paused', `status = 'ACTIVE', next_run_at = NULL, updated_at = now() - interval '1 hour'`)}`,
      },
      {
        name: 'a counter of executions at a step off by one',
        kind: 'counts_mismatch',
        target: 'account',
        corrupt: () => `INSERT INTO workflow_count_deltas (workflow_id, workflow_version_id, status, step_id, n)
          SELECT workflow_id, workflow_version_id, status, snapshot->>'value', 1 FROM executions WHERE id = '${ids.paused}'`,
      },
      {
        name: 'a counter of log entries below the log',
        kind: 'counts_mismatch',
        target: 'account',
        corrupt: () => `INSERT INTO workflow_count_deltas (workflow_id, workflow_version_id, step_id, event_type, n)
          SELECT workflow_id, workflow_version_id, 'welcome', 'action_completed', -1 FROM executions WHERE id = '${ids.completed}'`,
      },
      {
        name: 'a QUEUED execution never picked up',
        kind: 'stuck',
        target: 'paused',
        corrupt: () =>
          update('paused', `status = 'QUEUED', next_run_at = NULL, updated_at = now() - interval '1 hour'`),
      },
    ];

    it.each(cases)('$name: $kind', async ({ kind, target, corrupt }) => {
      expect((await checkConsistency(db)).ok).toBe(true);
      await sql.query(corrupt());
      try {
        const report = await checkConsistency(db, { stuckAfterMs: 60_000 });
        expect(report.ok).toBe(false);
        const found = report.violations.filter(
          (v) =>
            v.kind === kind &&
            (target === 'account'
              ? v.account_id === h.account.account_id && !v.execution_id
              : v.execution_id === ids[target]),
        );
        expect(found, violationsOf(report).join('\n')).not.toHaveLength(0);
        expect(report.violations_by_kind[kind]).toBeGreaterThan(0);
      } finally {
        await restore();
      }
    });

    it('flowmachine check prints the report and exits 1 on a violation, 0 otherwise', async () => {
      const check = () =>
        spawnSync(process.execPath, [BIN, 'check'], {
          env: { ...process.env, DATABASE_URL: h.config.DATABASE_URL, LOG_LEVEL: 'error' },
          encoding: 'utf8',
          timeout: 60_000,
        });
      const clean = check();
      expect(clean.status, clean.stderr).toBe(0);
      expect(JSON.parse(clean.stdout)).toMatchObject({ ok: true, executions: 9, violations_total: 0 });
      await sql.query(update('completed', 'current_step_index = 0'));
      try {
        const dirty = check();
        expect(dirty.status).toBe(1);
        const report = JSON.parse(dirty.stdout) as ConsistencyReport;
        expect(report.violations_by_kind.step_index_mismatch).toBe(1);
        expect(report.violations.find((v) => v.kind === 'step_index_mismatch')?.execution_id).toBe(ids.completed);
      } finally {
        await restore();
      }
    }, 60_000);
  });
});
