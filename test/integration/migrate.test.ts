import { randomBytes } from 'node:crypto';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BASELINE, FUNCTIONS_DIR, MIGRATIONS_DIR, migrate } from '../../src/db/migrate.ts';
import { TEST_DB_PREFIX, adminQuery, createTestDatabase, databaseUrl } from '../helpers/database.ts';

const PRISMA_DIR = path.dirname(MIGRATIONS_DIR);
const functionFiles = async () => (await readdir(FUNCTIONS_DIR)).filter((file) => file.endsWith('.sql')).sort();
const migrationNames = async () =>
  (await readdir(MIGRATIONS_DIR, { withFileTypes: true }))
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();

/** An empty database (not cloned from the migrated template); `drop()` removes it. */
async function createEmptyDatabase() {
  const name = `${TEST_DB_PREFIX}${Date.now()}_${randomBytes(4).toString('hex')}`;
  await adminQuery(`CREATE DATABASE "${name}"`);
  return { url: databaseUrl(name), drop: () => adminQuery(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`) };
}

async function query<T extends pg.QueryResultRow>(url: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

/** Every flowmachine_* function in the database with its argument types, e.g. `flowmachine_take_slot(uuid, boolean)`. */
const functionsIn = async (url: string) =>
  (
    await query<{ signature: string }>(
      url,
      `SELECT p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')' AS signature FROM pg_proc p
       JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public' AND p.proname LIKE 'flowmachine\\_%' ORDER BY 1`,
    )
  ).map((row) => row.signature);

/** Every `CREATE [OR REPLACE] FUNCTION name` under a directory, as [name, file relative to it]. */
async function functionDefinitions(dir: string): Promise<[string, string][]> {
  const definitions: [string, string][] = [];
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.sql')) continue;
    const file = path.join(entry.parentPath, entry.name);
    const sql = await readFile(file, 'utf8');
    for (const match of sql.matchAll(/CREATE\s+(?:OR\s+REPLACE\s+)?FUNCTION\s+(\w+)/gi))
      definitions.push([String(match[1]), path.relative(dir, file)]);
  }
  return definitions;
}

