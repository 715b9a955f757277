// Where 'locations/set' pushes are verified: a worker thread made by the
// composition root (the agent), or inline (unit tests, the location harness).
// The worker (a whole V8 isolate, about 11 MB of RSS once it has verified) is
// started by a push and ended `idleMs` after the last answer: pushes are rare.
// The main thread only moves the payload to the worker (ownBytes) and takes back
// the verdict, the small head and the parts: the costly JSON, schema,
// canonical form and signature (about 0.4 s for 2 MiB on x86-64) run beside it.
import { Worker } from 'node:worker_threads';
import type { KeyObject } from 'node:crypto';
import type { Logger } from '../../provisioning/common/log.js';
import { E911Error } from '../errors.js';
import { verifyLocationsPush, type AppliedLocations, type VerifiedLocations } from './locations-verify.js';

export interface LocationsVerifier {
  /**
   * Never rejects for bad input (that is an outcome); rejects with LocationsVerifierError when the verifier itself failed.
   * The payload's memory may be moved to the worker (ownBytes): the caller must not read it afterwards.
   * A streamed payload is verified by the verifier that took it in (openStream).
   */
  verify(payload: LocationsPayload, current: AppliedLocations | null): Promise<VerifiedLocations>;
  close(): Promise<void>;
}

/**
 * Takes a payload that arrives in pieces (the link takes a large push's body off the socket as
 * it comes, publish-framer.ts): the worker verifier never assembles it on the main thread.
 */
export interface StreamingLocationsVerifier extends LocationsVerifier {
  openStream(length: number): PayloadStream;
}

/** A push's payload: whole (bytes or text), or streamed into the verifier as it arrived. */
export type LocationsPayload = Buffer | string | StreamedPayload;

/** A payload taken in piece by piece; verified once (verify), or released unread. */
export interface StreamedPayload {
  readonly kind: 'streamed';
  readonly length: number;
  /** Frees what the verifier holds for it (a push superseded, or never delivered). */
  release(): void;
}

export interface PayloadStream {
  /** A piece of the payload: valid only during the call (copied). */
  write(chunk: Uint8Array): void;
  end(): StreamedPayload;
  /** The payload will not be completed (the connection closed). */
  abort(): void;
}

export function isStreamed(p: LocationsPayload): p is StreamedPayload {
  return typeof p === 'object' && !Buffer.isBuffer(p) && (p as StreamedPayload).kind === 'streamed';
}

/** The verifier could not answer (its worker failed to load, ran out of memory, or threw). */
export class LocationsVerifierError extends E911Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super('locations-verifier-failed', message, options);
  }
}

/** How to start the worker: its compiled file, or (in the single-executable bundle) its code. */
export type WorkerScript = { kind: 'file'; url: URL | string } | { kind: 'code'; code: string };

/** Given to the worker once, at its start. */
export interface WorkerSetup {
  deviceId: string;
  serverPublicKey: string;
  /** How the parts come back: UTF-8 bytes in one moved buffer (default), or strings (the benchmark's A/B). */
  partsAs?: 'bytes' | 'strings';
}
export interface WorkerRequest {
  id: number;
  /** The payload, or the id of a stream the worker took in (WorkerStreamMessage). */
  payload: Uint8Array | string | { stream: number };
  current: AppliedLocations | null;
}
/** A streamed payload, piece by piece: begun with its length, then chunks (moved), or dropped. */
export type WorkerStreamMessage =
  | { stream: number; begin: number }
  | { stream: number; chunk: Uint8Array }
  | { stream: number; drop: true };
export type WorkerReply = { id: number; outcome: VerifiedLocations; niceRefused?: string } | { id: number; error: string };

export interface WorkerVerifierDeps {
  /** A function is called only when a worker starts: the bundle's code string is not made until then. */
  script: WorkerScript | (() => WorkerScript);
  deviceId: string;
  serverPublicKey: string;
  log: Logger;
  /** Heap cap of the worker (MB): a push that needs more fails alone, the agent's heap is not touched. */
  maxHeapMb?: number;
  partsAs?: WorkerSetup['partsAs'];
  /** From the last answer, with nothing waiting, to the end of the worker (ms; default 30 s). */
  idleMs?: number;
}

