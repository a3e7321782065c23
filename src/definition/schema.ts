import { z } from 'zod';
import { parseDuration } from './duration.ts';

/** Names the compiler uses for terminal states; a step may not take them. */
export const RESERVED_STEP_IDS = ['completed', 'failed', 'cancelled', 'goal_achieved'] as const;

const stepId = z
  .string()
  .regex(/^[A-Za-z][A-Za-z0-9_-]{0,63}$/, 'must start with a letter and contain only letters, digits, "_" or "-" (at most 64)')
  .refine((id) => !(RESERVED_STEP_IDS as readonly string[]).includes(id), 'is a reserved name');

const text = (max: number) => z.string().min(1).max(max);

const sendEmail = z.strictObject({
  id: stepId,
  type: z.literal('send_email'),
  config: z.strictObject({
    subject: text(500),
    body: text(50_000),
    /** Recipient; defaults to the contact's email. */
    to: z.string().email().optional(),
  }),
});

const sendSms = z.strictObject({
  id: stepId,
  type: z.literal('send_sms'),
  config: z.strictObject({ body: text(1_600) }),
});

const tagStep = <T extends 'add_tag' | 'remove_tag'>(type: T) =>
  z.strictObject({ id: stepId, type: z.literal(type), config: z.strictObject({ tag: text(100) }) });

const wait = z.strictObject({
  id: stepId,
  type: z.literal('wait'),
  config: z.strictObject({
    duration: z.string().refine((value) => parseDuration(value) !== null, {
      message: 'must be a positive duration such as "30 seconds", "2 hours" or "3 days" (at most 366 days)',
    }),
  }),
});

const webhook = z.strictObject({
  id: stepId,
  type: z.literal('webhook'),
  config: z.strictObject({
    url: z.string().url().refine((url) => /^https?:\/\//.test(url), 'must be an http(s) URL'),
    method: z.enum(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']).default('POST'),
    body: z.union([z.string(), z.record(z.string(), z.unknown())]).optional(),
  }),
});

/** Operators of attribute comparisons. */
export const OPERATORS = ['equals', 'not_equals', 'greater_than', 'less_than', 'exists', 'contains'] as const;
export type Operator = (typeof OPERATORS)[number];

const scalar = z.union([z.string(), z.number(), z.boolean()]);

/** `{ has_tag }` or `{ field, operator, value }`; `field` is a contact field or an attribute (`plan` or `attributes.plan`). */
export const conditionSchema = z.union([
  z.strictObject({ has_tag: text(100) }),
  z
    .strictObject({ field: text(200), operator: z.enum(OPERATORS), value: scalar.optional() })
    .refine((c) => c.operator === 'exists' || c.value !== undefined, { message: 'value is required for this operator', path: ['value'] }),
]);
export type Condition = z.infer<typeof conditionSchema>;

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
export type Step = ActionStep | WaitStep | ConditionStep;
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
  z.discriminatedUnion('type', [sendEmail, sendSms, tagStep('add_tag'), tagStep('remove_tag'), wait, webhook, conditionStep as never]),
);

/** Re-entry rule: whether a contact may be enrolled again in the same workflow. */
export const REENTRY = ['always', 'after_completion', 'never'] as const;

/** A workflow definition as designers write it (CONTRACT.md "Workflow definition"). */
export const definitionSchema = z
  .strictObject({
    trigger: z.strictObject({ type: z.enum(['manual', 'event']), event: text(100).optional() }).default({ type: 'manual' }),
    goal: z.strictObject({ event: text(100) }).optional(),
    reentry: z.enum(REENTRY).default('after_completion'),
    steps: z.array(stepSchema).min(1).max(500),
  })
  .superRefine((definition, ctx) => {
    const seen = new Map<string, string>();
    let count = 0;
    const visit = (steps: Step[], path: (string | number)[]) =>
      steps.forEach((step, index) => {
        count += 1;
        const here = [...path, index];
        const first = seen.get(step.id);
        if (first) ctx.addIssue({ code: 'custom', path: [...here, 'id'], message: `duplicate step id "${step.id}" (first used at ${first})` });
        else seen.set(step.id, here.join('.'));
        if (step.type === 'condition') {
          visit(step.branches.true, [...here, 'branches', 'true']);
          visit(step.branches.false, [...here, 'branches', 'false']);
        }
      });
    visit(definition.steps, ['steps']);
    if (count > 1_000) ctx.addIssue({ code: 'custom', path: ['steps'], message: `a workflow may have at most 1000 steps (has ${count})` });
  });

export type Definition = z.infer<typeof definitionSchema>;

/** One problem of an invalid definition, with the path of the offending field. */
export interface DefinitionIssue {
  path: string;
  message: string;
}

export type ParseDefinitionResult = { ok: true; definition: Definition } | { ok: false; issues: DefinitionIssue[] };

/** Validates an untrusted definition; on failure returns every problem with its path (e.g. `steps.2.config.duration`). */
export function parseDefinition(input: unknown): ParseDefinitionResult {
  const parsed = definitionSchema.safeParse(input);
  if (parsed.success) return { ok: true, definition: parsed.data };
  return { ok: false, issues: flattenIssues(parsed.error.issues) };
}

function flattenIssues(issues: z.core.$ZodIssue[]): DefinitionIssue[] {
  return issues.flatMap((issue) => {
    // A union failure hides the interesting problems one level down; surface those of the closest branch.
    if (issue.code === 'invalid_union' && issue.errors.length > 0) {
      const best = issue.errors.reduce((a, b) => (b.length < a.length ? b : a));
      return flattenIssues(best.map((inner) => ({ ...inner, path: [...issue.path, ...inner.path] })));
    }
    return [{ path: issue.path.map(String).join('.') || '(root)', message: issue.message }];
  });
}