describe('migrate: dated migrations, then the function files that changed', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  let scratch: string;
  beforeAll(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'fm-migrate-'));
    cleanups.push(() => rm(scratch, { recursive: true, force: true }));
  });
  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  /** A copy of prisma/functions (or migrations) to change in a test. */
  async function copyOf(dir: string): Promise<string> {
    const copy = path.join(scratch, `${path.basename(dir)}-${randomBytes(4).toString('hex')}`);
    await cp(dir, copy, { recursive: true });
    return copy;
  }

  async function migratedDatabase() {
    const database = await createTestDatabase();
    cleanups.push(database.drop);
    return database;
  }

  it('defines every function in exactly one file, prisma/functions/<name>.sql, and none in a dated migration', async () => {
    const places = new Map<string, string[]>();
    for (const [name, file] of await functionDefinitions(PRISMA_DIR))
      places.set(name, [...(places.get(name) ?? []), file]);
    for (const [name, files] of places) expect(files, name).toEqual([path.join('functions', `${name}.sql`)]);
    expect(await functionFiles()).toEqual([...places.keys()].map((name) => `${name}.sql`).sort());
    // Triggers are kept with their function, not in dated migrations.
    for (const name of await migrationNames()) {
      expect(await readFile(path.join(MIGRATIONS_DIR, name, 'migration.sql'), 'utf8'), name).not.toMatch(
        /CREATE\s+(OR\s+REPLACE\s+)?TRIGGER/i,
      );
    }
  });

  it('gives a fresh database every migration and every function, once, then applies nothing', async () => {
    const database = await createEmptyDatabase();
    cleanups.push(database.drop);
    const names = (await functionFiles()).map((file) => file.slice(0, -4));
    expect(await migrate(database.url)).toEqual({
      migrations: await migrationNames(),
      baselined: [],
      functions: names,
    });
    // One function per file, no leftover overloads.
    expect((await functionsIn(database.url)).map((signature) => signature.split('(')[0])).toEqual(names);
    const triggers = await query<{ tgname: string }>(
      database.url,
      `SELECT tgname FROM pg_trigger WHERE tgrelid = 'accounts'::regclass AND NOT tgisinternal`,
    );
    expect(triggers.map((row) => row.tgname)).toEqual(['accounts_spread_slots']);
    expect((await query(database.url, 'SELECT name FROM flowmachine_functions')).length).toBe(names.length);
    expect(await migrate(database.url)).toEqual({ migrations: [], baselined: [], functions: [] });
  });

  it('applies again only the function file whose content changed', async () => {
    const database = await migratedDatabase();
    const functions = await copyOf(FUNCTIONS_DIR);
    const file = path.join(functions, 'flowmachine_slot_shards.sql');
    await writeFile(file, (await readFile(file, 'utf8')).replace('least(16,', 'least(32,'));
    expect(await query(database.url, 'SELECT flowmachine_slot_shards(10000) AS n')).toEqual([{ n: 16 }]);
    expect(await migrate(database.url, MIGRATIONS_DIR, functions)).toEqual({
      migrations: [],
      baselined: [],
      functions: ['flowmachine_slot_shards'],
    });
    expect(await query(database.url, 'SELECT flowmachine_slot_shards(10000) AS n')).toEqual([{ n: 32 }]);
    expect(await migrate(database.url, MIGRATIONS_DIR, functions)).toEqual({
      migrations: [],
      baselined: [],
      functions: [],
    });
  });

  it('replaces a function whose signature changed when its file first drops the old one', async () => {
    const database = await migratedDatabase();
    const functions = await copyOf(FUNCTIONS_DIR);
    await writeFile(
      path.join(functions, 'flowmachine_slot_shards.sql'),
      `DROP FUNCTION IF EXISTS flowmachine_slot_shards(integer);
CREATE OR REPLACE FUNCTION flowmachine_slot_shards(p_limit integer, p_per_shard integer DEFAULT 64) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$ SELECT least(16, greatest(1, p_limit / p_per_shard)) $$;
`,
    );
    expect((await migrate(database.url, MIGRATIONS_DIR, functions)).functions).toEqual(['flowmachine_slot_shards']);
    expect(
      (await functionsIn(database.url)).filter((signature) => signature.startsWith('flowmachine_slot_shards(')),
    ).toEqual(['flowmachine_slot_shards(p_limit integer, p_per_shard integer)']);
    // Its plpgsql callers still work: an account of 1000 slots spreads them over 15 shards.
    const [account] = await query<{ id: string }>(
      database.url,
      `INSERT INTO accounts (id, name, admin_email, concurrent_executions_per_account)
      VALUES (gen_random_uuid(), 'A', 'a@example.com', 1000) RETURNING id`,
    );
    expect(
      await query(database.url, 'SELECT count(*)::int AS n FROM account_slots WHERE account_id = $1', [account?.id]),
    ).toEqual([{ n: 15 }]);
  });

  it('rolls back a function file that fails and records nothing, so the fixed file is applied next time', async () => {
    const database = await migratedDatabase();
    const functions = await copyOf(FUNCTIONS_DIR);
    const file = path.join(functions, 'flowmachine_slot_shards.sql');
    const original = await readFile(file, 'utf8');
    await writeFile(file, original.replace('least(16,', 'least(no_such_column,'));
    await expect(migrate(database.url, MIGRATIONS_DIR, functions)).rejects.toThrow(
      /function flowmachine_slot_shards failed/,
    );
    expect(await query(database.url, 'SELECT flowmachine_slot_shards(10000) AS n')).toEqual([{ n: 16 }]);
    await writeFile(file, `${original}-- fixed\n`);
    expect((await migrate(database.url, MIGRATIONS_DIR, functions)).functions).toEqual(['flowmachine_slot_shards']);
  });

  it('partitions execution_logs and contact_events of a database holding rows, keeping every row', async () => {
    const PARTITIONING = '20261203010000_partitioned_logs';
    const database = await createEmptyDatabase();
    cleanups.push(database.drop);
    // The schema before partitioning: the migrations before it, the function files it does not need.
    const before = await copyOf(MIGRATIONS_DIR);
    for (const name of await migrationNames())
      if (name >= PARTITIONING) await rm(path.join(before, name), { recursive: true });
    const oldFunctions = await copyOf(FUNCTIONS_DIR);
    for (const file of await functionFiles())
      if (/^flowmachine_(log_partitions|drop_log_partitions|note_retention)\.sql$/.test(file))
        await rm(path.join(oldFunctions, file));
    await migrate(database.url, before, oldFunctions);
    expect(
      await query(
        database.url,
        `SELECT relkind::text FROM pg_class WHERE relname IN ('execution_logs', 'contact_events')`,
      ),
    ).toEqual([{ relkind: 'r' }, { relkind: 'r' }]);
    const [ids] = await query<{ account: string; contact: string }>(
      database.url,
      `WITH a AS (INSERT INTO accounts (id, name, admin_email) VALUES (gen_random_uuid(), 'A', 'a@example.com') RETURNING id)
       INSERT INTO contacts (id, account_id, email, updated_at) SELECT gen_random_uuid(), a.id, 'c@example.com', now() FROM a
       RETURNING account_id AS account, id AS contact`,
    );
    const times = ['2025-03-14T10:00:00Z', '2026-11-30T23:59:59.999Z', '2026-12-01T00:00:00Z', '2030-01-01T00:00:00Z'];
    for (const at of times) {
      await query(
        database.url,
        `INSERT INTO execution_logs (account_id, contact_id, event_type, status, timestamp, details) VALUES ($1, $2, 'trigger_refused', 'BLOCKED', $3, '{"n": 1}')`,
        [ids?.account, ids?.contact, at],
      );
      await query(
        database.url,
        `INSERT INTO contact_events (id, account_id, contact_id, name, created_at) VALUES (gen_random_uuid(), $1, $2, 'e', $3)`,
        [ids?.account, ids?.contact, at],
      );
    }
    const rowsOf = (table: string) =>
      query(database.url, `SELECT * FROM ${table} ORDER BY ${table === 'execution_logs' ? 'id' : 'created_at'}`);
    const logs = await rowsOf('execution_logs');
    const events = await rowsOf('contact_events');

    const countsTrigger = `SELECT tgname FROM pg_trigger WHERE tgrelid = 'execution_logs'::regclass AND NOT tgisinternal`;
    expect(await query(database.url, countsTrigger)).toEqual([{ tgname: 'flowmachine_count_logged' }]);

    const report = await migrate(database.url);
    expect(report.migrations).toEqual([PARTITIONING, ...(await migrationNames()).filter((n) => n > PARTITIONING)]);
    // Replacing the table dropped the stats counters' trigger on it: its file was applied again, and the
    // trigger is on the partitioned table.
    expect(report.functions).toEqual(expect.arrayContaining(['flowmachine_count_logs', 'flowmachine_log_partitions']));
    expect(await query(database.url, countsTrigger)).toEqual([{ tgname: 'flowmachine_count_logged' }]);
    expect(await rowsOf('execution_logs')).toEqual(logs);
    expect(await rowsOf('contact_events')).toEqual(events);
    // Each row is in its month's partition; the id sequence goes on after the rows kept.
    const places = await query<{ place: string }>(
      database.url,
      'SELECT tableoid::regclass::text AS place FROM execution_logs ORDER BY id',
    );
    expect(places.map((row) => row.place)).toEqual([
      'execution_logs_p202503',
      'execution_logs_p202611',
      'execution_logs_p202612',
      'execution_logs_p203001',
    ]);
    const [next] = await query<{ id: string }>(
      database.url,
      `INSERT INTO execution_logs (account_id, event_type, status) VALUES ($1, 'trigger_refused', 'BLOCKED') RETURNING id`,
      [ids?.account],
    );
    expect(BigInt(next!.id)).toBeGreaterThan(BigInt(String(logs.at(-1)?.id)));
    const partitioned = await query<{ relname: string; keys: string }>(
      database.url,
      `SELECT c.relname, pg_get_partkeydef(c.oid) AS keys FROM pg_class c
       WHERE c.relname IN ('execution_logs', 'contact_events') AND c.relkind = 'p' ORDER BY 1`,
    );
    expect(partitioned).toEqual([
      { relname: 'contact_events', keys: 'RANGE (created_at)' },
      { relname: 'execution_logs', keys: 'RANGE ("timestamp")' },
    ]);
    // Its foreign keys hold again: deleting the contact deletes its events.
    await query(database.url, 'DELETE FROM contacts WHERE id = $1', [ids?.contact]);
    expect(await query(database.url, 'SELECT count(*)::int AS n FROM contact_events')).toEqual([{ n: 0 }]);
    expect(await migrate(database.url)).toEqual({ migrations: [], baselined: [], functions: [] });
  });

  // A database that applied the squashed chain (a developer's `flowmachine` database): same schema as the
  // baseline (compared with pg_dump when the chain was squashed), its names in _prisma_migrations, and no
  // flowmachine_functions records yet.
  async function oldChainDatabase(applied: readonly string[]) {
    const database = await migratedDatabase();
    // The template also has the migrations dated after the baseline: they stay recorded as applied.
    await query(database.url, 'DELETE FROM "_prisma_migrations" WHERE migration_name <= $1', [BASELINE.name]);
    await query(database.url, 'DROP TABLE flowmachine_functions');
    for (const name of applied) {
      await query(
        database.url,
        `INSERT INTO "_prisma_migrations" (id, checksum, finished_at, migration_name, applied_steps_count)
        VALUES (gen_random_uuid(), repeat('0', 64), now(), $1, 1)`,
        [name],
      );
    }
    return database;
  }

  const laterMigrations = async () =>
    (await readdir(MIGRATIONS_DIR, { withFileTypes: true }))
      .filter((e) => e.isDirectory() && e.name > BASELINE.name)
      .map((e) => e.name);

  it('records the baseline as applied, without running it, on a database that applied the squashed chain', async () => {
    const database = await oldChainDatabase(BASELINE.squashed);
    // A migration dated after the baseline (another branch's) still runs on it.
    const migrations = await copyOf(MIGRATIONS_DIR);
    await mkdir(path.join(migrations, '20261201000000_later'));
    await writeFile(
      path.join(migrations, '20261201000000_later', 'migration.sql'),
      'ALTER TABLE "executions" ADD COLUMN "later" INTEGER;\n',
    );
    const report = await migrate(database.url, migrations);
    expect(report.baselined).toEqual([BASELINE.name]);
    expect(report.migrations).toEqual(['20261201000000_later']);
    expect(report.functions).toEqual((await functionFiles()).map((file) => file.slice(0, -4)));
    const rows = await query<{ migration_name: string; applied_steps_count: number; logs: string }>(
      database.url,
      'SELECT migration_name, applied_steps_count, logs FROM "_prisma_migrations" ORDER BY migration_name',
    );
    expect(rows.map((row) => row.migration_name)).toEqual(
      [BASELINE.name, ...(await laterMigrations()), '20261201000000_later'].sort(),
    );
    expect(rows[0]?.applied_steps_count).toBe(0);
    expect(rows[0]?.logs).toContain(BASELINE.squashed[0]);
    expect(await migrate(database.url, migrations)).toEqual({ migrations: [], baselined: [], functions: [] });
  });

  it('refuses a database that applied only part of the squashed chain', async () => {
    const database = await oldChainDatabase(BASELINE.squashed.slice(0, 3));
    await expect(migrate(database.url)).rejects.toThrow(/applied only part of the migrations/);
  });
});
