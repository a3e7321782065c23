import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_WEBHOOK_JSON_BODY_BYTES, MAX_WEBHOOK_TEXT_BODY, parseDefinition } from '../../src/definition/schema.ts';
import {
  classifyBody,
  renderBody,
  renderTemplate,
  TEMPLATE_LIMITS,
  templateFields,
} from '../../src/definition/template.ts';

const hook = (body: unknown) => ({
  steps: [{ id: 'hook', type: 'webhook', config: { url: 'https://hooks.example.com/a', body } }],
});
const issuesOf = (definition: unknown) => {
  const result = parseDefinition(definition);
  return result.ok ? [] : result.issues;
};
/** Renders a body that must render, and parses the JSON that would be sent. */
const sent = (body: string | Record<string, unknown>, scope: Record<string, unknown>) => {
  const result = renderBody(body, scope);
  if (!result.ok) throw new Error(result.error);
  return JSON.parse(result.text) as unknown;
};

// Security review finding 3: a 5,000-character template over a 16,000-character attribute rendered to 16 MB.
describe('template limits', () => {
  it('refuses a value longer than the per-placeholder limit', () => {
    const long = 'x'.repeat(TEMPLATE_LIMITS.valueChars + 1);
    expect(renderTemplate('Hi {{first_name}}', { first_name: long })).toEqual({
      ok: false,
      error: `value of {{first_name}} exceeds ${TEMPLATE_LIMITS.valueChars} characters`,
    });
    expect(renderTemplate('Hi {{first_name}}', { first_name: long.slice(1) }).ok).toBe(true);
  });

  it('refuses a rendered text longer than its limit, naming it', () => {
    const template = '{{a}}'.repeat(60);
    expect(renderTemplate(template, { a: 'y'.repeat(2_000) }, { maxChars: 100_000, label: 'body' })).toEqual({
      ok: false,
      error: 'rendered body exceeds 100000 characters',
    });
    expect(renderTemplate('{{a}}', { a: 'y'.repeat(11) }, { maxChars: 10, label: 'subject' })).toEqual({
      ok: false,
      error: 'rendered subject exceeds 10 characters',
    });
  });

  it('refuses too many placeholders at definition time', () => {
    const many = '{{a}}'.repeat(TEMPLATE_LIMITS.placeholders + 1);
    const email = { id: 'e', type: 'send_email', config: { subject: 'Hi', body: many } };
    expect(issuesOf({ steps: [email] })).toEqual([
      { path: 'steps.0.config.body', message: `may hold at most ${TEMPLATE_LIMITS.placeholders} placeholders` },
    ]);
    expect(
      issuesOf({ steps: [{ id: 's', type: 'send_sms', config: { body: '{{a}}'.repeat(101) } }] }).map((i) => i.path),
    ).toEqual(['steps.0.config.body']);
    expect(issuesOf(hook({ a: ['{{x}}'.repeat(60), { b: '{{y}}'.repeat(41) }] })).map((i) => i.message)).toEqual([
      `may hold at most ${TEMPLATE_LIMITS.placeholders} placeholders`,
    ]);
    expect(issuesOf({ steps: [{ ...email, config: { subject: 'Hi', body: '{{a}}'.repeat(100) } }] })).toEqual([]);
  });

  it('refuses oversized and over-deep webhook bodies at definition time', () => {
    expect(issuesOf(hook('x'.repeat(MAX_WEBHOOK_TEXT_BODY + 1)))).toEqual([
      { path: 'steps.0.config.body', message: `a string body may have at most ${MAX_WEBHOOK_TEXT_BODY} characters` },
    ]);
    expect(issuesOf(hook('x'.repeat(MAX_WEBHOOK_TEXT_BODY)))).toEqual([]);
    // 50 KB counts bytes: 20,000 two-byte characters are 40,000 characters but 60,000 bytes.
    expect(issuesOf(hook({ text: 'é'.repeat(30_000) }))).toEqual([
      { path: 'steps.0.config.body', message: `a JSON body may take at most ${MAX_WEBHOOK_JSON_BODY_BYTES} bytes` },
    ]);
    let deep: unknown = 'leaf';
    for (let i = 0; i < TEMPLATE_LIMITS.bodyDepth + 1; i += 1) deep = { d: deep };
    expect(issuesOf(hook(deep)).map((i) => i.message)).toEqual([
      `a JSON body may be nested at most ${TEMPLATE_LIMITS.bodyDepth} levels deep`,
    ]);
    expect(issuesOf(hook(JSON.stringify(deep))).map((i) => i.message)).toEqual([
      `a JSON body may be nested at most ${TEMPLATE_LIMITS.bodyDepth} levels deep`,
    ]);
    expect(renderBody(JSON.stringify(deep), {})).toEqual({
      ok: false,
      error: `body is nested more than ${TEMPLATE_LIMITS.bodyDepth} levels deep`,
    });
  });

  it('bounds every render: 100 placeholders of the longest value never exceed the limit unnoticed', () => {
    const scope = { a: 'z'.repeat(TEMPLATE_LIMITS.valueChars) };
    expect(renderBody({ list: Array.from({ length: 100 }, () => '{{a}}') }, scope)).toEqual({
      ok: false,
      error: 'rendered body exceeds 100000 characters',
    });
    expect(renderBody('{{a}} '.repeat(100), scope)).toEqual({
      ok: false,
      error: 'rendered body exceeds 100000 characters',
    });
  });
});

