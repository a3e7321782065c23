import { policyOf } from '../engine/commit.ts';
import { compiledVersion } from '../engine/load.ts';
import { type SimulatedContact, simulateExecution } from '../engine/simulate.ts';
import type { ApiDeps } from './context.ts';
import { notFound } from './http-error.ts';
import type { testWorkflowBody } from './schemas.ts';
import type { z } from 'zod';

/** The contact id of a hypothetical contact: no contact has it. */
const HYPOTHETICAL_CONTACT = '00000000-0000-0000-0000-000000000000';

/**
 * The dry run of `POST /workflows/{id}/test`: the path one stored or hypothetical contact would take
 * through the workflow's current version, on a simulated clock (engine/simulate.ts). It only reads: the
 * compiled machine (from the engine's cache), the account's settings and the contact; nothing is written,
 * enqueued or sent. A `contact_id` of another account, or of a deleted contact, is not found.
 */
export async function testWorkflow(
  deps: ApiDeps,
  target: { accountId: string; workflowId: string; version: number },
  body: z.infer<typeof testWorkflowBody>,
) {
  const [version, account] = await Promise.all([
    deps.db.workflowVersion.findUniqueOrThrow({
      where: { workflowId_version: { workflowId: target.workflowId, version: target.version } },
      select: { id: true },
    }),
    deps.db.account.findUniqueOrThrow({
      where: { id: target.accountId },
      select: {
        id: true,
        name: true,
        adminEmail: true,
        concurrentExecutionsPerAccount: true,
        maxRetryAttempts: true,
        retryBaseDelaySeconds: true,
        errorNotification: true,
        defaultTimezone: true,
        frequencyCaps: true,
      },
    }),
  ]);
  const contact = await contactOf(deps, target.accountId, body);
  const workflow = await compiledVersion(deps, deps.cache, version.id);
  const result = simulateExecution({
    workflow,
    contact,
    account,
    payload: body.payload,
    startAt: body.start_at ?? deps.clock.now(),
    events: (body.events ?? []).map((event) => ({
      name: event.name,
      afterMs: event.after,
      properties: event.properties ?? {},
    })),
    policy: policyOf(deps),
  });
  return {
    version: target.version,
    path: result.path.map((entry) => ({
      step_id: entry.stepId,
      type: entry.type,
      at: entry.at.toISOString(),
      outcome: entry.outcome,
      ...(entry.deferredUntil ? { deferred_until: entry.deferredUntil.toISOString() } : {}),
    })),
    result: result.result,
    completion_reason: result.completionReason,
    ended_at: result.endedAt.toISOString(),
    events: result.events.map((event) => ({ name: event.name, at: event.at.toISOString(), outcome: event.outcome })),
  };
}

/** The contact the dry run follows: the stored one named by `contact_id`, or the hypothetical one given. */
async function contactOf(
  deps: ApiDeps,
  accountId: string,
  body: z.infer<typeof testWorkflowBody>,
): Promise<SimulatedContact> {
  if (body.contact_id !== undefined) {
    const stored = await deps.db.contact.findFirst({ where: { id: body.contact_id, accountId, deletedAt: null } });
    if (!stored) throw notFound('contact');
    return {
      id: stored.id,
      email: stored.email,
      phone: stored.phone,
      optedIn: stored.optedIn,
      timezone: stored.timezone,
      tags: stored.tags,
      attributes: (stored.attributes ?? {}) as Record<string, unknown>,
    };
  }
  const given = body.contact ?? {};
  return {
    id: HYPOTHETICAL_CONTACT,
    email: given.email ?? 'test@example.com',
    phone: given.phone ?? null,
    optedIn: given.opted_in ?? true,
    timezone: given.timezone ?? null,
    tags: given.tags ?? [],
    attributes: given.attributes ?? {},
  };
}
