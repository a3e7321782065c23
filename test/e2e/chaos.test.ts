import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');

// The quick seeded chaos run (scripts/chaos.ts): ~150 executions through real API and worker
// processes while workers are killed and restarted, Redis is flushed and restarted, the provider
// fails (also as a hostile one: Retry-After 0, huge or garbage, huge bodies, slow drips), and executions
// are cancelled, deleted and completed by goals. It must find nothing wrong.
describe('chaos', () => {
  it('a quick seeded chaos run finds no violation', async () => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'scripts/chaos.ts', '--quick', '--hostile', '--seed', '1'],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    // Past the budget the run is interrupted (it cleans up after itself on SIGINT) and the test fails.
    const budget = setTimeout(() => child.kill('SIGINT'), 400_000);
    const code = await new Promise<number | null>((resolve) => child.once('exit', (exitCode) => resolve(exitCode)));
    clearTimeout(budget);
    expect(output).toMatch(/^violations: 0$/m);
    expect(code, output).toBe(0);
  }, 420_000);
});
