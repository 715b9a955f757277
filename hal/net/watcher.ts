// NetworkWatcher: event-driven from netlink through an `ip -o monitor` child
// (no native addon; the latency is the same as an rtnetlink socket's, see
// docs/network.md). The first netlink line of a burst is answered at once: a
// snapshot is read from cheap sources as soon as the lines already received are
// handled, and 'change' is emitted only if it differs from the last one. The line
// also opens a short window; lines within it are coalesced into one more read when
// it closes, so a burst costs at most one read per window. Nothing polls.
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { createInterface } from 'node:readline';
import type { Logger } from 'pino';
import type { HostPaths } from '../host.js';
import { helperCommand } from './helpers.js';
import { isRelevant, parseMonitorLine } from './ip-monitor.js';
import { hostSnapshotReader, type SnapshotReader } from './snapshot.js';
import type { ChangeReason, NetworkEvents, NetworkMonitor, NetworkSnapshot } from './types.js';

export interface NetworkWatcherDeps {
  host: HostPaths;
  log: Logger;
  /** Interface names to watch; empty watches every one but loopback. A trailing * matches a prefix. */
  interfaces: readonly string[];
  /** After a read, the window that coalesces the rest of a burst into one more read. */
  debounceMs: number;
  readSnapshot?: SnapshotReader;
}

/** Retries for a gateway whose MAC is not in the neighbour table yet (nothing else would tell us). */
const GATEWAY_MAC_RETRY_MS = [1000, 5000, 30_000];
const RESTART_MIN_MS = 500;
const RESTART_MAX_MS = 30_000;

export function interfaceFilter(names: readonly string[]): (iface: string) => boolean {
  if (names.length === 0) return (iface) => iface !== 'lo';
  return (iface) => names.some((n) => (n.endsWith('*') ? iface.startsWith(n.slice(0, -1)) : iface === n));
}

export class NetworkWatcher extends EventEmitter<NetworkEvents> implements NetworkMonitor {
  private snap: NetworkSnapshot | null = null;
  private snapText = '';
  private child: ChildProcess | null = null;
  private stopped = true;
  private restarts = 0;
  private restartTimer: NodeJS.Timeout | null = null;
  private windowTimer: NodeJS.Timeout | null = null;
  private leadingRead: NodeJS.Immediate | null = null;
  private macTimer: NodeJS.Timeout | null = null;
  private macAttempt = 0;
  private macFor = '';
  private pendingReasons = new Set<ChangeReason>();
  private firstEventAt = 0;
  private reading: Promise<void> | null = null;
  private readAgain = false;
  private readonly watches: (iface: string) => boolean;
  private readonly read: SnapshotReader;
  /** Netlink lines seen and snapshots taken, for status and benchmarks. */
  readonly counters = { lines: 0, relevant: 0, snapshots: 0, changes: 0, monitorRestarts: 0 };

  constructor(private readonly deps: NetworkWatcherDeps) {
    super();
    this.watches = interfaceFilter(deps.interfaces);
    this.read = deps.readSnapshot ?? hostSnapshotReader({ host: deps.host, watches: this.watches });
  }

  current(): NetworkSnapshot | null {
    return this.snap;
  }

