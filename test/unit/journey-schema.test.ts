import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import {
  branchStepSchema,
  eventTriggerSchema,
  MAX_EVENT_NAME,
  parseDefinition,
  sendWindowSchema,
  splitStepSchema,
  tagAddedTriggerSchema,
  toDefinitionIssues,
  waitForEventStepSchema,
  waitUntilStepSchema,
  workflowExitSchema,
  type DefinitionIssue,
} from '../../src/definition/schema.ts';

/** Issues of `input`, which `schema` must refuse. */
function issuesOf(schema: z.ZodType, input: unknown): DefinitionIssue[] {
  const result = schema.safeParse(input);
  if (result.success) throw new Error(`expected ${JSON.stringify(input).slice(0, 200)} to be refused`);
  return toDefinitionIssues(result.error.issues);
}
const pathsOf = (schema: z.ZodType, input: unknown) => issuesOf(schema, input).map((issue) => issue.path);
/** The parsed value of `input`, which `schema` must accept. */
function accepted(schema: z.ZodType, input: unknown): unknown {
  const result = schema.safeParse(input);
  if (!result.success) throw new Error(JSON.stringify(toDefinitionIssues(result.error.issues)));
  return result.data;
}

const email = (id: string) => ({ id, type: 'send_email', config: { subject: 'Hi', body: 'Hello' } });
const longName = 'e'.repeat(MAX_EVENT_NAME + 1);

describe('trigger: event', () => {
  it('accepts an event name, with or without a where over payload fields', () => {
    const plain = { type: 'event', event: 'signed_up' };
    const where = { ...plain, where: { all: [{ field: 'payload.plan', operator: 'equals', value: 'pro' }] } };
    expect(accepted(eventTriggerSchema, plain)).toEqual(plain);
    expect(accepted(eventTriggerSchema, where)).toEqual(where);
  });

  it.each([
    ['no event', { type: 'event' }, 'event'],
    ['an empty event', { type: 'event', event: '' }, 'event'],
    [`an event over ${MAX_EVENT_NAME} characters`, { type: 'event', event: longName }, 'event'],
    [
      'a bad where',
      { type: 'event', event: 'x', where: { field: 'payload.total', operator: 'over' } },
      'where.operator',
    ],
    ['an unknown field', { type: 'event', event: 'x', filter: {} }, '(root)'],
  ])('refuses %s at its path', (_, input, path) => {
    expect(pathsOf(eventTriggerSchema, input)).toEqual([path]);
  });

  it('refuses a where nested too deep at the path of the too-deep part', () => {
    let where: unknown = { has_tag: 'x' };
    for (let i = 0; i < 8; i += 1) where = { not: where };
    expect(pathsOf(eventTriggerSchema, { type: 'event', event: 'x', where })).toEqual([
      'where.not.not.not.not.not.not.not.not',
    ]);
  });
});

describe('trigger: tag_added', () => {
  it('accepts a tag', () => {
    expect(accepted(tagAddedTriggerSchema, { type: 'tag_added', tag: 'lead' })).toEqual({
      type: 'tag_added',
      tag: 'lead',
    });
  });

  it.each([
    ['no tag', { type: 'tag_added' }, 'tag'],
    ['an empty tag', { type: 'tag_added', tag: '' }, 'tag'],
    ['a tag over 100 characters', { type: 'tag_added', tag: 't'.repeat(101) }, 'tag'],
  ])('refuses %s at its path', (_, input, path) => {
    expect(pathsOf(tagAddedTriggerSchema, input)).toEqual([path]);
  });
});

