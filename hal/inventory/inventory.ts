// System inventory for `e911ctl status`: model, OS, CPU, memory, storage, from
// systeminformation. Its calls spawn many processes and block the thread that runs
// them for tens of milliseconds (measured), so they run once, a while after start,
// in a worker thread, and the result is cached. Never on the emergency path.
import { Worker } from 'node:worker_threads';
import { inventoryWorkerScript, type InventoryWorkerScript } from './inventory-worker-script.js';
import type { HalLogger } from '../log.js';

export interface SystemInventory {
  gatheredAt: string;
  ms: number;
  model: { manufacturer: string; model: string; version: string; serial: string; virtual: boolean };
  os: { platform: string; distro: string; release: string; kernel: string; arch: string; hostname: string };
  cpu: { manufacturer: string; brand: string; cores: number; physicalCores: number; speedGHz: number };
  memory: { totalBytes: number; availableBytes: number };
  storage: { mount: string; fs: string; type: string; sizeBytes: number; usedBytes: number }[];
  /** Calls that failed, by name. */
  errors: Record<string, string>;
}

export type InventoryState = { state: 'pending' } | { state: 'ready'; inventory: SystemInventory } | { state: 'failed'; error: string };

const CALLS = ['system', 'osInfo', 'cpu', 'mem', 'fsSize'] as const;
type Raw = Partial<Record<(typeof CALLS)[number], Record<string, unknown> | Record<string, unknown>[] | { error: string }>>;

/**
 * How the worker gets systeminformation. npm installs: from node_modules, resolved from the
 * `from` URL inside the worker (a package not found fails the inventory, never the agent).
 * The single executable has no node_modules: scripts/build-arm.mjs carries the package
 * bundled as a script that defines `si` (see inventory-worker-script.ts).
 */
export type { InventoryWorkerScript };

// Plain JavaScript run in the worker after `si` is defined: it only calls systeminformation
// and posts the raw results.
const WORKER_BODY = `
const { parentPort, workerData } = require('node:worker_threads');
(async () => {
  const out = {};
  for (const name of workerData.calls) {
    try { out[name] = await si[name](); } catch (e) { out[name] = { error: String((e && e.message) || e) }; }
  }
  parentPort.postMessage(out);
})();
`;

export function inventoryWorkerSource(script: InventoryWorkerScript): string {
  return script.kind === 'module'
    ? `const si = require('node:module').createRequire(${JSON.stringify(script.from)})('systeminformation');\n${WORKER_BODY}`
    : `${script.code}\n${WORKER_BODY}`;
}

/** Runs systeminformation in a worker thread; resolves with its raw results. */
export function gatherInWorker(script: InventoryWorkerScript = inventoryWorkerScript(), timeoutMs = 60_000): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(inventoryWorkerSource(script), {
      eval: true,
      workerData: { calls: CALLS },
      // Its own small heap: a runaway here must not take the agent's memory.
      resourceLimits: { maxOldGenerationSizeMb: 48 },
      stdout: true,
      stderr: true,
    });
    const timer = setTimeout(() => {
      void worker.terminate();
      reject(new Error(`inventory took longer than ${timeoutMs} ms`));
    }, timeoutMs);
    timer.unref();
    worker.once('message', (raw: Raw) => {
      clearTimeout(timer);
      void worker.terminate();
      resolve(raw);
    });
    worker.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    worker.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`inventory worker exited with ${code}`));
    });
  });
}

const str = (v: unknown): string => (typeof v === 'string' ? v : v === undefined || v === null ? '' : String(v));
const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

export function toInventory(raw: Raw, gatheredAt: Date, ms: number): SystemInventory {
  const errors: Record<string, string> = {};
  const obj = (name: (typeof CALLS)[number]): Record<string, unknown> => {
    const v = raw[name];
    if (v && !Array.isArray(v) && typeof v.error === 'string') {
      errors[name] = v.error;
      return {};
    }
    return (v && !Array.isArray(v) ? v : {}) as Record<string, unknown>;
  };
  const sys = obj('system');
  const os = obj('osInfo');
  const cpu = obj('cpu');
  const mem = obj('mem');
  // obj() records a failed fsSize call in errors; the list is then empty.
  if (!Array.isArray(raw.fsSize)) obj('fsSize');
  const fs = Array.isArray(raw.fsSize) ? raw.fsSize : [];
  return {
    gatheredAt: gatheredAt.toISOString(),
    ms: Math.round(ms),
    model: {
      manufacturer: str(sys.manufacturer),
      model: str(sys.model),
      version: str(sys.version),
      serial: str(sys.serial),
      virtual: sys.virtual === true,
    },
    os: {
      platform: str(os.platform),
      distro: str(os.distro),
      release: str(os.release),
      kernel: str(os.kernel),
      arch: str(os.arch),
      hostname: str(os.hostname),
    },
    cpu: {
      manufacturer: str(cpu.manufacturer),
      brand: str(cpu.brand),
      cores: num(cpu.cores),
      physicalCores: num(cpu.physicalCores),
      speedGHz: num(cpu.speed),
    },
    memory: { totalBytes: num(mem.total), availableBytes: num(mem.available) },
    storage: fs.map((f) => ({ mount: str(f.mount), fs: str(f.fs), type: str(f.type), sizeBytes: num(f.size), usedBytes: num(f.used) })),
    errors,
  };
}

export class InventoryCache {
  private value: InventoryState = { state: 'pending' };
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly deps: {
      log: HalLogger;
      delayMs: number;
      gather?: () => Promise<Raw>;
      now?: () => Date;
      /** A failed gathering is tried again after this, doubling up to retryMaxMs (defaults 60 s, 1 h). */
      retryMinMs?: number;
      retryMaxMs?: number;
      /** Told of each failed gathering (the agent reports it as part-failed). */
      onFailure?: (err: Error) => void;
    },
  ) {}
  /** Failed gatherings in a row: the backoff of the next try. */
  private failures = 0;
  private stopped = false;

  /** Gathers once, delayMs from now; the timer never keeps the process alive. */
  start(): void {
    this.stopped = false;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.refresh();
    }, this.deps.delayMs);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  current(): InventoryState {
    return this.value;
  }

  async refresh(): Promise<InventoryState> {
    const t0 = performance.now();
    try {
      const raw = await (this.deps.gather ?? gatherInWorker)();
      this.value = { state: 'ready', inventory: toInventory(raw, (this.deps.now ?? (() => new Date()))(), performance.now() - t0) };
      this.deps.log.info({ ms: Math.round(performance.now() - t0) }, 'system inventory gathered');
      this.failures = 0;
    } catch (err) {
      this.value = { state: 'failed', error: (err as Error).message };
      // Tried again with backoff (the worker may have died, the host been busy): never left failed for good.
      const retryInMs = Math.min(this.deps.retryMaxMs ?? 3_600_000, (this.deps.retryMinMs ?? 60_000) * 2 ** Math.min(this.failures++, 20));
      this.deps.log.warn({ err, retryInMs }, 'system inventory failed: tried again later');
      this.deps.onFailure?.(err as Error);
      if (!this.stopped && !this.timer) {
        this.timer = setTimeout(() => {
          this.timer = null;
          void this.refresh();
        }, retryInMs);
        this.timer.unref();
      }
    }
    return this.value;
  }
}
