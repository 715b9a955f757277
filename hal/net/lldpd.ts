// LLDP-MED through lldpd. The agent runs its own lldpd as an LLDP-MED endpoint
// (class 3, `-M 3`, so the switch's fast start applies and a civic address
// arrives within a fraction of a second, as measured) on its own control socket,
// and follows `lldpcli -f json0 watch details`. The current neighbours are
// read once with `show neighbors details` at start and after any restart.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { HostPaths } from '../host.js';
import { HelperPids, helperCommand } from './helpers.js';
import { JsonObjectSplitter, parseNeighbors, parseWatchEvent, type LldpNeighbor } from './lldp-json.js';
import { compareCodeUnits } from '../compare.js';

export interface LldpEvents {
  /** The whole current neighbour list, after any change. */
  neighbors: [LldpNeighbor[]];
  /** A helper died while running; it is started again after retryInMs (the agent reports it). */
  'helper-exited': [{ helper: 'lldpd' | 'lldpcli watch'; code: number | null; signal: string | null; retryInMs: number }];
}

export interface LldpAgentOptions {
  host: HostPaths;
  log: Logger;
  /** lldpd control socket (also where lldpcli connects). */
  socketPath: string;
  /** Start our own lldpd; false uses one already running on socketPath. */
  runDaemon: boolean;
  /** Interfaces lldpd listens on; empty lets lldpd pick (all physical ones). */
  interfaces: readonly string[];
}

const RESTART_MIN_MS = 1000;
const RESTART_MAX_MS = 60_000;

export class LldpAgent extends EventEmitter<LldpEvents> {
  private daemon: ChildProcess | null = null;
  private watcher: ChildProcess | null = null;
  private stopped = true;
  private failures = 0;
  private daemonGone = false;
  private timers = new Set<NodeJS.Timeout>();
  private readonly table = new Map<string, LldpNeighbor>();
  readonly counters = { watchEvents: 0, daemonRestarts: 0, watchRestarts: 0 };
  /** lldpd and lldpcli watch, recorded beside the socket for the next agent to end if we die. */
  private readonly pids: HelperPids;

  constructor(private readonly opts: LldpAgentOptions) {
    super();
    this.pids = new HelperPids(`${opts.socketPath}.helpers.json`, opts.host.proc, opts.log);
  }

  neighbors(): LldpNeighbor[] {
    return [...this.table.values()].sort((a, b) => compareCodeUnits(a.iface + a.rid, b.iface + b.rid));
  }

  async start(): Promise<void> {
    this.stopped = false;
    mkdirSync(path.dirname(this.opts.socketPath), { recursive: true, mode: 0o755 });
    this.warnIfUnreachable();
    // Helpers an earlier agent left (killed before its own could stop them): a stale lldpd
    // holds the socket, and a new one would attach to it as "another instance".
    await this.pids.endStale();
    // stop() may come while we wait: nothing is spawned after it.
    if (this.stopped) return;
    if (this.opts.runDaemon) {
      this.startDaemon();
      await this.waitForSocket(5000);
      if (this.stopped) return;
    }
    this.startWatch();
    await this.reload();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    await Promise.all([terminate(this.watcher), terminate(this.daemon)]);
    this.watcher = this.daemon = null;
  }

  /** Reads the full neighbour list (used at start, after restarts, and on network changes). */
  async reload(): Promise<void> {
    const out = await this.lldpcli(['-f', 'json0', 'show', 'neighbors', 'details']).catch((err: Error) => {
      this.opts.log.warn({ err: err.message }, 'lldpcli show neighbors failed');
      return null;
    });
    if (out === null || this.stopped) return;
    let doc: unknown;
    try {
      doc = JSON.parse(out);
    } catch {
      return;
    }
    this.table.clear();
    for (const n of parseNeighbors(doc)) this.table.set(key(n), n);
    this.emitNeighbors();
  }

  private command(bin: string, args: string[]): [string, string[]] {
    const [cmd, ...rest] = [...this.opts.host.commandPrefix, bin, ...args];
    return [cmd!, rest];
  }

  private lldpcli(args: string[]): Promise<string> {
    const [cmd, rest] = this.command(this.opts.host.commands.lldpcli, ['-u', this.opts.socketPath, ...args]);
    return new Promise((resolve, reject) =>
      execFile(cmd, rest, { timeout: 5000, maxBuffer: 4 * 1024 * 1024 }, (err, stdout) => (err ? reject(err) : resolve(stdout))),
    );
  }