// Security review finding 4: contact data could add keys to a JSON webhook body.
describe('webhook bodies', () => {
  const hostile = 'x","is_admin":true,"y":"';

  it('a string body that is JSON keeps its keys whatever the data', () => {
    expect(sent('{"name":"{{first_name}}"}', { first_name: hostile })).toEqual({ name: hostile });
    expect(sent('{"name":"{{first_name}}"}', { first_name: 'back\\slash "quoted"\n' })).toEqual({
      name: 'back\\slash "quoted"\n',
    });
  });

  it('templates every string value of an object body, nested and in arrays, keys untouched', () => {
    const body = {
      '{{first_name}}': 'k',
      user: { name: 'Hi {{first_name}}', tags: ['{{plan}}', 3, null, true, { deep: ['{{first_name}}'] }] },
    };
    expect(sent(body, { first_name: hostile, plan: 'pro' })).toEqual({
      '{{first_name}}': 'k',
      user: { name: `Hi ${hostile}`, tags: ['pro', 3, null, true, { deep: [hostile] }] },
    });
  });

  it('JSON-escapes every value of a string body that starts like JSON but is not valid JSON', () => {
    expect(classifyBody('{"age": {{age}}}').kind).toBe('json-text');
    expect(sent('{"age": {{age}}, "name": "{{name}}"}', { age: 42, name: hostile })).toEqual({
      age: 42,
      name: hostile,
    });
    // Data outside a string cannot open one: the result is invalid JSON rather than a new key.
    const injected = renderBody('{"age": {{age}}}', { age: '1, "is_admin": true' });
    expect(injected.ok).toBe(true);
    if (injected.ok) expect(() => JSON.parse(injected.text)).toThrow();
  });

  it('renders any other string body as plain text', () => {
    expect(classifyBody('{{first_name}} signed up').kind).toBe('text');
    expect(renderBody('{{first_name}} signed up', { first_name: 'Ada "A"' })).toEqual({
      ok: true,
      text: 'Ada "A" signed up',
    });
  });

  it('no contact data adds a key to a JSON body', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), fc.string({ maxLength: 200 }), (first, last) => {
        const scope = { first_name: first, last_name: last };
        expect(Object.keys(sent('{"a":"{{first_name}}","b":["{{last_name}}"]}', scope) as object)).toEqual(['a', 'b']);
        expect(Object.keys(sent({ a: '{{first_name}}', b: { c: '{{last_name}}' } }, scope) as object)).toEqual([
          'a',
          'b',
        ]);
        const text = renderBody('{"a": "{{first_name}}", "n": {{last_name}}}', scope);
        if (text.ok) {
          let parsed: unknown;
          try {
            parsed = JSON.parse(text.text);
          } catch {
            return;
          }
          expect(Object.keys(parsed as object).sort()).toEqual(['a', 'n']);
        }
      }),
    );
  });

  it('lists the fields a template reads, once each, in first-use order', () => {
    expect(
      templateFields('Dear {{first_name}}', 'We ship to {{ address }}, {{first_name}}; order {{payload.order}}'),
    ).toEqual(['first_name', 'address', 'payload.order']);
    expect(templateFields({ a: ['{{x}}', { b: '{{y}}' }], c: '{{z}}' })).toEqual(['x', 'y', 'z']);
    expect(templateFields(undefined)).toEqual([]);
  });
});
