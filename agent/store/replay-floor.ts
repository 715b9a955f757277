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
import { close, closeSync, existsSync, fsync, open, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
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
  /** The temporary file of the write under way. */
  private inFlight: string | null = null;
  private scheduled = false;
  private closed = false;
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

  /**
   * Raises a floor at once in memory. The file is written after this turn (the push's event
   * leaves first), its fsyncs in the thread pool, one write at a time.
   */
  raiseSoon(kind: FloorKind, version: number): void {
    if (!(version > this.floors[kind])) return;
    this.floors[kind] = version;
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.writeSoon();
    });
  }

  /** Writes what is not on disk yet, synchronously; later raises are written at once. */
  close(): void {
    this.closed = true;
    // A write under way: its file goes now (its fsync may still hold it open); nothing is created after close.
    if (this.inFlight) rmSync(this.inFlight, { force: true });
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
    if (this.inFlight) return; // written again when it ends
    const floors = { ...this.floors };
    const tmp = `${this.file}.tmp-${process.pid}-soon`;
    const failed = (err: unknown) => {
      rmSync(tmp, { force: true });
      this.log.error({ err: classifyStoreError(err, `cannot write the replay floor ${this.file}`), floors }, 'replay floor not written');
    };
    // Created and written on this thread (a small write to the page cache), so no file
    // appears in the folder after close(); the fsyncs, what takes milliseconds, in the pool.
    let fd: number;
    try {
      fd = openSync(tmp, 'w', 0o640);
    } catch (err) {
      failed(err);
      return;
    }
    this.inFlight = tmp;
    try {
      writeSync(fd, text(floors));
    } catch (err) {
      closeSync(fd);
      this.inFlight = null;
      failed(err);
      return;
    }
    fsync(fd, (err) => {
      closeSync(fd);
      this.inFlight = null;
      if (err) {
        failed(err);
        return;
      }
      // Renames only on this thread, newest last: a write overtaken by close() is dropped.
      if (covers(this.written, floors)) {
        rmSync(tmp, { force: true });
        return;
      }
      try {
        renameSync(tmp, this.file);
      } catch (e) {
        failed(e);
        return;
      }
      this.written = floors;
      if (!this.closed)
        syncDir(path.dirname(this.file), (e) => {
          // The file is in place; its folder entry reaches the disk with the next sync instead.
          if (e) this.log.warn({ err: e, file: this.file }, 'replay floor folder not synced');
        });
      // A raise while this one was written.
      this.writeSoon();
    });
  }
}

const text = (floors: Record<FloorKind, number>) => `${JSON.stringify({ v: 1, ...floors })}\n`;
const covers = (a: Record<FloorKind, number>, b: Record<FloorKind, number>) => a.address >= b.address && a.locations >= b.locations;

/** The folder's entry for the renamed file, to disk: in the pool. */
function syncDir(dir: string, done: (err: Error | null) => void): void {
  open(dir, 'r', (err, fd) => {
    if (err) return done(err);
    fsync(fd, (e) => {
      close(fd, () => done(e));
    });
  });
}