/** The size of the pieces a stream is copied into and moved to the worker in. */
const STREAM_PIECE = 64 * 1024;

interface Waiting {
  /** The worker asked: only its own failure rejects this request, not a later worker's. */
  worker: Worker;
  resolve: (v: VerifiedLocations) => void;
  reject: (e: Error) => void;
}

/**
 * One worker thread, started by a push and ended when idle; started again by the
 * next push, or after it died (a failed push is reported, the next one gets a new
 * worker). Answers in order.
 */
export class WorkerLocationsVerifier implements StreamingLocationsVerifier {
  private worker: Worker | null = null;
  private nextId = 1;
  private readonly waiting = new Map<number, Waiting>();
  private closed = false;
  private niceWarned = false;
  private idleTimer: NodeJS.Timeout | null = null;
  private startCount = 0;
  private nextStream = 1;
  /** Streams ended and not verified or released yet: the worker holds their bytes. */
  private readonly streams = new WeakMap<StreamedPayload, { id: number; worker: Worker | null; error: string | null; done: () => void }>();
  /** Streams opened and not yet verified, released or aborted: the worker holds their bytes, so it must not end idle. */
  private openStreams = 0;

  constructor(private readonly deps: WorkerVerifierDeps) {}

  /**
   * The payload goes to the worker as it arrives, copied into pieces of 64 KiB that are moved
   * (one small copy per piece on the main thread, no 2 MiB allocation). The worker holds the
   * bytes until verify or release. A worker that cannot start, or dies meanwhile, fails the
   * verify that follows (verifier-failed), not the write.
   */
  openStream(length: number): PayloadStream {
    const id = this.nextStream++;
    let worker: Worker | null = null;
    let error: string | null = null;
    this.clearIdle();
    this.openStreams++;
    let settled = false;
    // Once per stream: the worker may end idle when nothing else holds it.
    const done = () => {
      if (settled) return;
      settled = true;
      this.openStreams--;
      if (this.waiting.size === 0 && this.openStreams === 0 && this.worker) this.armIdle();
    };
    try {
      if (this.closed) throw new Error('the locations verifier is closed');
      worker = this.ensure();
      worker.postMessage({ stream: id, begin: length } satisfies WorkerStreamMessage);
    } catch (err) {
      error = `cannot start the locations worker: ${(err as Error).message}`;
      worker = null;
    }
    let piece: Uint8Array | null = null;
    let at = 0;
    let received = 0;
    const send = () => {
      if (!piece || at === 0) return;
      const full = at === piece.length ? piece : piece.slice(0, at);
      if (worker && worker === this.worker) {
        worker.postMessage({ stream: id, chunk: full } satisfies WorkerStreamMessage, [full.buffer as ArrayBuffer]);
      }
      piece = null;
      at = 0;
    };
    const drop = () => {
      if (worker && worker === this.worker) worker.postMessage({ stream: id, drop: true } satisfies WorkerStreamMessage);
    };
    return {
      write: (chunk) => {
        received += chunk.length;
        if (!worker) return;
        let k = 0;
        while (k < chunk.length) {
          piece ??= new Uint8Array(Math.min(STREAM_PIECE, Math.max(1, length - (received - chunk.length) - k)));
          const n = Math.min(piece.length - at, chunk.length - k);
          piece.set(chunk.subarray(k, k + n), at);
          at += n;
          k += n;
          if (at === piece.length) send();
        }
      },
      end: () => {
        send();
        if (received !== length) error ??= `the streamed payload has ${received} of ${length} bytes`;
        const handle: StreamedPayload = {
          kind: 'streamed',
          length,
          release: () => {
            if (!this.streams.has(handle)) return;
            this.streams.delete(handle);
            drop();
            done();
          },
        };
        this.streams.set(handle, { id, worker, error, done });
        return handle;
      },
      abort: () => {
        piece = null;
        drop();
        done();
      },
    };
  }

