import { createHash, randomUUID } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { coerceError } from '../errors.ts';

/** Where migrations live, in Prisma's layout (`<timestamp>_<name>/migration.sql`): DDL only. */
export const MIGRATIONS_DIR = path.resolve(import.meta.dirname, '../../prisma/migrations');

/** Where the plpgsql functions live, one per `<name>.sql` file, applied again whenever the file changes. */
export const FUNCTIONS_DIR = path.resolve(import.meta.dirname, '../../prisma/functions');

// The same table Prisma Migrate keeps, so `prisma migrate status` agrees with what we applied.
const CREATE_MIGRATIONS_TABLE = `
CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
  "id" VARCHAR(36) PRIMARY KEY NOT NULL,
  "checksum" VARCHAR(64) NOT NULL,
  "finished_at" TIMESTAMPTZ,
  "migration_name" VARCHAR(255) NOT NULL,
  "logs" TEXT,
  "rolled_back_at" TIMESTAMPTZ,
  "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(),
  "applied_steps_count" INTEGER NOT NULL DEFAULT 0
)`;

// Which version of each function file is in the database (Flyway's repeatable migrations).
const CREATE_FUNCTIONS_TABLE = `
CREATE TABLE IF NOT EXISTS "flowmachine_functions" (
  "name" TEXT PRIMARY KEY,
  "checksum" TEXT NOT NULL,
  "applied_at" TIMESTAMPTZ NOT NULL DEFAULT now()
)`;

/** Lock key serialising concurrent `migrate` runs (several processes starting at once). */
const MIGRATION_LOCK = 72_707_001;

/**
 * The baseline migration and the dated migrations it squashed. A database that applied all of them gets
 * the baseline recorded as applied without running it, and their rows replaced by its row (Prisma's
 * baselining), so `prisma migrate status` finds no migration missing locally.
 */
export const BASELINE = {
  name: '20261130000000_baseline',
  squashed: [
    '20261126000000_init',
    '20261126010000_execution_line_order',
    '20261127000000_step_functions',
    '20261127010000_enroll_function',
    '20261127020000_trigger_function',
    '20261127030000_drop_unused_indexes',
    '20261127040000_admit_on_load',
    '20261127045000_notification_recovery',
    '20261127050000_account_slot_shards',
    '20261127060000_resume_on_load',
    '20261127070000_shard_affinity',
  ],
} as const;

/** What one `migrate` run did. */
export interface MigrateReport {
  /** Dated migrations run, in order. */
  migrations: string[];
  /** Dated migrations recorded as applied without being run (the baseline of a database that had the old chain). */
  baselined: string[];
  /** Function files applied (new or changed since they were last applied), in name order. */
  functions: string[];
}

/** SHA-256 of a file's text, hex: Prisma's migration checksum, and ours for function files. */
export const checksumOf = (sql: string): string => createHash('sha256').update(sql).digest('hex');

/**
 * Brings the database up to date, under an advisory lock:
 * 1. baselines a database that applied the squashed migrations ({@link BASELINE});
 * 2. runs every dated migration not yet recorded in `_prisma_migrations`, in name order, each in its own
 *    transaction, recording it with Prisma's checksum;
 * 3. applies every function file of `functionsDir` whose SHA-256 differs from the one recorded in
 *    `flowmachine_functions` (or that was never applied), in name order, each in its own transaction.
 * 4. creates the monthly partitions of the log tables ahead (current month and the next two,
 *    prisma/functions/flowmachine_log_partitions.sql); the sweeper keeps them ahead afterwards.
 * It never drops a function whose file was removed: that takes a dated migration.
 */
export async function migrate(
  databaseUrl: string,
  dir = MIGRATIONS_DIR,
  functionsDir = FUNCTIONS_DIR,
): Promise<MigrateReport> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    await client.query(CREATE_MIGRATIONS_TABLE);
    await client.query(CREATE_FUNCTIONS_TABLE);
    const names = (await readdir(dir, { withFileTypes: true }))
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
      .sort();
    const baselined = (await baselineSquashed(client, dir, names)) ? [BASELINE.name] : [];
    const done = await client.query<{ migration_name: string }>(
      'SELECT migration_name FROM "_prisma_migrations" WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL',
    );
    const applied = new Set(done.rows.map((row) => row.migration_name));
    const migrations: string[] = [];
    for (const name of names.filter((n) => !applied.has(n))) {
      const sql = await readFile(path.join(dir, name, 'migration.sql'), 'utf8');
      await inTransaction(client, `migration ${name}`, async () => {
        await client.query(sql);
        await recordMigration(client, name, checksumOf(sql), 1);
      });
      migrations.push(name);
    }
    const functions = await applyFunctions(client, functionsDir);
    await createLogPartitions(client);
    return { migrations, baselined, functions };
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined);
    await client.end();
  }
}

