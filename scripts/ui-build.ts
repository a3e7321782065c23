/**
 * Builds the designer's view (`ui/src` → `ui/dist`, served at `/ui`). The built files are committed so
 * `npm ci && npm start` serves the page with no build step; `--check` (run by `npm test`) builds into a
 * temporary folder instead and exits 1 when that differs from the committed `ui/dist`.
 *
 * Usage: `npm run ui:build` (writes ui/dist) or `npm run ui:build -- --check`.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'vite';

const UI = fileURLToPath(new URL('../ui/', import.meta.url));
/** The committed build. */
export const UI_DIST = path.join(UI, 'dist');

/** Builds the page into `outDir`. */
export async function buildUi(outDir = UI_DIST): Promise<void> {
  await build({ configFile: path.join(UI, 'vite.config.ts'), build: { outDir, emptyOutDir: true }, logLevel: 'warn' });
}

/** Relative paths of every file under `dir`, sorted. */
function filesOf(dir: string, prefix = ''): string[] {
  return readdirSync(dir)
    .flatMap((name) =>
      statSync(path.join(dir, name)).isDirectory()
        ? filesOf(path.join(dir, name), `${prefix}${name}/`)
        : [`${prefix}${name}`],
    )
    .sort();
}

/** What differs between two build folders: files only in one of them, and files whose bytes differ. */
export function compareBuilds(expected: string, actual: string): string[] {
  const want = filesOf(expected);
  const have = filesOf(actual);
  return [
    ...want.filter((file) => !have.includes(file)).map((file) => `missing from ui/dist: ${file}`),
    ...have.filter((file) => !want.includes(file)).map((file) => `not built from the sources: ui/dist/${file}`),
    ...want
      .filter((file) => have.includes(file))
      .filter((file) => !readFileSync(path.join(expected, file)).equals(readFileSync(path.join(actual, file))))
      .map((file) => `differs: ui/dist/${file}`),
  ];
}

// Run only when executed as a script.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const check = process.argv.includes('--check');
  try {
    if (!check) {
      await buildUi();
      console.log(`built ${filesOf(UI_DIST).length} files into ui/dist`);
    } else {
      const scratch = mkdtempSync(path.join(tmpdir(), 'flowmachine-ui-'));
      try {
        await buildUi(scratch);
        const problems = compareBuilds(scratch, UI_DIST);
        if (problems.length > 0) {
          console.error(`ui/dist is out of date (run npm run ui:build):\n  ${problems.join('\n  ')}`);
          process.exitCode = 1;
        } else console.log('ui/dist is up to date');
      } finally {
        rmSync(scratch, { recursive: true, force: true });
      }
    }
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    process.exitCode = 1;
  }
}
