import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');

// The quick seeded chaos run (scripts/chaos.ts): ~150 executions through real API and worker
// processes while workers are killed and restarted, Redis is flushed and restarted, the provider
// fails (also as a hostile one: Retry-After 0, huge or garbage, huge bodies, slow drips), and executions
// are cancelled, deleted and completed by goals; contacts of a second account go through a split and
// emails under frequency caps while a new version of their workflow is published with `in_flight: "move"`.
// It must find nothing wrong, and the A/B part must really have split, capped and moved.
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
    expect(output).toMatch(/^ {2}variants \(contacts\) +\d+ a, \d+ b; [1-9]\d* executions passed the split$/m);
    expect(output).toMatch(/^ {2}frequency caps +[1-9]\d* frequency_capped in [1-9]/m);
    expect(output).toMatch(/^ {2}version 2 published with move +[1-9]\d* moved, \d+ stayed/m);
    expect(code, output).toBe(0);
  }, 420_000);
});
