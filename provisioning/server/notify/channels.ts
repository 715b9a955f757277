// The three ways a notification leaves the server: SMTP (nodemailer), an HTTP
// SMS provider, and a webhook. Each send either resolves with the provider's id
// or throws; the notifier decides about retries.
import { createHmac } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import nodemailer, { type Transporter } from 'nodemailer';
import type { SmsSettings, SmtpSettings, WebhookSettings } from '../validation.js';
import type { Notice } from './message.js';
import { TargetPolicy, TargetRefusedError } from './targets.js';

export class DeliveryError extends Error {
  constructor(
    message: string,
    /** False when retrying cannot help (e.g. a recipient the server refused for good). */
    readonly retryable = true,
  ) {
    super(message);
  }
}

export interface EmailChannel {
  send(
    settings: SmtpSettings,
    to: string,
    notice: Pick<Notice, 'subject' | 'text' | 'html'>,
    headers?: Record<string, string>,
  ): Promise<string>;
  close(): void;
}

export interface HttpChannel<S> {
  send(settings: S, body: unknown): Promise<string>;
}

const TIMEOUT_MS = 10_000;

/** One pooled transport per distinct SMTP setting; rebuilt when the settings change. */
export class SmtpChannel implements EmailChannel {
  private transport: Transporter | null = null;
  private key = '';

  private transportFor(s: SmtpSettings): Transporter {
    const key = JSON.stringify(s);
    if (this.transport && key === this.key) return this.transport;
    this.transport?.close();
    this.key = key;
    this.transport = nodemailer.createTransport({
      host: s.host,
      port: s.port,
      secure: s.security === 'tls',
      requireTLS: s.security === 'starttls',
      ignoreTLS: s.security === 'none',
      ...(s.username ? { auth: { user: s.username, pass: s.password ?? '' } } : {}),
      tls: { rejectUnauthorized: !s.allowInvalidCertificates },
      pool: true,
      maxConnections: 5,
      // An emergency notice should not wait on a dead server: fail fast and retry.
      connectionTimeout: TIMEOUT_MS,
      greetingTimeout: TIMEOUT_MS,
      socketTimeout: TIMEOUT_MS,
      // Our own socket, with Nagle off: SMTP is write-write-read, and Nagle with
      // delayed ACKs stalls each message up to 40 ms (measured: 10 mails p50 120 ms -> 30 ms).
      // nodemailer still does the TLS (implicit or STARTTLS) on top of it.
      getSocket: (_o: unknown, done: (err: Error | null, socketOptions?: { connection: net.Socket }) => void) => {
        const socket = net.connect({ host: s.host, port: s.port });
        socket.setNoDelay(true);
        const timer = setTimeout(() => socket.destroy(new Error(`connection to ${s.host}:${s.port} timed out`)), TIMEOUT_MS);
        const failed = (err: Error) => {
          clearTimeout(timer);
          done(err);
        };
        socket.once('error', failed);
        socket.once('connect', () => {
          clearTimeout(timer);
          socket.off('error', failed);
          // nodemailer adds its own error handler; until then an error must not crash the process.
          socket.on('error', () => undefined);
          done(null, { connection: socket });
        });
      },
    } as Parameters<typeof nodemailer.createTransport>[0]);
    return this.transport;
  }

  async send(
    s: SmtpSettings,
    to: string,
    notice: Pick<Notice, 'subject' | 'text' | 'html'>,
    headers: Record<string, string> = {},
  ): Promise<string> {
    const t = this.transportFor(s);
    // Only what is read below; nodemailer types the SMTP reply as any.
    let info: { accepted: unknown[]; response: string; messageId: string };
    try {
      info = await t.sendMail({ from: s.from, to, subject: notice.subject, text: notice.text, html: notice.html, headers });
    } catch (err) {
      const e = err as { message: string; responseCode?: number };
      // 5xx for the recipient is permanent; connection trouble and 4xx are worth retrying.
      const permanent =
        typeof e.responseCode === 'number' && e.responseCode >= 500 && e.responseCode < 600 && /recipient|mailbox|user/i.test(e.message);
      throw new DeliveryError(`SMTP: ${e.message}`, !permanent);
    }
    if (
      !info.accepted
        .map((a: unknown) => (typeof a === 'string' ? a : (a as { address: string }).address))
        .some((a: string) => a.toLowerCase() === to.toLowerCase())
    ) {
      throw new DeliveryError(`SMTP server did not accept ${to}: ${info.response}`);
    }
    return info.messageId;
  }

  close(): void {
    this.transport?.close();
    this.transport = null;
  }
}

/**
 * Each channel keeps its own connection pools: a pooled connection was checked against the
 * policy of the channel that opened it, and must not serve another's (tests run servers with
 * different policies in one process).
 */
interface Agents {
  http: http.Agent;
  https: https.Agent;
}

const newAgents = (): Agents => ({ http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) });

