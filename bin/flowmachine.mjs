#!/usr/bin/env node
// Runs the TypeScript sources through tsx, generating the Prisma client first if it is missing.
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';

const root = fileURLToPath(new URL('..', import.meta.url));
if (!existsSync(`${root}src/generated/prisma/client.ts`)) {
  const generated = spawnSync(process.execPath, [`${root}scripts/prisma-generate.mjs`], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  if (generated.status !== 0) process.exit(1);
}
register();
const { main } = await import('../src/cli.ts');
main(process.argv.slice(2)).catch((error) => {
  console.error(`flowmachine: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
