import { createHash } from 'node:crypto';
import { createTransport } from 'nodemailer';
import type { ProviderOutcome } from './outcome.ts';

/** One email as the SMTP transport sends it. */
export interface SmtpMessage {
  to: string;
  subject: string;
  /** Plain-text body. */
  body: string;
  /** Same for every retry of one step of one execution; the Message-ID is derived from it. */
  idempotencyKey: string;
}

/** Settings of {@link createSmtpTransport}. */
export interface SmtpSettings {
  /** `smtp://user:pass@host:port` or `smtps://…` (implicit TLS). */
  url: string;
  /** The From address of every message. */
  from: string;
  /** Bounds one send, connecting included; a send that takes longer is a transient failure. */
  timeoutMs: number;
}

/** A pooled SMTP connection set, one per process. */
export interface SmtpTransport {
  send(message: SmtpMessage): Promise<ProviderOutcome>;
  /** Closes the pooled connections. */
  close(): void;
}

/**
 * The Message-ID of the message sent for `idempotencyKey`: the same key gives the same id on every
 * retry, so a receiving system can drop a duplicate. The key is hashed because its `:` may not appear
 * in a Message-ID.
 */
export const messageIdOf = (idempotencyKey: string) =>
  `<${createHash('sha256').update(idempotencyKey).digest('hex')}@flowmachine>`;

/**
 * Classifies a failed SMTP send (CONTRACT.md "Security and delivery settings", SMTP_URL): a 5xx reply
 * is permanent, a 4xx reply transient, and so is every failure without a reply (refused or dropped
 * connection, timeout, TLS or DNS trouble); an envelope nodemailer refuses before sending is permanent.
 */
export function classifySmtpError(thrown: unknown): Exclude<ProviderOutcome, { kind: 'success' }> {
  const error = thrown as Error & { code?: string; responseCode?: number; response?: string };
  const reply = error.response?.trim().slice(0, 300);
  const code = error.responseCode;
  if (code !== undefined && code >= 500) return { kind: 'permanent', status: code, error: `SMTP ${reply ?? code}` };
  if (code !== undefined && code >= 400) return { kind: 'transient', status: code, error: `SMTP ${reply ?? code}` };
  if (error.code === 'EENVELOPE')
    return { kind: 'permanent', status: 0, error: `SMTP envelope refused: ${error.message}` };
  return { kind: 'transient', status: null, error: `SMTP failed: ${error.code ?? error.message}` };
}

/**
 * Creates the process's SMTP transport: pooled connections (nodemailer's `pool: true`) to `url`.
 * Never throws for delivery trouble: every failure becomes a {@link ProviderOutcome}.
 */
export function createSmtpTransport(settings: SmtpSettings): SmtpTransport {
  const transporter = createTransport({
    url: settings.url,
    pool: true,
    connectionTimeout: settings.timeoutMs,
    greetingTimeout: settings.timeoutMs,
    socketTimeout: settings.timeoutMs,
  });
  return {
    async send(message) {
      let timer: NodeJS.Timeout | undefined;
      // The pool may queue a message behind others: the deadline bounds the whole send, as for HTTP. A
      // message still sent after it is a duplicate of the retry, with the same Message-ID.
      const deadline = new Promise<ProviderOutcome>((resolve) => {
        const timedOut: ProviderOutcome = {
          kind: 'transient',
          status: null,
          error: `SMTP failed: timeout after ${settings.timeoutMs} ms`,
        };
        timer = setTimeout(() => resolve(timedOut), settings.timeoutMs);
      });
      const sending = transporter
        .sendMail({
          from: settings.from,
          to: message.to,
          subject: message.subject,
          text: message.body,
          messageId: messageIdOf(message.idempotencyKey),
          headers: { 'Idempotency-Key': message.idempotencyKey },
        })
        .then((): ProviderOutcome => ({ kind: 'success', status: 250 }), classifySmtpError);
      try {
        return await Promise.race([sending, deadline]);
      } finally {
        clearTimeout(timer);
      }
    },
    close() {
      transporter.close();
    },
  };
}