  private startDaemon(): void {
    const { host, log, socketPath, interfaces } = this.opts;
    const args = ['-d', '-M', '3', '-u', socketPath, ...(interfaces.length > 0 ? ['-I', interfaces.join(',')] : [])];
    const [cmd, rest] = helperCommand(host, host.commands.lldpd, args);
    const child = spawn(cmd, rest, { stdio: ['ignore', 'ignore', 'pipe'] });
    this.daemon = child;
    this.pids.add(child.pid);
    this.daemonGone = false;
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-1000)));
    child.on('error', (err) => {
      this.daemonGone = true;
      log.error({ err: err.message, cmd }, 'cannot run lldpd');
    });
    child.on('exit', (code, signal) => {
      this.pids.remove(child.pid);
      if (child === this.daemon) this.daemonGone = true;
      if (child !== this.daemon || this.stopped) return;
      this.counters.daemonRestarts++;
      log.warn({ code, signal, stderr: stderr.trim().split('\n').slice(-3) }, 'lldpd exited; restarting');
      this.helperExited('lldpd', code, signal);
      this.later(() => {
        this.startDaemon();
        void this.waitForSocket(5000).then(() => this.reload());
      });
    });
  }

  private startWatch(): void {
    const { log } = this.opts;
    const [cmd, rest] = helperCommand(this.opts.host, this.opts.host.commands.lldpcli, [
      '-u',
      this.opts.socketPath,
      '-f',
      'json0',
      'watch',
      'details',
    ]);
    const child = spawn(cmd, rest, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.watcher = child;
    this.pids.add(child.pid);
    const splitter = new JsonObjectSplitter();
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      for (const doc of splitter.feed(chunk)) this.onWatch(doc);
    });
    child.stderr!.resume();
    child.on('error', (err) => log.error({ err: err.message, cmd }, 'cannot run lldpcli watch'));
    child.on('exit', (code, signal) => {
      this.pids.remove(child.pid);
      if (child !== this.watcher || this.stopped) return;
      this.counters.watchRestarts++;
      log.warn({ code, signal }, 'lldpcli watch exited; restarting');
      this.helperExited('lldpcli watch', code, signal);
      this.later(() => {
        this.startWatch();
        void this.reload();
      });
    });
  }

  private onWatch(doc: unknown): void {
    const ev = parseWatchEvent(doc);
    if (!ev) return;
    this.counters.watchEvents++;
    this.failures = 0;
    for (const n of ev.neighbors) {
      if (ev.kind === 'deleted') this.table.delete(key(n));
      else this.table.set(key(n), n);
    }
    this.emitNeighbors();
  }

  /** lldpcli drops to the _lldpd user before it connects: a folder others cannot search hides the socket. */
  private warnIfUnreachable(): void {
    for (let dir = path.dirname(this.opts.socketPath); dir !== path.dirname(dir); dir = path.dirname(dir)) {
      const mode = statSync(dir, { throwIfNoEntry: false })?.mode;
      if (mode !== undefined && (mode & 0o001) === 0) {
        this.opts.log.warn(
          { dir, socket: this.opts.socketPath },
          'lldpcli (running as _lldpd) cannot search this folder: LLDP will not be read',
        );
        return;
      }
    }
  }

  /**
   * A listener that throws must not escape: from the watch's stdout handler it would be an
   * uncaught exception (the agent exits), from reload() an unhandled rejection. Logged; the
   * next change is delivered as usual.
   */
  private emitNeighbors(): void {
    try {
      this.emit('neighbors', this.neighbors());
    } catch (err) {
      this.opts.log.error({ err }, 'LLDP neighbours listener failed');
    }
  }

  /** Tells the agent, before later() schedules the restart (the same delay). */
  private helperExited(helper: 'lldpd' | 'lldpcli watch', code: number | null, signal: string | null): void {
    const retryInMs = Math.min(RESTART_MAX_MS, RESTART_MIN_MS * 2 ** Math.min(this.failures, 10));
    try {
      this.emit('helper-exited', { helper, code, signal, retryInMs });
    } catch (err) {
      // A listener's failure must not keep lldpd from being started again.
      this.opts.log.error({ err, helper }, 'helper-exited listener failed');
    }
  }

  private later(fn: () => void): void {
    const delay = Math.min(RESTART_MAX_MS, RESTART_MIN_MS * 2 ** Math.min(this.failures++, 10));
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (!this.stopped) fn();
    }, delay);
    this.timers.add(t);
  }

  private async waitForSocket(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.stopped && Date.now() < deadline) {
      if (existsSync(this.opts.socketPath)) return;
      if (this.opts.runDaemon && this.daemonGone) return; // it will be restarted, and waited for then
      await new Promise((r) => setTimeout(r, 20));
    }
    if (!this.stopped) this.opts.log.warn({ socket: this.opts.socketPath }, 'lldpd socket did not appear');
  }
}

function key(n: LldpNeighbor): string {
  return `${n.iface}#${n.rid}`;
}

async function terminate(child: ChildProcess | null): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 2000);
  await exited;
  clearTimeout(t);
}
