import { z } from 'zod';
import { webhookUrlRefusal } from './address-guard.ts';
import { parseDuration } from './duration.ts';
import { isValidZone, LOCAL_TIME_PATTERN, WEEKDAYS, type Weekday } from './local-time.ts';
import { classifyBody, inspectJsonTemplate, placeholdersOf, TEMPLATE_LIMITS, type BodyTemplate } from './template.ts';

/** Names the compiler uses for terminal states; a step may not take them. */
export const RESERVED_STEP_IDS = ['completed', 'failed', 'cancelled', 'goal_achieved'] as const;

const stepId = z
  .string()
  .regex(
    /^[A-Za-z][A-Za-z0-9_-]{0,63}$/,
    'must start with a letter and contain only letters, digits, "_" or "-" (at most 64)',
  )
  .refine((id) => !(RESERVED_STEP_IDS as readonly string[]).includes(id), 'is a reserved name');

const text = (max: number) => z.string().min(1).max(max);

const tooManyPlaceholders = `may hold at most ${TEMPLATE_LIMITS.placeholders} placeholders`;
/** Text with placeholders: at most `max` characters and `TEMPLATE_LIMITS.placeholders` placeholders. */
const template = (max: number) =>
  text(max).refine((value) => placeholdersOf(value).length <= TEMPLATE_LIMITS.placeholders, tooManyPlaceholders);

/** Longest webhook string body, in characters. */
export const MAX_WEBHOOK_TEXT_BODY = 50_000;
/** Largest webhook object body, in bytes of its JSON (UTF-8). */
export const MAX_WEBHOOK_JSON_BODY_BYTES = 50_000;

/** Static limits of a webhook body: size, nesting of a JSON body, placeholders (what data adds is checked at send time). */
function checkWebhookBody(body: BodyTemplate, ctx: z.RefinementCtx) {
  if (typeof body === 'string' && body.length > MAX_WEBHOOK_TEXT_BODY) {
    ctx.addIssue({ code: 'custom', message: `a string body may have at most ${MAX_WEBHOOK_TEXT_BODY} characters` });
    return;
  }
  if (typeof body !== 'string' && Buffer.byteLength(JSON.stringify(body)) > MAX_WEBHOOK_JSON_BODY_BYTES) {
    ctx.addIssue({ code: 'custom', message: `a JSON body may take at most ${MAX_WEBHOOK_JSON_BODY_BYTES} bytes` });
    return;
  }
  const shape = classifyBody(body);
  const { placeholders, depth } =
    shape.kind === 'json'
      ? inspectJsonTemplate(shape.tree)
      : { placeholders: placeholdersOf(shape.template), depth: 0 };
  if (depth > TEMPLATE_LIMITS.bodyDepth)
    ctx.addIssue({
      code: 'custom',
      message: `a JSON body may be nested at most ${TEMPLATE_LIMITS.bodyDepth} levels deep`,
    });
  if (placeholders.length > TEMPLATE_LIMITS.placeholders)
    ctx.addIssue({ code: 'custom', message: tooManyPlaceholders });
}

/**
 * `transactional: true` on a message or webhook step: the step ignores send windows and frequency caps
 * (receipts, password resets), CONTRACT.md "Waiting for time and for people".
 * @defaultValue false
 */
const transactional = z.boolean().optional();

const sendEmail = z.strictObject({
  id: stepId,
  type: z.literal('send_email'),
  config: z.strictObject({
    subject: template(500),
    body: template(50_000),
    /** Recipient; defaults to the contact's email. */
    to: z.string().email().optional(),
    transactional,
  }),
});

const sendSms = z.strictObject({
  id: stepId,
  type: z.literal('send_sms'),
  config: z.strictObject({ body: template(1_600), transactional }),
});

const tagStep = <T extends 'add_tag' | 'remove_tag'>(type: T) =>
  z.strictObject({ id: stepId, type: z.literal(type), config: z.strictObject({ tag: text(100) }) });

