// Real SIP peers for integration tests: SIPp (Debian sip-tester) as UAS or
// UAC, and Kamailio as registrar/proxy, each on free loopback ports, each in
// its own temp folder whose logs stay readable until close().
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './ports.js';
import type { VoiceEvents, VoiceStack } from '../../hal/voice/types.js';

export const SIPP = ['/usr/bin/sipp', '/usr/local/bin/sipp'].find((p) => existsSync(p));
export const KAMAILIO = ['/usr/sbin/kamailio', '/usr/local/sbin/kamailio'].find((p) => existsSync(p));

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

// ---- SIPp -----------------------------------------------------------------

export interface SippOptions {
  /** Scenario XML path (e.g. test/fixtures/sipp/uas-basic.xml). */
  scenario: string;
  /** UAC only: where to send, 'host:port'. */
  remote?: string;
  /** Local SIP port (default: a free one). */
  port?: number;
  /** Local media port, -mp (default: a free one). */
  mediaPort?: number;
  /** -t: 'u1' (UDP, default), 't1' (TCP, one socket), 'tn', ... */
  transport?: string;
  /** -m: calls to process before exiting (default 1). */
  calls?: number;
  /** -s: service (user part of the Request-URI) for a UAC. */
  service?: string;
  /** -key name value, available as [name] in the scenario. */
  keys?: Record<string, string | number>;
  /** -timeout: SIPp ends itself after this long (default 30 s). */
  timeoutSec?: number;
  extraArgs?: string[];
  /** Run inside this network namespace (ip netns exec); its own loopback. */
  netns?: string;
  /** Address SIPp sends from and listens on (default 127.0.0.1; any 127/8 address works on lo). */
  localIp?: string;
}

export interface Sipp {
  port: number;
  mediaPort: number;
  dir: string;
  /** -trace_msg file: every message SIPp sent and received. */
  messageFile: string;
  errorFile: string;
  /** -trace_logs file: <log> actions of the scenario. */
  logFile: string;
  /** Resolves when SIPp exits by itself (0 all calls ok, 1 some failed, 99 none, 254/255 fatal). */
  exited: Promise<ExitInfo>;
  messages(): string;
  errors(): string;
  logs(): string;
  output(): string;
  /** Stop it (SIGTERM, then SIGKILL) if still running; resolves with its exit. */
  stop(): Promise<ExitInfo>;
  /** stop() and remove its folder. */
  close(): Promise<void>;
}

export async function startSipp(opts: SippOptions): Promise<Sipp> {
  // SIPp binds RTP sockets at -mp and the ports after it (audio, video): only -mp was free when
  // chosen, so a neighbour taken meanwhile by another test fails the start. Another port then.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startSippOnce(opts, opts.mediaPort ?? (await freePort()));
    } catch (err) {
      const mediaClash = /Unable to bind (audio|video) RTP socket.*Address already in use/.test((err as Error).message);
      if (!mediaClash || opts.mediaPort !== undefined || attempt >= 3) throw err;
    }
  }
}

