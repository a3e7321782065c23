import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { PrismaClient } from '../generated/prisma/client.ts';

export type { PrismaClient };
/** A Prisma client or the transaction client handed to `$transaction` callbacks. */
export type Db = PrismaClient;
export type Tx = Parameters<Parameters<PrismaClient['$transaction']>[0]>[0];

/** Creates a Prisma client over node-postgres for `databaseUrl`; the caller owns it and must `$disconnect()`. */
export function createDb(databaseUrl: string, options: { max?: number } = {}): PrismaClient {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: options.max ?? 10 });
  // A connection Postgres drops (restart, failover, terminated backend) must never crash the process:
  // every client keeps an error listener for its whole life (checked out or idle), the query in
  // flight fails on its own and the pool replaces the connection.
  pool.on('connect', (client) => client.on('error', () => undefined));
  pool.on('error', () => undefined);
  const adapter = new PrismaPg(pool, { disposeExternalPool: true });
  // Under load every pooled connection can be busy: wait for one rather than fail the step at
  // Prisma's 2 s default (the job would be retried, but its provider call may already have been made).
  return new PrismaClient({ adapter, transactionOptions: { maxWait: 15_000, timeout: 30_000 } });
}