/** A duration as `wait` and `wait_for_event` take it. */
const duration = z.string().refine((value) => parseDuration(value) !== null, {
  message: 'must be a positive duration such as "30 seconds", "2 hours" or "3 days" (at most 366 days)',
});

const wait = z.strictObject({
  id: stepId,
  type: z.literal('wait'),
  config: z.strictObject({ duration }),
});

/** Attribute names `save_response` may write: a template or condition can read each of them back. */
const SAVED_ATTRIBUTE = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
/** Keys that name an object's prototype rather than data. */
const PROTOTYPE_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
/** Names the templates' scope gives another meaning (the contact's fields, the payload), and prototype keys. */
const RESERVED_ATTRIBUTES = new Set(['email', 'phone', 'payload', ...PROTOTYPE_KEYS]);
/** A dotted path into the answer: `data.id`, `items.0.sku`. */
const DOTTED_PATH = /^[A-Za-z0-9_-]{1,64}(\.[A-Za-z0-9_-]{1,64}){0,15}$/;
/** Most attributes one webhook step saves. */
export const MAX_SAVED_ATTRIBUTES = 20;

/**
 * `save_response` of a webhook: `{"<attribute>": "<dotted.path>"}`; on a 2xx JSON answer each path's
 * value is saved to the contact's attribute in the step's own commit (CONTRACT.md "Journeys", Data).
 */
const saveResponse = z
  .record(
    z
      .string()
      .regex(SAVED_ATTRIBUTE, 'must be an attribute name: a letter or _ then letters, digits or _ (at most 64)')
      .refine((name) => !RESERVED_ATTRIBUTES.has(name), 'is reserved (email, phone and payload are not attributes)'),
    z
      .string()
      .regex(DOTTED_PATH, 'must be a dotted path into the answer such as "data.id" or "items.0.sku"')
      .refine((path) => !path.split('.').some((key) => PROTOTYPE_KEYS.has(key)), 'must not name a prototype key'),
  )
  .refine((map) => Object.keys(map).length >= 1, 'must name at least one attribute')
  .refine(
    (map) => Object.keys(map).length <= MAX_SAVED_ATTRIBUTES,
    `must name at most ${MAX_SAVED_ATTRIBUTES} attributes`,
  );