async function startSippOnce(opts: SippOptions, mediaPort: number): Promise<Sipp> {
  if (!SIPP) throw new Error('sipp is not installed (Debian package sip-tester; scripts/setup.sh installs it)');
  const port = opts.port ?? (await freePort());
  const dir = mkdtempSync(path.join(os.tmpdir(), 'e911-sipp-'));
  const messageFile = path.join(dir, 'messages.log');
  const errorFile = path.join(dir, 'errors.log');
  const logFile = path.join(dir, 'scenario.log');
  const args = [
    ...(opts.remote ? [opts.remote] : []),
    '-sf',
    path.resolve(opts.scenario),
    '-i',
    opts.localIp ?? '127.0.0.1',
    '-p',
    String(port),
    '-mi',
    opts.localIp ?? '127.0.0.1',
    '-mp',
    String(mediaPort),
    '-t',
    opts.transport ?? 'u1',
    '-m',
    String(opts.calls ?? 1),
    '-timeout',
    `${opts.timeoutSec ?? 30}s`,
    '-nostdin',
    '-trace_msg',
    '-message_file',
    messageFile,
    '-trace_err',
    '-error_file',
    errorFile,
    '-trace_logs',
    '-log_file',
    logFile,
    ...(opts.service ? ['-s', opts.service] : []),
    ...Object.entries(opts.keys ?? {}).flatMap(([k, v]) => ['-key', k, String(v)]),
    ...(opts.extraArgs ?? []),
  ];
  const child = opts.netns
    ? spawn('ip', ['netns', 'exec', opts.netns, SIPP, ...args], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(SIPP, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = exitOf(child);
  const read = (f: string) => (existsSync(f) ? readFileSync(f, 'utf8') : '');
  const sipp: Sipp = {
    port,
    mediaPort,
    dir,
    messageFile,
    errorFile,
    logFile,
    exited,
    messages: () => read(messageFile),
    errors: () => read(errorFile),
    logs: () => read(logFile),
    output: () => out,
    stop: () => stopChild(child, exited),
    close: async () => {
      await stopChild(child, exited);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  // A UAS is ready once its socket listens; a UAC needs no wait.
  if (!opts.remote) {
    const proto = (opts.transport ?? 'u1').startsWith('t') ? 'tcp' : 'udp';
    try {
      // ip netns exec execs SIPp: its /proc/<pid>/net shows the namespace's sockets.
      await waitListening(port, proto, 5000, exited, () => `sipp: ${out}\n${sipp.errors()}`, opts.netns ? child.pid : undefined);
    } catch (err) {
      await sipp.close();
      throw err;
    }
  }
  return sipp;
}

/**
 * A copy of test/fixtures/sipp/uas-refuse.xml that answers 100, then `code reason`, in dir:
 * SIPp checks status codes when it loads a scenario, so no -key can give one.
 */
export function refuseScenario(dir: string, code: number, reason: string): string {
  // From test/helpers or dist/test/helpers: the fixture lives in the source tree.
  let repo = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(repo, 'package.json'))) repo = path.dirname(repo);
  const template = path.join(repo, 'test/fixtures/sipp/uas-refuse.xml');
  const file = path.join(dir, `uas-refuse-${code}.xml`);
  writeFileSync(file, readFileSync(template, 'utf8').replace('SIP/2.0 CODE_AND_REASON', `SIP/2.0 ${code} ${reason}`));
  return file;
}

// ---- Kamailio ---------------------------------------------------------------

export interface KamailioOptions {
  /** Config file path (e.g. test/fixtures/kamailio/registrar.cfg); it must not set listen=. */
  cfg: string;
  /** SIP port for UDP and TCP on 127.0.0.1 (default: a free one). */
  port?: number;
  /** Pre-processor defines, -A NAME or -A NAME=VALUE (quote string values yourself: '"x"'). */
  defines?: Record<string, string | true>;
}

export interface Kamailio {
  port: number;
  dir: string;
  /** Resolves when it exits. */
  exited: Promise<ExitInfo>;
  /** Its stderr log (-E). */
  log(): string;
  stop(): Promise<ExitInfo>;
  close(): Promise<void>;
}

export async function startKamailio(opts: KamailioOptions): Promise<Kamailio> {
  if (!KAMAILIO) throw new Error('kamailio is not installed (scripts/setup.sh installs it)');
  const port = opts.port ?? (await freePort());
  const dir = mkdtempSync(path.join(os.tmpdir(), 'e911-kamailio-'));
  const args = [
    '-f',
    path.resolve(opts.cfg),
    '-Y',
    dir,
    '-P',
    path.join(dir, 'kamailio.pid'),
    '-w',
    dir,
    '-m',
    '64',
    '-M',
    '8',
    '-DD',
    '-E',
    '-l',
    `udp:127.0.0.1:${port}`,
    '-l',
    `tcp:127.0.0.1:${port}`,
    ...Object.entries(opts.defines ?? {}).flatMap(([k, v]) => ['-A', v === true ? k : `${k}=${v}`]),
  ];
  // Check the config first: a syntax error is easier to read this way.
  const check = spawnSync(KAMAILIO, ['-c', ...args], { encoding: 'utf8' });
  if (check.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`kamailio config check failed:\n${check.stderr}`);
  }
  const child = spawn(KAMAILIO, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const exited = exitOf(child);
  const k: Kamailio = {
    port,
    dir,
    exited,
    log: () => log,
    stop: () => stopChild(child, exited),
    close: async () => {
      await stopChild(child, exited);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await waitListening(port, 'udp', 10000, exited, () => `kamailio: ${log}`);
    await waitListening(port, 'tcp', 10000, exited, () => `kamailio: ${log}`);
  } catch (err) {
    await k.close();
    throw err;
  }
  return k;
}

// ---- VoiceStack events ---------------------------------------------------------

export type RecordedVoiceEvent = { [K in keyof VoiceEvents]: { type: K } & VoiceEvents[K] }[keyof VoiceEvents];

export interface VoiceRecorder {
  /** Every event since start (or the last clear()), in arrival order. */
  events: RecordedVoiceEvent[];
  of<K extends keyof VoiceEvents>(type: K): VoiceEvents[K][];
  /** The first event of this type (already recorded or yet to come) that matches. */
  waitFor<K extends keyof VoiceEvents>(type: K, match?: (e: VoiceEvents[K]) => boolean, timeoutMs?: number): Promise<VoiceEvents[K]>;
  clear(): void;
  /** Unsubscribe from the stack. */
  dispose(): void;
}

const VOICE_EVENT_TYPES: (keyof VoiceEvents)[] = [
  'registration',
  'incomingCall',
  'callState',
  'mediaState',
  'inviteResponse',
  'dtmf',
  'soundDevice',
];

/** Records a VoiceStack's events so a test can wait on them. */
export function recordVoice(stack: VoiceStack): VoiceRecorder {
  const events: RecordedVoiceEvent[] = [];
  const waiters = new Set<() => void>();
  const offs = VOICE_EVENT_TYPES.map((type) =>
    stack.on(type, (e) => {
      events.push({ type, ...e } as RecordedVoiceEvent);
      for (const w of [...waiters]) w();
    }),
  );
  const of = <K extends keyof VoiceEvents>(type: K): VoiceEvents[K][] =>
    events.filter((e) => e.type === type).map((e) => e as unknown as VoiceEvents[K]);
  return {
    events,
    of,
    waitFor<K extends keyof VoiceEvents>(type: K, match: (e: VoiceEvents[K]) => boolean = () => true, timeoutMs = 10000) {
      return new Promise<VoiceEvents[K]>((resolve, reject) => {
        const check = (): boolean => {
          const hit = of(type).find(match);
          if (!hit) return false;
          clearTimeout(timer);
          waiters.delete(check);
          resolve(hit);
          return true;
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          const seen = events.map((e) => JSON.stringify(e)).join('\n  ');
          reject(new Error(`no matching ${type} event within ${timeoutMs} ms; events so far:\n  ${seen}`));
        }, timeoutMs);
        if (!check()) waiters.add(check);
      });
    },
    clear: () => {
      events.length = 0;
    },
    dispose: () => {
      for (const off of offs) off();
    },
  };
}

// ---- shared -------------------------------------------------------------------

function exitOf(child: ChildProcess): Promise<ExitInfo> {
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.once('error', () => resolve({ code: null, signal: null }));
  });
}

