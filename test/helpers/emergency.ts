// Helpers for the emergency-path integration tests and benchmark: reading what
// SIPp received, a silent route, a raw REGISTER, e911ctl as a process.
import dgram from 'node:dgram';
import { execFile } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';

function repoRoot(from: string): string {
  let dir = from;
  while (!existsSync(path.join(dir, 'package.json'))) dir = path.dirname(dir);
  return dir;
}
export const REPO = repoRoot(path.dirname(fileURLToPath(import.meta.url)));
export const E911CTL = path.join(REPO, 'dist/agent/cli/e911ctl.js');

/** A reason dist/ cannot be trusted for these sources (missing or older than them), or null. */
export function staleBuild(sources: string[]): string | null {
  for (const src of sources) {
    const js = path.join(REPO, 'dist', src.replace(/\.ts$/, '.js'));
    if (!existsSync(js)) return `${js} is missing: run \`npm run build\` (npm test does)`;
    if (statSync(js).mtimeMs < statSync(path.join(REPO, src)).mtimeMs) return `${js} is older than ${src}: run \`npm run build\``;
  }
  return null;
}

export interface SipMessage {
  direction: 'received' | 'sent';
  /** First line: request line or status line. */
  startLine: string;
  headers: { name: string; value: string }[];
  body: string;
  raw: string;
}

/** Parses SIPp's -trace_msg log into messages. */
export function parseSippLog(log: string): SipMessage[] {
  const out: SipMessage[] = [];
  const blocks = log.split(/^-{10,}[^\n]*\n/m);
  for (const b of blocks) {
    const m = /^(?:UDP|TCP|TLS|SCTP)? ?message (received|sent)[^\n]*\n\n?/i.exec(b);
    if (!m) continue;
    const raw = b.slice(m[0].length).replace(/\n+$/, '');
    const sep = raw.search(/\r?\n\r?\n/);
    const head = sep >= 0 ? raw.slice(0, sep) : raw;
    const body = sep >= 0 ? raw.slice(sep).replace(/^\r?\n\r?\n/, '') : '';
    const lines = head.split(/\r?\n/);
    const headers = lines.slice(1).flatMap((l) => {
      const i = l.indexOf(':');
      return i > 0 ? [{ name: l.slice(0, i).trim(), value: l.slice(i + 1).trim() }] : [];
    });
    out.push({ direction: m[1]!.toLowerCase() as 'received' | 'sent', startLine: lines[0]!.trim(), headers, body, raw });
  }
  return out;
}

export function hdr(msg: SipMessage, name: string): string | undefined {
  return msg.headers.find((h) => h.name.toLowerCase() === name.toLowerCase())?.value;
}

export function receivedInvites(log: string): SipMessage[] {
  return parseSippLog(log).filter(
    (m) => m.direction === 'received' && m.startLine.startsWith('INVITE ') && !hdr(m, 'To')?.includes('tag='),
  );
}

export interface BodyPartText {
  headers: { name: string; value: string }[];
  body: string;
}

/** Splits a multipart body by the boundary of the message's Content-Type. */
export function multipartParts(msg: SipMessage): BodyPartText[] {
  const ct = hdr(msg, 'Content-Type') ?? '';
  const boundary = /boundary="?([^";]+)"?/i.exec(ct)?.[1];
  if (!boundary) return [];
  const chunks = msg.body.split(`--${boundary}`).slice(1);
  const parts: BodyPartText[] = [];
  for (const chunk of chunks) {
    if (chunk.startsWith('--')) break;
    const c = chunk.replace(/^\r?\n/, '').replace(/\r?\n$/, '');
    const sep = c.search(/\r?\n\r?\n/);
    const head = sep >= 0 ? c.slice(0, sep) : '';
    const body = sep >= 0 ? c.slice(sep).replace(/^\r?\n\r?\n/, '') : c;
    const headers = head
      .split(/\r?\n/)
      .filter(Boolean)
      .map((l) => ({ name: l.slice(0, l.indexOf(':')).trim(), value: l.slice(l.indexOf(':') + 1).trim() }));
    parts.push({ headers, body });
  }
  return parts;
}

/** A UDP socket on loopback that records what arrives and never answers: a dead route. */
export async function silentUdp(port: number): Promise<{ messages: string[]; close: () => Promise<void> }> {
  const sock = dgram.createSocket('udp4');
  const messages: string[] = [];
  sock.on('message', (m) => messages.push(m.toString('utf8')));
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(port, '127.0.0.1', () => resolve());
  });
  return { messages, close: () => new Promise((r) => sock.close(() => r())) };
}

/** Registers user@127.0.0.1 -> contact at a registrar over UDP (no auth); resolves with the status code. */
export async function rawRegister(registrarPort: number, user: string, contact: string): Promise<number> {
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  const port = (sock.address() as { port: number }).port;
  const id = randomUUID();
  const msg = [
    `REGISTER sip:127.0.0.1:${registrarPort} SIP/2.0`,
    `Via: SIP/2.0/UDP 127.0.0.1:${port};branch=z9hG4bK${id.slice(0, 8)};rport`,
    'Max-Forwards: 70',
    `From: <sip:${user}@127.0.0.1>;tag=${id.slice(9, 13)}`,
    `To: <sip:${user}@127.0.0.1>`,
    `Call-ID: ${id}@127.0.0.1`,
    'CSeq: 1 REGISTER',
    `Contact: <${contact}>`,
    'Expires: 600',
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
  try {
    return await new Promise<number>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no answer to REGISTER')), 3000);
      sock.on('message', (m) => {
        const code = Number(/^SIP\/2\.0 (\d{3})/.exec(m.toString())?.[1]);
        if (code >= 200) {
          clearTimeout(t);
          resolve(code);
        }
      });
      sock.send(msg, registrarPort, '127.0.0.1');
    });
  } finally {
    sock.close();
  }
}

// biome-ignore lint/suspicious/noExplicitAny: e911ctl's JSON result differs per command; the tests' assertions check its shape
type CtlResult = any;

/** Runs the real e911ctl (dist) with --json; resolves with its exit code and parsed answer. */
export function e911ctl(
  socketPath: string,
  ...args: string[]
): Promise<{ code: number; json: { ok: boolean; result?: CtlResult; error?: string }; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [E911CTL, '--json', '--socket', socketPath, ...args], { timeout: 10_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      try {
        resolve({ code, json: JSON.parse(stdout), stderr });
      } catch {
        reject(new Error(`e911ctl ${args.join(' ')} printed no JSON (exit ${code}): ${stdout}${stderr}`));
      }
    });
  });
}