const webhook = z.strictObject({
  id: stepId,
  type: z.literal('webhook'),
  config: z.strictObject({
    url: z
      .string()
      .url()
      .refine((url) => /^https?:\/\//.test(url), 'must be an http(s) URL'),
    method: z.enum(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']).default('POST'),
    /** Templated: a string (JSON or plain text) or a JSON object whose string values are templates. */
    body: z
      .union([z.string(), z.record(z.string(), z.unknown())])
      .superRefine(checkWebhookBody)
      .optional(),
    transactional,
    save_response: saveResponse.optional(),
  }),
});

/** Operators of field comparisons. */
export const OPERATORS = ['equals', 'not_equals', 'greater_than', 'less_than', 'exists', 'contains'] as const;
export type Operator = (typeof OPERATORS)[number];

const scalar = z.union([z.string(), z.number(), z.boolean()]);

/** `{ has_tag }`: the contact has the tag. */
export interface HasTagCondition {
  has_tag: string;
}
/**
 * `{ field, operator, value? }`: `field` is a contact field (`email`, `opted_in`, …), an attribute
 * (`plan` or `attributes.plan`) or, where an event is at hand, one of its properties (`payload.<key>`).
 */
export interface ComparisonCondition {
  field: string;
  operator: Operator;
  value?: string | number | boolean;
}
/** `{ all: [...] }`: every condition holds. */
export interface AllCondition {
  all: Condition[];
}
/** `{ any: [...] }`: at least one condition holds. */
export interface AnyCondition {
  any: Condition[];
}
/** `{ not: <condition> }`: the condition does not hold. */
export interface NotCondition {
  not: Condition;
}
/** A condition of a `condition` step, a trigger's or wait's `where`, or a `branch` case. */
export type Condition = HasTagCondition | ComparisonCondition | AllCondition | AnyCondition | NotCondition;

/** Deepest nesting of `all`/`any`/`not` in one condition; a plain condition is level 1. */
export const MAX_CONDITION_DEPTH = 8;
/** Most conditions one `all` or `any` may list. */
export const MAX_CONDITION_ITEMS = 50;

const hasTagCondition = z.strictObject({ has_tag: text(100) });
const comparisonCondition = z
  .strictObject({ field: text(200), operator: z.enum(OPERATORS), value: scalar.optional() })
  .refine((c) => c.operator === 'exists' || c.value !== undefined, {
    message: 'value is required for this operator',
    path: ['value'],
  });
const conditionList = () => z.array(nestedCondition).min(1).max(MAX_CONDITION_ITEMS);

// Recursive without a depth of its own: conditionSchema measures the depth first, iteratively, so an
// over-deep condition is refused with its path before this recursion could overflow the stack.
const nestedCondition: z.ZodType<Condition> = z.lazy(() =>
  z.union([
    hasTagCondition,
    comparisonCondition,
    z.strictObject({ all: conditionList() }),
    z.strictObject({ any: conditionList() }),
    z.strictObject({ not: nestedCondition }),
  ]),
);

/** The path of the first node of `input` nested deeper than {@link MAX_CONDITION_DEPTH}, if any. */
function overDeepConditionPath(input: unknown): (string | number)[] | null {
  const stack: { node: unknown; path: (string | number)[]; depth: number }[] = [{ node: input, path: [], depth: 1 }];
  while (stack.length > 0) {
    const { node, path, depth } = stack.pop()!;
    if (!node || typeof node !== 'object') continue;
    if (depth > MAX_CONDITION_DEPTH) return path;
    const { all, any, not } = node as { all?: unknown; any?: unknown; not?: unknown };
    if (not !== undefined) stack.push({ node: not, path: [...path, 'not'], depth: depth + 1 });
    for (const [key, list] of [
      ['any', any],
      ['all', all],
    ] as const)
      if (Array.isArray(list))
        for (let i = list.length - 1; i >= 0; i -= 1)
          stack.push({ node: list[i], path: [...path, key, i], depth: depth + 1 });
  }
  return null;
}

/**
 * A condition (CONTRACT.md "Branching"): `{ has_tag }`, `{ field, operator, value? }`, or
 * `{ all: [...] }`, `{ any: [...] }`, `{ not: ... }` nested at most {@link MAX_CONDITION_DEPTH} levels.
 */
export const conditionSchema = z
  .unknown()
  .superRefine((input, ctx) => {
    const path = overDeepConditionPath(input);
    if (path)
      ctx.addIssue({
        code: 'custom',
        path,
        message: `conditions may combine all/any/not at most ${MAX_CONDITION_DEPTH} levels deep`,
      });
  })
  .pipe(nestedCondition);

/** Action steps: those with an effect on the outside world or on the contact. */
export type ActionStep =
  | z.infer<typeof sendEmail>
  | z.infer<typeof sendSms>
  | z.infer<ReturnType<typeof tagStep<'add_tag'>>>
  | z.infer<ReturnType<typeof tagStep<'remove_tag'>>>
  | z.infer<typeof webhook>;
export type WaitStep = z.infer<typeof wait>;
export interface ConditionStep {
  id: string;
  type: 'condition';
  config: Condition;
  branches: { true: Step[]; false: Step[] };
}
/** One step of a workflow definition. */
export type Step = ActionStep | WaitStep | ConditionStep | WaitUntilStep | WaitForEventStep | SplitStep | BranchStep;
export type StepType = Step['type'];

const conditionStep: z.ZodType<ConditionStep> = z.lazy(() =>
  z.strictObject({
    id: stepId,
    type: z.literal('condition'),
    config: conditionSchema,
    branches: z.strictObject({ true: z.array(stepSchema).max(500), false: z.array(stepSchema).max(500) }),
  }),
);

export const stepSchema: z.ZodType<Step> = z.lazy(() =>
  z.discriminatedUnion('type', [
    sendEmail,
    sendSms,
    tagStep('add_tag'),
    tagStep('remove_tag'),
    wait,
    webhook,
    conditionStep as never,
    waitUntilStepSchema as never,
    waitForEventStepSchema as never,
    splitStepSchema as never,
    branchStepSchema as never,
  ]),
);

// --- Journeys (CONTRACT.md "Journeys"): entry by event and tag, waits for time and people, splits,
// branches, send windows and exit events. Every step type here is a member of `stepSchema`, and each
// has its compiler case (compile.ts) and its decision case (engine/decide-step.ts).

/** Longest event name, as `POST /contacts/{id}/events` accepts it. */
export const MAX_EVENT_NAME = 100;
const eventName = text(MAX_EVENT_NAME);

/** `HH:MM` on a 24-hour clock. */
const localTime = z
  .string()
  .regex(LOCAL_TIME_PATTERN, 'must be a 24-hour time "HH:MM" from "00:00" to "23:59", such as "09:00"');

/** Days of the week: a non-empty subset of mon..sun, each at most once. */
const weekdays = z
  .array(z.enum(WEEKDAYS))
  .min(1, 'must name at least one day')
  .refine((days) => new Set(days).size === days.length, 'must not name a day twice');

/** `"contact"`: the contact's own zone (then the account's default, then UTC); else an IANA zone. */
const timezoneChoice = z
  .string()
  .refine(
    (value) => value === 'contact' || isValidZone(value),
    'must be "contact" or a valid IANA time zone name such as "Europe/Berlin"',
  )
  .default('contact');

/** Ids of split variants and branch cases: the keys of the step's `branches`. */
const branchKey = z
  .string()
  .regex(
    /^[A-Za-z][A-Za-z0-9_-]{0,63}$/,
    'must start with a letter and contain only letters, digits, "_" or "-" (at most 64)',
  );
const branchList = () => z.array(stepSchema).max(500);

/**
 * Checks that `branches` has exactly one branch per key of `wanted` (variant or case ids, and
 * `default` for a `branch` step), reporting each missing or unknown branch at its path.
 */
function checkBranchKeys(
  branches: Record<string, unknown>,
  wanted: readonly string[],
  noun: 'variant' | 'case',
  ctx: z.RefinementCtx,
) {
  for (const key of wanted)
    if (!Object.hasOwn(branches, key))
      ctx.addIssue({
        code: 'custom',
        path: ['branches', key],
        message:
          key === DEFAULT_BRANCH ? 'a branch step needs a "default" branch' : `${noun} "${key}" needs its branch`,
      });
  for (const key of Object.keys(branches))
    if (!wanted.includes(key))
      ctx.addIssue({ code: 'custom', path: ['branches', key], message: `no ${noun} is named "${key}"` });
}

/** Checks that every item of `items` has a different `id`, reporting each repeat at its path. */
function checkUniqueIds(items: readonly { id: string }[], path: (string | number)[], ctx: z.RefinementCtx) {
  const seen = new Map<string, number>();
  items.forEach(({ id }, index) => {
    const first = seen.get(id);
    if (first === undefined) seen.set(id, index);
    else
      ctx.addIssue({
        code: 'custom',
        path: [...path, index, 'id'],
        message: `duplicate id "${id}" (first used at ${[...path, first].join('.')})`,
      });
  });
}

/** `{ type: "event", event, where? }`: `POST /contacts/{id}/events` with that name enrolls the contact. */
export const eventTriggerSchema = z.strictObject({
  type: z.literal('event'),
  event: eventName,
  /** Over the contact and the event's properties as `payload.<key>`. */
  where: conditionSchema.optional(),
});
export type EventTrigger = z.infer<typeof eventTriggerSchema>;

/** `{ type: "tag_added", tag }`: the tag being added to a contact (API or an `add_tag` step) enrolls it. */
export const tagAddedTriggerSchema = z.strictObject({ type: z.literal('tag_added'), tag: text(100) });
export type TagAddedTrigger = z.infer<typeof tagAddedTriggerSchema>;

/** `wait_until`: PAUSED until `time` local on one of `days` in `timezone`. */
export interface WaitUntilStep {
  id: string;
  type: 'wait_until';
  config: { time: string; days?: Weekday[]; timezone: string };
}
export const waitUntilStepSchema: z.ZodType<WaitUntilStep> = z.strictObject({
  id: stepId,
  type: z.literal('wait_until'),
  config: z.strictObject({ time: localTime, days: weekdays.optional(), timezone: timezoneChoice }),
});

/** `wait_for_event`: PAUSED until the contact has `event` (matching `where`) or `timeout` passes. */
export interface WaitForEventStep {
  id: string;
  type: 'wait_for_event';
  config: { event: string; where?: Condition; timeout: string };
  branches: { received: Step[]; timeout: Step[] };
}
export const waitForEventStepSchema: z.ZodType<WaitForEventStep> = z.lazy(() =>
  z.strictObject({
    id: stepId,
    type: z.literal('wait_for_event'),
    config: z.strictObject({ event: eventName, where: conditionSchema.optional(), timeout: duration }),
    branches: z.strictObject({ received: branchList(), timeout: branchList() }),
  }),
);

/** Largest weight of one split variant (keeps every sum an exact integer). */
export const MAX_SPLIT_WEIGHT = 1_000_000;
/** Most variants of one split. */
export const MAX_SPLIT_VARIANTS = 20;

/** `split`: a sticky random variant by weight (split.ts), one branch per variant. */
export interface SplitStep {
  id: string;
  type: 'split';
  config: { variants: { id: string; weight: number }[] };
  branches: Record<string, Step[]>;
}
export const splitStepSchema: z.ZodType<SplitStep> = z.lazy(() =>
  z
    .strictObject({
      id: stepId,
      type: z.literal('split'),
      config: z.strictObject({
        variants: z
          .array(z.strictObject({ id: branchKey, weight: z.number().int().min(0).max(MAX_SPLIT_WEIGHT) }))
          .min(2, 'a split needs at least two variants')
          .max(MAX_SPLIT_VARIANTS),
      }),
      branches: z.record(z.string(), branchList()),
    })
    .superRefine((step, ctx) => {
      const { variants } = step.config;
      checkUniqueIds(variants, ['config', 'variants'], ctx);
      if (variants.reduce((sum, { weight }) => sum + weight, 0) === 0)
        ctx.addIssue({ code: 'custom', path: ['config', 'variants'], message: 'weights must add up to more than 0' });
      checkBranchKeys(
        step.branches,
        variants.map(({ id }) => id),
        'variant',
        ctx,
      );
    }),
);

/** The branch a `branch` step takes when no case holds. */
export const DEFAULT_BRANCH = 'default';
/** Most cases of one `branch` step. */
export const MAX_BRANCH_CASES = 50;

/** `branch`: the first case whose `when` holds, else `default`. */
export interface BranchStep {
  id: string;
  type: 'branch';
  config: { cases: { id: string; when: Condition }[] };
  branches: Record<string, Step[]>;
}
export const branchStepSchema: z.ZodType<BranchStep> = z.lazy(() =>
  z
    .strictObject({
      id: stepId,
      type: z.literal('branch'),
      config: z.strictObject({
        cases: z
          .array(
            z.strictObject({
              id: branchKey.refine((id) => id !== DEFAULT_BRANCH, `"${DEFAULT_BRANCH}" is the branch of no case`),
              when: conditionSchema,
            }),
          )
          .min(1, 'must have at least one case')
          .max(MAX_BRANCH_CASES),
      }),
      branches: z.record(z.string(), branchList()),
    })
    .superRefine((step, ctx) => {
      checkUniqueIds(step.config.cases, ['config', 'cases'], ctx);
      checkBranchKeys(step.branches, [...step.config.cases.map(({ id }) => id), DEFAULT_BRANCH], 'case', ctx);
    }),
);

/** Workflow-level `send_window`: messages and webhooks due outside it wait until it opens (send-window.ts). */
export const sendWindowSchema = z
  .strictObject({ start: localTime, end: localTime, days: weekdays.optional(), timezone: timezoneChoice })
  .refine((window) => window.start !== window.end, {
    path: ['end'],
    message: 'must differ from start (leave send_window out to send at any time)',
  });
export type SendWindow = z.infer<typeof sendWindowSchema>;

/** Workflow-level `exit`: the event ends the contact's running executions of the workflow. */
export const workflowExitSchema = z.strictObject({ event: eventName });
export type WorkflowExit = z.infer<typeof workflowExitSchema>;

/** Re-entry rule: whether a contact may be enrolled again in the same workflow. */
export const REENTRY = ['always', 'after_completion', 'never'] as const;

/** A workflow definition as designers write it (CONTRACT.md "Workflow definition"). */
export const definitionSchema = z.strictObject({
  trigger: z
    .discriminatedUnion('type', [
      z.strictObject({ type: z.literal('manual') }),
      eventTriggerSchema,
      tagAddedTriggerSchema,
    ])
    .default({ type: 'manual' }),
  goal: z.strictObject({ event: text(100) }).optional(),
  /** Quiet hours: messages and webhooks due outside the window wait until it opens. */
  send_window: sendWindowSchema.optional(),
  /** An event that ends the contact's running executions of the workflow. */
  exit: workflowExitSchema.optional(),
  reentry: z.enum(REENTRY).default('after_completion'),
  steps: z.array(stepSchema).min(1).max(500),
});

export type Definition = z.infer<typeof definitionSchema>;

/** One problem of an invalid definition, with the path of the offending field. */
export interface DefinitionIssue {
  path: string;
  message: string;
}

export type ParseDefinitionResult = { ok: true; definition: Definition } | { ok: false; issues: DefinitionIssue[] };

/** Deepest nesting of conditions a definition may have. */
export const MAX_DEPTH = 32;
/** Most steps a definition may have, branches included. */
export const MAX_STEPS = 1_000;

/** Options of {@link parseDefinition}. */
export interface ParseDefinitionOptions {
  /**
   * When set, webhook URLs whose host names a non-public address literally (or `localhost`, or a cloud
   * metadata name) are refused unless the host or `host:port` is in this list (`WEBHOOK_ALLOWED_HOSTS`,
   * normalised). Set it for definitions a caller submits; leave it unset to re-read stored definitions,
   * whose webhooks are checked again when they are sent.
   * @defaultValue unset: webhook hosts are not checked
   */
  webhookAllowedHosts?: readonly string[];
}

/**
 * Validates an untrusted definition; on failure returns every problem with its path (e.g.
 * `steps.2.config.duration`). Whole-definition rules (unique step ids, nesting depth, step count) are
 * checked on the raw input, so they are reported alongside field errors, and over-deep input never
 * reaches the recursive schema.
 */
export function parseDefinition(input: unknown, options: ParseDefinitionOptions = {}): ParseDefinitionResult {
  const structural = structuralIssues(input);
  if (structural.some((issue) => issue.message.startsWith('conditions may be nested')))
    return { ok: false, issues: structural };
  if (options.webhookAllowedHosts) structural.push(...webhookAddressIssues(input, options.webhookAllowedHosts));
  const parsed = definitionSchema.safeParse(input);
  if (parsed.success && structural.length === 0) return { ok: true, definition: parsed.data };
  return { ok: false, issues: [...(parsed.success ? [] : toDefinitionIssues(parsed.error.issues)), ...structural] };
}

/**
 * The branches of a raw step (`true`/`false`, `received`/`timeout`, variant or case ids), last first:
 * pushed onto a stack in this order, they are visited in document order.
 */
function branchesOf(branches: unknown): [string, unknown[]][] {
  if (!branches || typeof branches !== 'object' || Array.isArray(branches)) return [];
  return Object.entries(branches)
    .filter((entry): entry is [string, unknown[]] => Array.isArray(entry[1]))
    .reverse();
}

/** Unique step ids, nesting depth and step count, read from the raw input without recursion. */
function structuralIssues(input: unknown): DefinitionIssue[] {
  const issues: DefinitionIssue[] = [];
  const steps = (input as { steps?: unknown } | null)?.steps;
  if (!Array.isArray(steps)) return issues;
  const seen = new Map<string, string>();
  // Depth-first in document order, with an explicit stack: "first used at" is the earlier step.
  const stack = steps.map((step, index) => ({ step, path: `steps.${index}`, depth: 0 })).reverse();
  let count = 0;
  while (stack.length > 0) {
    const { step, path, depth } = stack.pop()!;
    if (depth > MAX_DEPTH) {
      issues.push({ path, message: `conditions may be nested at most ${MAX_DEPTH} deep` });
      break;
    }
    count += 1;
    if (!step || typeof step !== 'object') continue;
    const { id, branches } = step as { id?: unknown; branches?: unknown };
    if (typeof id === 'string') {
      const first = seen.get(id);
      if (first) issues.push({ path: `${path}.id`, message: `duplicate step id "${id}" (first used at ${first})` });
      else seen.set(id, path);
    }
    for (const [side, branch] of branchesOf(branches))
      for (let i = branch.length - 1; i >= 0; i -= 1)
        stack.push({ step: branch[i], path: `${path}.branches.${side}.${i}`, depth: depth + 1 });
  }
  if (count > MAX_STEPS)
    issues.push({ path: 'steps', message: `a workflow may have at most ${MAX_STEPS} steps (has ${count})` });
  return issues;
}

/** Webhook URLs that name a non-public address literally (address-guard.ts), read from the raw input. */
function webhookAddressIssues(input: unknown, allowedHosts: readonly string[]): DefinitionIssue[] {
  const issues: DefinitionIssue[] = [];
  const steps = (input as { steps?: unknown } | null)?.steps;
  if (!Array.isArray(steps)) return issues;
  // Called after structuralIssues has refused over-deep input, so the stack stays bounded.
  const stack = steps.map((step, index) => ({ step, path: `steps.${index}` })).reverse();
  while (stack.length > 0) {
    const { step, path } = stack.pop()!;
    if (!step || typeof step !== 'object') continue;
    const { type, config, branches } = step as { type?: unknown; config?: { url?: unknown }; branches?: unknown };
    if (type === 'webhook' && typeof config?.url === 'string') {
      const refusal = webhookUrlRefusal(config.url, allowedHosts);
      if (refusal) issues.push({ path: `${path}.config.url`, message: refusal });
    }
    for (const [side, branch] of branchesOf(branches))
      for (let i = branch.length - 1; i >= 0; i -= 1)
        stack.push({ step: branch[i], path: `${path}.branches.${side}.${i}` });
  }
  return issues;
}

/**
 * zod's issues as definition issues (`path` dotted, `(root)` for the whole input). A union failure is
 * reported by the problems of its closest member, not as "invalid input".
 */
export function toDefinitionIssues(issues: z.core.$ZodIssue[]): DefinitionIssue[] {
  return issues.flatMap((issue) => {
    // A union failure hides the interesting problems one level down; surface those of the closest branch.
    if (issue.code === 'invalid_union' && issue.errors.length > 0) {
      const best = issue.errors.reduce((a, b) => (b.length < a.length ? b : a));
      return toDefinitionIssues(best.map((inner) => ({ ...inner, path: [...issue.path, ...inner.path] })));
    }
    return [{ path: issue.path.map(String).join('.') || '(root)', message: issue.message }];
  });
}
