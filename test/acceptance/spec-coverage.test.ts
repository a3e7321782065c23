import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

/** Every scenario of SPEC-WFL-005, by feature. Each has a test named after it (a test or describe title). */
const SCENARIOS = [
  'Successfully trigger workflow execution',
  'Prevent execution for opted-out contact',
  'Prevent duplicate execution within deduplication window',
  'Handle inactive workflow trigger',
  'Execute actions in correct sequence',
  'Handle conditional branching',
  'Process wait step correctly',
  'Retry action on transient error',
  'Exponential backoff on repeated failures',
  'Mark execution as failed after max retries',
  'Handle non-retryable error',
  'Send error notification on failure',
  'Persist state after each action',
  'Recover execution after worker crash',
  'Cancel active execution',
  'Handle contact deletion during execution',
  'Enforce account concurrent execution limit',
  'Respect external API rate limits',
  'Log all execution events',
  'Mask sensitive data in logs',
  'Get execution status',
  'Get execution logs with pagination',
  'Retry failed execution',
  'List executions with filters',
  'Exit workflow on goal achievement',
];

const TEST_ROOT = path.resolve(import.meta.dirname, '..');
const SPEC = path.resolve(TEST_ROOT, '../../shared/spec/SPEC-WFL-005-acceptance.md');

const testSources = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return testSources(full);
    return entry.name.endsWith('.test.ts') && full !== import.meta.filename ? [readFileSync(full, 'utf8')] : [];
  });

// The acceptance suite's index: no SPEC scenario without an executable test of the same name.
describe('SPEC-WFL-005 coverage', () => {
  it('lists the SPEC scenarios (checked against the SPEC when it is beside the project)', () => {
    if (!existsSync(SPEC)) return expect(SCENARIOS).toHaveLength(25);
    const fromSpec = [...readFileSync(SPEC, 'utf8').matchAll(/^### Scenario: (.+)$/gm)].map((m) => m[1]!.trim());
    expect(SCENARIOS).toEqual(fromSpec);
  });

  it('has a test named after every scenario', () => {
    const sources = testSources(TEST_ROOT).join('\n');
    const missing = SCENARIOS.filter((name) => !sources.includes(`'Scenario: ${name}'`));
    expect(missing).toEqual([]);
  });
});