describe('step: wait_until', () => {
  const step = (config: unknown) => ({ id: 'morning', type: 'wait_until', config });

  it('accepts a time and defaults the zone to the contact', () => {
    expect(accepted(waitUntilStepSchema, step({ time: '09:00' }))).toEqual(
      step({ time: '09:00', timezone: 'contact' }),
    );
  });

  it('accepts days and an IANA zone', () => {
    const config = { time: '23:59', days: ['mon', 'fri'], timezone: 'America/New_York' };
    expect(accepted(waitUntilStepSchema, step(config))).toEqual(step(config));
  });

  it.each([
    ['"25:00"', { time: '25:00' }, 'config.time'],
    ['"24:00"', { time: '24:00' }, 'config.time'],
    ['a time without leading zero', { time: '9:00' }, 'config.time'],
    ['a time with seconds', { time: '09:00:00' }, 'config.time'],
    ['no time', {}, 'config.time'],
    ['empty days', { time: '09:00', days: [] }, 'config.days'],
    ['a day named twice', { time: '09:00', days: ['mon', 'mon'] }, 'config.days'],
    ['an unknown day', { time: '09:00', days: ['mon', 'monday'] }, 'config.days.1'],
    ['an unknown zone', { time: '09:00', timezone: 'Mars/Olympus_Mons' }, 'config.timezone'],
    ['an offset instead of a zone', { time: '09:00', timezone: '+05:30' }, 'config.timezone'],
    ['an empty zone', { time: '09:00', timezone: '' }, 'config.timezone'],
    ['an unknown field', { time: '09:00', at: 'noon' }, 'config'],
  ])('refuses %s at its path', (_, config, path) => {
    expect(pathsOf(waitUntilStepSchema, step(config))).toEqual([path]);
  });

  it('says what a time and a zone must look like', () => {
    expect(issuesOf(waitUntilStepSchema, step({ time: '25:00' }))[0]!.message).toMatch(/24-hour time "HH:MM"/);
    expect(issuesOf(waitUntilStepSchema, step({ time: '09:00', timezone: 'Nowhere' }))[0]!.message).toMatch(
      /"contact" or a valid IANA time zone/,
    );
    expect(issuesOf(waitUntilStepSchema, step({ time: '09:00', days: [] }))[0]!.message).toMatch(/at least one day/);
  });
});

describe('step: wait_for_event', () => {
  const step = (config: unknown, branches: unknown = { received: [email('thanks')], timeout: [email('remind')] }) => ({
    id: 'await_order',
    type: 'wait_for_event',
    config,
    branches,
  });

  it('accepts an event, a where, a timeout and both branches, with any step inside', () => {
    const inner = { id: 'vip', type: 'condition', config: { has_tag: 'VIP' }, branches: { true: [], false: [] } };
    const input = step(
      {
        event: 'order_placed',
        where: { field: 'payload.total', operator: 'greater_than', value: 50 },
        timeout: '3 days',
      },
      { received: [inner], timeout: [] },
    );
    expect(accepted(waitForEventStepSchema, input)).toEqual(input);
  });

  it.each([
    ['a timeout that is not a duration', step({ event: 'x', timeout: 'soon' }), 'config.timeout'],
    ['a zero timeout', step({ event: 'x', timeout: '0 days' }), 'config.timeout'],
    ['a timeout over a year', step({ event: 'x', timeout: '367 days' }), 'config.timeout'],
    ['no timeout', step({ event: 'x' }), 'config.timeout'],
    ['an event over the limit', step({ event: longName, timeout: '1 day' }), 'config.event'],
    [
      'a bad where',
      step({ event: 'x', timeout: '1 day', where: { field: '', operator: 'exists' } }),
      'config.where.field',
    ],
    ['no timeout branch', step({ event: 'x', timeout: '1 day' }, { received: [] }), 'branches.timeout'],
    ['an unknown branch', step({ event: 'x', timeout: '1 day' }, { received: [], timeout: [], late: [] }), 'branches'],
    [
      'a bad step inside a branch',
      step(
        { event: 'x', timeout: '1 day' },
        { received: [{ id: 'a', type: 'send_email', config: { body: 'b' } }], timeout: [] },
      ),
      'branches.received.0.config.subject',
    ],
  ])('refuses %s at its path', (_, input, path) => {
    expect(pathsOf(waitForEventStepSchema, input)).toEqual([path]);
  });

  it('says what a timeout must look like', () => {
    expect(issuesOf(waitForEventStepSchema, step({ event: 'x', timeout: 'soon' }))[0]!.message).toMatch(
      /positive duration such as "30 seconds"/,
    );
  });
});

