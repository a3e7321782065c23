import { z } from 'zod';
import { EXECUTION_STATUSES } from '../engine/types.ts';
import { definitionComponents, definitionReference } from './definition-document.ts';
import { IDEMPOTENCY_CLAIM_LEASE_MS, MAX_IDEMPOTENCY_KEY_LENGTH } from './idempotency.ts';
import {
  accountSettingsBody,
  contactEventBody,
  createApiKeyBody,
  createContactBody,
  createWorkflowBody,
  listExecutionsQuery,
  listWorkflowsQuery,
  bulkControlBody,
  bulkEnrollBody,
  statsQuery,
  testWorkflowBody,
  logsQuery,
  tagBody,
  triggerBody,
  updateContactBody,
  updateDefinitionBody,
  validateDefinitionBody,
} from './schemas.ts';

/** A problem of a definition that is not an error (src/compiler/analyze-workflow.ts). */
const warning = z.object({
  code: z.enum(['unreachable_step', 'unknown_event']),
  step_id: z.string(),
  event: z.string().optional().describe('unknown_event: the event the wait_for_event step waits for'),
  message: z.string(),
});
const warnings = z
  .array(warning)
  .describe(
    'steps no path reaches (a split variant of weight 0, a branch case an identical earlier case shadows), and wait_for_event steps on events no contact of the account has ever had',
  );
/** Figures of a definition's runs, from its compiled machine's graph. */
const figures = z.object({
  longest_wait_seconds: z
    .number()
    .int()
    .describe('longest total wait of one run: wait its duration, wait_until up to 7 days, wait_for_event its timeout'),
  max_messages_per_path: z.number().int().describe('most emails and SMS one run sends'),
  paths: z.number().int().describe('ways from the first step to the end (capped at 2^53 - 1)'),
});

