import { lookupPath } from './lookup-path.ts';

/**
 * Templates: `{{name}}` and `{{payload.key}}` placeholders in message texts and webhook bodies. Pure:
 * rendering returns a result and never throws, so text that comes out too long is a step outcome, not
 * an exception.
 *
 * @packageDocumentation
 */

/** Values a template may refer to: contact fields, attributes, and the trigger payload. */
export type TemplateScope = Record<string, unknown>;

/** Size limits of templates and of what they render to. */
export const TEMPLATE_LIMITS = {
  /** Characters one placeholder may render to (before any JSON escaping). */
  valueChars: 2_000,
  /** Placeholders one template may hold (a webhook body counts all of its strings together). */
  placeholders: 100,
  /** Characters of a rendered email subject. */
  subjectChars: 1_000,
  /** Characters of a rendered email body or webhook body (a JSON body as serialised). */
  messageChars: 100_000,
  /** Characters of a rendered SMS body. */
  smsChars: 10_000,
  /** Deepest nesting of a JSON webhook body. */
  bodyDepth: 32,
} as const;

/** What rendering came to: the text, or why none may be sent (a permanent outcome of the step). */
export type RenderResult = { ok: true; text: string } | { ok: false; error: string };

/** Options of {@link renderTemplate}. */
export interface RenderOptions {
  /**
   * Most characters the rendered text may have.
   * @defaultValue `TEMPLATE_LIMITS.messageChars`
   */
  maxChars?: number;
  /**
   * What the text is, for error messages (`rendered body exceeds …`).
   * @defaultValue `'text'`
   */
  label?: string;
  /**
   * Applied to each rendered value; the template's own text is kept as written.
   * @defaultValue none (plain text)
   */
  escapeValue?: (value: string) => string;
}

const PLACEHOLDER = /\{\{\s*([A-Za-z0-9_.]+)\s*\}\}/g;

/** Escapes a value for use inside a JSON string literal (without the quotes). */
export const escapeJsonString = (value: string): string => JSON.stringify(value).slice(1, -1);

/** The placeholder names of a template, in order, repeats included. */
export function placeholdersOf(template: string): string[] {
  return Array.from(template.matchAll(PLACEHOLDER), (match) => match[1]!);
}

const tooLong = (label: string, maxChars: number): RenderResult => ({
  ok: false,
  error: `rendered ${label} exceeds ${maxChars} characters`,
});

/**
 * Renders `{{name}}` and `{{payload.key}}` placeholders. Unknown names render as an empty string;
 * nothing is evaluated, so a template can never run code. Refuses (`ok: false`) a value longer than
 * `TEMPLATE_LIMITS.valueChars` and a result longer than `maxChars`, without building it further.
 */
export function renderTemplate(template: string, scope: TemplateScope, options: RenderOptions = {}): RenderResult {
  const { maxChars = TEMPLATE_LIMITS.messageChars, label = 'text', escapeValue } = options;
  let text = '';
  let last = 0;
  for (const match of template.matchAll(PLACEHOLDER)) {
    const value = lookupPath(scope, match[1]!);
    const raw = value === undefined || value === null ? '' : String(value);
    if (raw.length > TEMPLATE_LIMITS.valueChars) {
      return { ok: false, error: `value of {{${match[1]}}} exceeds ${TEMPLATE_LIMITS.valueChars} characters` };
    }
    text += template.slice(last, match.index) + (escapeValue ? escapeValue(raw) : raw);
    last = match.index + match[0].length;
    if (text.length > maxChars) return tooLong(label, maxChars);
  }
  text += template.slice(last);
  return text.length > maxChars ? tooLong(label, maxChars) : { ok: true, text };
}

/** A webhook body as the definition gives it. */
export type BodyTemplate = string | Record<string, unknown>;

/**
 * How a webhook body is rendered: `json` (an object body, or a string body that is valid JSON as
 * written) templates every string value of the tree, keys untouched; `json-text` (a string body that
 * starts like JSON but is not valid JSON, such as `{"age": {{age}}}`) JSON-escapes every value;
 * `text` (any other string) renders plain text.
 */
