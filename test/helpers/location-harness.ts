// Starts test/integration/harness/location-harness.ts inside a namespace and lets
// a test wait for the lines it prints.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { bundleEntry } from './bundle.js';
import type { NetNs } from './netns.js';
import { testKeys } from './address.js';

export type HarnessLine = { t: string; at: number } & Record<string, unknown>;

let bundled: Promise<string> | null = null;

export class LocationHarness {
  readonly lines: HarnessLine[] = [];
  private waiters: { pred: (l: HarnessLine) => boolean; resolve: (l: HarnessLine) => void; from: number }[] = [];
  private stderr = '';
  private constructor(
    private readonly child: ChildProcess,
    readonly dataDir: string,
  ) {
    createInterface({ input: child.stdout! }).on('line', (raw) => {
      const line = JSON.parse(raw) as HarnessLine;
      this.lines.push(line);
      const i = this.lines.length - 1;
      this.waiters = this.waiters.filter((w) => {
        if (i >= w.from && w.pred(line)) {
          w.resolve(line);
          return false;
        }
        return true;
      });
    });
    child.stderr!.on('data', (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-4000)));
  }

  /** extra: more harness config (address, emergency), see test/integration/harness/location-harness.ts. */
  static async start(
    ns: NetNs,
    network: unknown,
    env: Record<string, string> = {},
    keys = testKeys(),
    extra: Record<string, unknown> = {},
  ): Promise<LocationHarness> {
    bundled ??= bundleEntry('test/integration/harness/location-harness.ts', 'location-harness');
    const file = await bundled;
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'e911-harness-'));
    const cfg = { dataDir, deviceId: 'phone-1', serverPublicKey: keys.pair.publicKey, network, ...extra };
    const child = spawn('ip', ['netns', 'exec', ns.name, process.execPath, file, JSON.stringify(cfg)], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    const h = new LocationHarness(child, dataDir);
    await h.waitFor((l) => l.t === 'ready', 15_000, 0);
    return h;
  }

  /** Index of the next line: pass it to waitFor to see only what comes after now. */
  mark(): number {
    return this.lines.length;
  }

  waitFor(pred: (l: HarnessLine) => boolean, timeoutMs = 10_000, from = this.lines.length): Promise<HarnessLine> {
    const seen = this.lines.slice(from).find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const w = { pred, resolve, from };
      this.waiters.push(w);
      setTimeout(() => {
        if (!this.waiters.includes(w)) return;
        this.waiters = this.waiters.filter((x) => x !== w);
        reject(
          new Error(
            `harness line not seen within ${timeoutMs} ms; stderr: ${this.stderr}\nlast lines: ${this.lines
              .slice(-5)
              .map((l) => JSON.stringify(l).slice(0, 300))
              .join('\n')}`,
          ),
        );
      }, timeoutMs);
    });
  }

  since(from: number, t?: string): HarnessLine[] {
    return this.lines.slice(from).filter((l) => !t || l.t === t);
  }

  send(cmd: Record<string, unknown>): void {
    this.child.stdin!.write(`${JSON.stringify(cmd)}\n`);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise((r) => this.child.once('exit', r));
      this.send({ cmd: 'stop' });
      const t = setTimeout(() => this.child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    }
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}