  verify(payload: LocationsPayload, current: AppliedLocations | null): Promise<VerifiedLocations> {
    if (this.closed) return Promise.reject(new LocationsVerifierError('the locations verifier is closed'));
    if (isStreamed(payload)) return this.verifyStreamed(payload, current);
    let worker: Worker;
    this.clearIdle();
    try {
      worker = this.ensure();
    } catch (err) {
      return Promise.reject(new LocationsVerifierError(`cannot start the locations worker: ${(err as Error).message}`, { cause: err }));
    }
    const id = this.nextId++;
    const bytes = typeof payload === 'string' ? payload : ownBytes(payload);
    return new Promise<VerifiedLocations>((resolve, reject) => {
      this.waiting.set(id, { worker, resolve, reject });
      const req: WorkerRequest = { id, payload: bytes, current };
      worker.postMessage(req, typeof bytes === 'string' ? [] : [bytes.buffer as ArrayBuffer]);
    });
  }

  private verifyStreamed(payload: StreamedPayload, current: AppliedLocations | null): Promise<VerifiedLocations> {
    const s = this.streams.get(payload);
    if (!s)
      return Promise.reject(new LocationsVerifierError('the streamed payload is not held by this verifier (released, or verified before)'));
    this.streams.delete(payload);
    if (s.error) {
      s.done();
      return Promise.reject(new LocationsVerifierError(s.error));
    }
    const worker = s.worker;
    // Its bytes went to a worker that is gone: they are lost with it.
    if (!worker || worker !== this.worker) {
      s.done();
      return Promise.reject(new LocationsVerifierError('the locations worker stopped while the push arrived: its bytes are lost'));
    }
    const id = this.nextId++;
    return new Promise<VerifiedLocations>((resolve, reject) => {
      this.waiting.set(id, { worker, resolve, reject });
      worker.postMessage({ id, payload: { stream: s.id }, current } satisfies WorkerRequest);
      // The request, not the stream, now keeps the worker from ending idle.
      s.done();
    });
  }

  /** Whether a worker thread is running now (status, tests). */
  get running(): boolean {
    return this.worker !== null;
  }

  /** Worker threads started so far (tests: one per busy period). */
  get starts(): number {
    return this.startCount;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.clearIdle();
    const w = this.worker;
    this.worker = null;
    this.failAll(new LocationsVerifierError('the locations verifier was closed'));
    if (w) await w.terminate();
  }

  private ensure(): Worker {
    if (this.worker) return this.worker;
    const { script, deviceId, serverPublicKey, log } = this.deps;
    const setup: WorkerSetup = { deviceId, serverPublicKey, ...(this.deps.partsAs ? { partsAs: this.deps.partsAs } : {}) };
    const options = {
      workerData: setup,
      resourceLimits: { maxOldGenerationSizeMb: this.deps.maxHeapMb ?? 96 },
    };
    const s = typeof script === 'function' ? script() : script;
    const w = s.kind === 'file' ? new Worker(s.url, options) : new Worker(s.code, { ...options, eval: true });
    // Never what keeps the agent alive: stop() ends it.
    w.unref();
    w.on('message', (m: WorkerReply) => {
      const waiting = this.waiting.get(m.id);
      if (!waiting) return;
      this.waiting.delete(m.id);
      if ('error' in m) waiting.reject(new LocationsVerifierError(`the locations worker failed: ${m.error.split('\n')[0]}`));
      else {
        if (m.niceRefused && !this.niceWarned) {
          this.niceWarned = true;
          log.warn({ reason: m.niceRefused }, 'locations worker could not lower its priority: it competes with the main thread');
        }
        waiting.resolve(m.outcome);
      }
      if (this.waiting.size === 0 && this.worker === w) this.armIdle();
    });
    w.on('error', (err) => {
      log.error({ err }, 'locations worker failed: pushes waiting for it are rejected; the next push starts a new one');
      if (this.worker === w) this.worker = null;
      this.failAll(new LocationsVerifierError(`the locations worker failed: ${err.message}`, { cause: err }), w);
    });
    w.on('exit', (code) => {
      if (this.worker === w) this.worker = null;
      // Late for a worker already replaced: it rejects only what it was asked.
      this.failAll(new LocationsVerifierError(`the locations worker exited (${code})`), w);
    });
    this.worker = w;
    this.startCount++;
    log.debug({ starts: this.startCount }, 'locations worker started');
    return w;
  }

