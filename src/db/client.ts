import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { PrismaClient } from '../generated/prisma/client.ts';

export type { PrismaClient };
/** A Prisma client or the transaction client handed to `$transaction` callbacks. */
export type Db = PrismaClient;
export type Tx = Parameters<Parameters<PrismaClient['$transaction']>[0]>[0];
export type Pool = pg.Pool;

/** Bounds of a pool: how many connections, and how long connecting, one statement and one lock wait may take. */
export interface PoolOptions {
  max?: number;
  /** @defaultValue 10 s */
  connectTimeoutMs?: number;
  /** Also the longest a transaction may sit idle. @defaultValue 60 s */
  statementTimeoutMs?: number;
  /** @defaultValue 30 s */
  lockTimeoutMs?: number;
}

/**
 * A node-postgres pool for `databaseUrl`. A connection Postgres drops (restart, failover, terminated
 * backend) must never crash the process: every client keeps an error listener for its whole life
 * (checked out or idle), the query in flight fails on its own and the pool replaces the connection.
 */
export function createPool(databaseUrl: string, options: PoolOptions = {}): Pool {
  const pool = new pg.Pool({
    connectionString: databaseUrl,
    max: options.max ?? 10,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000,
    statement_timeout: options.statementTimeoutMs ?? 60_000,
    lock_timeout: options.lockTimeoutMs ?? 30_000,
    idle_in_transaction_session_timeout: options.statementTimeoutMs ?? 60_000,
  });
  pool.on('connect', (client) => client.on('error', () => undefined));
  pool.on('error', () => undefined);
  return pool;
}

/**
 * Creates a Prisma client over node-postgres for `databaseUrl` (or over `options.pool`, shared with the
 * engine's own statements); the caller owns it and must `$disconnect()`, which also ends the pool.
 */
export function createDb(databaseUrl: string, options: PoolOptions & { pool?: Pool } = {}): PrismaClient {
  const adapter = new PrismaPg(options.pool ?? createPool(databaseUrl, options), { disposeExternalPool: true });
  // Under load every pooled connection can be busy: wait for one rather than fail at Prisma's 2 s default.
  return new PrismaClient({ adapter, transactionOptions: { maxWait: 15_000, timeout: 30_000 } });
}
