import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { OPERATORS, RESERVED_STEP_IDS, parseDefinition, type DefinitionIssue } from '../../src/definition/schema.ts';
import { MAX_DURATION_MS, parseDuration } from '../../src/definition/duration.ts';
import { renderTemplate } from '../../src/definition/template.ts';
import { evaluateCondition, readField, type ContactFacts } from '../../src/definition/condition.ts';
import { classifyResponse, parseRetryAfter } from '../../src/providers/outcome.ts';
import { branching, emails, sequential, welcomeSequence, withWait } from '../fixtures/workflows.ts';

const SECOND = 1_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;

const email = (id: string) => ({ id, type: 'send_email', config: { subject: 'Hello', body: 'Welcome' } });
const condition = (id: string, config: unknown, onTrue: unknown[] = [], onFalse: unknown[] = []) => ({
  id,
  type: 'condition',
  config,
  branches: { true: onTrue, false: onFalse },
});
/** A definition with the given steps and nothing else. */
const withSteps = (...steps: unknown[]) => ({ steps });

/** Parses `input`, which must be refused, and returns its issues. */
function issuesOf(input: unknown): DefinitionIssue[] {
  const result = parseDefinition(input);
  if (result.ok) throw new Error(`expected ${JSON.stringify(input).slice(0, 200)} to be refused`);
  return result.issues;
}
const pathsOf = (input: unknown) => issuesOf(input).map((issue) => issue.path);

