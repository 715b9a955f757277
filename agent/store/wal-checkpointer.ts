// Checkpoints of the store's WAL, run in a worker thread on its own connection
// (agent/store/checkpoint-worker.ts). SQLite's auto-checkpoint runs inside the
// commit that crosses 1000 WAL pages, on the committing thread: 20-47 ms of a
// stored locations part's write on the main thread, where a dialed 911 would
// wait. The store turns it off and notes its commits here; a PASSIVE checkpoint
// follows the first commit after the last one by `delayMs` (so writes come in
// batches, sparing the flash), and again while one leaves frames behind. A
// failed worker hands checkpoints back to SQLite (onFailure): the WAL stays bounded.
// The worker (a whole V8 isolate and node environment, about 9 MB of RSS) is
// started by the first checkpoint and ended `idleMs` after the last one: an idle
// phone writes nothing, so it carries no worker.
import { Worker } from 'node:worker_threads';
import type { Logger } from '../../provisioning/common/log.js';
import { E911Error } from '../errors.js';

/** How to start the worker: its compiled file, or (in the single-executable bundle) its code and the addon it loads. */
export type CheckpointWorkerScript = { kind: 'file'; url: URL | string } | { kind: 'code'; code: string; nativeBinding?: string };

/** Given to the worker once, at its start. */
export interface CheckpointSetup {
  file: string;
  nativeBinding?: string;
}
/** A checkpoint to run, or (close) the end of the worker: it closes its connection and exits. */
export type CheckpointRequest = { id: number } | { close: true };
export type CheckpointReply =
  | { id: number; busy: boolean; log: number; checkpointed: number; ms: number; niceRefused?: string }
  | { id: number; error: string }
  | { id: 0; ready: true };

/** One PASSIVE checkpoint: frames in the WAL, how many of them are now in the database, its duration in the worker. */
export interface CheckpointResult {
  busy: boolean;
  log: number;
  checkpointed: number;
  ms: number;
}

export interface CheckpointStats {
  /** 'worker' while the worker checkpoints; 'sqlite' after it failed (auto-checkpoint back on the main connection). */
  mode: 'worker' | 'sqlite';
  checkpoints: number;
  /** Frames in the WAL at the last checkpoint, and how many it left behind (a reader or a writer was ahead). */
  lastLog: number;
  lastLeft: number;
  longestMs: number;
  /** Whether a worker thread is alive now, and how many were started (one per busy period). */
  running: boolean;
  starts: number;
}

/** The checkpoint worker could not start or failed: the store falls back to SQLite's auto-checkpoint. */
export class WalCheckpointError extends E911Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super('wal-checkpoint-failed', message, options);
  }
}

export interface WalCheckpointerDeps {
  /** A function is called only when a worker starts: the bundle's code string is not made until then. */
  script: CheckpointWorkerScript | (() => CheckpointWorkerScript);
  /** The database file (not ':memory:'). */
  file: string;
  /** better_sqlite3.node's path when the agent was given one (the script's own otherwise). */
  nativeBinding?: string;
  log: Logger;
  /** From the first commit after a checkpoint to the next checkpoint (ms). */
  delayMs?: number;
  /** From the last checkpoint's answer, with no write since, to the end of the worker (ms; default 30 s). */
  idleMs?: number;
  /** Called once when the worker fails; checkpoints are then the caller's. */
  onFailure: (err: WalCheckpointError) => void;
}