/** Response schemas: documented in OpenAPI and checked against real responses by the tests. */
export const responses = {
  error: z.object({ error: z.string(), request_id: z.string().optional() }).catchall(z.unknown()),
  contact: z.object({
    id: z.string().uuid(),
    email: z.string(),
    phone: z.string().nullable(),
    opted_in: z.boolean(),
    timezone: z.string().nullable(),
    tags: z.array(z.string()),
    attributes: z.record(z.string(), z.unknown()),
    created_at: z.string(),
    updated_at: z.string(),
  }),
  workflow: z.object({
    id: z.string().uuid(),
    name: z.string(),
    status: z.enum(['draft', 'active', 'paused']),
    version: z.number().int(),
    definition: z
      .unknown()
      .describe(
        'the definition (CONTRACT.md); a webhook step may set `save_response`: {"<attribute>": "<dotted.path>"}, values of its 2xx JSON answer saved to the contact\'s attributes',
      ),
    created_at: z.string(),
    updated_at: z.string(),
  }),
  validation: z.object({
    valid: z.boolean(),
    issues: z
      .array(z.object({ path: z.string(), message: z.string() }))
      .optional()
      .describe('when not valid: every problem with its path, as POST /workflows would refuse it'),
    warnings,
    figures: figures.nullable().describe('null when the definition is not valid'),
  }),
  execution: z.object({
    id: z.string().uuid(),
    workflow_id: z.string().uuid(),
    workflow_version_id: z.string().uuid(),
    contact_id: z.string().uuid(),
    status: z.enum(EXECUTION_STATUSES),
    current_step: z.string().nullable(),
    current_step_index: z
      .number()
      .int()
      .min(0)
      .describe(
        '1-based position of the step being run or waited on (or where a failed or cancelled execution stopped): 0 before the first step starts, total_steps once COMPLETED',
      ),
    total_steps: z.number().int().describe('steps finished plus the longest path still ahead'),
    progress_percent: z
      .number()
      .int()
      .min(0)
      .max(100)
      .describe('floor(100 * current_step_index / total_steps), at most 99 until COMPLETED (100)'),
    retry_count: z.number().int(),
    completion_reason: z.string().nullable(),
    last_error: z.string().nullable(),
    next_run_at: z.string().nullable(),
    created_at: z.string(),
    updated_at: z.string(),
    finished_at: z.string().nullable(),
    trace_id: z
      .string()
      .nullable()
      .describe("the trace of the execution's trigger (W3C trace id), null when none was recorded"),
    workflow_version: z
      .number()
      .int()
      .optional()
      .describe('GET /executions/{id} only: the number of the workflow version the execution is pinned to'),
    trace_url: z
      .string()
      .nullable()
      .optional()
      .describe('GET /executions/{id} only: the trace in the Jaeger UI when JAEGER_UI_URL is set, else null'),
  }),
  log: z.object({
    id: z.string(),
    execution_id: z.string().uuid().nullable(),
    event_type: z.string(),
    step_index: z
      .number()
      .int()
      .nullable()
      .describe(
        "1-based position of the entry's step on the path taken; 0 for execution_started, null for other execution-level entries",
      ),
    step_id: z.string().nullable(),
    status: z.string(),
    timestamp: z.string(),
    duration_ms: z.number().int().nullable(),
    user_id: z.string().uuid().nullable(),
    details: z.unknown(),
  }),
  workflowSummary: z.object({
    id: z.string().uuid(),
    name: z.string(),
    status: z.enum(['draft', 'active', 'paused']),
    version: z.number().int().describe('the current version'),
    executions: z.record(z.enum(EXECUTION_STATUSES), z.number().int()).describe('executions by status, all versions'),
    created_at: z.string(),
    updated_at: z.string(),
  }),
  stats: z.object({
    executions: z.record(z.enum(EXECUTION_STATUSES), z.number().int()),
    steps: z.array(
      z.object({
        step_id: z.string(),
        type: z.string(),
        at_step: z.number().int().describe('executions running or waiting at the step now'),
        entered: z.number().int(),
        completed: z.number().int(),
        skipped: z.number().int(),
        failed: z.number().int(),
      }),
    ),
    goal: z.object({ achieved: z.number().int(), conversion_rate: z.number().min(0).max(1) }),
  }),
  workflowTest: z.object({
    version: z.number().int().describe('the version simulated (the current one)'),
    path: z.array(
      z.object({
        step_id: z.string(),
        type: z.string(),
        at: z.string().describe('when the step starts on the simulated clock (ISO time)'),
        outcome: z
          .string()
          .describe(
            "success, skipped (an opted-out contact's message), true/false (condition), waited, event_received, timed_out, goal_achieved, exited, or pending where the run stopped",
          ),
        deferred_until: z.string().optional().describe('when a send window held the step back: the time it was sent'),
      }),
    ),
    result: z
      .enum([...EXECUTION_STATUSES, 'INCOMPLETE'])
      .describe('the final status; INCOMPLETE when the run hit its bound of simulated steps'),
    completion_reason: z.string().nullable(),
    ended_at: z.string(),
    events: z.array(
      z.object({ name: z.string(), at: z.string(), outcome: z.enum(['goal', 'exited', 'resumed', 'ignored']) }),
    ),
  }),
  publishPreview: z.object({
    would_move: z.number().int().describe('running executions of older versions whose step id is in the new one'),
    would_stay: z.number().int().describe('running executions of older versions that would stay on them'),
  }),
  workflowVersion: z.object({
    version: z.number().int(),
    current: z.boolean().describe('whether this is the current version (the one new executions start on)'),
    definition: z.unknown(),
    machine: z.record(z.string(), z.unknown()).describe('the compiled XState machine config of this version'),
    created_at: z.string(),
  }),
  bulkResult: z.object({
    matched: z.number().int(),
    changed: z.number().int().describe('0 on a dry run'),
  }),
  pagination: z.object({
    total: z.number().int(),
    page: z.number().int(),
    limit: z.number().int(),
    total_pages: z.number().int(),
  }),
  triggered: z.object({ execution_id: z.string().uuid(), status: z.literal('QUEUED') }),
  duplicate: z.object({ duplicate: z.literal(true), message: z.string(), execution_id: z.string().uuid() }),
  enrolled: z.object({
    started: z.number().int(),
    results: z.array(
      z.object({
        contact_id: z.string().uuid(),
        outcome: z.enum(['started', 'duplicate', 'already_enrolled', 'contact_not_found', 'opted_out']),
        execution_id: z.string().uuid().nullable(),
      }),
    ),
  }),
  settings: z.object({
    concurrent_executions_per_account: z.number().int(),
    max_retry_attempts: z.number().int(),
    retry_base_delay_seconds: z.number().int(),
    error_notification: z.boolean(),
    admin_email: z.string(),
    default_timezone: z
      .string()
      .describe('IANA zone of wait_until and send windows for contacts without a valid zone of their own (UTC)'),
    frequency_caps: z
      .array(z.object({ channel: z.enum(['email', 'sms']), max: z.number().int(), per: z.string() }))
      .describe(
        'at most `max` messages of `channel` per contact in any `per`, counted across all workflows; a message over a cap is PAUSED until the cap allows it (`frequency_capped`, `details.resume_at`); `transactional` steps bypass caps ([])',
      ),
  }),
  event: z.object({
    accepted: z.boolean(),
    event: z.string(),
    event_id: z.string().uuid().describe('the stored event'),
    enrolled: z
      .array(z.object({ workflow_id: z.string().uuid(), execution_id: z.string().uuid() }))
      .describe('executions started in active workflows entered by this event (`trigger.type` "event")'),
    blocked: z
      .array(z.object({ workflow_id: z.string().uuid(), reason: z.string() }))
      .describe('workflows the event would enter, refused by a guard (opted_out, duplicate, already_enrolled)'),
    resumed: z
      .array(z.string().uuid())
      .describe('executions waiting for this event (wait_for_event) that took `received`'),
    goals: z.array(z.string().uuid()).describe('executions completed by reaching their goal'),
    exited: z.array(z.string().uuid()).describe("executions cancelled by their workflow's `exit` event"),
    goal_completed_executions: z.array(z.string().uuid()).describe('the same as `goals` (kept for older clients)'),
  }),
  apiKey: z.object({
    id: z.string().uuid(),
    name: z.string().nullable(),
    prefix: z.string(),
    role: z.enum(['admin', 'member']),
    api_key: z.string(),
  }),
  apiKeys: z.object({
    data: z.array(
      z.object({
        id: z.string().uuid(),
        name: z.string().nullable(),
        prefix: z.string(),
        role: z.enum(['admin', 'member']),
        user_id: z.string().uuid(),
        created_at: z.string(),
        revoked_at: z.string().nullable(),
      }),
    ),
  }),
  health: z.object({ status: z.enum(['ok', 'unavailable']), postgres: z.boolean(), redis: z.boolean() }),
};