describe('parseDefinition: valid definitions', () => {
  it('accepts the CONTRACT example and keeps what the designer wrote', () => {
    const example = {
      trigger: { type: 'manual' },
      goal: { event: 'appointment_booked' },
      reentry: 'never',
      steps: [
        { id: 'welcome', type: 'send_email', config: { subject: 'Hi {{first_name}}', body: '...' } },
        { id: 'tag', type: 'add_tag', config: { tag: 'welcomed' } },
        { id: 'pause', type: 'wait', config: { duration: '2 hours' } },
        condition('vip', { has_tag: 'VIP' }, [{ id: 'sms', type: 'send_sms', config: { body: '...' } }], []),
      ],
    };
    const result = parseDefinition(example);
    expect(result).toEqual({ ok: true, definition: example });
  });

  it('fills in the defaults: manual trigger, re-entry after completion, no goal', () => {
    const result = parseDefinition(withSteps(email('a')));
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.definition.trigger).toEqual({ type: 'manual' });
    expect(result.definition.reentry).toBe('after_completion');
    expect(result.definition.goal).toBeUndefined();
  });

  it.each([
    ['send_email', '', { subject: 'Hi {{first_name}}', body: 'Welcome' }],
    ['send_email', 'with a recipient', { subject: 'Hi', body: 'Welcome', to: 'ops@example.com' }],
    ['send_sms', '', { body: 'Thanks for joining!' }],
    ['add_tag', '', { tag: 'welcomed' }],
    ['remove_tag', '', { tag: 'lead' }],
    ['wait', '', { duration: '30 seconds' }],
    ['webhook', 'with a string body', { url: 'https://hooks.example.com/a', method: 'PUT', body: 'raw' }],
    [
      'webhook',
      'with a JSON body',
      { url: 'http://hooks.example.com/b?x=1', method: 'POST', body: { contact: '{{email}}' } },
    ],
    ['webhook', 'without a body', { url: 'https://hooks.example.com/c', method: 'GET' }],
  ])('accepts a %s step %s', (type, _, config) => {
    const step = { id: 'step_1', type, config };
    expect(parseDefinition(withSteps(step))).toEqual({
      ok: true,
      definition: { trigger: { type: 'manual' }, reentry: 'after_completion', steps: [step] },
    });
  });

  it('defaults a webhook method to POST', () => {
    const result = parseDefinition(
      withSteps({ id: 'hook', type: 'webhook', config: { url: 'https://example.com/hook' } }),
    );
    expect(result.ok && result.definition.steps[0]).toMatchObject({ config: { method: 'POST' } });
  });

  it('accepts a has_tag condition with steps in both branches', () => {
    const step = condition(
      'vip',
      { has_tag: 'VIP' },
      [email('yes')],
      [email('no'), { id: 'later', type: 'wait', config: { duration: '1 day' } }],
    );
    const result = parseDefinition(withSteps(step));
    expect(result.ok && result.definition.steps).toEqual([step]);
  });

  it.each(OPERATORS.filter((operator) => operator !== 'exists'))(
    'accepts a "%s" comparison with a string, number or boolean value',
    (operator) => {
      for (const value of ['pro', 42, true]) {
        const step = condition('check', { field: 'plan', operator, value });
        expect(parseDefinition(withSteps(step))).toMatchObject({ ok: true, definition: { steps: [step] } });
      }
    },
  );

  it('accepts "exists" without a value', () => {
    const step = condition('check', { field: 'attributes.plan', operator: 'exists' });
    expect(parseDefinition(withSteps(step))).toMatchObject({ ok: true, definition: { steps: [step] } });
  });

  it('accepts conditions nested in branches', () => {
    const inner = condition(
      'inner',
      { field: 'score', operator: 'greater_than', value: 10 },
      [email('hot')],
      [email('cold')],
    );
    const step = condition('outer', { has_tag: 'lead' }, [inner], []);
    expect(parseDefinition(withSteps(step, email('after')))).toMatchObject({
      ok: true,
      definition: { steps: [step, email('after')] },
    });
  });

  it.each([
    ['manual', { type: 'manual' }],
    ['event', { type: 'event', event: 'signed_up' }],
  ])('accepts a %s trigger and every re-entry rule', (_, trigger) => {
    for (const reentry of ['always', 'after_completion', 'never']) {
      const result = parseDefinition({ trigger, reentry, steps: [email('a')] });
      expect(result.ok && [result.definition.trigger, result.definition.reentry]).toEqual([trigger, reentry]);
    }
  });

  it.each([
    ['sequential', sequential],
    ['branching', branching],
    ['withWait', withWait()],
    ['welcomeSequence', welcomeSequence],
    ['emails(10)', emails(10)],
  ])('accepts the %s fixture unchanged', (_, fixture) => {
    const result = parseDefinition(fixture);
    expect(result.ok && result.definition.steps).toEqual(fixture.steps);
  });

  it('accepts step ids of up to 64 characters made of letters, digits, "_" and "-"', () => {
    for (const id of ['a', 'A1', 'send-email_2', `a${'b'.repeat(63)}`]) {
      expect(parseDefinition(withSteps(email(id))).ok).toBe(true);
    }
  });

  it('accepts 500 top-level steps and 1000 steps in all', () => {
    expect(parseDefinition(withSteps(...Array.from({ length: 500 }, (_, i) => email(`e${i}`)))).ok).toBe(true);
    const half = (k: number) =>
      condition(
        `c${k}`,
        { has_tag: 'x' },
        Array.from({ length: 499 }, (_, i) => email(`e${k}_${i}`)),
      );
    expect(parseDefinition(withSteps(half(1), half(2))).ok).toBe(true);
  });
});

