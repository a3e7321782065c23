import type { ActionStep } from '../definition/schema.ts';
import type { ContactFacts } from '../definition/condition.ts';
import { renderTemplate } from '../definition/template.ts';
import type { Redis } from 'ioredis';
import type { Clock } from '../clock.ts';
import type { Config } from '../config.ts';
import { sendProviderRequest } from '../providers/http-provider.ts';
import type { ProviderOutcome } from '../providers/outcome.ts';
import type { WebhookGuard } from '../providers/webhook-guard.ts';
import type { Dispatcher } from 'undici';

/**
 * What actions need of the process: settings, the Redis that holds rate limits across workers, the
 * clock, and the guard every webhook goes through.
 */
export interface ActionDeps {
  config: Config;
  redis: Redis;
  clock: Clock;
  webhooks: WebhookGuard;
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
  | { kind: 'success'; details: Record<string, unknown>; tagChange?: TagChange }
  | { kind: 'skipped'; reason: string; details: Record<string, unknown> }
  | (Exclude<ProviderOutcome, { kind: 'success' }> & { provider: string; providerKind: string; details: Record<string, unknown> });

/** Key sent with every provider call of one step of one execution; the same on every retry (CONTRACT.md). */
export const idempotencyKey = (executionId: string, stepId: string) => `${executionId}:${stepId}`;

/**
 * Where a 429 holds calls back, across workers: the operator's email and SMS providers are one hold
 * each; a webhook endpoint holds only the account whose step called it, so one tenant's endpoint can
 * never delay another tenant's calls to the same host.
 */
export interface ProviderHold {
  /** What logs name (`email`, `sms`, `webhook:<host>`). */
  provider: string;
  /** Bounded metric label (`email`, `sms`, `webhook`). */
  kind: string;
  /** Redis key of the hold. */
  key: string;
}

function holdOf(deps: ActionDeps, kind: 'email' | 'sms' | 'webhook', target: ActionTarget, url?: string): ProviderHold {
  const prefix = `${deps.config.QUEUE_PREFIX}:rate-limit`;
  if (kind !== 'webhook') return { provider: kind, kind, key: `${prefix}:${kind}` };
  const host = new URL(url!).host;
  return { provider: `webhook:${host}`, kind, key: `${prefix}:webhook:${target.accountId}:${host}` };
}

/** How long calls under `hold` must still wait after a 429 seen by any worker, in ms (0 when free). */
export async function rateLimitRemaining(deps: ActionDeps, hold: ProviderHold): Promise<number> {
  return Math.max(0, await deps.redis.pttl(hold.key));
}

/** Holds back every worker's calls under `hold` for `ms`, at most `MAX_RETRY_AFTER_SECONDS`. */
export async function holdProvider(deps: ActionDeps, hold: ProviderHold, ms: number | null): Promise<void> {
  if (ms === null || !(ms > 0)) return;
  await deps.redis.set(hold.key, '1', 'PX', Math.ceil(Math.min(ms, deps.config.MAX_RETRY_AFTER_SECONDS * 1000)));
}

const scopeOf = (target: ActionTarget) => ({
  ...target.contact.attributes,
  email: target.contact.email,
  phone: target.contact.phone,
  payload: target.payload,
});

/** Runs one action step. Provider calls are idempotent through their key; tag changes are pure. */
export async function runAction(deps: ActionDeps, step: ActionStep, target: ActionTarget): Promise<ActionResult> {
  const scope = scopeOf(target);
  switch (step.type) {
    case 'add_tag':
    case 'remove_tag': {
      return { kind: 'success', details: { tag: step.config.tag }, tagChange: { op: step.type === 'add_tag' ? 'add' : 'remove', tag: step.config.tag } };
    }
    case 'send_email': {
      if (!target.contact.optedIn) return { kind: 'skipped', reason: 'contact_opted_out', details: {} };
      const message = {
        to: step.config.to ?? target.contact.email,
        subject: renderTemplate(step.config.subject, scope),
        body: renderTemplate(step.config.body, scope),
      };
      return callProvider(deps, holdOf(deps, 'email', target), deps.config.EMAIL_HTTP_URL, 'POST', { ...message, execution_id: target.executionId, step_id: target.stepId }, target, { action_config: message });
    }
    case 'send_sms': {
      if (!target.contact.optedIn) return { kind: 'skipped', reason: 'contact_opted_out', details: {} };
      if (!target.contact.phone) return { kind: 'permanent', status: 0, error: 'contact has no phone number', provider: 'sms', providerKind: 'sms', details: {} };
      const message = { to: target.contact.phone, body: renderTemplate(step.config.body, scope) };
      return callProvider(deps, holdOf(deps, 'sms', target), deps.config.SMS_HTTP_URL, 'POST', { ...message, execution_id: target.executionId, step_id: target.stepId }, target, { action_config: message });
    }
    case 'webhook': {
      const body = typeof step.config.body === 'string' ? renderTemplate(step.config.body, scope) : step.config.body;
      const hold = holdOf(deps, 'webhook', target, step.config.url);
      const details = { action_config: { url: step.config.url, method: step.config.method } };
      // Checked on every attempt: stored definitions predate any allow-list change, and names re-resolve.
      const route = deps.webhooks.route(step.config.url);
      if (!route.ok) return { kind: 'permanent', status: 0, error: route.error, provider: hold.provider, providerKind: hold.kind, details };
      return callProvider(deps, hold, step.config.url, step.config.method, body, target, details, route.dispatcher);
    }
  }
}

async function callProvider(
  deps: ActionDeps,
  hold: ProviderHold,
  url: string | undefined,
  method: string,
  body: unknown,
  target: ActionTarget,
  details: Record<string, unknown>,
  dispatcher?: Dispatcher,
): Promise<ActionResult> {
  // Without a configured transport the message is recorded but not delivered (development set-ups).
  if (!url) return { kind: 'success', details: { ...details, delivered: false, transport: 'none' } };
  const { provider, kind: providerKind } = hold;
  const heldFor = await rateLimitRemaining(deps, hold);
  if (heldFor > 0) {
    return { kind: 'rate_limited', status: 429, retryAfterMs: heldFor, error: `provider ${provider} is rate limited`, provider, providerKind, details: { ...details, held: true } };
  }
  const outcome = await sendProviderRequest(
    { url, method, body, idempotencyKey: idempotencyKey(target.executionId, target.stepId), timeoutMs: deps.config.PROVIDER_TIMEOUT_MS },
    deps.clock,
    dispatcher,
  );
  if (outcome.kind === 'success') return { kind: 'success', details: { ...details, delivered: true, http_status: outcome.status } };
  if (outcome.kind === 'rate_limited') await holdProvider(deps, hold, outcome.retryAfterMs);
  return { ...outcome, provider, providerKind, details };
}