/** `POST /workflows` and `PUT /workflows/{id}/definition`: the workflow and the warnings of its definition. */
export const savedWorkflow = responses.workflow.extend({ warnings });

const page = <T extends z.ZodType>(item: T) => z.object({ data: z.array(item), pagination: responses.pagination });

interface Operation {
  method: 'get' | 'post' | 'patch' | 'put' | 'delete';
  path: string;
  summary: string;
  body?: z.ZodType;
  query?: z.ZodObject;
  ok: [number, z.ZodType | null, string];
  errors?: number[];
  auth?: false;
  /** Whether the operation honours an `Idempotency-Key` header (src/api/idempotency.ts). */
  idempotent?: true;
}

/** The `Idempotency-Key` header parameter of the operations that honour it. */
const IDEMPOTENCY_KEY_PARAMETER = {
  name: 'Idempotency-Key',
  in: 'header',
  required: false,
  description:
    `Makes a retry safe: the same key within 24 hours (same account, same route) answers the first answer again, ` +
    `same status and body, with the header Idempotent-Replayed: true, and creates nothing. ` +
    `The same key with a different request is refused with 422; while the first request still runs, a repeat ` +
    `gets 409 with Retry-After: 1 (a first request that never answered frees its key after ` +
    `${IDEMPOTENCY_CLAIM_LEASE_MS / 1000} s). Answers of 500 or more are not kept. Stored in Postgres.`,
  schema: { type: 'string', minLength: 1, maxLength: MAX_IDEMPOTENCY_KEY_LENGTH },
};