describe('step: split', () => {
  const variants = [
    { id: 'a', weight: 50 },
    { id: 'b', weight: 50 },
  ];
  const step = (config: unknown, branches: unknown = { a: [email('one')], b: [email('two')] }) => ({
    id: 'ab',
    type: 'split',
    config,
    branches,
  });

  it('accepts variants with a branch each, and weight 0 beside a positive one', () => {
    expect(accepted(splitStepSchema, step({ variants }))).toEqual(step({ variants }));
    const zero = [
      { id: 'a', weight: 0 },
      { id: 'b', weight: 1 },
    ];
    expect(accepted(splitStepSchema, step({ variants: zero }))).toEqual(step({ variants: zero }));
  });

  it.each([
    ['a negative weight', step({ variants: [{ id: 'a', weight: -1 }, variants[1]] }), ['config.variants.0.weight']],
    ['a fractional weight', step({ variants: [{ id: 'a', weight: 0.5 }, variants[1]] }), ['config.variants.0.weight']],
    ['a weight as text', step({ variants: [{ id: 'a', weight: '50' }, variants[1]] }), ['config.variants.0.weight']],
    [
      'weights adding up to 0',
      step({
        variants: [
          { id: 'a', weight: 0 },
          { id: 'b', weight: 0 },
        ],
      }),
      ['config.variants'],
    ],
    ['a single variant', step({ variants: [variants[0]] }, { a: [] }), ['config.variants']],
    ['a variant without its branch', step({ variants }, { a: [] }), ['branches.b']],
    ['a branch without its variant', step({ variants }, { a: [], b: [], c: [] }), ['branches.c']],
    [
      'a repeated variant id',
      step({
        variants: [
          { id: 'a', weight: 1 },
          { id: 'a', weight: 1 },
        ],
      }),
      ['config.variants.1.id', 'branches.b'],
    ],
    [
      'a variant id that is not a name',
      step({ variants: [{ id: '1st', weight: 1 }, variants[1]] }, { '1st': [], b: [] }),
      ['config.variants.0.id'],
    ],
    [
      'a bad step in a variant branch',
      step({ variants }, { a: [{ id: 'x', type: 'wait', config: {} }], b: [] }),
      ['branches.a.0.config.duration'],
    ],
  ])('refuses %s at its path', (_, input, paths) => {
    expect(pathsOf(splitStepSchema, input)).toEqual(paths);
  });

  it('says what is wrong with the branches and weights', () => {
    expect(issuesOf(splitStepSchema, step({ variants }, { a: [] }))[0]!.message).toBe('variant "b" needs its branch');
    expect(issuesOf(splitStepSchema, step({ variants }, { a: [], b: [], c: [] }))[0]!.message).toBe(
      'no variant is named "c"',
    );
    expect(
      issuesOf(
        splitStepSchema,
        step({
          variants: [
            { id: 'a', weight: 0 },
            { id: 'b', weight: 0 },
          ],
        }),
      )[0]!.message,
    ).toBe('weights must add up to more than 0');
  });
});

describe('step: branch', () => {
  const cases = [
    { id: 'gold', when: { field: 'plan', operator: 'equals', value: 'gold' } },
    { id: 'big_cart', when: { field: 'payload.total', operator: 'greater_than', value: 100 } },
  ];
  const step = (config: unknown, branches: unknown = { gold: [email('g')], big_cart: [], default: [email('d')] }) => ({
    id: 'tier',
    type: 'branch',
    config,
    branches,
  });

  it('accepts cases with a branch each and a default', () => {
    expect(accepted(branchStepSchema, step({ cases }))).toEqual(step({ cases }));
  });

  it.each([
    ['no default branch', step({ cases }, { gold: [], big_cart: [] }), ['branches.default']],
    ['a case without its branch', step({ cases }, { gold: [], default: [] }), ['branches.big_cart']],
    [
      'a branch without its case',
      step({ cases }, { gold: [], big_cart: [], silver: [], default: [] }),
      ['branches.silver'],
    ],
    [
      'a case named default',
      step({ cases: [{ id: 'default', when: { has_tag: 'x' } }] }, { default: [] }),
      ['config.cases.0.id'],
    ],
    ['a case without when', step({ cases: [{ id: 'gold' }] }, { gold: [], default: [] }), ['config.cases.0.when']],
    [
      'a bad when',
      step({ cases: [{ id: 'gold', when: { has_tag: '' } }] }, { gold: [], default: [] }),
      ['config.cases.0.when.has_tag'],
    ],
    ['no cases', step({ cases: [] }, { default: [] }), ['config.cases']],
    [
      'a repeated case id',
      step({ cases: [cases[0], { ...cases[1], id: 'gold' }] }, { gold: [], default: [] }),
      ['config.cases.1.id'],
    ],
  ])('refuses %s at its path', (_, input, paths) => {
    expect(pathsOf(branchStepSchema, input)).toEqual(paths);
  });

  it('says that default is required', () => {
    expect(issuesOf(branchStepSchema, step({ cases }, { gold: [], big_cart: [] }))[0]!.message).toBe(
      'a branch step needs a "default" branch',
    );
  });
});

