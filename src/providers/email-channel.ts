import type { Clock } from '../clock.ts';
import type { Config } from '../config.ts';
import { sendProviderRequest } from './http-provider.ts';
import type { ProviderOutcome } from './outcome.ts';
import { createSmtpTransport } from './smtp-provider.ts';

/** One email of a `send_email` step or an admin notification. */
export interface EmailMessage {
  to: string;
  subject: string;
  body: string;
  executionId: string;
  stepId: string;
  /** Same for every retry of one step of one execution (CONTRACT.md). */
  idempotencyKey: string;
  /** Extra fields of the HTTP provider's JSON body (the SMTP transport sends none). */
  fields?: Record<string, unknown>;
}

/** How emails leave: `POST EMAIL_HTTP_URL`, SMTP to `SMTP_URL`, or nowhere (development set-ups). */
export type EmailTransportKind = 'http' | 'smtp' | 'none';

/** The email channel of a process; both `send_email` steps and admin notifications go through it. */
export interface EmailChannel {
  kind: EmailTransportKind;
  /** Sends one email and classifies the answer; never throws for delivery trouble. With kind `none`, sends nothing and succeeds. */
  send(message: EmailMessage): Promise<ProviderOutcome>;
  /** Releases the transport's connections. */
  close(): Promise<void>;
}

/**
 * Creates the email channel the configuration asks for: HTTP when `EMAIL_HTTP_URL` is set, otherwise
 * SMTP when `SMTP_URL` is set (one pooled transport for the process), otherwise none.
 */
export function createEmailChannel(config: Config, clock: Clock): EmailChannel {
  const { EMAIL_HTTP_URL: httpUrl, SMTP_URL: smtpUrl } = config;
  if (httpUrl) {
    return {
      kind: 'http',
      send: (message) =>
        sendProviderRequest(
          {
            url: httpUrl,
            body: {
              to: message.to,
              subject: message.subject,
              body: message.body,
              execution_id: message.executionId,
              step_id: message.stepId,
              ...message.fields,
            },
            idempotencyKey: message.idempotencyKey,
            timeoutMs: config.PROVIDER_TIMEOUT_MS,
          },
          clock,
        ),
      close: async () => undefined,
    };
  }
  if (smtpUrl) {
    const smtp = createSmtpTransport({ url: smtpUrl, from: config.SMTP_FROM, timeoutMs: config.PROVIDER_TIMEOUT_MS });
    return { kind: 'smtp', send: (message) => smtp.send(message), close: async () => smtp.close() };
  }
  return { kind: 'none', send: async () => ({ kind: 'success', status: 0 }), close: async () => undefined };
}
