import { SMTPServer, type SMTPServerError } from 'smtp-server';
import { createWaiters } from './waiters.ts';

/** One message the test SMTP server accepted. */
export interface ReceivedMail {
  /** The envelope's sender and recipients. */
  from: string;
  to: string[];
  /** The user the client authenticated as, if it did. */
  user: string | undefined;
  /** Header fields by lower-case name (the last one wins), unfolded. */
  headers: Record<string, string>;
  /** The decoded plain-text body. */
  body: string;
  raw: string;
}

/** A scripted refusal of the next message: the reply `code` to its RCPT TO or to its DATA. */
export interface SmtpRefusal {
  stage: 'rcpt' | 'data';
  code: number;
  message?: string;
}

/** A message the server refused; refused at DATA, the message itself as it was sent. */
export interface RefusedMail extends SmtpRefusal {
  mail?: ReceivedMail;
}

/** Decodes RFC 2047 encoded words (`=?UTF-8?Q?…?=`, `=?UTF-8?B?…?=`) in a header value. */
const decodeWords = (value: string) =>
  value
    .replace(/\?=\s+=\?/g, '?==?')
    .replace(/=\?([^?]+)\?([QB])\?([^?]*)\?=/gi, (_, _charset: string, encoding: string, text: string) =>
      encoding.toUpperCase() === 'B'
        ? Buffer.from(text, 'base64').toString('utf8')
        : Buffer.from(
            text
              .replace(/_/g, ' ')
              .replace(/=([0-9A-F]{2})/gi, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16))),
            'latin1',
          ).toString('utf8'),
    );

/** Splits a raw message into unfolded header fields and its body (enough for nodemailer's plain-text messages). */
export function parseMessage(raw: string): { headers: Record<string, string>; body: string } {
  const split = raw.indexOf('\r\n\r\n');
  const head = split === -1 ? raw : raw.slice(0, split);
  let body = split === -1 ? '' : raw.slice(split + 4);
  const headers: Record<string, string> = {};
  for (const field of head.replace(/\r\n[ \t]+/g, ' ').split('\r\n')) {
    const colon = field.indexOf(':');
    if (colon > 0) headers[field.slice(0, colon).trim().toLowerCase()] = decodeWords(field.slice(colon + 1).trim());
  }
  if (/quoted-printable/i.test(headers['content-transfer-encoding'] ?? '')) {
    body = body
      .replace(/=\r\n/g, '')
      .replace(/=([0-9A-F]{2})/gi, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
  }
  return { headers, body: body.replace(/\r\n$/, '') };
}

/**
 * A real SMTP server on a free local port, for tests: accepts any login (without TLS), records every
 * message it accepts, and refuses messages from a script (a 550 or 451 to RCPT TO or DATA).
 */
export async function startSmtpServer() {
  const received: ReceivedMail[] = [];
  const refusals: SmtpRefusal[] = [];
  const waiters = createWaiters(received, 'smtp server', 'messages');
  const refused: RefusedMail[] = [];

  const refuse = (stage: SmtpRefusal['stage'], mail?: ReceivedMail): SMTPServerError | null => {
    if (refusals[0]?.stage !== stage) return null;
    const refusal = refusals.shift()!;
    refused.push({ ...refusal, mail });
    return Object.assign(
      new Error(refusal.message ?? (refusal.code >= 500 ? 'mailbox unavailable' : 'try again later')),
      { responseCode: refusal.code },
    );
  };

  const server = new SMTPServer({
    authOptional: true,
    allowInsecureAuth: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onAuth(auth, _session, callback) {
      callback(null, { user: auth.username });
    },
    onRcptTo(_address, _session, callback) {
      callback(refuse('rcpt'));
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const { mailFrom, rcptTo } = session.envelope;
        const mail = {
          from: mailFrom ? mailFrom.address : '',
          to: rcptTo.map((r) => r.address),
          user: session.user as string | undefined,
          raw,
          ...parseMessage(raw),
        };
        const refusal = refuse('data', mail);
        if (refusal) return callback(refusal);
        received.push(mail);
        waiters.check();
        callback(null);
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.server.address() as { port: number };

  return {
    port,
    /** An SMTP_URL for this server, with credentials the server accepts. */
    url: `smtp://flow:secret@127.0.0.1:${port}`,
    received,
    /** Messages refused so far, in order. */
    refused,
    /** Refuses the next messages, one refusal each, in order. */
    script(...next: SmtpRefusal[]) {
      refusals.push(...next);
    },
    /** Resolves once `predicate` holds over the accepted messages. */
    waitFor: waiters.waitFor,
    close(): Promise<void> {
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

export type TestSmtpServer = Awaited<ReturnType<typeof startSmtpServer>>;
