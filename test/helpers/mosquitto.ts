// A real Mosquitto broker on a free loopback port, for integration tests.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './ports.js';
import { stopProcess } from './process.js';

export const MOSQUITTO = ['/usr/sbin/mosquitto', '/usr/bin/mosquitto'].find((p) => existsSync(p));

export interface Mosquitto {
  port: number;
  url: string;
  dir: string;
  /** The broker's process id while it runs (its RSS is read from /proc). */
  pid(): number | null;
  /** Stops the broker (SIGTERM, then SIGKILL). */
  stop(): Promise<void>;
  /** Starts it again on the same port (after stop or kill). */
  restart(): Promise<void>;
  /** SIGKILL: no goodbye to anyone (chaos tests). */
  kill(): Promise<void>;
  /** Stops it and removes its folder. */
  close(): Promise<void>;
}

export interface MosquittoOptions {
  /** Extra lines for mosquitto.conf (ACLs, password file, ...). */
  extraConfig?: string[];
  /**
   * false: extraConfig opens the listener itself (the server's rendered configuration does,
   * since use_username_as_clientid belongs to a listener); its port must be `port`.
   */
  listener?: boolean;
  port?: number;
  /** Keep sessions and queued messages across restart() (saved in its folder). */
  persistence?: boolean;
}

export async function startMosquitto(opts: MosquittoOptions = {}): Promise<Mosquitto> {
  if (!MOSQUITTO) throw new Error('mosquitto is not installed (scripts/setup.sh installs it)');
  const port = opts.port ?? (await freePort());
  const dir = mkdtempSync(path.join(os.tmpdir(), 'e911-mosq-'));
  const conf = path.join(dir, 'mosquitto.conf');
  writeFileSync(
    conf,
    `${[
      // Stay root: Debian's broker otherwise drops to user mosquitto and cannot write here.
      'user root',
      ...(opts.listener === false ? [] : [`listener ${port} 127.0.0.1`, 'allow_anonymous true']),
      // Without it Nagle and delayed ACKs put ~40 ms into every QoS 1 round trip.
      'set_tcp_nodelay true',
      ...(opts.persistence ? ['persistence true', `persistence_location ${dir}/`, 'autosave_interval 1'] : ['persistence false']),
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      // Bursts in tests and benchmarks must not be silently dropped at the default 1000.
      'max_queued_messages 100000',
      'max_inflight_messages 0',
      ...(opts.extraConfig ?? []),
    ].join('\n')}\n`,
  );
  let child: ChildProcess | null = null;
  let stderr = '';
  const start = async () => {
    child = spawn(MOSQUITTO, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    await waitForPort(port, 5000, () => stderr);
  };
  await start();
  const stop = async () => {
    const c = child;
    child = null;
    await stopProcess(c);
  };
  return {
    port,
    url: `mqtt://127.0.0.1:${port}`,
    dir,
    pid: () => {
      const c = child as ChildProcess | null;
      return c && c.exitCode === null ? (c.pid ?? null) : null;
    },
    stop,
    restart: start,
    kill: async () => {
      const c = child;
      child = null;
      if (!c || c.exitCode !== null) return;
      const gone = new Promise((r) => c.once('exit', r));
      c.kill('SIGKILL');
      await gone;
    },
    close: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function waitForPort(port: number, timeoutMs: number, why: () => string = () => ''): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`nothing listening on 127.0.0.1:${port} after ${timeoutMs} ms ${why()}`);
}
