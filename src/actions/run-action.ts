import type { ActionStep } from '../definition/schema.ts';
import type { ActionResult, ActionRunner, ActionTarget } from './action.ts';
import type { ProviderOutcome } from '../providers/outcome.ts';
import { renderBody, renderTemplate, templateFields, TEMPLATE_LIMITS } from '../definition/template.ts';
import type { Cluster, Redis } from 'ioredis';
import type { Clock } from '../clock.ts';
import type { Config } from '../config.ts';
import type { EmailChannel } from '../providers/email-channel.ts';
import { lookupPath } from '../definition/lookup-path.ts';
import { MAX_ANSWER_BYTES, MAX_SAVED_ANSWER_BYTES, sendProviderRequest } from '../providers/http-provider.ts';
import type { WebhookGuard } from '../providers/webhook-guard.ts';
import type { Dispatcher } from 'undici';

/**
 * What actions need of the process: settings, the Redis that holds rate limits across workers, the
 * clock, and the guard every webhook goes through.
 */
export interface ActionDeps {
  config: Config;
  redis: Redis | Cluster;
  clock: Clock;
  /** Where emails go (HTTP, SMTP or nowhere). */
  email: EmailChannel;
  webhooks: WebhookGuard;
}

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
  // Single-key commands (PTTL, SET PX); under the prefix, so on a cluster they carry its hash tag too.
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
      return {
        kind: 'success',
        details: { tag: step.config.tag },
        tagChange: { op: step.type === 'add_tag' ? 'add' : 'remove', tag: step.config.tag },
      };
    }
    case 'send_email': {
      if (!target.contact.optedIn) return { kind: 'skipped', reason: 'contact_opted_out', details: {} };
      const hold = holdOf(deps, 'email', target);
      const to = step.config.to ?? target.contact.email;
      // Logs keep the templates and the fields they read, never the rendered personal text.
      const details = {
        action_config: {
          to,
          subject: step.config.subject,
          body: step.config.body,
          fields: templateFields(step.config.subject, step.config.body),
        },
        transport: deps.email.kind,
      };
      const subject = renderTemplate(step.config.subject, scope, {
        maxChars: TEMPLATE_LIMITS.subjectChars,
        label: 'subject',
      });
      if (!subject.ok) return refused(hold, subject.error, details);
      const body = renderTemplate(step.config.body, scope, { maxChars: TEMPLATE_LIMITS.messageChars, label: 'body' });
      if (!body.ok) return refused(hold, body.error, details);
      const key = idempotencyKey(target.executionId, target.stepId);
      const email = {
        to,
        subject: subject.text,
        body: body.text,
        executionId: target.executionId,
        stepId: target.stepId,
        idempotencyKey: key,
      };
      const send = deps.email.kind === 'none' ? null : () => deps.email.send(email);
      return callProvider(deps, hold, send, details);
    }
    case 'send_sms': {
      if (!target.contact.optedIn) return { kind: 'skipped', reason: 'contact_opted_out', details: {} };
      if (!target.contact.phone)
        return {
          kind: 'permanent',
          status: 0,
          error: 'contact has no phone number',
          provider: 'sms',
          providerKind: 'sms',
          details: {},
        };
      const hold = holdOf(deps, 'sms', target);
      const details = {
        action_config: { to: target.contact.phone, body: step.config.body, fields: templateFields(step.config.body) },
      };
      const body = renderTemplate(step.config.body, scope, { maxChars: TEMPLATE_LIMITS.smsChars, label: 'body' });
      if (!body.ok) return refused(hold, body.error, details);
      const message = {
        to: target.contact.phone,
        body: body.text,
        execution_id: target.executionId,
        step_id: target.stepId,
      };
      return callProvider(deps, hold, httpSender(deps, deps.config.SMS_HTTP_URL, 'POST', message, target), details);
    }
    case 'webhook': {
      const hold = holdOf(deps, 'webhook', target, step.config.url);
      const details = {
        action_config: { url: step.config.url, method: step.config.method, fields: templateFields(step.config.body) },
      };
      // Checked on every attempt: stored definitions predate any allow-list change, and names re-resolve.
      const route = deps.webhooks.route(step.config.url);
      if (!route.ok) return refused(hold, route.error, details);
      const body = step.config.body === undefined ? undefined : renderBody(step.config.body, scope);
      if (body && !body.ok) return refused(hold, body.error, details);
      const saves = step.config.save_response;
      const send = httpSender(deps, step.config.url, step.config.method, body?.text, target, route.dispatcher, saves);
      return callProvider(deps, hold, send, details, saves);
    }
  }
}

