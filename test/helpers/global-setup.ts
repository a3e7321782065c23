import pg from 'pg';
import { migrate } from '../../src/db/migrate.ts';
import { ADMIN_URL, TEMPLATE_DB, TEST_DB_PREFIX, adminQuery, databaseUrl } from './database.ts';

/** Migrates the template database once per run and removes databases left by interrupted runs. */
export default async function setup(): Promise<void> {
  const client = new pg.Client({ connectionString: ADMIN_URL });
  await client.connect();
  const leftovers = await client.query<{ datname: string }>(`SELECT datname FROM pg_database WHERE datname LIKE '${TEST_DB_PREFIX}%'`);
  await client.end();
  for (const { datname } of leftovers.rows) await adminQuery(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`);
  await adminQuery(`CREATE DATABASE "${TEMPLATE_DB}"`);
  await migrate(databaseUrl(TEMPLATE_DB));
}
