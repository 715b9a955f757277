// The anti-replay floor: the highest address and locations version this phone has
// applied, kept in a small file beside the store. A corrupt store is moved aside
// and a fresh one starts empty; without this file the phone would then accept any
// older signed push (a replay of an address it left behind). The file is written
// atomically with fsync (old or new, whole) and only when a floor rises, which is
// rare (an administrator's change).
// A push's raise is written off the main thread (raiseSoon): the two fsyncs took 8 ms
// a push on a loaded machine, most of push-to-applied and a block of the keypad's
// thread. Until it is on disk the store holds the version, and its next open raises
// the floor from it: only a crash within those milliseconds followed by a corrupt
// store at the next start would miss it. close() writes what is still pending.
import { existsSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../../provisioning/common/log.js';
import { writeFileAtomic } from '../../provisioning/common/atomic-file.js';
import { classifyStoreError } from '../errors.js';

export type FloorKind = 'address' | 'locations';
export const REPLAY_FLOOR_FILE = 'replay-floor.json';

export class ReplayFloor {
  readonly file: string;
  private readonly floors: Record<FloorKind, number> = { address: 0, locations: 0 };
  /** What the file holds (as read, or last renamed into place). */
  private written: Record<FloorKind, number> = { address: 0, locations: 0 };
  private writing = false;
  private closed = false;
  private writes = 0;
  /** Whether the file was there at open (else the store seeds it from what it holds). */
  readonly found: boolean;

  constructor(
    dataDir: string,
    private readonly log: Logger,
  ) {
    this.file = path.join(dataDir, REPLAY_FLOOR_FILE);
    this.found = existsSync(this.file);
    if (!this.found) return;
    try {
      const raw = JSON.parse(readFileSync(this.file, 'utf8')) as Partial<Record<FloorKind, unknown>>;
      for (const k of ['address', 'locations'] as const) {
        const v = raw[k];
        if (typeof v === 'number' && Number.isSafeInteger(v) && v > 0) this.floors[k] = v;
      }
      this.written = { ...this.floors };
    } catch (err) {
      // Written atomically, so unreadable means damaged media or a hand edit: the store's own versions still hold.
      this.log.error({ err, file: this.file }, 'replay floor unreadable: using the versions in the store only');
    }
  }

  get(kind: FloorKind): number {
    return this.floors[kind];
  }

  /** Raises a floor (never lowers it); writes the file now when it rose (the store's open). */
  raise(kind: FloorKind, version: number): void {
    if (!(version > this.floors[kind])) return;
    this.floors[kind] = version;
    this.writeNow();
  }

  /** Raises a floor at once in memory; the file is written through the thread pool, one write at a time. */
  raiseSoon(kind: FloorKind, version: number): void {
    if (!(version > this.floors[kind])) return;
    this.floors[kind] = version;
    this.writeSoon();
  }

  /** Writes what is not on disk yet, synchronously; later raises are written at once. */
  close(): void {
    this.closed = true;
    if (!covers(this.written, this.floors)) this.writeNow();
  }

  private writeNow(): void {
    const floors = { ...this.floors };
    try {
      writeFileAtomic(this.file, text(floors), 0o640);
      this.written = floors;
    } catch (err) {
      // The store holds the version too: only a later reset of a corrupt store would miss it.
      this.log.error({ err: classifyStoreError(err, `cannot write the replay floor ${this.file}`), floors }, 'replay floor not written');
    }
  }

  private writeSoon(): void {
    if (covers(this.written, this.floors)) return;
    if (this.closed) {
      this.writeNow();
      return;
    }
    if (this.writing) return;
    this.writing = true;
    const floors = { ...this.floors };
    const tmp = `${this.file}.tmp-${process.pid}-${++this.writes}`;
    void writeSynced(tmp, text(floors))
      .then(async () => {
        // Renames only on this thread, newest last: a write overtaken by close() is dropped.
        if (covers(this.written, floors)) return rmSync(tmp, { force: true });
        renameSync(tmp, this.file);
        this.written = floors;
        await syncDir(path.dirname(this.file));
      })
      .catch((err: unknown) => {
        rmSync(tmp, { force: true });
        this.log.error({ err: classifyStoreError(err, `cannot write the replay floor ${this.file}`), floors }, 'replay floor not written');
      })
      .finally(() => {
        this.writing = false;
        // A raise while this one was written. After a failure the next raise (or close) tries again, not a loop.
        if (covers(this.written, floors)) this.writeSoon();
      });
  }
}

const text = (floors: Record<FloorKind, number>) => `${JSON.stringify({ v: 1, ...floors })}\n`;
const covers = (a: Record<FloorKind, number>, b: Record<FloorKind, number>) => a.address >= b.address && a.locations >= b.locations;

async function writeSynced(file: string, data: string): Promise<void> {
  const fh = await open(file, 'w', 0o640);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
