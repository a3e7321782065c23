import { execFile } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');

/** Runs a command in the project root; resolves with its exit code and output, whatever the code. */
const run = (command: string, args: string[], timeoutMs: number) =>
  new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(command, args, { cwd: ROOT, timeout: timeoutMs, maxBuffer: 16 * 2 ** 20 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });

// The quick benchmark as CI runs it: real API and worker processes, a private Redis, a fresh database.
// Only correctness is asserted; timings depend on the machine (and on whoever else uses it).
describe('npm run bench -- --quick', () => {
  it('finishes every execution of the benchmark workflow without a single error', async () => {
    const { code, stdout, stderr } = await run('npm', ['run', '--silent', 'bench', '--', '--quick', '--json'], 120_000);
    const last = stdout.trim().split('\n').at(-1) ?? '';
    expect(last.startsWith('{'), `exit ${code}\n${stdout}\n${stderr}`).toBe(true);
    const result = JSON.parse(last);
    // Correctness, not speed: every trigger accepted, every execution completed, no process died.
    // (Same-key re-sends are allowed by the delivery contract and reported by the bench, not asserted.)
    expect(result.errors).toMatchObject({ http: 0, incomplete: 0, exits: 0 });
    expect(result.triggers.accepted).toBe(result.triggers.requested);
    expect(result.executions.completed).toBe(result.triggers.requested);
    // send_email, add_tag, condition, wait, send_sms: five engine steps per execution.
    expect(result.steps.total).toBe(5 * result.executions.completed);
  }, 130_000);
});
