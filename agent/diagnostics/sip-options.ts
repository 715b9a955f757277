// A SIP OPTIONS ping (RFC 3261 11): does an emergency route answer at all?
// hal/voice's VoiceStack has no way to send an out-of-dialog request, so the
// diagnostics send this one themselves, over UDP or TCP. Any final response
// (200, 404, 405, 483...) means a SIP server is there; silence means it is not.
// Diagnostics only: never used on the emergency path.
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { lookup } from 'node:dns/promises';
import net from 'node:net';
import type { OptionsResult } from './types.js';

const URI = /^sips?:(?:[^@;]*@)?(\[[0-9a-f:.]+\]|[^:;]+)(?::(\d+))?((?:;[^;]*)*)$/i;

export interface OptionsTarget {
  host: string;
  port: number;
  transport: 'udp' | 'tcp' | 'tls';
}

export function parseSipTarget(uri: string): OptionsTarget | null {
  const m = URI.exec(uri.trim());
  if (!m) return null;
  const secure = /^sips:/i.test(uri.trim());
  const t = /;transport=(udp|tcp|tls)/i.exec(m[3] ?? '')?.[1]?.toLowerCase() as OptionsTarget['transport'] | undefined;
  const transport = secure ? 'tls' : (t ?? 'udp');
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port: m[2] ? Number(m[2]) : transport === 'tls' ? 5061 : 5060, transport };
}

function request(
  t: OptionsTarget,
  local: { address: string; port: number },
  transport: 'UDP' | 'TCP',
  ids: { branch: string; tag: string; callId: string },
): string {
  const hostPort = `${net.isIPv6(t.host) ? `[${t.host}]` : t.host}:${t.port}`;
  const localHP = `${net.isIPv6(local.address) ? `[${local.address}]` : local.address}:${local.port}`;
  return [
    `OPTIONS sip:${hostPort} SIP/2.0`,
    `Via: SIP/2.0/${transport} ${localHP};branch=${ids.branch};rport`,
    'Max-Forwards: 70',
    `From: <sip:e911-diagnostics@${localHP}>;tag=${ids.tag}`,
    `To: <sip:${hostPort}>`,
    `Call-ID: ${ids.callId}`,
    'CSeq: 1 OPTIONS',
    `Contact: <sip:e911-diagnostics@${localHP}>`,
    'Accept: application/sdp',
    'User-Agent: e911-agent diagnostics',
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
}

/** The status line of a response to our request (matched by Call-ID), or null. */
function parseResponse(text: string, callId: string): { code: number; reason: string } | null {
  const m = /^SIP\/2\.0 (\d{3}) ([^\r\n]*)\r\n/.exec(text);
  if (!m) return null;
  const cid = /\r\n(?:Call-ID|i)\s*:\s*([^\r\n]+)/i.exec(text)?.[1]?.trim();
  if (cid !== callId) return null;
  const code = Number(m[1]);
  return code >= 200 ? { code, reason: m[2]! } : null; // 1xx: keep waiting for the final one
}

export async function sipOptionsPing(uri: string, timeoutMs = 2000): Promise<OptionsResult> {
  const t = parseSipTarget(uri);
  if (!t) return { answered: false, error: `not a SIP URI: ${uri}` };
  if (t.transport === 'tls') return { answered: false, error: 'TLS routes are not pinged (no TLS client in diagnostics)' };
  let address: string;
  try {
    address = net.isIP(t.host) ? t.host : (await lookup(t.host)).address;
  } catch (err) {
    return { answered: false, error: `cannot resolve ${t.host}: ${(err as Error).message}` };
  }
  const ids = {
    branch: `z9hG4bK${randomBytes(8).toString('hex')}`,
    tag: randomBytes(4).toString('hex'),
    callId: `${randomBytes(10).toString('hex')}@e911-diag`,
  };
  const target = { ...t, host: address };
  return t.transport === 'udp' ? udpPing(target, ids, timeoutMs) : tcpPing(target, ids, timeoutMs);
}

function udpPing(t: OptionsTarget, ids: { branch: string; tag: string; callId: string }, timeoutMs: number): Promise<OptionsResult> {
  return new Promise((resolve) => {
    const sock = dgram.createSocket(net.isIPv6(t.host) ? 'udp6' : 'udp4');
    let timer: NodeJS.Timeout | undefined;
    let resend: NodeJS.Timeout | undefined;
    const done = (r: OptionsResult) => {
      clearTimeout(timer);
      clearInterval(resend);
      sock.close();
      resolve(r);
    };
    sock.on('error', (err) => done({ answered: false, error: err.message }));
    sock.on('message', (msg) => {
      const r = parseResponse(msg.toString('utf8'), ids.callId);
      if (r) done({ answered: true, ...r });
    });
    sock.connect(t.port, t.host, () => {
      const req = Buffer.from(request(t, sock.address(), 'UDP', ids));
      const send = () => sock.send(req);
      send();
      // RFC 3261 timer E, shortened: UDP may lose the first try.
      resend = setInterval(send, 500);
      timer = setTimeout(() => done({ answered: false, error: `no answer within ${timeoutMs} ms (UDP)` }), timeoutMs);
    });
  });
}

function tcpPing(t: OptionsTarget, ids: { branch: string; tag: string; callId: string }, timeoutMs: number): Promise<OptionsResult> {
  return new Promise((resolve) => {
    const sock = net.connect(t.port, t.host);
    let buf = '';
    const timer = setTimeout(() => done({ answered: false, error: `no answer within ${timeoutMs} ms (TCP)` }), timeoutMs);
    const done = (r: OptionsResult) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(r);
    };
    sock.on('error', (err) => done({ answered: false, error: err.message }));
    sock.on('connect', () => sock.write(request(t, { address: sock.localAddress ?? '0.0.0.0', port: sock.localPort ?? 0 }, 'TCP', ids)));
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => {
      buf += chunk;
      // Several responses may share the stream; look at each complete header block.
      for (let end = buf.indexOf('\r\n\r\n'); end >= 0; end = buf.indexOf('\r\n\r\n')) {
        const r = parseResponse(buf.slice(0, end + 4), ids.callId);
        buf = buf.slice(end + 4);
        if (r) return done({ answered: true, ...r });
      }
    });
  });
}
