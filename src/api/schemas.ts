import { z } from 'zod';
import { parseDuration } from '../definition/duration.ts';
import { frequencyCapsSetting } from '../definition/frequency-caps.ts';
import { isValidZone } from '../definition/local-time.ts';
import { MAX_BULK_ENROLL } from '../engine/trigger.ts';
import { EXECUTION_STATUSES } from '../engine/types.ts';
import { KEY_ROLES } from './context.ts';

/**
 * Request schemas of the REST API: the single source for validation and for the OpenAPI document.
 * Rule for unknown fields: request bodies are strict, an unknown field is refused with 400 and its path.
 */

export const uuidParam = z.string().uuid();

const email = z.string().trim().toLowerCase().email().max(320);
const phone = z.string().regex(/^\+?[0-9 ().-]{6,24}$/, 'must be a phone number such as +15551234567');
const tag = z
  .string()
  .trim()
  .min(1)
  .max(100)
  .refine((value) => !value.includes('\u0000'), 'must not contain NUL characters');
/** A JSON object of at most 16 KB: contact attributes, and what every execution of a trigger stores. */
const smallObject = (what: string) =>
  z
    .record(z.string().max(100), z.unknown())
    .refine((value) => JSON.stringify(value).length <= 16_384, `${what} may take at most 16 KB`);
const attributes = smallObject('attributes');
/**
 * A trigger's payload is stored with each execution it starts: bounded, so one bulk request of 1,000
 * contacts cannot write 1,000 copies of a 100 KB body.
 */
const payload = smallObject('payload');

export const createContactBody = z.strictObject({
  email,
  phone: phone.nullish(),
  opted_in: z.boolean(),
  tags: z.array(tag).max(100).optional(),
  timezone: z.string().min(1).max(64).nullish(),
  attributes: attributes.optional(),
});

export const updateContactBody = createContactBody.partial();

export const tagBody = z.strictObject({ tag });

export const contactEventBody = z.strictObject({
  name: z.string().trim().min(1).max(100),
  properties: smallObject('properties').optional(),
});

export const WORKFLOW_STATUSES = ['draft', 'active', 'paused'] as const;

export const createWorkflowBody = z.strictObject({
  name: z.string().trim().min(1).max(200),
  definition: z.unknown().refine((value) => value !== undefined, 'definition is required'),
  status: z.enum(WORKFLOW_STATUSES).optional(),
});

/** `POST /workflows/validate`: a definition to check without storing it. */
export const validateDefinitionBody = z.strictObject({
  definition: z.unknown().refine((value) => value !== undefined, 'definition is required'),
});

export const updateDefinitionBody = z.strictObject({
  definition: z.unknown().refine((value) => value !== undefined, 'definition is required'),
  /** Whether running executions of older versions stay on them (`keep`) or move to the new one. */
  in_flight: z.enum(['keep', 'move']).optional(),
  /** Only answer what `in_flight` would do; create nothing. */
  dry_run: z.boolean().optional(),
});

export const triggerBody = z.strictObject({
  contact_id: uuidParam,
  payload: payload.optional(),
});

export const bulkEnrollBody = z.strictObject({
  contact_ids: z.array(uuidParam).min(1).max(MAX_BULK_ENROLL),
  payload: payload.optional(),
});

const page = z.coerce.number().int().min(1).max(1_000_000).default(1);
const limit = z.coerce.number().int().min(1).max(100);
/** A strict ISO 8601 date (`2026-01-01`) or date-time with offset. */
const isoDate = z.union([z.iso.date(), z.iso.datetime({ offset: true })]).transform((value) => new Date(value));

/** A step id as definitions allow it; used to filter executions by the step they are at. */
const stepIdFilter = z.string().trim().min(1).max(100);

/** Most events one dry run may inject (`POST /workflows/{id}/test`). */
export const MAX_TEST_EVENTS = 50;

