import { z } from 'zod';
import {
  conditionSchema,
  definitionSchema,
  eventTriggerSchema,
  sendWindowSchema,
  tagAddedTriggerSchema,
  waitForEventStepSchema,
  waitUntilStepSchema,
  workflowExitSchema,
} from '../definition/schema.ts';

// The workflow definition as the OpenAPI document shows it (`components.schemas.Definition`), generated
// from the zod schema that validates it, so a new field appears in /docs as soon as the schema accepts
// it. What JSON Schema cannot say (refinements such as "a valid IANA zone", "a duration") is said in the
// descriptions below, with the log event types each building block writes (CONTRACT.md "Journeys").

/** Name of the definition's schema under `components.schemas`. */
export const DEFINITION_COMPONENT = 'Definition';
/** Name of the condition's schema under `components.schemas`. */
export const CONDITION_COMPONENT = 'Condition';

const ref = (name: string) => `#/components/schemas/${name}`;

const TIMEZONE_TEXT =
  '"contact" (default: the contact\'s timezone, else the account\'s default_timezone, else UTC; an invalid contact zone falls back and wait_started says so in details.timezone_fallback) or an IANA name such as "Europe/Berlin"';

/** Descriptions of the journeys' building blocks, by the zod schema they document. */
const DESCRIPTIONS = new Map<unknown, string>([
  [
    eventTriggerSchema,
    "Entry by event: POST /contacts/{id}/events with this name enrolls the contact when `where` holds (it may read the event's properties as payload.<key>), with the guards of POST /trigger; the properties become the payload. Logs execution_started, or opt_out_blocked / deduplication_blocked.",
  ],
  [
    tagAddedTriggerSchema,
    'Entry by tag: the tag being added to a contact (POST /contacts/{id}/tags, or an add_tag step of another workflow) enrolls it, in the same commit as the tag.',
  ],
  [
    waitUntilStepSchema,
    'PAUSED until the next `time` (24 h, "HH:MM") on one of `days` (default every day) in `timezone`. A local time that does not exist runs at the first minute after it, an ambiguous one at its first occurrence. Logs wait_started (details.resume_at), then wait_completed.',
  ],
  [
    waitForEventStepSchema,
    'PAUSED until the contact has `event` (only events after the wait started; `where` may read payload.<key>), then the `received` branch (event_received), or, when `timeout` (a duration such as "3 days") passes first, the `timeout` branch (wait_timed_out). An event and a timeout that race take exactly one branch.',
  ],
  [
    sendWindowSchema,
    `Quiet hours: a send_email, send_sms or webhook step due outside [start, end) on \`days\` is PAUSED until the window opens (send_deferred with details.resume_at), then sent; end before start runs past midnight. timezone: ${TIMEZONE_TEXT}.`,
  ],
  [
    workflowExitSchema,
    "Exit event: the event ends the contact's running executions of this workflow: CANCELLED with completion_reason exit_event, exited logged, nothing more sent.",
  ],
]);

/** Descriptions of fields the schemas share, by property name. */
const FIELD_DESCRIPTIONS: Record<string, string> = {
  transactional:
    "true: the step ignores the workflow's send_window and frequency caps (receipts, password resets). Default false.",
  timezone: TIMEZONE_TEXT,
  duration: 'a duration such as "30 seconds", "2 hours" or "3 days" (at most 366 days)',
  timeout: 'a duration such as "30 seconds", "2 hours" or "3 days" (at most 366 days)',
  days: 'weekdays, each at most once: mon, tue, wed, thu, fri, sat, sun (default every day)',
};

/** Rewrites the local `#` and `#/$defs/<x>` references of a schema generated as `name` to components. */
function relocate(node: unknown, name: string, names: Record<string, string>): unknown {
  if (Array.isArray(node)) return node.map((item) => relocate(item, name, names));
  if (!node || typeof node !== 'object') return node;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === '$ref' && typeof value === 'string')
      out[key] =
        value === '#'
          ? ref(name)
          : value.startsWith('#/$defs/')
            ? ref(names[value.slice('#/$defs/'.length)] ?? value)
            : value;
    else out[key] = relocate(value, name, names);
  }
  return out;
}

/** Adds {@link FIELD_DESCRIPTIONS} to the properties of that name that have no description yet. */
function describeFields(node: unknown): void {
  if (Array.isArray(node)) for (const item of node) describeFields(item);
  if (!node || typeof node !== 'object') return;
  const properties = (node as { properties?: Record<string, Record<string, unknown>> }).properties;
  if (properties)
    for (const [key, property] of Object.entries(properties))
      if (FIELD_DESCRIPTIONS[key] && property && typeof property === 'object' && !property.description)
        property.description = FIELD_DESCRIPTIONS[key];
  for (const value of Object.values(node)) describeFields(value);
}

/**
 * `schema` as components: `name` itself and its `$defs` under the names `defNames` gives them in order
 * (zod numbers them); a root that only refers to a def named `name` becomes that def.
 */
function components(
  name: string,
  schema: z.ZodType,
  io: 'input' | 'output',
  description: string,
  defNames: readonly string[],
) {
  const generated = z.toJSONSchema(schema, {
    io,
    unrepresentable: 'any',
    target: 'draft-2020-12',
    override: (ctx) => {
      // A condition is validated as unknown piped into the condition union, so its input side says
      // nothing: point it at the Condition component instead.
      if (ctx.zodSchema === conditionSchema && schema !== conditionSchema) {
        for (const key of Object.keys(ctx.jsonSchema)) delete (ctx.jsonSchema as Record<string, unknown>)[key];
        ctx.jsonSchema.$ref = ref(CONDITION_COMPONENT);
      }
      const text = DESCRIPTIONS.get(ctx.zodSchema);
      if (text) ctx.jsonSchema.description = text;
    },
  }) as Record<string, unknown>;
  const names = Object.fromEntries(
    Object.keys((generated.$defs ?? {}) as object).map((key, index) => [key, defNames[index] ?? `${name}_${key}`]),
  );
  const { $schema: _schema, $defs, ...root } = relocate(generated, name, names) as Record<string, unknown>;
  const schemas: Record<string, Record<string, unknown>> = { [name]: root };
  for (const [key, value] of Object.entries(($defs ?? {}) as Record<string, Record<string, unknown>>))
    schemas[names[key]!] = value;
  describeFields(schemas);
  schemas[name] = { description, ...schemas[name] };
  return schemas;
}

/**
 * The `components.schemas` that document a workflow definition: `Definition` (trigger, goal, send_window,
 * exit, reentry, steps, with each step type) and `Condition`, each with the schemas they refer to.
 */
export function definitionComponents(): Record<string, unknown> {
  return {
    ...components(
      DEFINITION_COMPONENT,
      definitionSchema,
      'input',
      'A workflow definition (CONTRACT.md "Workflow definition" and "Journeys"). An invalid one is refused with 400 and the path of each problem. Step ids are unique in the workflow.',
      ['Step'],
    ),
    ...components(
      CONDITION_COMPONENT,
      conditionSchema,
      'output',
      'A condition: {has_tag}, {field, operator, value?} (field: a contact field, an attribute as plan or attributes.plan, or payload.<key> of the event at hand), or {all: [...]}, {any: [...]}, {not: ...}, nested at most 8 levels.',
      [CONDITION_COMPONENT],
    ),
  };
}

/** The JSON Schema that stands for a definition wherever a body or answer carries one. */
export const definitionReference = { $ref: ref(DEFINITION_COMPONENT) };