  private armIdle(): void {
    this.clearIdle();
    this.idleTimer = setTimeout(() => {
      this.idleTimer = null;
      const w = this.worker;
      if (!w || this.waiting.size > 0 || this.openStreams > 0) return;
      // Nothing waits for it: its exit rejects nothing, the next push starts another.
      this.worker = null;
      this.deps.log.debug('locations worker ended: idle');
      w.terminate().catch((err: unknown) => this.deps.log.warn({ err }, 'idle locations worker did not stop cleanly'));
    }, this.deps.idleMs ?? 30_000);
    this.idleTimer.unref();
  }

  private clearIdle(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
  }

  /** Rejects the requests waiting for `worker`, or for any worker. */
  private failAll(err: Error, worker?: Worker): void {
    for (const [id, w] of [...this.waiting]) {
      if (worker && w.worker !== worker) continue;
      this.waiting.delete(id);
      w.reject(err);
    }
  }
}

/**
 * The payload as memory the worker may own, moved to it rather than cloned. A buffer that is
 * its whole ArrayBuffer (mqtt's big payloads are: its BufferList copies a packet spread over
 * several reads into one new allocation) is moved as it is: no 2 MiB copy on the main thread
 * (its external memory, counted by V8, brought full GCs forward), and the caller's Buffer is
 * left detached. One that shares its memory (a slice of a larger read, Node's pool for small
 * buffers) is copied: moving it would take the other data with it.
 */
export function ownBytes(payload: Uint8Array): Uint8Array {
  const whole = payload.byteOffset === 0 && payload.byteLength === payload.buffer.byteLength;
  // Buffers under Node's pool size may come from the pool, which cannot be moved: small, so copied.
  return whole && payload.byteLength > Buffer.poolSize && payload.buffer instanceof ArrayBuffer
    ? new Uint8Array(payload.buffer, 0, payload.byteLength)
    : new Uint8Array(payload);
}

/** The same verification on the calling thread: unit tests and the location test harness. */
export class InlineLocationsVerifier implements StreamingLocationsVerifier {
  constructor(private readonly deps: { deviceId: string; serverKey: KeyObject }) {}

  private readonly streams = new WeakMap<StreamedPayload, Buffer>();

  async verify(payload: LocationsPayload, current: AppliedLocations | null): Promise<VerifiedLocations> {
    if (isStreamed(payload)) {
      const bytes = this.streams.get(payload);
      if (!bytes) throw new LocationsVerifierError('the streamed payload is not held by this verifier (released, or verified before)');
      this.streams.delete(payload);
      return verifyLocationsPush(bytes, { ...this.deps, current });
    }
    return verifyLocationsPush(payload, { ...this.deps, current });
  }

  /** Assembled here, on the calling thread (tests and the harness). */
  openStream(length: number): PayloadStream {
    const pieces: Buffer[] = [];
    return {
      write: (chunk) => void pieces.push(Buffer.from(chunk)),
      end: () => {
        const handle: StreamedPayload = { kind: 'streamed', length, release: () => void this.streams.delete(handle) };
        this.streams.set(handle, Buffer.concat(pieces));
        return handle;
      },
      abort: () => void pieces.splice(0),
    };
  }

  async close(): Promise<void> {}
}
