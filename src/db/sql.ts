import type { Pool } from './client.ts';

/**
 * A named statement on the engine's hot paths. Postgres parses and plans it once per connection
 * (node-postgres prepares it on first use), and no ORM sits between the engine and the driver.
 */
export interface Statement {
  name: string;
  text: string;
}

/** Runs a named statement with bound values and returns its rows. */
export async function run<Row>(pool: Pool, statement: Statement, values: unknown[]): Promise<Row[]> {
  const result = await pool.query({ name: statement.name, text: statement.text, values });
  return result.rows as Row[];
}