async function stopChild(child: ChildProcess, exited: Promise<ExitInfo>): Promise<ExitInfo> {
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    const info = await exited;
    clearTimeout(timer);
    return info;
  }
  return exited;
}

/** Is something listening on 127.0.0.1:port? Read from /proc: probing by binding would steal the port. */
export function isListening(port: number, proto: 'udp' | 'tcp', pid?: number): boolean {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const net = pid === undefined ? '/proc/net' : `/proc/${pid}/net`;
  for (const file of [`${net}/${proto}`, `${net}/${proto}6`]) {
    if (!existsSync(file)) continue;
    for (const line of readFileSync(file, 'utf8').split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      const local = cols[1];
      if (!local?.endsWith(`:${hexPort}`)) continue;
      // TCP sockets must be in LISTEN (0A); UDP sockets are unconnected (07).
      if (proto === 'udp' || cols[3] === '0A') return true;
    }
  }
  return false;
}

async function waitListening(
  port: number,
  proto: 'udp' | 'tcp',
  timeoutMs: number,
  exited: Promise<ExitInfo>,
  detail: () => string,
  pid?: number,
): Promise<void> {
  let gone: ExitInfo | undefined;
  void exited.then((e) => (gone = e));
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (isListening(port, proto, pid)) return;
    if (gone) throw new Error(`exited (${gone.code ?? gone.signal}) before listening on ${proto}/${port}\n${detail()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`not listening on ${proto}/${port} after ${timeoutMs} ms\n${detail()}`);
}
