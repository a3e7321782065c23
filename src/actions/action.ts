import type { ContactFacts } from '../definition/condition.ts';
import type { ActionStep } from '../definition/schema.ts';
import type { ProviderOutcome } from '../providers/outcome.ts';

/**
 * What the engine knows of actions: it hands a step and its target to an {@link ActionRunner} and gets an
 * {@link ActionResult} back (run-action.ts implements it; the runtime passes it in the engine's deps).
 */
export interface ActionRunner {
  /** Runs one action step: provider calls carry the step's idempotency key; contact changes are returned, not written. */
  run(step: ActionStep, target: ActionTarget): Promise<ActionResult>;
}

/** The contact as an action sees it. */
export interface ActionContact extends ContactFacts {
  id: string;
}

/** Where an action runs: which execution and step, for idempotency keys and provider payloads. */
export interface ActionTarget {
  accountId: string;
  executionId: string;
  stepId: string;
  contact: ActionContact;
  payload: Record<string, unknown>;
}

/** A tag to add to or remove from the contact; applied to the stored tags at commit, so concurrent changes are kept. */
export interface TagChange {
  op: 'add' | 'remove';
  tag: string;
}

/** What running an action came to. Contact changes (tags) are returned, not written: the engine commits them with the step. */
export type ActionResult =
  | {
      kind: 'success';
      details: Record<string, unknown>;
      tagChange?: TagChange;
      /** Contact attributes to set (a webhook's `save_response`), merged into the stored ones at commit. */
      attributes?: Record<string, unknown>;
    }
  | { kind: 'skipped'; reason: string; details: Record<string, unknown> }
  | (Exclude<ProviderOutcome, { kind: 'success' }> & {
      provider: string;
      providerKind: string;
      details: Record<string, unknown>;
    });
