// A real SMTP server (smtp-server) on a free loopback port that keeps every
// message it accepts, with the text part decoded for assertions. The one mail
// sink of the repository: the tests, the benchmarks and the demo launcher
// (scripts/dev/start-all.ts) all start this one, the scripts as they take the
// other stand-ins (Mosquitto, SIPp) from test/helpers.
import { SMTPServer } from 'smtp-server';
import { freePort } from './ports.js';

export interface SunkMail {
  from: string;
  to: string[];
  headers: Record<string, string>;
  subject: string;
  /** The text/plain part, decoded. */
  text: string;
  raw: string;
}

export interface SmtpSink {
  port: number;
  mails: SunkMail[];
  /** Stops listening (clients get connection refused) but keeps the mails. */
  stop(): Promise<void>;
  /** Listens again on the same port. */
  start(): Promise<void>;
  close(): Promise<void>;
}

export interface SmtpSinkOptions {
  port?: number;
  listen?: boolean;
  /** Called with each accepted message before the client is told 250. */
  onMail?: (mail: SunkMail) => void;
}

export async function startSmtpSink(opts: SmtpSinkOptions = {}): Promise<SmtpSink> {
  const port = opts.port ?? (await freePort());
  const mails: SunkMail[] = [];
  let server: SMTPServer | null = null;
  const start = async () => {
    server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      disableReverseLookup: true,
      logger: false,
      onData(stream, session, callback) {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          const raw = Buffer.concat(chunks).toString('utf8');
          const mail = parseMail(
            raw,
            session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            session.envelope.rcptTo.map((r) => r.address),
          );
          mails.push(mail);
          opts.onMail?.(mail);
          callback();
        });
      },
    });
    const s = server;
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => resolve());
    });
    // A client killed mid-session (the chaos tests kill the server while it mails) resets its
    // connection: that is the client's doing, not a sink failure.
    s.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'ECONNRESET' && err.code !== 'EPIPE') throw err;
    });
  };
  const stop = async () => {
    const s = server;
    server = null;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  };
  if (opts.listen !== false) await start();
  return { port, mails, stop, start, close: stop };
}

function unfoldHeaders(block: string): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const line of block.replace(/\r\n[ \t]+/g, ' ').split('\r\n')) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return headers;
}

function decode(body: string, encoding: string | undefined): string {
  if (/base64/i.test(encoding ?? '')) return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  if (/quoted-printable/i.test(encoding ?? '')) {
    const bytes = body.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/gi, (_m, h: string) => String.fromCharCode(parseInt(h, 16)));
    return Buffer.from(bytes, 'latin1').toString('utf8');
  }
  return body;
}

function decodeWords(v: string): string {
  return v.replace(/=\?utf-8\?([QB])\?([^?]*)\?=\s*/gi, (_m, enc: string, t: string) =>
    enc.toUpperCase() === 'B' ? Buffer.from(t, 'base64').toString('utf8') : decode(t.replace(/_/g, ' '), 'quoted-printable'),
  );
}

export function parseMail(raw: string, from: string, to: string[]): SunkMail {
  const split = raw.indexOf('\r\n\r\n');
  const headers = unfoldHeaders(raw.slice(0, split));
  const body = raw.slice(split + 4);
  let text = body;
  let encoding = headers['content-transfer-encoding'];
  const boundary = /boundary="?([^";]+)"?/i.exec(headers['content-type'] ?? '')?.[1];
  if (boundary) {
    for (const part of body.split(`--${boundary}`)) {
      const p = part.replace(/^\r\n/, '');
      const ps = p.indexOf('\r\n\r\n');
      if (ps < 0) continue;
      const ph = unfoldHeaders(p.slice(0, ps));
      if (/text\/plain/i.test(ph['content-type'] ?? '')) {
        text = p.slice(ps + 4).replace(/\r\n$/, '');
        encoding = ph['content-transfer-encoding'];
        break;
      }
    }
  }
  return { from, to, headers, subject: decodeWords(headers.subject ?? ''), text: decode(text, encoding).replace(/\r\n/g, '\n'), raw };
}