/** The part of an HTTP answer a channel uses. */
interface Answer {
  status: number;
  /** At most MAX_ANSWER bytes of the body: a provider's id is small, and the rest is never shown. */
  text: string;
}

const MAX_ANSWER = 64 * 1024;

/**
 * One POST to a provider or webhook, over node:http so that the socket's DNS lookup is the
 * target policy's (targets.ts): the address checked is the address connected to.
 * Redirects are not followed: the request carries credentials (basic auth, an API key
 * header, a signature), and a redirect would hand them to wherever the target points.
 * The target's answer body is never repeated in the error (it lands in the log, the
 * database and the API): only the status is.
 */
async function post(
  targets: TargetPolicy,
  agents: Agents,
  url: string,
  body: string,
  headers: Record<string, string>,
  what: string,
): Promise<Answer> {
  const u = new URL(url);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  // A literal address never goes through lookup: check it here.
  const literal = net.isIP(host) ? targets.refusal(host, host) : null;
  if (literal) throw new DeliveryError(`${what}: ${literal}`, false);
  let answer: Answer;
  try {
    answer = await new Promise<Answer>((resolve, reject) => {
      const req = (u.protocol === 'https:' ? https : http).request(
        u,
        {
          method: 'POST',
          headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
          lookup: targets.lookupFor(host),
          agent: u.protocol === 'https:' ? agents.https : agents.http,
          signal: AbortSignal.timeout(TIMEOUT_MS),
        },
        (res) => {
          const status = res.statusCode ?? 0;
          // A redirect's or an error's body is not read: nothing of it is used.
          if (status < 200 || status >= 300) {
            res.destroy();
            return resolve({ status, text: '' });
          }
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size <= MAX_ANSWER) chunks.push(c);
          });
          res.on('end', () => resolve({ status, text: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  } catch (err) {
    if (err instanceof TargetRefusedError) throw new DeliveryError(`${what}: ${err.message}`, false);
    const e = err as Error & { code?: string };
    throw new DeliveryError(
      `${what}: ${e.name === 'AbortError' || e.name === 'TimeoutError' ? `no answer within ${TIMEOUT_MS / 1000} s` : e.message}`,
    );
  }
  if (answer.status >= 300 && answer.status < 400) {
    // The configuration is wrong (or the target was taken over): retrying will not help.
    throw new DeliveryError(`${what}: HTTP ${answer.status}, a redirect, not followed (set the final URL)`, false);
  }
  if (answer.status < 200 || answer.status >= 300) {
    // 4xx other than 408/429 means the request itself is wrong: retrying will not help.
    const retryable = answer.status >= 500 || answer.status === 408 || answer.status === 429;
    throw new DeliveryError(`${what}: HTTP ${answer.status}`, retryable);
  }
  return answer;
}

/**
 * A generic HTTP SMS provider: POST JSON {from, to, text} with HTTP basic auth
 * and one extra header (an API key, say). The provider's message id is taken
 * from an "id" or "sid" member of the JSON reply when there is one.
 */
export class HttpSmsChannel implements HttpChannel<SmsSettings> {
  private readonly agents = newAgents();
  /** targets: where the POST may go (default: public addresses only). */
  constructor(private readonly targets = new TargetPolicy()) {}

  async send(s: SmsSettings, body: unknown): Promise<string> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (s.username) headers.authorization = `Basic ${Buffer.from(`${s.username}:${s.password ?? ''}`).toString('base64')}`;
    if (s.header?.value) headers[s.header.name.toLowerCase()] = s.header.value;
    const res = await post(
      this.targets,
      this.agents,
      s.url,
      JSON.stringify({ from: s.from, ...(body as object) }),
      headers,
      'SMS provider',
    );
    const reply = (() => {
      try {
        return JSON.parse(res.text) as { id?: unknown; sid?: unknown } | null;
      } catch {
        return null;
      }
    })();
    // Only an id that looks like one: the reply is the provider's text, shown in the API.
    const id = reply?.id ?? reply?.sid;
    return (typeof id === 'string' || typeof id === 'number') && /^[A-Za-z0-9._:-]{1,128}$/.test(String(id))
      ? String(id)
      : `http-${res.status}`;
  }
}

/** POSTs the notification as JSON; signed with HMAC-SHA256 when a secret is set. */
export class WebhookChannel implements HttpChannel<WebhookSettings> {
  private readonly agents = newAgents();
  /** targets: where the POST may go (default: public addresses only). */
  constructor(private readonly targets = new TargetPolicy()) {}

  async send(s: WebhookSettings, body: unknown): Promise<string> {
    const text = JSON.stringify(body);
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (s.secret) headers['x-e911-signature'] = `sha256=${createHmac('sha256', s.secret).update(text).digest('hex')}`;
    if (s.header?.value) headers[s.header.name.toLowerCase()] = s.header.value;
    const res = await post(this.targets, this.agents, s.url, text, headers, 'webhook');
    return `http-${res.status}`;
  }
}