const id = '{id}';
/** Every route of the API, with what it takes and answers. The router and this table are checked against each other by the tests. */
export const OPERATIONS: Operation[] = [
  {
    method: 'post',
    path: '/api/v1/contacts',
    summary: 'Create a contact',
    body: createContactBody,
    ok: [201, responses.contact, 'the contact'],
    errors: [400, 401, 413, 415],
  },
  {
    method: 'get',
    path: `/api/v1/contacts/${id}`,
    summary: 'Get a contact',
    ok: [200, responses.contact, 'the contact'],
    errors: [400, 401, 404],
  },
  {
    method: 'patch',
    path: `/api/v1/contacts/${id}`,
    summary: 'Update a contact (e.g. opt out)',
    body: updateContactBody,
    ok: [200, responses.contact, 'the contact'],
    errors: [400, 401, 404],
  },
  {
    method: 'delete',
    path: `/api/v1/contacts/${id}`,
    summary: 'Delete a contact; its running executions are cancelled with reason contact_deleted',
    ok: [204, null, 'deleted'],
    errors: [400, 401, 404],
  },
  {
    method: 'post',
    path: `/api/v1/contacts/${id}/tags`,
    summary: 'Add a tag',
    body: tagBody,
    ok: [200, responses.contact, 'the contact'],
    errors: [400, 401, 404],
  },
  {
    method: 'delete',
    path: `/api/v1/contacts/${id}/tags/{tag}`,
    summary: 'Remove a tag',
    ok: [200, responses.contact, 'the contact'],
    errors: [400, 401, 404],
  },
  {
    method: 'post',
    path: `/api/v1/contacts/${id}/events`,
    summary:
      'Record a contact event (stored): enrolls in active workflows with this trigger event, resumes wait_for_event waits, reaches goals and ends executions whose workflow has it as exit',
    body: contactEventBody,
    ok: [202, responses.event, 'accepted'],
    errors: [400, 401, 404, 409, 422],
    idempotent: true,
  },
  {
    method: 'post',
    path: '/api/v1/workflows',
    summary: 'Create a workflow (version 1 of its definition); the answer carries the warnings of its definition',
    body: createWorkflowBody,
    ok: [201, savedWorkflow, 'the workflow and its warnings'],
    errors: [400, 401],
  },
  {
    method: 'post',
    path: '/api/v1/workflows/validate',
    summary:
      'Check a definition without storing it: valid or not with its issues, warnings and figures (longest wait, most messages per path, number of paths)',
    body: validateDefinitionBody,
    ok: [200, responses.validation, 'the verdict (also for an invalid definition)'],
    errors: [400, 401],
  },
  {
    method: 'get',
    path: '/api/v1/workflows',
    summary: "The account's workflows, newest first, each with its current version and executions by status",
    query: listWorkflowsQuery,
    ok: [200, page(responses.workflowSummary), 'a page of workflows'],
    errors: [400, 401],
  },
  {
    method: 'get',
    path: `/api/v1/workflows/${id}/stats`,
    summary:
      'Executions by status, per step how many are there now (at_step) and entered, completed, skipped or failed it, and the goal conversion; all versions, or ?version=N',
    query: statsQuery,
    ok: [200, responses.stats, 'the counts'],
    errors: [400, 401, 404],
  },
  {
    method: 'post',
    path: `/api/v1/workflows/${id}/executions/cancel`,
    summary: 'Cancel the running executions that match the filter (dry_run: only count them)',
    body: bulkControlBody,
    ok: [200, responses.bulkResult, 'matched and changed'],
    errors: [400, 401, 404],
  },
  {
    method: 'post',
    path: `/api/v1/workflows/${id}/executions/retry`,
    summary: 'Retry the FAILED executions that match the filter (dry_run: only count them)',
    body: bulkControlBody,
    ok: [200, responses.bulkResult, 'matched and changed'],
    errors: [400, 401, 404],
  },
  {
    method: 'get',
    path: `/api/v1/workflows/${id}`,
    summary: 'Get a workflow with its current definition',
    ok: [200, responses.workflow, 'the workflow'],
    errors: [400, 401, 404],
  },
  {
    method: 'put',
    path: `/api/v1/workflows/${id}/definition`,
    summary:
      'Save a new immutable version of the definition; in_flight "move" moves running executions of older versions to the same step id of the new one (those whose step is gone stay), dry_run only counts',
    body: updateDefinitionBody,
    ok: [
      200,
      z.union([
        savedWorkflow.extend({
          in_flight: z
            .object({ moved: z.number().int(), stayed: z.number().int() })
            .optional()
            .describe('with in_flight "move": what moved and what stayed'),
        }),
        responses.publishPreview,
      ]),
      'the workflow (with dry_run: what would move and stay, nothing saved)',
    ],
    errors: [400, 401, 404],
  },
  {
    method: 'post',
    path: `/api/v1/workflows/${id}/test`,
    summary:
      'Dry run: the path one stored (contact_id) or hypothetical (contact) contact would take through the current version on a simulated clock, with events injected at offsets; no provider is called and nothing is stored',
    body: testWorkflowBody,
    ok: [200, responses.workflowTest, 'the simulated path and result'],
    errors: [400, 401, 404],
  },
  {
    method: 'post',
    path: `/api/v1/workflows/${id}/activate`,
    summary: 'Activate a workflow',
    ok: [200, responses.workflow, 'the workflow'],
    errors: [400, 401, 404],
  },
  {
    method: 'post',
    path: `/api/v1/workflows/${id}/pause`,
    summary: 'Pause a workflow (new triggers are refused)',
    ok: [200, responses.workflow, 'the workflow'],
    errors: [400, 401, 404],
  },
  {
    method: 'get',
    path: `/api/v1/workflows/${id}/machine`,
    summary: 'The compiled XState machine config (importable into Stately)',
    ok: [200, z.record(z.string(), z.unknown()), 'machine config'],
    errors: [400, 401, 404],
  },
  {
    method: 'get',
    path: `/api/v1/workflows/${id}/versions/{version}`,
    summary: 'One version of a workflow: its definition and compiled machine',
    ok: [200, responses.workflowVersion, 'the version'],
    errors: [400, 401, 404],
  },
  {
    method: 'post',
    path: `/api/v1/workflows/${id}/trigger`,
    summary: 'Enroll a contact (200 when a duplicate within 5 s is ignored)',
    body: triggerBody,
    ok: [202, responses.triggered, 'execution created, QUEUED'],
    errors: [400, 401, 403, 404, 409, 422],
    idempotent: true,
  },
  {
    method: 'post',
    path: `/api/v1/workflows/${id}/enrollments`,
    summary:
      'Enroll up to 1,000 contacts at once, each as a trigger would (outcome per contact: started, duplicate, already_enrolled, contact_not_found, opted_out)',
    body: bulkEnrollBody,
    ok: [200, responses.enrolled, 'one outcome per distinct contact, in request order'],
    errors: [400, 401, 404, 429],
  },
  {
    method: 'get',
    path: `/api/v1/workflows/${id}/executions`,
    summary: 'List executions, newest first, filtered by status, created_at range and the step they are at',
    query: listExecutionsQuery,
    ok: [200, page(responses.execution), 'a page of executions'],
    errors: [400, 401, 404],
  },
  {
    method: 'get',
    path: `/api/v1/executions/${id}`,
    summary: 'Execution status and progress',
    ok: [200, responses.execution, 'the execution'],
    errors: [400, 401, 404],
  },
  {
    method: 'get',
    path: `/api/v1/executions/${id}/logs`,
    summary: 'Execution log, oldest first, paginated',
    query: logsQuery,
    ok: [200, page(responses.log), 'a page of log entries'],
    errors: [400, 401, 404],
  },
  {
    method: 'post',
    path: `/api/v1/executions/${id}/cancel`,
    summary: 'Cancel a running execution',
    ok: [200, responses.execution, 'the execution, CANCELLED'],
    errors: [400, 401, 404, 409],
  },
  {
    method: 'post',
    path: `/api/v1/executions/${id}/retry`,
    summary: 'Retry a FAILED execution from the failed step',
    ok: [200, responses.execution, 'the execution, QUEUED'],
    errors: [400, 401, 404, 409],
  },
  {
    method: 'get',
    path: '/api/v1/account/settings',
    summary: 'Account settings',
    ok: [200, responses.settings, 'settings'],
    errors: [401],
  },
  {
    method: 'patch',
    path: '/api/v1/account/settings',
    summary:
      'Change account settings (admin keys only; concurrency at most MAX_ACCOUNT_CONCURRENCY; default_timezone an IANA zone name)',
    body: accountSettingsBody,
    ok: [200, responses.settings, 'settings'],
    errors: [400, 401, 403],
  },
  {
    method: 'get',
    path: '/api/v1/api-keys',
    summary: 'List API keys (never the keys themselves); admin keys only',
    ok: [200, responses.apiKeys, 'keys'],
    errors: [401, 403],
  },
  {
    method: 'post',
    path: '/api/v1/api-keys',
    summary: 'Create an API key (role admin or member); the key is shown only in this response; admin keys only',
    body: createApiKeyBody,
    ok: [201, responses.apiKey, 'the new key'],
    errors: [400, 401, 403],
  },
  {
    method: 'delete',
    path: `/api/v1/api-keys/${id}`,
    summary: 'Revoke an API key (refused by every API process within 5 s); admin keys only',
    ok: [204, null, 'revoked'],
    errors: [400, 401, 403, 404],
  },
  {
    method: 'get',
    path: '/health',
    summary: 'Liveness of Postgres and Redis',
    ok: [200, responses.health, 'both answer'],
    errors: [503],
    auth: false,
  },
  {
    method: 'get',
    path: '/metrics',
    summary: 'Prometheus metrics',
    ok: [200, null, 'Prometheus text format'],
    auth: false,
  },
  { method: 'get', path: '/openapi.json', summary: 'This document', ok: [200, null, 'OpenAPI 3.1'], auth: false },
  {
    method: 'get',
    path: '/docs',
    summary: 'Interactive API reference (Swagger UI)',
    ok: [200, null, 'HTML'],
    auth: false,
  },
  {
    method: 'get',
    path: '/ui',
    summary: "The designer's view: workflows drawn as their state machines with live counts (sign in with an API key)",
    ok: [200, null, 'HTML'],
    auth: false,
  },
];

