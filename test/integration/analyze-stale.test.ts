import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSweeper } from '../../src/engine/sweeper.ts';
import { startHarness, type Harness } from '../helpers/harness.ts';

// Postgres plans a connection's prepared statements again only when a table's statistics change, so the
// sweeper analyzes the tables whose rows changed by more than 1,000 + 20 % since their last ANALYZE
// (prisma/functions/flowmachine_analyze_stale.sql). Autovacuum is kept off for the tables this test
// fills, so that it is the sweep that analyzes them wherever the test runs. No worker runs: the test sweeps.
describe('tables with stale statistics', () => {
  let h: Harness;
  let sweep: ReturnType<typeof createSweeper>;
  let logPartition: string;

  /** The changes since the table's last ANALYZE and whether it had one, as the statistics show them. */
  const statsOf = async (table: string) =>
    (
      await h.deps.pool.query<{ changed: number; analyzed: boolean }>(
        `SELECT n_mod_since_analyze::int AS changed, last_analyze IS NOT NULL AS analyzed
         FROM pg_stat_user_tables WHERE relname = $1`,
        [table],
      )
    ).rows[0]!;
  /** Runs `sql`, which changes `rows` rows of `table`, and waits until the statistics show them. */
  const change = async (table: string, rows: number, sql: string, params: unknown[]) => {
    const before = (await statsOf(table)).changed;
    const client = await h.deps.pool.connect();
    try {
      await client.query('SELECT pg_stat_force_next_flush()');
      await client.query(sql, params);
    } finally {
      client.release();
    }
    await expect.poll(async () => (await statsOf(table)).changed, { timeout: 10_000 }).toBe(before + rows);
  };
  const insertContacts = (n: number) =>
    change(
      'contacts',
      n,
      `INSERT INTO contacts (id, account_id, email, updated_at)
       SELECT gen_random_uuid(), $1, 'c-' || gen_random_uuid() || '@example.com', now() FROM generate_series(1, $2)`,
      [h.account.account_id, n],
    );

  beforeAll(async () => {
    h = await startHarness({ worker: false });
    sweep = createSweeper(h.deps);
    await sweep(); // the month's log partitions, and whatever the migration left unanalyzed
    logPartition = `execution_logs_p${new Date().toISOString().slice(0, 7).replace('-', '')}`;
    for (const table of ['contacts', logPartition])
      await h.deps.pool.query(`ALTER TABLE ${table} SET (autovacuum_enabled = false)`);
  });
  afterAll(() => h?.stop());

  it('analyzes a table once more than 1,000 + 20 % of its rows changed, once, and counts it', async () => {
    await insertContacts(900);
    expect((await sweep()).analyzed).not.toContain('contacts'); // 900 ≤ 1,000

    await insertContacts(200);
    const report = await sweep();
    expect(report.analyzed).toContain('contacts');
    expect(await statsOf('contacts')).toEqual({ changed: 0, analyzed: true });
    expect(await h.metric('flowmachine_tables_analyzed_total', 'table="contacts"')).toBe(1);
    expect((await sweep()).analyzed).not.toContain('contacts');

    // Now 1,100 rows: the next ANALYZE comes after more than 1,000 + 220 changes.
    await insertContacts(1_200);
    expect((await sweep()).analyzed).not.toContain('contacts');
    await insertContacts(30);
    expect((await sweep()).analyzed).toContain('contacts');
    expect(await h.metric('flowmachine_tables_analyzed_total', 'table="contacts"')).toBe(2);
  });

  it('analyzes log partitions, counted as their table', async () => {
    await change(
      logPartition,
      1_500,
      `INSERT INTO execution_logs (account_id, event_type, status, details)
       SELECT $1, 'opt_out_blocked', 'REFUSED', '{}' FROM generate_series(1, 1500)`,
      [h.account.account_id],
    );
    expect((await sweep()).analyzed).toContain(logPartition);
    expect(await h.metric('flowmachine_tables_analyzed_total', 'table="execution_logs"')).toBe(1);
  });

  it('leaves the tables to the process that is analyzing them', async () => {
    await insertContacts(2_000);
    const other: pg.PoolClient = await h.deps.pool.connect();
    try {
      await other.query('BEGIN');
      await other.query('SELECT pg_advisory_xact_lock(72707006)');
      expect((await sweep()).analyzed).toEqual([]);
    } finally {
      await other.query('ROLLBACK');
      other.release();
    }
    expect((await sweep()).analyzed).toContain('contacts');
  });
});
