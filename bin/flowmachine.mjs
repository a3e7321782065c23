#!/usr/bin/env node
// Runs the TypeScript sources through tsx, generating the Prisma client first if it is missing.
// Tracing starts before the application is imported, so its instrumentations see every module load.
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';

const root = fileURLToPath(new URL('..', import.meta.url));
if (!existsSync(`${root}src/generated/prisma/client.ts`)) {
  const generated = spawnSync(process.execPath, [`${root}scripts/prisma-generate.mjs`], {
    cwd: root,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  if (generated.status !== 0) process.exit(1);
}
register();
const fail = (error) => {
  console.error(`flowmachine: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
};
try {
  const { startTracing } = await import('../src/observability/tracing.ts');
  const tracing = await startTracing();
  const { main } = await import('../src/cli.ts');
  await main(process.argv.slice(2), tracing);
} catch (error) {
  fail(error);
}