const ERROR_TEXT: Record<number, string> = {
  400: 'invalid request (every invalid field with its path)',
  401: 'missing or invalid API key',
  403: 'forbidden (contact opted out, or a member key managing keys or settings)',
  404: 'not found (or belongs to another account)',
  409: 'conflict with the current state (or a request with the same Idempotency-Key still in progress)',
  413: 'body too large',
  415: 'body is not JSON',
  422: 'Idempotency-Key already used with a different request',
  429: 'too many requests (API_RATE_LIMIT), or a bulk enrollment while the queue holds ENROLL_QUEUE_LIMIT jobs ready to run: retry after Retry-After seconds',
  503: 'a dependency is down',
};

/** Fields validated elsewhere (as `z.unknown()` here) that the document shows as their own schema. */
const STAND_INS = new Map<unknown, object>([
  [createWorkflowBody.shape.definition, definitionReference],
  [updateDefinitionBody.shape.definition, definitionReference],
  [responses.workflow.shape.definition, definitionReference],
  [responses.workflowVersion.shape.definition, definitionReference],
]);

const schemaOf = (schema: z.ZodType, io: 'input' | 'output' = 'output') =>
  z.toJSONSchema(schema, {
    io,
    unrepresentable: 'any',
    target: 'draft-2020-12',
    override: (ctx) => {
      const standIn = STAND_INS.get(ctx.zodSchema);
      if (standIn) Object.assign(ctx.jsonSchema, standIn);
    },
  });