/** A message that may not be sent (too long as rendered, or to an address not allowed): a permanent outcome, so the step is skipped and the execution goes on. */
const refused = (hold: ProviderHold, error: string, details: Record<string, unknown>): ActionResult => ({
  kind: 'permanent',
  status: 0,
  error,
  provider: hold.provider,
  providerKind: hold.kind,
  details,
});

/** One provider call, classified. */
type Sender = () => Promise<ProviderOutcome>;

/** A provider call over HTTP to `url` (through `dispatcher`, for webhooks), or null when no URL is configured. */
function httpSender(
  deps: ActionDeps,
  url: string | undefined,
  method: string,
  body: unknown,
  target: ActionTarget,
  dispatcher?: Dispatcher,
  saves?: Record<string, string>,
): Sender | null {
  if (!url) return null;
  const key = idempotencyKey(target.executionId, target.stepId);
  const maxAnswerBytes = saves ? MAX_SAVED_ANSWER_BYTES : MAX_ANSWER_BYTES;
  return () =>
    sendProviderRequest(
      { url, method, body, idempotencyKey: key, timeoutMs: deps.config.PROVIDER_TIMEOUT_MS, maxAnswerBytes },
      deps.clock,
      dispatcher,
    );
}

/**
 * A webhook's `save_response` on its 2xx answer: each path's value in the JSON answer becomes a contact
 * attribute, committed with the step. `details.saved` names the attributes saved (never their values,
 * which are the contact's data); `details.not_found` those whose path the answer lacks; an answer that
 * is not JSON (or longer than {@link MAX_SAVED_ANSWER_BYTES}) saves nothing and says so. The step
 * succeeds either way: the webhook was delivered.
 */
function savedFrom(
  result: Extract<ActionResult, { kind: 'success' }>,
  saves: Record<string, string>,
  body: string | undefined,
): ActionResult {
  const answer = parseJson(body);
  if (answer === undefined)
    return { ...result, details: { ...result.details, saved: [], save_response_error: 'answer is not JSON' } };
  const attributes: Record<string, unknown> = {};
  const notFound: string[] = [];
  for (const [attribute, path] of Object.entries(saves)) {
    const value = lookupPath(answer, path);
    if (value === undefined) notFound.push(attribute);
    else attributes[attribute] = value;
  }
  const saved = Object.keys(attributes);
  return {
    ...result,
    details: { ...result.details, saved, ...(notFound.length > 0 ? { not_found: notFound } : {}) },
    ...(saved.length > 0 ? { attributes } : {}),
  };
}

const parseJson = (text: string | undefined): unknown => {
  if (!text) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
};

/** Runs `send` unless calls under `hold` are held back, and turns its outcome into the action's result. */
async function callProvider(
  deps: ActionDeps,
  hold: ProviderHold,
  send: Sender | null,
  details: Record<string, unknown>,
  saves?: Record<string, string>,
): Promise<ActionResult> {
  // Without a configured transport the message is recorded but not delivered (development set-ups).
  if (!send) return { kind: 'success', details: { ...details, delivered: false, transport: 'none' } };
  const { provider, kind: providerKind } = hold;
  const heldFor = await rateLimitRemaining(deps, hold);
  if (heldFor > 0) {
    return {
      kind: 'rate_limited',
      status: 429,
      retryAfterMs: heldFor,
      error: `provider ${provider} is rate limited`,
      provider,
      providerKind,
      details: { ...details, held: true },
    };
  }
  const outcome = await send();
  if (outcome.kind === 'success') {
    const statusField = details.transport === 'smtp' ? 'smtp_code' : 'http_status';
    const delivered = {
      kind: 'success' as const,
      details: { ...details, delivered: true, [statusField]: outcome.status },
    };
    return saves ? savedFrom(delivered, saves, outcome.body) : delivered;
  }
  if (outcome.kind === 'rate_limited') await holdProvider(deps, hold, outcome.retryAfterMs);
  return { ...outcome, provider, providerKind, details };
}

/** The action runner of a process: {@link runAction} over its dependencies. */
export const createActionRunner = (deps: ActionDeps): ActionRunner => ({
  run: (step, target) => runAction(deps, step, target),
});
