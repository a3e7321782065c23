import { parseArgs } from 'node:util';
import { createAccount } from './api/api-keys.ts';
import { loadConfig } from './config.ts';
import { createDb } from './db/client.ts';
import { ensureDatabase, migrate } from './db/migrate.ts';
import { checkConsistency } from './engine/consistency.ts';
import type { Tracing } from './observability/tracing.ts';
import { startRuntime, type Roles } from './runtime.ts';

const USAGE = `usage: flowmachine <command>
  start                         migrate, then run the API and a worker in one process
  api                           run the API only
  worker                        run a worker (and its sweeper) only
  migrate                       apply pending migrations and changed SQL functions, and exit
  check [--stuck-after-ms MS]   check the database's consistency; prints a JSON report, exit 1 on any violation
  accounts create --name NAME --admin-email EMAIL
                                create an account; prints {"account_id","user_id","api_key"}`;

/** Entry point of `npx flowmachine` and `npm start`. Errors end in one line on stderr and exit code 1. */
export async function main(argv: string[], tracing: Tracing = { shutdown: async () => {} }): Promise<void> {
  const [command, ...rest] = argv;
  const config = loadConfig();
  switch (command) {
    case 'migrate': {
      await ensureDatabase(config.DATABASE_URL);
      console.log(JSON.stringify(await migrate(config.DATABASE_URL)));
      return;
    }
    case 'start':
      await ensureDatabase(config.DATABASE_URL);
      await migrate(config.DATABASE_URL);
      return serve(config, { api: true, worker: true }, tracing);
    case 'api':
      return serve(config, { api: true, worker: false }, tracing);
    case 'worker':
      return serve(config, { api: false, worker: true }, tracing);
    case 'check': {
      const { values } = parseArgs({ args: rest, options: { 'stuck-after-ms': { type: 'string' } } });
      const db = createDb(config.DATABASE_URL, { max: 2 });
      try {
        const report = await checkConsistency(db, {
          stuckAfterMs: values['stuck-after-ms'] ? Number(values['stuck-after-ms']) : undefined,
        });
        console.log(JSON.stringify(report, null, 2));
        process.exitCode = report.ok ? 0 : 1;
      } finally {
        await db.$disconnect();
      }
      return;
    }
    case 'accounts': {
      const { values, positionals } = parseArgs({
        args: rest,
        options: { name: { type: 'string' }, 'admin-email': { type: 'string' } },
        allowPositionals: true,
      });
      if (
        positionals[0] !== 'create' ||
        !values.name ||
        !values['admin-email'] ||
        !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(values['admin-email'])
      ) {
        throw new Error('usage: flowmachine accounts create --name NAME --admin-email EMAIL');
      }
      const db = createDb(config.DATABASE_URL, { max: 1 });
      try {
        console.log(JSON.stringify(await createAccount(db, { name: values.name, adminEmail: values['admin-email'] })));
      } finally {
        await db.$disconnect();
      }
      return;
    }
    default:
      console.error(USAGE);
      process.exitCode = command ? 1 : 0;
  }
}

async function serve(config: ReturnType<typeof loadConfig>, roles: Roles, tracing: Tracing): Promise<void> {
  const runtime = await startRuntime(config, roles);
  const shutdown = (signal: string) => {
    runtime.deps.logger.info('shutting down', { signal });
    runtime
      .stop()
      .then(() => tracing.shutdown())
      .then(
        () => process.exit(0),
        () => process.exit(1),
      );
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
}
