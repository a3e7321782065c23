import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { COMPLETION_REASONS, EXECUTION_STATUSES, LOG_EVENT_TYPES } from '../../src/vocabulary.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const read = (dir: string, suffix: string) =>
  readdirSync(path.join(ROOT, dir))
    .filter((name) => name.endsWith(suffix))
    .map((name) => ({ name: `${dir}/${name}`, text: readFileSync(path.join(ROOT, dir, name), 'utf8') }));

// One vocabulary: where SQL writes a log entry or a status itself, it uses the words src/vocabulary.ts defines.
describe('vocabulary', () => {
  const words = new Set<string>([...LOG_EVENT_TYPES, ...EXECUTION_STATUSES, ...COMPLETION_REASONS, 'BLOCKED', 'INFO']);

  it('every literal the SQL writes into execution_logs is a known event type or status', () => {
    const files = [...read('prisma/functions', '.sql'), ...read('src/sql', '.ts')];
    let inserts = 0;
    for (const { name, text } of files) {
      for (const match of text.matchAll(/INSERT INTO execution_logs\s*\([^)]*\)\s*(VALUES\s*\(|SELECT)([^;`]*)/g)) {
        inserts += 1;
        // Keys of the details object are not words of the vocabulary.
        const values = match[2]!.replace(/jsonb?_build_object\([^)]*\)/g, '');
        for (const [, literal] of values.matchAll(/'([A-Za-z_]+)'/g))
          expect(words.has(literal!), `${name} writes '${literal}'`).toBe(true);
      }
    }
    expect(inserts).toBeGreaterThan(0);
  });

  it('every completion reason the SQL or the machine sets is a known one', () => {
    for (const { name, text } of read('prisma/functions', '.sql'))
      for (const [, literal] of text.matchAll(/completion_reason\s*=\s*'([a-z_]+)'/g))
        expect((COMPLETION_REASONS as readonly string[]).includes(literal!), `${name}: ${literal}`).toBe(true);
  });
});
