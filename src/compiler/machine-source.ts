/**
 * TypeScript source of a compiled machine config as a `createMachine({...})` call, the form the
 * Stately visualizer and editor import. Shared by `npm run machines` (machines/*.machine.ts) and the
 * designer's view ("Copy for Stately"), so both give the same text. Pure string building.
 */

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** A single-quoted TS string literal; JSON escaping is valid TS escaping once the quotes are swapped. */
const quote = (text: string) => `'${JSON.stringify(text).slice(1, -1).replace(/\\"/g, '"').replace(/'/g, "\\'")}'`;

/** Renders plain JSON data as a TS literal: unquoted keys where possible, single quotes, two-space indent. */
export function toLiteral(value: unknown, indent = ''): string {
  const inner = `${indent}  `;
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    return `[\n${value.map((item) => `${inner}${toLiteral(item, inner)},\n`).join('')}${indent}]`;
  }
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value);
    if (entries.length === 0) return '{}';
    const lines = entries.map(
      ([key, item]) => `${inner}${IDENTIFIER.test(key) ? key : quote(key)}: ${toLiteral(item, inner)},\n`,
    );
    return `{\n${lines.join('')}${indent}}`;
  }
  return typeof value === 'string' ? quote(value) : JSON.stringify(value);
}

/** The import and `export const machine = createMachine(...)` lines of a machine config, ending in a newline. */
export function renderCreateMachine(config: unknown): string {
  return [
    "import { createMachine } from 'xstate';",
    '',
    `export const machine = createMachine(${toLiteral(config)});`,
    '',
  ].join('\n');
}
