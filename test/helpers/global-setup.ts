import pg from 'pg';
import { migrate } from '../../src/db/migrate.ts';
import { ADMIN_URL, TEMPLATE_DB, TEST_DB_PREFIX, adminQuery, databaseUrl } from './database.ts';

/** Migrates the template database once per run and removes databases left by interrupted runs. */
export default async function setup(): Promise<void> {
  const client = new pg.Client({ connectionString: ADMIN_URL });
  await client.connect();
  const leftovers = await client.query<{ datname: string }>(
    `SELECT datname FROM pg_database WHERE datname LIKE '${TEST_DB_PREFIX}%'`,
  );
  await client.end();
  // Only databases of runs that ended long ago: other test runs may be going on right now.
  const staleBefore = Date.now() - 3 * 3_600_000;
  for (const { datname } of leftovers.rows) {
    const created = Number(datname.slice(TEST_DB_PREFIX.length).split('_')[0]);
    if (!(created > staleBefore)) await adminQuery(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`);
  }
  // The template is named after the migrations and built under a lock, so concurrent runs never clone a half-migrated one.
  const lock = new pg.Client({ connectionString: ADMIN_URL });
  await lock.connect();
  try {
    await lock.query('SELECT pg_advisory_lock(72707002)');
    const exists = await lock.query('SELECT 1 FROM pg_database WHERE datname = $1', [TEMPLATE_DB]);
    if (exists.rowCount === 0) {
      await adminQuery(`CREATE DATABASE "${TEMPLATE_DB}_new"`);
      await migrate(databaseUrl(`${TEMPLATE_DB}_new`));
      await adminQuery(`ALTER DATABASE "${TEMPLATE_DB}_new" RENAME TO "${TEMPLATE_DB}"`);
    }
  } finally {
    await lock.end();
  }
}