/** The OpenAPI 3.1 document, generated from the same zod schemas that validate requests. */
export function buildOpenApiDocument() {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const op of OPERATIONS) {
    const parameters = [
      ...[...op.path.matchAll(/\{(\w+)\}/g)].map((m) => ({
        name: m[1],
        in: 'path',
        required: true,
        schema:
          m[1] === 'id'
            ? { type: 'string', format: 'uuid' }
            : m[1] === 'version'
              ? { type: 'integer', minimum: 1 }
              : { type: 'string' },
      })),
      ...Object.entries(op.query?.shape ?? {}).map(([name, schema]) => ({
        name,
        in: 'query',
        required: false,
        schema: schemaOf(schema as z.ZodType, 'input'),
      })),
      ...(op.idempotent ? [IDEMPOTENCY_KEY_PARAMETER] : []),
    ];
    const [okStatus, okSchema, okText] = op.ok;
    const responsesDoc: Record<string, unknown> = {
      [okStatus]: {
        description: okText,
        ...(okSchema ? { content: { 'application/json': { schema: schemaOf(okSchema) } } } : {}),
      },
    };
    if (op.path.endsWith('/trigger'))
      responsesDoc['200'] = {
        description: 'duplicate trigger ignored',
        content: { 'application/json': { schema: schemaOf(responses.duplicate) } },
      };
    for (const code of new Set([...(op.errors ?? []), ...(op.body ? [400, 413, 415] : []), 500]))
      responsesDoc[code] = {
        description: ERROR_TEXT[code] ?? 'internal error',
        content: { 'application/json': { schema: schemaOf(responses.error) } },
      };
    (paths[op.path] ??= {})[op.method] = {
      summary: op.summary,
      ...(parameters.length ? { parameters } : {}),
      ...(op.body
        ? { requestBody: { required: true, content: { 'application/json': { schema: schemaOf(op.body, 'input') } } } }
        : {}),
      responses: responsesDoc,
      ...(op.auth === false ? { security: [] } : {}),
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'flowmachine',
      version: '0.1.0',
      description:
        'Durable workflow execution engine for marketing automation. Request bodies are strict: unknown fields are refused with 400.',
    },
    servers: [{ url: '/' }],
    components: {
      schemas: definitionComponents(),
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'API key from `npx flowmachine accounts create`' },
      },
    },
    security: [{ bearer: [] }],
    paths,
  };
}
