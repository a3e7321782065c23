import type { ActionStep } from '../definition/schema.ts';
import type { ContactFacts } from '../definition/condition.ts';
import { renderTemplate } from '../definition/template.ts';
import type { EngineDeps } from '../engine/types.ts';
import { sendProviderRequest } from '../providers/http-provider.ts';
import type { ProviderOutcome } from '../providers/outcome.ts';

/** The contact as an action sees it. */
export interface ActionContact extends ContactFacts {
  id: string;
}

/** Where an action runs: which execution and step, for idempotency keys and provider payloads. */
export interface ActionTarget {
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
  | (Exclude<ProviderOutcome, { kind: 'success' }> & { provider: string; details: Record<string, unknown> });

/** Key sent with every provider call of one step of one execution; the same on every retry (CONTRACT.md). */
export const idempotencyKey = (executionId: string, stepId: string) => `${executionId}:${stepId}`;

const rateLimitKey = (deps: EngineDeps, provider: string) => `${deps.config.QUEUE_PREFIX}:rate-limit:${provider}`;

/** How long calls to `provider` must still wait after a 429 seen by any worker, in ms (0 when free). */
export async function rateLimitRemaining(deps: EngineDeps, provider: string): Promise<number> {
  return Math.max(0, await deps.redis.pttl(rateLimitKey(deps, provider)));
}

/** Holds back every worker's calls to `provider` for `ms`. */
export async function holdProvider(deps: EngineDeps, provider: string, ms: number): Promise<void> {
  if (ms > 0) await deps.redis.set(rateLimitKey(deps, provider), '1', 'PX', Math.ceil(ms));
}

const scopeOf = (target: ActionTarget) => ({
  ...target.contact.attributes,
  email: target.contact.email,
  phone: target.contact.phone,
  payload: target.payload,
});

/** Runs one action step. Provider calls are idempotent through their key; tag changes are pure. */
export async function runAction(deps: EngineDeps, step: ActionStep, target: ActionTarget): Promise<ActionResult> {
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
      const email = { ...message, executionId: target.executionId, stepId: target.stepId, idempotencyKey: idempotencyKey(target.executionId, target.stepId) };
      const send = deps.email.kind === 'none' ? null : () => deps.email.send(email);
      return callProvider(deps, 'email', send, { action_config: message, transport: deps.email.kind });
    }
    case 'send_sms': {
      if (!target.contact.optedIn) return { kind: 'skipped', reason: 'contact_opted_out', details: {} };
      if (!target.contact.phone) return { kind: 'permanent', status: 0, error: 'contact has no phone number', provider: 'sms', details: {} };
      const message = { to: target.contact.phone, body: renderTemplate(step.config.body, scope) };
      const body = { ...message, execution_id: target.executionId, step_id: target.stepId };
      return callProvider(deps, 'sms', httpSender(deps, deps.config.SMS_HTTP_URL, 'POST', body, target), { action_config: message });
    }
    case 'webhook': {
      const body = typeof step.config.body === 'string' ? renderTemplate(step.config.body, scope) : step.config.body;
      const provider = `webhook:${new URL(step.config.url).host}`;
      const send = httpSender(deps, step.config.url, step.config.method, body, target);
      return callProvider(deps, provider, send, { action_config: { url: step.config.url, method: step.config.method } });
    }
  }
}

/** One provider call, classified. */
type Sender = () => Promise<ProviderOutcome>;

/** A provider call over HTTP to `url`, or null when no URL is configured. */
function httpSender(deps: EngineDeps, url: string | undefined, method: string, body: unknown, target: ActionTarget): Sender | null {
  if (!url) return null;
  const key = idempotencyKey(target.executionId, target.stepId);
  return () => sendProviderRequest({ url, method, body, idempotencyKey: key, timeoutMs: deps.config.PROVIDER_TIMEOUT_MS }, deps.clock);
}

/** Runs `send` unless `provider` is rate limited, and turns its outcome into the action's result. */
async function callProvider(deps: EngineDeps, provider: string, send: Sender | null, details: Record<string, unknown>): Promise<ActionResult> {
  // Without a configured transport the message is recorded but not delivered (development set-ups).
  if (!send) return { kind: 'success', details: { ...details, delivered: false, transport: 'none' } };
  const heldFor = await rateLimitRemaining(deps, provider);
  if (heldFor > 0) return { kind: 'rate_limited', status: 429, retryAfterMs: heldFor, error: `provider ${provider} is rate limited`, provider, details: { ...details, held: true } };
  const outcome = await send();
  if (outcome.kind === 'success') {
    const statusField = details.transport === 'smtp' ? 'smtp_code' : 'http_status';
    return { kind: 'success', details: { ...details, delivered: true, [statusField]: outcome.status } };
  }
  if (outcome.kind === 'rate_limited') await holdProvider(deps, provider, outcome.retryAfterMs);
  return { ...outcome, provider, details };
}