/**
 * Records the baseline as applied, without running it, when the database applied every migration it
 * squashed; their rows go, and the baseline's row names them in its logs. Refuses a database that applied
 * only some of them (its schema is neither the old chain's nor the baseline's). Returns whether it did.
 */
async function baselineSquashed(client: pg.Client, dir: string, names: string[]): Promise<boolean> {
  if (!names.includes(BASELINE.name)) return false;
  const rows = await client.query<{ migration_name: string }>(
    `SELECT migration_name FROM "_prisma_migrations"
     WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL AND migration_name = ANY($1::text[])`,
    [[BASELINE.name, ...BASELINE.squashed]],
  );
  const applied = new Set(rows.rows.map((row) => row.migration_name));
  const squashed = BASELINE.squashed.filter((name) => applied.has(name));
  if (applied.has(BASELINE.name) || squashed.length === 0) return false;
  if (squashed.length < BASELINE.squashed.length) {
    const missing = BASELINE.squashed.filter((name) => !applied.has(name));
    throw new Error(
      `cannot baseline: the database applied only part of the migrations ${BASELINE.name} squashed (missing ${missing.join(', ')})`,
    );
  }
  const sql = await readFile(path.join(dir, BASELINE.name, 'migration.sql'), 'utf8');
  await inTransaction(client, `baseline ${BASELINE.name}`, async () => {
    await client.query('DELETE FROM "_prisma_migrations" WHERE migration_name = ANY($1::text[])', [
      [...BASELINE.squashed],
    ]);
    await recordMigration(
      client,
      BASELINE.name,
      checksumOf(sql),
      0,
      `baselined: squashes ${BASELINE.squashed.join(', ')}`,
    );
  });
  return true;
}

/** Applies the function files whose checksum changed; returns their names (file names without `.sql`). */
async function applyFunctions(client: pg.Client, functionsDir: string): Promise<string[]> {
  const files = (await readdir(functionsDir)).filter((file) => file.endsWith('.sql')).sort();
  const recorded = await client.query<{ name: string; checksum: string }>(
    'SELECT name, checksum FROM "flowmachine_functions"',
  );
  const checksums = new Map(recorded.rows.map((row) => [row.name, row.checksum]));
  const applied: string[] = [];
  for (const file of files) {
    const name = file.slice(0, -'.sql'.length);
    const sql = await readFile(path.join(functionsDir, file), 'utf8');
    const checksum = checksumOf(sql);
    if (checksums.get(name) === checksum) continue;
    await inTransaction(client, `function ${name}`, async () => {
      await client.query(sql);
      await client.query(
        `INSERT INTO "flowmachine_functions" (name, checksum, applied_at) VALUES ($1, $2, now())
         ON CONFLICT (name) DO UPDATE SET checksum = EXCLUDED.checksum, applied_at = EXCLUDED.applied_at`,
        [name, checksum],
      );
    });
    applied.push(name);
  }
  return applied;
}

/** Creates the log tables' partitions ahead, once the function that does it exists. */
async function createLogPartitions(client: pg.Client): Promise<void> {
  const exists = await client.query<{ fn: string | null }>(
    "SELECT to_regprocedure('flowmachine_log_partitions(timestamptz, integer)')::text AS fn",
  );
  if (exists.rows[0]?.fn) await client.query('SELECT flowmachine_log_partitions(now(), 2)');
}

async function recordMigration(
  client: pg.Client,
  name: string,
  checksum: string,
  steps: number,
  logs: string | null = null,
): Promise<void> {
  await client.query(
    `INSERT INTO "_prisma_migrations" (id, checksum, finished_at, migration_name, logs, started_at, applied_steps_count)
     VALUES ($1, $2, now(), $3, $4, now(), $5)`,
    [randomUUID(), checksum, name, logs, steps],
  );
}

async function inTransaction(client: pg.Client, what: string, work: () => Promise<void>): Promise<void> {
  await client.query('BEGIN');
  try {
    await work();
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK');
    throw new Error(`${what} failed: ${coerceError(error).message}`, { cause: error });
  }
}

/** Creates the database named in `databaseUrl` if it does not exist (connecting to `postgres` to do so). */
export async function ensureDatabase(databaseUrl: string): Promise<void> {
  const url = new URL(databaseUrl);
  const name = decodeURIComponent(url.pathname.slice(1));
  url.pathname = '/postgres';
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  try {
    const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (exists.rowCount === 0)
      await client.query(`CREATE DATABASE "${name.replaceAll('"', '""')}"`).catch((error: { code?: string }) => {
        if (error.code !== '42P04') throw error; // created concurrently
      });
  } finally {
    await client.end();
  }
}
