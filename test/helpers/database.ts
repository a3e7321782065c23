import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';

/** Server the tests use; the same defaults as the engine's. */
export const ADMIN_URL = process.env.TEST_DATABASE_ADMIN_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
const PRISMA = path.resolve(import.meta.dirname, '../../prisma');
// Every dated migration and every function file, by path, so a change to either builds a new template.
const sqlFiles = [
  ...readdirSync(path.join(PRISMA, 'migrations'))
    .filter((name) => !name.endsWith('.toml'))
    .map((name) => `migrations/${name}/migration.sql`),
  ...readdirSync(path.join(PRISMA, 'functions'))
    .filter((name) => name.endsWith('.sql'))
    .map((name) => `functions/${name}`),
].sort();
const migrationsHash = createHash('sha256')
  .update(sqlFiles.map((file) => `${file}\n${readFileSync(path.join(PRISMA, file), 'utf8')}`).join('\n'))
  .digest('hex')
  .slice(0, 12);
/** Database migrated once per set of migrations and functions by the global setup; each test file clones it. */
export const TEMPLATE_DB = `fm_template_${migrationsHash}`;
export const TEST_DB_PREFIX = 'fm_test_';

export const databaseUrl = (name: string) => {
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return url.toString();
};

export async function adminQuery(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: ADMIN_URL });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** A fresh database cloned from the migrated template; `drop()` removes it. */
export async function createTestDatabase(): Promise<{ url: string; name: string; drop(): Promise<void> }> {
  // The creation time in the name lets a later run remove databases that interrupted runs left behind.
  const name = `${TEST_DB_PREFIX}${Date.now()}_${randomBytes(4).toString('hex')}`;
  await adminQuery(`CREATE DATABASE "${name}" TEMPLATE "${TEMPLATE_DB}"`);
  return {
    url: databaseUrl(name),
    name,
    drop: () => adminQuery(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`),
  };
}