describe('workflow: send_window and exit', () => {
  it('accepts a window, also across midnight, with days and a zone', () => {
    expect(accepted(sendWindowSchema, { start: '09:00', end: '20:00' })).toEqual({
      start: '09:00',
      end: '20:00',
      timezone: 'contact',
    });
    const night = { start: '20:00', end: '08:00', days: ['sat', 'sun'], timezone: 'Europe/Berlin' };
    expect(accepted(sendWindowSchema, night)).toEqual(night);
  });

  it.each([
    ['a start of "24:00"', { start: '24:00', end: '08:00' }, 'start'],
    ['an end of "25:00"', { start: '09:00', end: '25:00' }, 'end'],
    ['no end', { start: '09:00' }, 'end'],
    ['the same start and end', { start: '09:00', end: '09:00' }, 'end'],
    ['an unknown zone', { start: '09:00', end: '20:00', timezone: 'Europe/Atlantis' }, 'timezone'],
    ['empty days', { start: '09:00', end: '20:00', days: [] }, 'days'],
  ])('refuses %s at its path', (_, input, path) => {
    expect(pathsOf(sendWindowSchema, input)).toEqual([path]);
  });

  it('accepts an exit event and refuses a missing or over-long one', () => {
    expect(accepted(workflowExitSchema, { event: 'unsubscribed' })).toEqual({ event: 'unsubscribed' });
    expect(pathsOf(workflowExitSchema, {})).toEqual(['event']);
    expect(pathsOf(workflowExitSchema, { event: longName })).toEqual(['event']);
  });
});

describe('transactional on message and webhook steps', () => {
  it.each([
    ['send_email', { subject: 'Receipt', body: 'Thanks', transactional: true }],
    ['send_sms', { body: 'Your code is 1234', transactional: true }],
    ['webhook', { url: 'https://hooks.example.com/a', method: 'POST', transactional: false }],
  ])('accepts it on %s', (type, config) => {
    const result = parseDefinition({ steps: [{ id: 's', type, config }] });
    expect(result.ok && result.definition.steps[0]).toEqual({ id: 's', type, config });
  });

  it('refuses a value that is not a boolean, and the field on other steps', () => {
    const notBoolean = parseDefinition({
      steps: [{ id: 's', type: 'send_sms', config: { body: 'b', transactional: 'yes' } }],
    });
    expect(!notBoolean.ok && notBoolean.issues.map((issue) => issue.path)).toEqual(['steps.0.config.transactional']);
    const onTag = parseDefinition({ steps: [{ id: 's', type: 'add_tag', config: { tag: 't', transactional: true } }] });
    expect(!onTag.ok && onTag.issues.map((issue) => issue.path)).toEqual(['steps.0.config']);
  });
});

describe('wired into definitions', () => {
  it.each([
    ['split', { id: 's', type: 'split', config: { variants: [] }, branches: {} }, 'steps.0.config.variants'],
    ['branch', { id: 'b', type: 'branch', config: { cases: [] }, branches: {} }, 'steps.0.config.cases'],
  ])('a %s step is a step type now: an empty one is refused at its config', (_, step, path) => {
    const result = parseDefinition({ steps: [step] });
    expect(!result.ok && result.issues.map((issue) => issue.path)).toContain(path);
  });

  it('accepts wait_until and wait_for_event steps, a tag_added trigger, a send_window and an exit', () => {
    const parsed = parseDefinition({
      trigger: { type: 'tag_added', tag: 'lead' },
      send_window: { start: '09:00', end: '20:00' },
      exit: { event: 'unsubscribed' },
      steps: [
        { id: 'w', type: 'wait_until', config: { time: '09:00' } },
        {
          id: 'e',
          type: 'wait_for_event',
          config: { event: 'x', timeout: '1 day' },
          branches: { received: [email('a')], timeout: [] },
        },
      ],
    });
    expect(parsed.ok).toBe(true);
  });

  it('refuses wait_for_event without its branches, at their path', () => {
    const result = parseDefinition({
      steps: [{ id: 'w', type: 'wait_for_event', config: { event: 'x', timeout: '1 day' }, branches: {} }],
    });
    expect(!result.ok && result.issues.map((issue) => issue.path).sort()).toEqual([
      'steps.0.branches.received',
      'steps.0.branches.timeout',
    ]);
  });
});
