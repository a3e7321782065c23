import { type CompiledWorkflow, compileWorkflow } from '../../src/compiler/compile.ts';
import { parseDefinition } from '../../src/definition/schema.ts';
import type { Policy } from '../../src/engine/decide-step.ts';
import type { ExecutionRow } from '../../src/store/execution-store.ts';

/** The engine's settings as the config defaults give them. */
export const TEST_POLICY: Policy = {
  maxRetryAfterSeconds: 3600,
  maxRetryDelaySeconds: 86_400,
  timerHorizonMs: 86_400_000,
};

/** Compiles steps (and definition-level fields) that must be valid. */
export function compileSteps(steps: unknown[], extra: Record<string, unknown> = {}): CompiledWorkflow {
  const parsed = parseDefinition({ trigger: { type: 'manual' }, steps, ...extra });
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.issues));
  return compileWorkflow(parsed.definition);
}

/** An account with the default settings, as an execution's load reads it. */
export const TEST_ACCOUNT: ExecutionRow['account'] = {
  id: '00000000-0000-4000-8000-0000000000a1',
  name: 'Acme',
  adminEmail: 'ops@example.com',
  concurrentExecutionsPerAccount: 100,
  maxRetryAttempts: 3,
  retryBaseDelaySeconds: 60,
  errorNotification: true,
  defaultTimezone: 'UTC',
  frequencyCaps: [],
};

/** A contact of {@link TEST_ACCOUNT}, opted in, with a phone and a `plan` attribute. */
export const TEST_CONTACT: ExecutionRow['contact'] = {
  id: '00000000-0000-4000-8000-0000000000d1',
  accountId: TEST_ACCOUNT.id,
  email: 'ada@example.com',
  phone: '+15550100',
  optedIn: true,
  timezone: null,
  attributes: { plan: 'pro' },
  tags: [],
  deletedAt: null,
};

/** An ACTIVE execution row of the test account and contact at version 3, as the store would answer it; `fields` override. */
export function executionRow(
  fields: Partial<ExecutionRow> & Pick<ExecutionRow, 'snapshot' | 'totalSteps'>,
): ExecutionRow {
  const created = new Date('2026-03-01T10:00:00.000Z');
  return {
    id: '00000000-0000-4000-8000-000000000001',
    accountId: TEST_ACCOUNT.id,
    workflowId: '00000000-0000-4000-8000-0000000000b1',
    workflowVersionId: '00000000-0000-4000-8000-0000000000c1',
    contactId: TEST_CONTACT.id,
    status: 'ACTIVE',
    version: 3,
    currentStepIndex: 1,
    retryCount: 0,
    completionReason: null,
    lastError: null,
    goalEvent: null,
    nextRunAt: null,
    waiting: false,
    waitingEvent: null,
    traceContext: { traceparent: '00-0123456789abcdef0123456789abcdef-0123456789abcdef-01' },
    payload: {},
    createdAt: created,
    updatedAt: created,
    finishedAt: null,
    contact: TEST_CONTACT,
    account: TEST_ACCOUNT,
    workflow: { name: 'Welcome' },
    ...fields,
  };
}
