import { describe, expect, it } from 'vitest';
import { evaluateCondition, readField, type ContactFacts } from '../../src/definition/condition.ts';
import {
  conditionSchema,
  MAX_CONDITION_DEPTH,
  MAX_CONDITION_ITEMS,
  parseDefinition,
  toDefinitionIssues,
  type Condition,
  type DefinitionIssue,
} from '../../src/definition/schema.ts';

const contact: ContactFacts = {
  email: 'ada@example.com',
  phone: null,
  optedIn: true,
  timezone: 'Europe/Paris',
  tags: ['VIP', 'lead'],
  attributes: { plan: 'pro', score: 42, payload: { total: 1 } },
};
const payload = { total: 120, currency: 'EUR', cart: { items: 3, sku: ['a-1', 'b-2'] } };

const yes: Condition = { has_tag: 'VIP' };
const no: Condition = { has_tag: 'customer' };

/** Issues of a condition that must be refused, paths relative to the condition. */
function conditionIssues(input: unknown): DefinitionIssue[] {
  const result = conditionSchema.safeParse(input);
  if (result.success) throw new Error(`expected ${JSON.stringify(input)} to be refused`);
  return toDefinitionIssues(result.error.issues);
}

/** `levels` levels of `not` around a tag test: levels + 1 deep. */
const nots = (levels: number): unknown => {
  let node: unknown = { has_tag: 'x' };
  for (let i = 0; i < levels; i += 1) node = { not: node };
  return node;
};

describe('readField: payload fields', () => {
  it('reads payload.<key> and dotted paths from the payload', () => {
    expect(readField(contact, 'payload.total', payload)).toBe(120);
    expect(readField(contact, 'payload.cart.items', payload)).toBe(3);
  });

  it('is undefined without a payload, for a missing key, and for prototype names', () => {
    expect(readField(contact, 'payload.total')).toBeUndefined();
    expect(readField(contact, 'payload.missing', payload)).toBeUndefined();
    expect(readField(contact, 'payload.constructor', payload)).toBeUndefined();
    expect(readField(contact, 'payload.__proto__', payload)).toBeUndefined();
  });

  it('leaves an attribute named payload readable as attributes.payload, and plain fields unchanged', () => {
    expect(readField(contact, 'attributes.payload.total', payload)).toBe(1);
    expect(readField(contact, 'plan', payload)).toBe('pro');
    expect(readField(contact, 'email', payload)).toBe('ada@example.com');
  });
});

describe('evaluateCondition: all, any, not and payload', () => {
  it('all: true when every condition holds', () => {
    expect(evaluateCondition({ all: [yes, { field: 'plan', operator: 'equals', value: 'pro' }] }, contact)).toBe(true);
    expect(evaluateCondition({ all: [yes, no] }, contact)).toBe(false);
  });

  it('any: true when at least one condition holds', () => {
    expect(evaluateCondition({ any: [no, yes] }, contact)).toBe(true);
    expect(evaluateCondition({ any: [no, { field: 'score', operator: 'less_than', value: 10 }] }, contact)).toBe(false);
  });

  it('not: the opposite', () => {
    expect(evaluateCondition({ not: yes }, contact)).toBe(false);
    expect(evaluateCondition({ not: no }, contact)).toBe(true);
    expect(evaluateCondition({ not: { not: yes } }, contact)).toBe(true);
  });

  it('compares payload fields like any other field', () => {
    const big = { field: 'payload.total', operator: 'greater_than', value: 100 } as const;
    expect(evaluateCondition(big, contact, payload)).toBe(true);
    expect(evaluateCondition({ ...big, value: 500 }, contact, payload)).toBe(false);
    expect(evaluateCondition({ field: 'payload.cart.sku', operator: 'contains', value: 'b-2' }, contact, payload)).toBe(
      true,
    );
    expect(evaluateCondition({ field: 'payload.currency', operator: 'exists' }, contact, payload)).toBe(true);
  });

  it('a payload comparison without a payload is false (and not_equals true), as for a missing attribute', () => {
    expect(evaluateCondition({ field: 'payload.total', operator: 'exists' }, contact)).toBe(false);
    expect(evaluateCondition({ field: 'payload.total', operator: 'equals', value: 120 }, contact)).toBe(false);
    expect(evaluateCondition({ field: 'payload.total', operator: 'not_equals', value: 120 }, contact)).toBe(true);
  });

  it('passes the payload down through every combinator', () => {
    const condition: Condition = {
      all: [
        yes,
        { any: [no, { field: 'payload.currency', operator: 'equals', value: 'EUR' }] },
        { not: { field: 'payload.cart.items', operator: 'less_than', value: 2 } },
      ],
    };
    expect(evaluateCondition(condition, contact, payload)).toBe(true);
    expect(evaluateCondition(condition, contact, { ...payload, currency: 'USD' })).toBe(false);
    expect(evaluateCondition(condition, contact)).toBe(false);
  });
});

