import { evaluateCondition } from '../definition/condition.ts';
import type { Definition } from '../definition/schema.ts';
import { withSpan } from '../observability/tracing.ts';
import { type ContactEvent, achieveGoal, exitExecution, resumeWait } from './control.ts';
import { compiledVersion } from './load.ts';
import { triggerExecution } from './trigger.ts';
import type { EngineDeps } from './types.ts';
import type { WorkflowCache } from './workflow-cache.ts';

/** The contact an event concerns, as the API read it. */
export interface EventContact {
  id: string;
  accountId: string;
  email: string;
  phone: string | null;
  optedIn: boolean;
  timezone: string | null;
  tags: string[];
  attributes: unknown;
}

/** What one event did (CONTRACT.md `POST /contacts/{id}/events`). */
export interface EventOutcome {
  enrolled: { workflowId: string; executionId: string }[];
  blocked: { workflowId: string; reason: string }[];
  resumed: string[];
  goals: string[];
  exited: string[];
}

/** Why a trigger of an event did not enroll, as the answer names it. */
const BLOCKED_REASONS: Record<string, string> = {
  opted_out: 'opted_out',
  duplicate: 'duplicate',
  already_enrolled: 'already_enrolled',
  inactive: 'inactive',
  contact_not_found: 'contact_not_found',
  workflow_not_found: 'workflow_not_found',
};

/**
 * Hands a stored contact event to everything it concerns, each through its own version-checked commit:
 * goals it reaches, executions whose workflow exits on it, waits for it (`wait_for_event`) and, last, the
 * active workflows it enters (`trigger: {type: "event"}` whose `where` holds for the contact and the
 * event's properties, which become the execution's payload), each with the guards of any trigger.
 * Everything is found from Postgres, so an event reaches its waits after any loss of Redis.
 */
export function receiveEvent(
  deps: EngineDeps,
  cache: WorkflowCache,
  contact: EventContact,
  event: ContactEvent,
): Promise<EventOutcome> {
  return withSpan(
    'contact event',
    { 'flowmachine.contact_id': contact.id, 'flowmachine.event': event.name },
    async (span) => {
      const outcome = await deliver(deps, cache, contact, event);
      span.setAttributes({
        'flowmachine.enrolled': outcome.enrolled.length,
        'flowmachine.resumed': outcome.resumed.length,
        'flowmachine.goals': outcome.goals.length,
        'flowmachine.exited': outcome.exited.length,
      });
      deps.metrics.contactEvents.inc({
        outcome:
          outcome.enrolled.length + outcome.resumed.length + outcome.goals.length + outcome.exited.length > 0
            ? 'used'
            : 'unused',
      });
      return outcome;
    },
  );
}

async function deliver(
  deps: EngineDeps,
  cache: WorkflowCache,
  contact: EventContact,
  event: ContactEvent,
): Promise<EventOutcome> {
  const outcome: EventOutcome = { enrolled: [], blocked: [], resumed: [], goals: [], exited: [] };
  outcome.goals = await achieveGoal(deps, cache, contact.accountId, contact.id, event.name);
  for (const id of await deps.store.exitingOn(contact.id, contact.accountId, event.name))
    if ((await exitExecution(deps, cache, id, event)).kind === 'ok') outcome.exited.push(id);
  for (const id of await deps.store.waitingFor(contact.id, event.name))
    if ((await resumeWait(deps, cache, id, event)).kind === 'ok') outcome.resumed.push(id);

  const facts = { ...contact, attributes: (contact.attributes ?? {}) as Record<string, unknown> };
  const admits = ({ trigger }: Definition) =>
    trigger.type === 'event' &&
    trigger.event === event.name &&
    (!trigger.where || evaluateCondition(trigger.where, facts, event.properties));
  for (const { workflowId, versionId } of await deps.store.enteredBy(contact.accountId, event.name)) {
    // The version read here spares the enrollment's call when it does not admit the event; the
    // enrollment checks again on the version it starts on.
    if (!admits((await compiledVersion(deps, cache, versionId)).definition)) continue;
    const result = await triggerExecution(deps, cache, {
      accountId: contact.accountId,
      workflowId,
      contactId: contact.id,
      payload: event.properties,
      admits,
    });
    if (result.kind === 'not_admitted') continue;
    if (result.kind === 'started') outcome.enrolled.push({ workflowId, executionId: result.executionId });
    else outcome.blocked.push({ workflowId, reason: BLOCKED_REASONS[result.kind] ?? result.kind });
  }
  return outcome;
}