  async start(): Promise<void> {
    this.stopped = false;
    // Monitor first, snapshot second: a change between the two is then never missed.
    this.spawnMonitor();
    this.firstEventAt = performance.now();
    this.pendingReasons.add('start');
    await this.takeSnapshot();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of [this.restartTimer, this.windowTimer, this.macTimer]) if (t) clearTimeout(t);
    this.restartTimer = this.windowTimer = this.macTimer = null;
    if (this.leadingRead) clearImmediate(this.leadingRead);
    this.leadingRead = null;
    const child = this.child;
    this.child = null;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    await this.reading;
  }

  refresh(): void {
    this.note('refresh');
  }

  private note(reason: ChangeReason): void {
    if (this.stopped) return;
    if (this.pendingReasons.size === 0) this.firstEventAt = performance.now();
    this.pendingReasons.add(reason);
    if (this.windowTimer || this.leadingRead) return; // coalesced into the read at the window's end
    // The first line of a burst: read once the lines of this chunk are handled (setImmediate runs
    // right after the I/O callback that delivered them), not after a delay.
    this.leadingRead = setImmediate(() => {
      this.leadingRead = null;
      this.openWindow();
      void this.takeSnapshot();
    });
  }

  private openWindow(): void {
    this.windowTimer = setTimeout(() => {
      this.windowTimer = null;
      if (this.stopped || this.pendingReasons.size === 0) return; // the burst was one chunk
      // Still in a burst: one more read, and a new window for whatever follows it.
      this.openWindow();
      void this.takeSnapshot();
    }, this.deps.debounceMs);
  }

  private spawnMonitor(): void {
    const { host, log } = this.deps;
    // With a parent-death signal: it dies with the agent, even on SIGKILL.
    const [cmd, args] = helperCommand(host, host.commands.ip, ['-o', 'monitor', 'link', 'address', 'route']);
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-500)));
    createInterface({ input: child.stdout! }).on('line', (line) => this.onLine(line));
    child.on('error', (err) => log.error({ err: err.message, cmd }, 'cannot run ip monitor'));
    child.on('exit', (code, signal) => {
      if (child !== this.child || this.stopped) return;
      this.child = null;
      this.counters.monitorRestarts++;
      const delay = Math.min(RESTART_MAX_MS, RESTART_MIN_MS * 2 ** Math.min(this.restarts++, 10));
      log.warn({ code, signal, stderr: stderr.trim(), retryMs: delay }, 'ip monitor exited; restarting');
      this.restartTimer = setTimeout(() => {
        this.restartTimer = null;
        if (this.stopped) return;
        this.spawnMonitor();
        this.refresh(); // whatever happened while it was down
      }, delay);
    });
  }

  private onLine(line: string): void {
    this.counters.lines++;
    this.restarts = 0;
    const m = parseMonitorLine(line);
    if (!m || !isRelevant(m, this.watches)) return;
    this.counters.relevant++;
    this.note(m.kind);
  }

  private takeSnapshot(): Promise<void> {
    if (this.reading) {
      this.readAgain = true;
      return this.reading;
    }
    const reasons = [...this.pendingReasons];
    const firstEventAt = this.firstEventAt;
    this.pendingReasons.clear();
    this.reading = (async () => {
      try {
        const snap = await this.read();
        this.counters.snapshots++;
        this.accept(snap, reasons, firstEventAt);
      } catch (err) {
        this.deps.log.warn({ err: (err as Error).message }, 'network snapshot failed');
      } finally {
        this.reading = null;
      }
      if (this.readAgain && !this.stopped) {
        this.readAgain = false;
        await this.takeSnapshot();
      }
    })();
    return this.reading;
  }

  private accept(snap: NetworkSnapshot, reasons: ChangeReason[], firstEventAt: number): void {
    const text = JSON.stringify(snap);
    this.scheduleGatewayMacRetry(snap);
    if (text === this.snapText) return;
    const previous = this.snap;
    this.snap = snap;
    this.snapText = text;
    this.counters.changes++;
    this.deps.log.debug({ reasons, interfaces: snap.interfaces.length, gateway4: snap.gateway4?.address ?? null }, 'network changed');
    this.emit('change', { snapshot: snap, previous, reasons, firstEventAt });
  }

  private scheduleGatewayMacRetry(snap: NetworkSnapshot): void {
    const gateways = `${snap.gateway4?.address ?? ''}|${snap.gateway6?.address ?? ''}`;
    if (gateways !== this.macFor) {
      // A new gateway gets its own round of retries.
      this.macFor = gateways;
      this.macAttempt = 0;
    }
    const missing = (snap.gateway4 && !snap.gateway4.mac) || (snap.gateway6 && !snap.gateway6.mac);
    if (!missing) {
      this.macAttempt = 0;
      return;
    }
    if (this.macTimer || this.macAttempt >= GATEWAY_MAC_RETRY_MS.length || this.stopped) return;
    const delay = GATEWAY_MAC_RETRY_MS[this.macAttempt++]!;
    this.macTimer = setTimeout(() => {
      this.macTimer = null;
      this.note('gateway-mac');
    }, delay);
    this.macTimer.unref();
  }
}