/** An offset such as `"10 minutes"` (zero allowed: `"0 seconds"`), in milliseconds. */
const offset = z
  .string()
  .max(40)
  .transform((text, context) => {
    const zero = /^\s*0+\s*([a-z]+)\s*$/i.exec(text);
    const ms = zero ? (parseDuration(`1 ${zero[1]}`) === null ? null : 0) : parseDuration(text);
    if (ms === null) {
      context.addIssue({ code: 'custom', message: 'must be a duration such as "10 minutes", "2 hours" or "3 days"' });
      return z.NEVER;
    }
    return ms;
  });

/** A hypothetical contact of a dry run: what conditions, waits and messages read of it. */
const testContact = z.strictObject({
  email: email.optional(),
  phone: phone.nullish(),
  opted_in: z.boolean().optional(),
  tags: z.array(tag).max(100).optional(),
  timezone: z.string().min(1).max(64).nullish(),
  attributes: attributes.optional(),
});

export const testWorkflowBody = z
  .strictObject({
    contact: testContact.optional(),
    contact_id: uuidParam.optional(),
    payload: payload.optional(),
    events: z
      .array(
        z.strictObject({
          name: z.string().trim().min(1).max(100),
          after: offset,
          properties: smallObject('properties').optional(),
        }),
      )
      .max(MAX_TEST_EVENTS)
      .optional(),
    start_at: isoDate.optional(),
  })
  .refine((body) => (body.contact === undefined) !== (body.contact_id === undefined), {
    path: ['contact'],
    message: 'give either contact or contact_id',
  });

export const listExecutionsQuery = z.strictObject({
  status: z.enum(EXECUTION_STATUSES).optional(),
  from: isoDate.optional(),
  to: isoDate.optional(),
  /** Only executions at this step now (the state their snapshot is in). */
  step_id: stepIdFilter.optional(),
  page,
  limit: limit.default(20),
});

export const listWorkflowsQuery = z.strictObject({
  status: z.enum(WORKFLOW_STATUSES).optional(),
  page,
  limit: limit.default(20),
});

/** A version number of a workflow (1, 2, …). */
const versionNumber = z.coerce.number().int().min(1).max(1_000_000);

/** `{version}` of `/workflows/{id}/versions/{version}`. */
export const versionParam = versionNumber;

export const statsQuery = z.strictObject({ version: versionNumber.optional() });

/**
 * Which executions of a workflow a bulk cancel or retry takes: all filters combine (AND). Cancel only
 * ever changes running ones, retry only FAILED ones; `dry_run` counts them and changes nothing.
 */
export const bulkControlBody = z.strictObject({
  status: z.enum(EXECUTION_STATUSES).optional(),
  step_id: stepIdFilter.optional(),
  version: z.number().int().min(1).max(1_000_000).optional(),
  from: isoDate.optional(),
  to: isoDate.optional(),
  dry_run: z.boolean().optional(),
});

export const logsQuery = z.strictObject({ page, limit: limit.default(10) });

export const accountSettingsBody = z
  .strictObject({
    concurrent_executions_per_account: z.number().int().min(1).max(100_000),
    max_retry_attempts: z.number().int().min(0).max(20),
    retry_base_delay_seconds: z.number().int().min(1).max(86_400),
    error_notification: z.boolean(),
    admin_email: email,
    /** The zone of `wait_until` and send windows for contacts without a valid zone of their own. */
    default_timezone: z
      .string()
      .max(64)
      .refine(isValidZone, 'must be a valid IANA time zone name such as "Europe/Berlin" or "UTC"'),
    /** At most `max` emails (or SMS) per contact in any `per`, across all workflows; `[]` removes every cap. */
    frequency_caps: frequencyCapsSetting,
  })
  .partial();

export const createApiKeyBody = z.strictObject({
  name: z.string().trim().min(1).max(100).optional(),
  /** `admin` (default) or `member`: members cannot manage keys or account settings. */
  role: z.enum(KEY_ROLES).optional(),
});
