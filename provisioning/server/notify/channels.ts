// The three ways a notification leaves the server: SMTP (nodemailer), an HTTP
// SMS provider, and a webhook. Each send either resolves with the provider's id
// or throws; the notifier decides about retries.
import { createHmac } from 'node:crypto';
import net from 'node:net';
import nodemailer, { type Transporter } from 'nodemailer';
import type { SmsSettings, SmtpSettings, WebhookSettings } from '../validation.js';
import type { Notice } from './message.js';

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
  send(settings: SmtpSettings, to: string, notice: Pick<Notice, 'subject' | 'text' | 'html'>, headers?: Record<string, string>): Promise<string>;
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

  async send(s: SmtpSettings, to: string, notice: Pick<Notice, 'subject' | 'text' | 'html'>, headers: Record<string, string> = {}): Promise<string> {
    const t = this.transportFor(s);
    let info;
    try {
      info = await t.sendMail({ from: s.from, to, subject: notice.subject, text: notice.text, html: notice.html, headers });
    } catch (err) {
      const e = err as { message: string; responseCode?: number };
      // 5xx for the recipient is permanent; connection trouble and 4xx are worth retrying.
      const permanent = typeof e.responseCode === 'number' && e.responseCode >= 500 && e.responseCode < 600 && /recipient|mailbox|user/i.test(e.message);
      throw new DeliveryError(`SMTP: ${e.message}`, !permanent);
    }
    if (!info.accepted.map((a: unknown) => (typeof a === 'string' ? a : (a as { address: string }).address)).some((a: string) => a.toLowerCase() === to.toLowerCase())) {
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
 * One POST to a provider or webhook. Redirects are not followed: the request carries
 * credentials (basic auth, an API key header, a signature), and a redirect would hand them
 * to wherever the target points. The target's answer body is never repeated in the error
 * (it lands in the log, the database and the API): only the status is.
 */
async function post(url: string, body: string, headers: Record<string, string>, what: string): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(url, { method: 'POST', body, headers, redirect: 'manual', signal: AbortSignal.timeout(TIMEOUT_MS) });
  } catch (err) {
    throw new DeliveryError(`${what}: ${(err as Error).message}`);
  }
  if (res.status >= 300 && res.status < 400) {
    await res.body?.cancel().catch(() => undefined);
    // The configuration is wrong (or the target was taken over): retrying will not help.
    throw new DeliveryError(`${what}: HTTP ${res.status}, a redirect, not followed (set the final URL)`, false);
  }
  if (!res.ok) {
    await res.body?.cancel().catch(() => undefined);
    // 4xx other than 408/429 means the request itself is wrong: retrying will not help.
    const retryable = res.status >= 500 || res.status === 408 || res.status === 429;
    throw new DeliveryError(`${what}: HTTP ${res.status}`, retryable);
  }
  return res;
}

/**
 * A generic HTTP SMS provider: POST JSON {from, to, text} with HTTP basic auth
 * and one extra header (an API key, say). The provider's message id is taken
 * from an "id" or "sid" member of the JSON reply when there is one.
 */
export class HttpSmsChannel implements HttpChannel<SmsSettings> {
  async send(s: SmsSettings, body: unknown): Promise<string> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (s.username) headers.authorization = `Basic ${Buffer.from(`${s.username}:${s.password ?? ''}`).toString('base64')}`;
    if (s.header?.value) headers[s.header.name.toLowerCase()] = s.header.value;
    const res = await post(s.url, JSON.stringify({ from: s.from, ...(body as object) }), headers, 'SMS provider');
    const reply = (await res.json().catch(() => null)) as { id?: unknown; sid?: unknown } | null;
    // Only an id that looks like one: the reply is the provider's text, shown in the API.
    const id = reply?.id ?? reply?.sid;
    return (typeof id === 'string' || typeof id === 'number') && /^[A-Za-z0-9._:-]{1,128}$/.test(String(id)) ? String(id) : `http-${res.status}`;
  }
}

/** POSTs the notification as JSON; signed with HMAC-SHA256 when a secret is set. */
export class WebhookChannel implements HttpChannel<WebhookSettings> {
  async send(s: WebhookSettings, body: unknown): Promise<string> {
    const text = JSON.stringify(body);
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (s.secret) headers['x-e911-signature'] = `sha256=${createHmac('sha256', s.secret).update(text).digest('hex')}`;
    if (s.header?.value) headers[s.header.name.toLowerCase()] = s.header.value;
    const res = await post(s.url, text, headers, 'webhook');
    return `http-${res.status}`;
  }
}
