import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = path.resolve(import.meta.dirname, '../../src');

const importsOf = (file: string) =>
  [...readFileSync(file, 'utf8').matchAll(/^import[^'"]*['"]([^'"]+)['"]/gm)].map((m) => m[1]!);
const filesIn = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesIn(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : [],
  );

/** Where an import points: a folder of src/ ("engine", "api", …) or the package name. */
const target = (file: string, specifier: string) => {
  if (!specifier.startsWith('.'))
    return specifier.startsWith('node:')
      ? specifier
      : specifier
          .split('/')
          .slice(0, specifier.startsWith('@') ? 2 : 1)
          .join('/');
  const resolved = path.relative(SRC, path.resolve(path.dirname(file), specifier));
  return resolved.includes(path.sep) ? resolved.split(path.sep)[0]! : resolved.replace(/\.ts$/, '');
};

// The house rule: a pure core (definition → compiler → XState) that does no I/O, and imports that
// point one way only.
describe('architecture', () => {
  it('the definition and compiler modules import only each other, the vocabulary, zod, xstate, ipaddr.js, luxon and node:crypto', () => {
    const allowed = new Set([
      'definition',
      'compiler',
      'vocabulary',
      'zod',
      'xstate',
      'ipaddr.js',
      'luxon',
      'node:crypto',
    ]);
    for (const dir of ['definition', 'compiler']) {
      for (const file of filesIn(path.join(SRC, dir))) {
        for (const specifier of importsOf(file))
          expect(allowed.has(target(file, specifier)), `${path.relative(SRC, file)} imports ${specifier}`).toBe(true);
      }
    }
  });

  it('nothing below the API imports the API, and nothing but the entry points imports the runtime', () => {
    for (const file of filesIn(SRC)) {
      const from = path.relative(SRC, file).split(path.sep)[0]!;
      for (const specifier of importsOf(file)) {
        const to = target(file, specifier);
        if (to === 'api')
          expect(['api', 'runtime.ts', 'cli.ts'], `${path.relative(SRC, file)} imports ${specifier}`).toContain(from);
        if (to === 'runtime') expect(['cli.ts'], `${path.relative(SRC, file)} imports ${specifier}`).toContain(from);
      }
    }
  });
});