export class WalCheckpointer {
  private worker: Worker | null = null;
  private readonly delayMs: number;
  private readonly idleMs: number;
  private timer: NodeJS.Timeout | null = null;
  private idleTimer: NodeJS.Timeout | null = null;
  private inFlight = false;
  private dirty = false;
  private failed = false;
  private closed = false;
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (r: CheckpointResult) => void; reject: (e: Error) => void }>();
  /** Workers told to close (idle) and not yet exited: close() ends them too. */
  private readonly ending = new Set<Worker>();
  private niceWarned = false;
  private readonly stats: CheckpointStats = {
    mode: 'worker',
    checkpoints: 0,
    lastLog: 0,
    lastLeft: 0,
    longestMs: 0,
    running: false,
    starts: 0,
  };

  constructor(private readonly deps: WalCheckpointerDeps) {
    this.delayMs = deps.delayMs ?? 1000;
    this.idleMs = deps.idleMs ?? 30_000;
  }

  private start(): Worker {
    const script = typeof this.deps.script === 'function' ? this.deps.script() : this.deps.script;
    const nativeBinding = this.deps.nativeBinding ?? (script.kind === 'code' ? script.nativeBinding : undefined);
    const setup: CheckpointSetup = { file: this.deps.file, ...(nativeBinding ? { nativeBinding } : {}) };
    // A few MB of heap at most: it only asks SQLite to checkpoint.
    const options = { workerData: setup, resourceLimits: { maxOldGenerationSizeMb: 16 } };
    const worker = script.kind === 'file' ? new Worker(script.url, options) : new Worker(script.code, { ...options, eval: true });
    // Never what keeps the agent alive.
    worker.unref();
    worker.on('message', (m: CheckpointReply) => {
      if (worker === this.worker) this.onReply(m);
    });
    worker.on('error', (err) => {
      if (worker === this.worker) this.fail(new WalCheckpointError(`the checkpoint worker failed: ${err.message}`, { cause: err }));
      // One told to close had nothing left to do: its failure costs no checkpoint, the next worker is a new one.
      else if (this.ending.has(worker)) this.deps.log.warn({ err }, 'idle checkpoint worker failed while closing');
    });
    worker.on('exit', (code) => {
      if (worker === this.worker) this.fail(new WalCheckpointError(`the checkpoint worker exited (${code})`));
      else if (this.ending.has(worker) && !this.closed) {
        if (code === 0) this.deps.log.debug('idle checkpoint worker exited');
        else this.deps.log.warn({ code }, 'idle checkpoint worker exited uncleanly');
      }
      this.ending.delete(worker);
    });
    this.worker = worker;
    this.stats.running = true;
    this.stats.starts++;
    this.deps.log.debug({ starts: this.stats.starts }, 'checkpoint worker started');
    return worker;
  }

  /** Idle: the worker closes its connection and exits; the next checkpoint starts another. */
  private stopIdle(): void {
    this.idleTimer = null;
    const w = this.worker;
    if (!w || this.inFlight || this.timer || this.failed || this.closed) return;
    this.worker = null;
    this.stats.running = false;
    this.ending.add(w);
    w.postMessage({ close: true } satisfies CheckpointRequest);
    this.deps.log.debug('checkpoint worker ended: idle');
  }

  private armIdle(): void {
    if (this.idleTimer || !this.worker) return;
    this.idleTimer = setTimeout(() => this.stopIdle(), this.idleMs);
    this.idleTimer.unref();
  }

  private clearIdle(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
  }

  /** A commit went into the WAL: a checkpoint follows within delayMs. Costs the caller a flag, or one timer. */
  noteWrite(): void {
    this.dirty = true;
    if (this.timer || this.inFlight || this.failed || this.closed) return;
    this.clearIdle();
    this.timer = setTimeout(() => {
      this.timer = null;
      this.run().catch(() => {
        // Already handled: fail() reports it once and hands checkpoints back.
      });
    }, this.delayMs);
    this.timer.unref();
  }

  /** A checkpoint now (tests, the benchmark); resolves when the worker answered. */
  checkpoint(): Promise<CheckpointResult> {
    return this.run();
  }

  get status(): CheckpointStats {
    return { ...this.stats };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.clearIdle();
    this.rejectAll(new WalCheckpointError('the checkpointer was closed'));
    const workers = [...this.ending, ...(this.worker ? [this.worker] : [])];
    this.worker = null;
    this.stats.running = false;
    await Promise.all(workers.map((w) => w.terminate()));
  }

  private run(): Promise<CheckpointResult> {
    if (this.failed || this.closed) return Promise.reject(new WalCheckpointError('the checkpointer is not running'));
    this.clearIdle();
    let worker: Worker;
    try {
      worker = this.worker ?? this.start();
    } catch (err) {
      const e = new WalCheckpointError(`cannot start the checkpoint worker: ${(err as Error).message}`, { cause: err });
      this.fail(e);
      return Promise.reject(e);
    }
    const id = this.nextId++;
    this.inFlight = true;
    this.dirty = false;
    return new Promise<CheckpointResult>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      worker.postMessage({ id } satisfies CheckpointRequest);
    });
  }

  private onReply(m: CheckpointReply): void {
    if ('ready' in m) return;
    const waiting = this.waiting.get(m.id);
    this.waiting.delete(m.id);
    this.inFlight = this.waiting.size > 0;
    if ('error' in m) {
      const err = new WalCheckpointError(`checkpoint failed: ${m.error.split('\n')[0]}`);
      waiting?.reject(err);
      this.fail(err);
      return;
    }
    if (m.niceRefused && !this.niceWarned) {
      this.niceWarned = true;
      this.deps.log.warn({ reason: m.niceRefused }, 'checkpoint worker could not lower its priority');
    }
    const s = this.stats;
    s.checkpoints++;
    s.lastLog = m.log;
    s.lastLeft = Math.max(0, m.log - m.checkpointed);
    s.longestMs = Math.max(s.longestMs, m.ms);
    waiting?.resolve({ busy: m.busy, log: m.log, checkpointed: m.checkpointed, ms: m.ms });
    // Frames left behind (a reader on an older snapshot): try again after the same delay.
    if (m.busy || s.lastLeft > 0) this.dirty = true;
    if (this.dirty && !this.inFlight) {
      this.dirty = false;
      this.noteWrite();
    }
    if (!this.inFlight && !this.timer) this.armIdle();
  }

  private fail(err: WalCheckpointError): void {
    if (this.failed || this.closed) return;
    this.failed = true;
    this.stats.mode = 'sqlite';
    this.stats.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.clearIdle();
    // A worker that answered with an error may still be alive: end it, its checkpoints are SQLite's now.
    const w = this.worker;
    this.worker = null;
    w?.terminate().catch((e: unknown) => this.deps.log.warn({ err: e }, 'failed checkpoint worker did not stop cleanly'));
    this.rejectAll(err);
    this.deps.onFailure(err);
  }

  private rejectAll(err: Error): void {
    for (const w of this.waiting.values()) w.reject(err);
    this.waiting.clear();
    this.inFlight = false;
  }
}