describe('parseDefinition: refused definitions', () => {
  it.each([null, 'steps', 42, [], true])('refuses a definition that is not an object (%j) at the root', (input) => {
    expect(pathsOf(input)).toEqual(['(root)']);
  });

  it.each([
    ['missing steps', {}, 'steps'],
    ['steps that are not a list', { steps: {} }, 'steps'],
    ['no steps', { steps: [] }, 'steps'],
    ['an unknown trigger type', { trigger: { type: 'cron' }, steps: [email('a')] }, 'trigger.type'],
    ['an empty goal event', { goal: { event: '' }, steps: [email('a')] }, 'goal.event'],
    ['an unknown re-entry rule', { reentry: 'sometimes', steps: [email('a')] }, 'reentry'],
  ])('refuses %s', (_, input, path) => {
    expect(pathsOf(input)).toEqual([path]);
  });

  it("refuses an unknown step type at the step's type, also inside a branch", () => {
    const [issue] = issuesOf(withSteps({ id: 'a', type: 'fax', config: {} }));
    expect(issue?.path).toBe('steps.0.type');
    expect(issue?.message).toMatch(/send_email/);
    expect(
      pathsOf(withSteps(condition('c', { has_tag: 'x' }, [], [email('ok'), { id: 'b', type: 'carrier_pigeon' }]))),
    ).toEqual(['steps.0.branches.false.1.type']);
    expect(pathsOf(withSteps({ id: 'a', config: {} }))).toEqual(['steps.0.type']);
  });

  it.each([
    ['a step without config', { id: 'a', type: 'send_email' }, 'steps.0.config'],
    ['an email without subject', { id: 'a', type: 'send_email', config: { body: 'b' } }, 'steps.0.config.subject'],
    ['an email without body', { id: 'a', type: 'send_email', config: { subject: 's' } }, 'steps.0.config.body'],
    [
      'an email with an empty subject',
      { id: 'a', type: 'send_email', config: { subject: '', body: 'b' } },
      'steps.0.config.subject',
    ],
    [
      'an email to a non-address',
      { id: 'a', type: 'send_email', config: { subject: 's', body: 'b', to: 'nobody' } },
      'steps.0.config.to',
    ],
    ['an SMS without body', { id: 'a', type: 'send_sms', config: {} }, 'steps.0.config.body'],
    [
      'an SMS over 1600 characters',
      { id: 'a', type: 'send_sms', config: { body: 'x'.repeat(1_601) } },
      'steps.0.config.body',
    ],
    ['add_tag without tag', { id: 'a', type: 'add_tag', config: {} }, 'steps.0.config.tag'],
    ['remove_tag with an empty tag', { id: 'a', type: 'remove_tag', config: { tag: '' } }, 'steps.0.config.tag'],
    ['a wait without duration', { id: 'a', type: 'wait', config: {} }, 'steps.0.config.duration'],
    ['a webhook without url', { id: 'a', type: 'webhook', config: { method: 'POST' } }, 'steps.0.config.url'],
    [
      'a webhook with an unknown method',
      { id: 'a', type: 'webhook', config: { url: 'https://x.io', method: 'FETCH' } },
      'steps.0.config.method',
    ],
    [
      'a webhook with a numeric body',
      { id: 'a', type: 'webhook', config: { url: 'https://x.io', body: 42 } },
      'steps.0.config.body',
    ],
    ['a condition without branches', { id: 'a', type: 'condition', config: { has_tag: 'x' } }, 'steps.0.branches'],
    [
      'a condition without a false branch',
      { id: 'a', type: 'condition', config: { has_tag: 'x' }, branches: { true: [] } },
      'steps.0.branches.false',
    ],
    ['a condition with an empty config', condition('a', {}), 'steps.0.config.has_tag'],
    [
      'a comparison with an unknown operator',
      condition('a', { field: 'plan', operator: 'like', value: 'p' }),
      'steps.0.config.operator',
    ],
    [
      'a comparison with an object value',
      condition('a', { field: 'plan', operator: 'equals', value: { p: 1 } }),
      'steps.0.config.value',
    ],
  ])('refuses %s with the path of the missing or bad field', (_, step, path) => {
    expect(pathsOf(withSteps(step))).toEqual([path]);
  });

  it.each([
    '2 parsecs',
    '0 seconds',
    '-1 hours',
    '400 days',
    '367 days',
    '53 weeks',
    '1.5 hours',
    'soon',
    'hours',
    '10',
    '',
  ])("refuses the duration %j at the wait's config.duration", (duration) => {
    const issues = issuesOf(withSteps(email('a'), { id: 'pause', type: 'wait', config: { duration } }));
    expect(issues).toEqual([{ path: 'steps.1.config.duration', message: expect.stringMatching(/positive duration/) }]);
  });

  it('refuses a bad duration inside a branch at its full path', () => {
    const step = condition('c', { has_tag: 'x' }, [{ id: 'w', type: 'wait', config: { duration: '0 seconds' } }]);
    expect(pathsOf(withSteps(step))).toEqual(['steps.0.branches.true.0.config.duration']);
  });

  it('refuses duplicate step ids, naming where the id was first used', () => {
    expect(issuesOf(withSteps(email('a'), email('b'), email('a')))).toEqual([
      { path: 'steps.2.id', message: expect.stringContaining('first used at steps.0') },
    ]);
  });

  it('refuses duplicate step ids inside branches, across branches and against the condition itself', () => {
    const step = condition(
      'vip',
      { has_tag: 'VIP' },
      [email('welcome'), email('shared')],
      [email('shared'), email('vip')],
    );
    expect(pathsOf(withSteps(email('welcome'), step))).toEqual([
      'steps.1.branches.true.0.id',
      'steps.1.branches.false.0.id',
      'steps.1.branches.false.1.id',
    ]);
    const nested = condition(
      'outer',
      { has_tag: 'a' },
      [condition('inner', { has_tag: 'b' }, [email('deep')], [])],
      [],
    );
    expect(pathsOf(withSteps(nested, email('deep')))).toEqual(['steps.1.id']);
  });

  it.each(RESERVED_STEP_IDS)('refuses the reserved id "%s", also inside a branch', (id) => {
    expect(issuesOf(withSteps(email(id)))).toEqual([{ path: 'steps.0.id', message: 'is a reserved name' }]);
    expect(pathsOf(withSteps(condition('c', { has_tag: 'x' }, [], [email(id)])))).toEqual([
      'steps.0.branches.false.0.id',
    ]);
  });

  it.each([['1abc'], ['has space'], ['dots.inside'], [''], [`a${'b'.repeat(64)}`]])(
    'refuses the malformed step id %j',
    (id) => {
      expect(pathsOf(withSteps(email(id)))).toEqual(['steps.0.id']);
    },
  );

  it('refuses a step id that is not a string', () => {
    expect(pathsOf(withSteps({ ...email('a'), id: 5 }))).toEqual(['steps.0.id']);
  });

  it.each([
    ['the root', { steps: [email('a')], name: 'x' }, '(root)', 'name'],
    ['a step', withSteps({ ...email('a'), delay: 5 }), 'steps.0', 'delay'],
    [
      'a step config',
      withSteps({ id: 'a', type: 'send_sms', config: { body: 'b', subject: 's' } }),
      'steps.0.config',
      'subject',
    ],
    ['a condition config', withSteps(condition('c', { has_tag: 'x', extra: 1 })), 'steps.0.config', 'extra'],
    [
      "a condition's branches",
      withSteps({ ...condition('c', { has_tag: 'x' }), branches: { true: [], false: [], maybe: [] } }),
      'steps.0.branches',
      'maybe',
    ],
    ['the trigger', { trigger: { type: 'manual', cron: '* * *' }, steps: [email('a')] }, 'trigger', 'cron'],
    ['the goal', { goal: { event: 'booked', within: '3 days' }, steps: [email('a')] }, 'goal', 'within'],
  ])('refuses an unknown field in %s', (_, input, path, key) => {
    const issues = issuesOf(input);
    expect(issues).toEqual([{ path, message: expect.stringContaining(`"${key}"`) }]);
  });

  it('refuses a condition that mixes has_tag with a comparison', () => {
    expect(pathsOf(withSteps(condition('c', { has_tag: 'x', field: 'plan', operator: 'exists' })))).toEqual([
      'steps.0.config',
    ]);
  });

  it.each(['ftp://example.com/file', 'javascript:alert(1)', 'mailto:ops@example.com', 'not a url', '', 'http://'])(
    'refuses the webhook URL %j',
    (url) => {
      const issues = issuesOf(withSteps({ id: 'hook', type: 'webhook', config: { url } }));
      expect(issues.length).toBeGreaterThan(0);
      expect(new Set(issues.map((issue) => issue.path))).toEqual(new Set(['steps.0.config.url']));
    },
  );

  it.each(OPERATORS.filter((operator) => operator !== 'exists'))(
    'refuses "%s" without a value at config.value',
    (operator) => {
      expect(issuesOf(withSteps(condition('c', { field: 'plan', operator })))).toEqual([
        { path: 'steps.0.config.value', message: 'value is required for this operator' },
      ]);
    },
  );

  it('refuses more than 500 steps in one list', () => {
    const issues = issuesOf(withSteps(...Array.from({ length: 501 }, (_, i) => email(`e${i}`))));
    expect(issues.map((issue) => issue.path)).toEqual(['steps']);
    const branch = Array.from({ length: 501 }, (_, i) => email(`b${i}`));
    expect(pathsOf(withSteps(condition('c', { has_tag: 'x' }, branch)))).toEqual(['steps.0.branches.true']);
  });

  it('refuses more than 1000 steps in all, counting those in branches', () => {
    const big = (k: number) =>
      condition(
        `c${k}`,
        { has_tag: 'x' },
        Array.from({ length: 400 }, (_, i) => email(`e${k}_${i}`)),
      );
    const issues = issuesOf(withSteps(big(1), big(2), big(3)));
    expect(issues).toEqual([{ path: 'steps', message: 'a workflow may have at most 1000 steps (has 1203)' }]);
  });

  it('reports every problem of a definition with many, each at its own path', () => {
    const input = {
      goal: { event: '' },
      steps: [
        { id: 'pause', type: 'wait', config: { duration: '2 parsecs' } },
        { ...email('welcome'), extra: true },
        condition(
          'vip',
          { field: 'plan', operator: 'equals' },
          [email('completed')],
          [{ id: 'hook', type: 'webhook', config: { url: 'ftp://x' } }],
        ),
        { id: 'tag', type: 'add_tag', config: {} },
      ],
    };
    expect(pathsOf(input).sort()).toEqual(
      [
        'goal.event',
        'steps.0.config.duration',
        'steps.1',
        'steps.2.config.value',
        'steps.2.branches.true.0.id',
        'steps.2.branches.false.0.config.url',
        'steps.3.config.tag',
      ].sort(),
    );
  });

  it('reports duplicate ids together with the other problems', () => {
    const input = withSteps(
      email('a'),
      email('a'),
      { id: 'w', type: 'wait', config: { duration: '0 seconds' } },
      condition('c', { has_tag: 'x' }, [email('a')]),
      { id: 'h', type: 'webhook', config: { url: 'ftp://x' } },
      { id: 'r', type: 'remove_tag', config: { tag: 'x', extra: 1 } },
      email('failed'),
    );
    expect(pathsOf(input).sort()).toEqual(
      [
        'steps.1.id',
        'steps.2.config.duration',
        'steps.3.branches.true.0.id',
        'steps.4.config.url',
        'steps.5.config',
        'steps.6.id',
      ].sort(),
    );
  });
});