describe('conditionSchema', () => {
  it('accepts combinators, nested, and payload fields', () => {
    const condition = {
      all: [
        { has_tag: 'VIP' },
        { any: [{ field: 'payload.total', operator: 'greater_than', value: 100 }, { not: { has_tag: 'x' } }] },
      ],
    };
    expect(conditionSchema.safeParse(condition)).toEqual({ success: true, data: condition });
  });

  it(`accepts ${MAX_CONDITION_DEPTH} levels and refuses one more, at the path of the too-deep part`, () => {
    expect(conditionSchema.safeParse(nots(MAX_CONDITION_DEPTH - 1)).success).toBe(true);
    expect(conditionIssues(nots(MAX_CONDITION_DEPTH))).toEqual([
      {
        path: Array(MAX_CONDITION_DEPTH).fill('not').join('.'),
        message: `conditions may combine all/any/not at most ${MAX_CONDITION_DEPTH} levels deep`,
      },
    ]);
  });

  it('refuses a very deep condition with one clear issue instead of overflowing the stack', () => {
    const issues = conditionIssues(nots(100_000));
    expect(issues).toHaveLength(1);
    expect(issues[0]!.message).toMatch(/at most 8 levels deep/);
  });

  it('counts depth through all and any, and names the list position', () => {
    let node: unknown = { has_tag: 'x' };
    for (let i = 0; i < MAX_CONDITION_DEPTH; i += 1) node = i % 2 ? { any: [{ has_tag: 'y' }, node] } : { all: [node] };
    expect(conditionIssues(node).map((issue) => issue.path)).toEqual([
      'any.1.all.0.any.1.all.0.any.1.all.0.any.1.all.0',
    ]);
  });

  it.each([
    ['an empty all', { all: [] }, 'all'],
    ['an empty any', { any: [] }, 'any'],
    ['all that is not a list', { all: { has_tag: 'x' } }, 'all'],
    ['not with a list', { not: [{ has_tag: 'x' }] }, 'not'],
    [
      'a bad condition inside all',
      { all: [{ has_tag: 'x' }, { field: 'plan', operator: 'like', value: 1 }] },
      'all.1.operator',
    ],
    ['a comparison without a value inside not', { not: { field: 'payload.total', operator: 'equals' } }, 'not.value'],
    ['an empty tag inside any', { any: [{ has_tag: '' }] }, 'any.0.has_tag'],
  ])('refuses %s at its path', (_, input, path) => {
    expect(conditionIssues(input).map((issue) => issue.path)).toEqual([path]);
  });

  it(`refuses more than ${MAX_CONDITION_ITEMS} conditions in one list`, () => {
    const many = Array.from({ length: MAX_CONDITION_ITEMS + 1 }, () => ({ has_tag: 'x' }));
    expect(conditionIssues({ any: many }).map((issue) => issue.path)).toEqual(['any']);
    expect(conditionSchema.safeParse({ any: many.slice(1) }).success).toBe(true);
  });

  it('refuses a combinator mixed with another condition', () => {
    expect(conditionSchema.safeParse({ all: [{ has_tag: 'x' }], has_tag: 'y' }).success).toBe(false);
    expect(conditionSchema.safeParse({ not: { has_tag: 'x' }, any: [{ has_tag: 'y' }] }).success).toBe(false);
  });
});

describe('parseDefinition: combinators in condition steps', () => {
  const step = (config: unknown) => ({ id: 'c', type: 'condition', config, branches: { true: [], false: [] } });

  it('accepts all/any/not in a condition step', () => {
    const config = { any: [{ has_tag: 'VIP' }, { not: { field: 'plan', operator: 'equals', value: 'free' } }] };
    expect(parseDefinition({ steps: [step(config)] })).toMatchObject({
      ok: true,
      definition: { steps: [step(config)] },
    });
  });

  it("reports a too-deep condition at the step's config path", () => {
    const result = parseDefinition({ steps: [step(nots(MAX_CONDITION_DEPTH))] });
    expect(result.ok).toBe(false);
    if (!result.ok)
      expect(result.issues.map((issue) => issue.path)).toEqual([
        `steps.0.config.${Array(MAX_CONDITION_DEPTH).fill('not').join('.')}`,
      ]);
  });

  it("reports a bad condition inside a combinator at the step's config path", () => {
    const result = parseDefinition({ steps: [step({ all: [{ has_tag: 'x' }, { field: 'plan' }] })] });
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.issues.map((issue) => issue.path)).toEqual(['steps.0.config.all.1.operator']);
  });
});
