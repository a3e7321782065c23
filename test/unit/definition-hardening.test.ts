import { describe, expect, it } from 'vitest';
import { evaluateCondition, readField } from '../../src/definition/condition.ts';
import { MAX_DEPTH, parseDefinition } from '../../src/definition/schema.ts';
import { renderTemplate } from '../../src/definition/template.ts';
import { parseRetryAfter } from '../../src/providers/outcome.ts';

// Regression tests for problems found by reviewing the pure core.
describe('definition hardening', () => {
  const contact = {
    email: 'a@example.com',
    phone: null,
    optedIn: true,
    timezone: null,
    tags: [],
    attributes: { plan: 'pro' },
  };

  it('field lookups never reach object prototypes', () => {
    for (const field of [
      'constructor',
      '__proto__',
      'valueOf',
      'hasOwnProperty',
      'attributes.constructor',
      'plan.length',
    ]) {
      expect(readField(contact, field), field).toBeUndefined();
      expect(evaluateCondition({ field, operator: 'exists' }, contact), field).toBe(false);
    }
    expect(readField(contact, 'plan')).toBe('pro');
  });

  it('templates render prototype names as empty strings', () => {
    expect(renderTemplate('[{{constructor}}][{{toString}}][{{__proto__}}][{{plan}}]', { plan: 'pro' })).toEqual({
      ok: true,
      text: '[][][][pro]',
    });
  });

  it('Retry-After accepts only delta-seconds and IMF-fixdate', () => {
    const now = new Date('2026-01-01T00:00:00Z');
    for (const garbage of ['1.5', '-1', 'Mon 2', 'abc 12', 'tomorrow'])
      expect(parseRetryAfter(garbage, now), garbage).toBeNull();
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:30 GMT', now)).toBe(30_000);
  });

  it('refuses over-deep nesting with a clear issue instead of overflowing the stack', () => {
    let steps: unknown[] = [{ id: 'leaf', type: 'add_tag', config: { tag: 'x' } }];
    for (let depth = 0; depth < 600; depth += 1)
      steps = [{ id: `c${depth}`, type: 'condition', config: { has_tag: 'a' }, branches: { true: steps, false: [] } }];
    const result = parseDefinition({ steps });
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.issues[0]!.message).toBe(`conditions may be nested at most ${MAX_DEPTH} deep`);
  });

  it('reports duplicate ids together with field errors', () => {
    const result = parseDefinition({
      steps: [
        { id: 'a', type: 'send_email', config: { subject: 's', body: 'b' } },
        { id: 'a', type: 'send_email', config: { subject: 's', body: 'b' } },
        { id: 't', type: 'add_tag', config: {} },
      ],
    });
    expect(result.ok).toBe(false);
    if (!result.ok)
      expect(result.issues.map((issue) => issue.path).sort()).toEqual(['steps.1.id', 'steps.2.config.tag']);
  });
});