describe('parseDuration', () => {
  it.each([
    ['30 seconds', 30 * SECOND],
    ['1 second', SECOND],
    ['90s', 90 * SECOND],
    ['5 sec', 5 * SECOND],
    ['15 minutes', 15 * 60 * SECOND],
    ['1 min', 60 * SECOND],
    ['10m', 10 * 60 * SECOND],
    ['2 hours', 2 * HOUR],
    ['1 hr', HOUR],
    ['3h', 3 * HOUR],
    ['3 days', 3 * DAY],
    ['1d', DAY],
    ['2 weeks', 14 * DAY],
    ['1w', 7 * DAY],
    ['  4   HOURS  ', 4 * HOUR],
    ['2 Days', 2 * DAY],
    ['366 days', 366 * DAY],
    ['52 weeks', 364 * DAY],
  ])('parses %j', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each([
    '0 seconds',
    '0s',
    '-1 hours',
    '+1 hours',
    '1.5 hours',
    '400 days',
    '367 days',
    '53 weeks',
    '2 parsecs',
    'hours',
    '10',
    '',
    '1 2 days',
    'one day',
    '12345678 seconds',
    '2 hours later',
  ])('refuses %j', (text) => {
    expect(parseDuration(text)).toBeNull();
  });

  it('caps durations at MAX_DURATION_MS', () => {
    expect(MAX_DURATION_MS).toBe(366 * DAY);
    const minutes = MAX_DURATION_MS / (60 * SECOND);
    expect(parseDuration(`${minutes} minutes`)).toBe(MAX_DURATION_MS);
    expect(parseDuration(`${minutes + 1} minutes`)).toBeNull();
  });

  it('is n times the unit for every n in range', () => {
    const units = [
      ['seconds', SECOND],
      ['minutes', 60 * SECOND],
      ['hours', HOUR],
      ['days', DAY],
    ] as const;
    fc.assert(
      fc.property(fc.constantFrom(...units), fc.integer({ min: 1, max: 9_999_999 }), ([unit, size], n) => {
        const ms = n * size;
        expect(parseDuration(`${n} ${unit}`)).toBe(ms <= MAX_DURATION_MS ? ms : null);
      }),
    );
  });
});

describe('renderTemplate', () => {
  it('replaces placeholders by their values', () => {
    expect(renderTemplate('Hi {{first_name}}, your plan is {{plan}}.', { first_name: 'Ada', plan: 'pro' })).toEqual({
      ok: true,
      text: 'Hi Ada, your plan is pro.',
    });
  });

  it('allows spaces inside the braces and repeats', () => {
    expect(renderTemplate('{{ name }}/{{name}}/{{  name}}', { name: 'x' })).toEqual({ ok: true, text: 'x/x/x' });
  });

  it('reads nested values such as payload keys', () => {
    const scope = { payload: { order: { id: 42 } }, email: 'a@example.com' };
    expect(renderTemplate('Order {{payload.order.id}} for {{email}}', scope)).toEqual({
      ok: true,
      text: 'Order 42 for a@example.com',
    });
  });

  it('renders unknown, null and undefined values as an empty string', () => {
    expect(
      renderTemplate('[{{missing}}][{{none}}][{{undef}}][{{payload.missing.deeper}}]', {
        none: null,
        undef: undefined,
        payload: {},
      }),
    ).toEqual({ ok: true, text: '[][][][]' });
  });

  it('stringifies numbers, booleans and zero', () => {
    expect(renderTemplate('{{n}} {{zero}} {{yes}} {{no}}', { n: 3.5, zero: 0, yes: true, no: false })).toEqual({
      ok: true,
      text: '3.5 0 true false',
    });
  });

  it('leaves text that is not a placeholder alone and evaluates nothing', () => {
    const template = "{single} {{bad-name}} {{ a b }} {{constructor.constructor('return 1')()}} {{}}";
    expect(renderTemplate(template, { single: 'x', a: 'y' })).toEqual({ ok: true, text: template });
  });

  it('leaves a template without placeholders unchanged', () => {
    fc.assert(
      fc.property(
        fc.string().filter((text) => !text.includes('{{')),
        fc.dictionary(fc.string(), fc.string()),
        (text, scope) => {
          expect(renderTemplate(text, scope)).toEqual({ ok: true, text });
        },
      ),
    );
  });
});

const contact = (overrides: Partial<ContactFacts> = {}): ContactFacts => ({
  email: 'ada@example.com',
  phone: null,
  optedIn: true,
  timezone: 'Europe/Paris',
  tags: ['VIP', 'lead'],
  attributes: {
    plan: 'pro',
    score: 42,
    score_text: '17',
    active: true,
    empty: '',
    nothing: null,
    address: { city: 'Paris' },
    skills: ['sql', 2],
  },
  ...overrides,
});

describe('readField', () => {
  it('reads contact fields by their snake_case names', () => {
    const facts = contact({ phone: '+15551234567' });
    expect(readField(facts, 'email')).toBe('ada@example.com');
    expect(readField(facts, 'phone')).toBe('+15551234567');
    expect(readField(facts, 'opted_in')).toBe(true);
    expect(readField(facts, 'timezone')).toBe('Europe/Paris');
    expect(readField(facts, 'tags')).toEqual(['VIP', 'lead']);
  });

  it('reads attributes with or without the attributes. prefix, nested by dots', () => {
    const facts = contact();
    expect(readField(facts, 'plan')).toBe('pro');
    expect(readField(facts, 'attributes.plan')).toBe('pro');
    expect(readField(facts, 'address.city')).toBe('Paris');
    expect(readField(facts, 'attributes.address.city')).toBe('Paris');
  });

  it('gives undefined for missing attributes and paths through non-objects', () => {
    const facts = contact();
    expect(readField(facts, 'missing')).toBeUndefined();
    expect(readField(facts, 'address.zip')).toBeUndefined();
    expect(readField(facts, 'plan.tier')).toBeUndefined();
    expect(readField(facts, 'nothing.deeper')).toBeUndefined();
  });

  it('prefers a contact field over an attribute of the same name', () => {
    expect(readField(contact({ attributes: { email: 'other@example.com' } }), 'email')).toBe('ada@example.com');
    expect(readField(contact({ attributes: { email: 'other@example.com' } }), 'attributes.email')).toBe(
      'other@example.com',
    );
  });
});

describe('evaluateCondition', () => {
  const facts = contact();
  const compare = (field: string, operator: (typeof OPERATORS)[number], value?: string | number | boolean) =>
    evaluateCondition(value === undefined ? { field, operator } : { field, operator, value }, facts);

  it('has_tag: true only for a tag the contact has, case-sensitively', () => {
    expect(evaluateCondition({ has_tag: 'VIP' }, facts)).toBe(true);
    expect(evaluateCondition({ has_tag: 'vip' }, facts)).toBe(false);
    expect(evaluateCondition({ has_tag: 'customer' }, facts)).toBe(false);
    expect(evaluateCondition({ has_tag: 'VIP' }, contact({ tags: [] }))).toBe(false);
  });

  it('exists: present values, including 0 and false, but not missing, null or empty', () => {
    expect(compare('plan', 'exists')).toBe(true);
    expect(compare('email', 'exists')).toBe(true);
    expect(
      evaluateCondition({ field: 'count', operator: 'exists' }, contact({ attributes: { count: 0, off: false } })),
    ).toBe(true);
    expect(
      evaluateCondition({ field: 'off', operator: 'exists' }, contact({ attributes: { count: 0, off: false } })),
    ).toBe(true);
    expect(compare('missing', 'exists')).toBe(false);
    expect(compare('nothing', 'exists')).toBe(false);
    expect(compare('empty', 'exists')).toBe(false);
    expect(compare('phone', 'exists')).toBe(false);
  });

  it('equals: compares as text, so numbers and booleans match their string forms', () => {
    expect(compare('plan', 'equals', 'pro')).toBe(true);
    expect(compare('plan', 'equals', 'Pro')).toBe(false);
    expect(compare('score', 'equals', 42)).toBe(true);
    expect(compare('score', 'equals', '42')).toBe(true);
    expect(compare('score_text', 'equals', 17)).toBe(true);
    expect(compare('active', 'equals', true)).toBe(true);
    expect(compare('active', 'equals', 'true')).toBe(true);
    expect(compare('opted_in', 'equals', false)).toBe(false);
    expect(compare('missing', 'equals', 'undefined')).toBe(false);
  });

  it('not_equals: the opposite of equals, and true for a missing value', () => {
    expect(compare('plan', 'not_equals', 'basic')).toBe(true);
    expect(compare('plan', 'not_equals', 'pro')).toBe(false);
    expect(compare('score', 'not_equals', '42')).toBe(false);
    expect(compare('missing', 'not_equals', 'pro')).toBe(true);
  });

  it('greater_than / less_than: numeric, also for numbers written as strings', () => {
    expect(compare('score', 'greater_than', 40)).toBe(true);
    expect(compare('score', 'greater_than', 42)).toBe(false);
    expect(compare('score', 'less_than', 43)).toBe(true);
    expect(compare('score', 'less_than', 42)).toBe(false);
    expect(compare('score', 'greater_than', '9')).toBe(true);
    expect(compare('score_text', 'greater_than', 9)).toBe(true);
    expect(compare('score_text', 'less_than', '100')).toBe(true);
  });

  it('greater_than / less_than: false for missing, empty, null or non-numeric values', () => {
    for (const operator of ['greater_than', 'less_than'] as const) {
      expect(compare('missing', operator, 0)).toBe(false);
      expect(compare('empty', operator, 0)).toBe(false);
      expect(compare('nothing', operator, 0)).toBe(false);
      expect(compare('plan', operator, 0)).toBe(false);
      expect(compare('active', operator, 0)).toBe(false);
      expect(compare('score', operator, 'many')).toBe(false);
      expect(compare('score', operator, '')).toBe(false);
    }
  });

  it('contains: case-insensitive substring of a string', () => {
    expect(compare('email', 'contains', '@example.com')).toBe(true);
    expect(compare('email', 'contains', 'ADA')).toBe(true);
    expect(compare('email', 'contains', 'bob')).toBe(false);
  });

  it('contains: membership for arrays, comparing as text', () => {
    expect(compare('tags', 'contains', 'VIP')).toBe(true);
    expect(compare('tags', 'contains', 'customer')).toBe(false);
    expect(compare('skills', 'contains', 'sql')).toBe(true);
    expect(compare('skills', 'contains', 2)).toBe(true);
    expect(compare('skills', 'contains', '2')).toBe(true);
  });

  it('contains: false for missing values and values that are neither strings nor arrays', () => {
    expect(compare('missing', 'contains', 'x')).toBe(false);
    expect(compare('score', 'contains', 4)).toBe(false);
    expect(compare('address', 'contains', 'Paris')).toBe(false);
  });

  it('reads nested attributes', () => {
    expect(compare('attributes.address.city', 'equals', 'Paris')).toBe(true);
    expect(compare('address.city', 'contains', 'par')).toBe(true);
  });
});

describe('parseRetryAfter', () => {
  const now = new Date('2015-10-21T07:27:00Z');

  it('reads delta-seconds', () => {
    expect(parseRetryAfter('120', now)).toBe(120 * SECOND);
    expect(parseRetryAfter(' 5 ', now)).toBe(5 * SECOND);
    expect(parseRetryAfter('0', now)).toBe(0);
  });

  it('reads an HTTP-date relative to now, never negative', () => {
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:28:00 GMT', now)).toBe(60 * SECOND);
    expect(parseRetryAfter('Wed, 21 Oct 2015 09:27:00 GMT', now)).toBe(2 * HOUR);
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:00:00 GMT', now)).toBe(0);
  });

  it('gives null when there is no usable value', () => {
    expect(parseRetryAfter(null, now)).toBeNull();
    expect(parseRetryAfter('', now)).toBeNull();
    expect(parseRetryAfter('soon', now)).toBeNull();
    expect(parseRetryAfter('12abc', now)).toBeNull();
  });
});

describe('classifyResponse', () => {
  const now = new Date('2015-10-21T07:27:00Z');

  it.each([200, 201, 202, 204, 299])('%i is a success', (status) => {
    expect(classifyResponse(status, null, now)).toEqual({ kind: 'success', status });
  });

  it.each([400, 401, 403, 404, 409, 422])('%i is permanent (skip the step)', (status) => {
    expect(classifyResponse(status, null, now, 'no such recipient')).toEqual({
      kind: 'permanent',
      status,
      error: `HTTP ${status}: no such recipient`,
    });
  });

  it.each([500, 502, 503, 504])('%i is transient (retry with backoff)', (status) => {
    expect(classifyResponse(status, '30', now)).toEqual({ kind: 'transient', status, error: `HTTP ${status}` });
  });

  it('429 honours Retry-After in seconds', () => {
    expect(classifyResponse(429, '7', now)).toEqual({
      kind: 'rate_limited',
      status: 429,
      retryAfterMs: 7 * SECOND,
      error: 'HTTP 429',
    });
  });

  it('429 honours Retry-After as an HTTP-date relative to now', () => {
    expect(classifyResponse(429, 'Wed, 21 Oct 2015 07:27:30 GMT', now)).toMatchObject({
      kind: 'rate_limited',
      retryAfterMs: 30 * SECOND,
    });
    const later = new Date(now.getTime() + 10 * SECOND);
    expect(classifyResponse(429, 'Wed, 21 Oct 2015 07:27:30 GMT', later)).toMatchObject({
      kind: 'rate_limited',
      retryAfterMs: 20 * SECOND,
    });
  });

  it("429 without a usable Retry-After leaves the wait to the engine (the step's back-off)", () => {
    expect(classifyResponse(429, 'soon', now)).toMatchObject({ kind: 'rate_limited', retryAfterMs: null });
    expect(classifyResponse(429, null, now)).toMatchObject({ kind: 'rate_limited', retryAfterMs: null });
  });

  it('keeps at most 300 characters of the response body in the error', () => {
    const outcome = classifyResponse(400, null, now, 'x'.repeat(1_000));
    expect(outcome.kind === 'permanent' && outcome.error).toBe(`HTTP 400: ${'x'.repeat(300)}`);
  });
});