export type BodyKind =
  | { kind: 'json'; tree: unknown }
  | { kind: 'json-text'; template: string }
  | { kind: 'text'; template: string };

const LOOKS_LIKE_JSON = /^\s*(?:\[|\{(?!\{))/;

/** Classifies a webhook body (see {@link BodyKind}). */
export function classifyBody(body: BodyTemplate): BodyKind {
  if (typeof body !== 'string') return { kind: 'json', tree: body };
  try {
    return { kind: 'json', tree: JSON.parse(body) as unknown };
  } catch {
    return { kind: LOOKS_LIKE_JSON.test(body) ? 'json-text' : 'text', template: body };
  }
}

/** What a JSON tree holds that limits care about: its placeholders (in string values) and its depth. */
export function inspectJsonTemplate(tree: unknown): { placeholders: string[]; depth: number } {
  const placeholders: string[] = [];
  let depth = 0;
  // Without recursion: a stored body is checked before anything recurses into it.
  const pending: { value: unknown; level: number }[] = [{ value: tree, level: 0 }];
  while (pending.length > 0) {
    const { value, level } = pending.pop()!;
    if (typeof value === 'string') placeholders.push(...placeholdersOf(value));
    else if (value && typeof value === 'object') {
      depth = Math.max(depth, level + 1);
      if (depth > TEMPLATE_LIMITS.bodyDepth) break;
      // Children in reverse, so they come off the stack in document order.
      for (const child of Object.values(value).reverse()) pending.push({ value: child, level: level + 1 });
    }
  }
  return { placeholders, depth };
}

/**
 * Renders a webhook body to the text to send (see {@link BodyKind}). In a JSON body a rendered value
 * is always JSON-escaped, so contact data can never add keys: in a `json` body it is a string value
 * wherever the template has one; in a `json-text` body it cannot open or close a string. The result is
 * limited to `TEMPLATE_LIMITS.messageChars`; a `json` body is re-serialised (whitespace is not kept).
 */
export function renderBody(body: BodyTemplate, scope: TemplateScope): RenderResult {
  const maxChars = TEMPLATE_LIMITS.messageChars;
  const shape = classifyBody(body);
  if (shape.kind === 'text') return renderTemplate(shape.template, scope, { maxChars, label: 'body' });
  if (shape.kind === 'json-text')
    return renderTemplate(shape.template, scope, { maxChars, label: 'body', escapeValue: escapeJsonString });
  if (inspectJsonTemplate(shape.tree).depth > TEMPLATE_LIMITS.bodyDepth) {
    return { ok: false, error: `body is nested more than ${TEMPLATE_LIMITS.bodyDepth} levels deep` };
  }
  let error: string | undefined;
  // Values are rendered unescaped into the tree; JSON.stringify escapes them when it serialises.
  const render = (value: unknown): unknown => {
    if (error !== undefined) return null;
    if (typeof value === 'string') {
      const rendered = renderTemplate(value, scope, { maxChars, label: 'body' });
      if (rendered.ok) return rendered.text;
      error = rendered.error;
      return null;
    }
    if (Array.isArray(value)) return value.map(render);
    if (value && typeof value === 'object')
      return Object.fromEntries(Object.entries(value).map(([key, child]) => [key, render(child)]));
    return value;
  };
  const tree = render(shape.tree);
  if (error !== undefined) return { ok: false, error };
  const text = JSON.stringify(tree);
  return text.length > maxChars ? tooLong('body', maxChars) : { ok: true, text };
}

/** The distinct placeholder names used by some templates (strings, or JSON trees of them), in first-use order. */
export function templateFields(...templates: unknown[]): string[] {
  const names = templates.flatMap((template) =>
    typeof template === 'string' ? placeholdersOf(template) : inspectJsonTemplate(template).placeholders,
  );
  return [...new Set(names)];
}
