// The anti-replay floor: the highest address and locations version this phone has
// applied, kept in a small file beside the store. A corrupt store is moved aside
// and a fresh one starts empty; without this file the phone would then accept any
// older signed push (a replay of an address it left behind). The file is written
// atomically with fsync (old or new, whole) and only when a floor rises (an
// administrator's change; a locations push's, off the main thread).
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../../provisioning/common/log.js';
import { writeFileAtomic, writeFileAtomicAsync } from '../../provisioning/common/atomic-file.js';
import { classifyStoreError } from '../errors.js';

export type FloorKind = 'address' | 'locations';
export const REPLAY_FLOOR_FILE = 'replay-floor.json';

export class ReplayFloor {
  readonly file: string;
  private readonly floors: Record<FloorKind, number> = { address: 0, locations: 0 };
  /** Whether the file was there at open (else the store seeds it from what it holds). */
  readonly found: boolean;
  /** Raises so far (a write knows whether the floors moved while it ran). */
  private raised = 0;
  /** The background write under way (raiseInBackground). */
  private writing: Promise<void> | null = null;

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
    } catch (err) {
      // Written atomically, so unreadable means damaged media or a hand edit: the store's own versions still hold.
      this.log.error({ err, file: this.file }, 'replay floor unreadable: using the versions in the store only');
    }
  }

  get(kind: FloorKind): number {
    return this.floors[kind];
  }

  /** Raises a floor (never lowers it); writes the file when it rose. */
  raise(kind: FloorKind, version: number): void {
    if (!(version > this.floors[kind])) return;
    this.floors[kind] = version;
    this.raised++;
    try {
      writeFileAtomic(this.file, this.text(), 0o640);
    } catch (err) {
      this.notWritten(err, kind, version);
    }
  }

  /**
   * Raises a floor at once (get() answers it) and writes the file off the main thread: a
   * locations push's two fsyncs and rename took 6 ms of its event loop (issue 14), more under
   * I/O load. Resolves once the file holds it (a failure is logged, never thrown).
   */
  raiseInBackground(kind: FloorKind, version: number): Promise<void> {
    if (!(version > this.floors[kind])) return this.writing ?? Promise.resolve();
    this.floors[kind] = version;
    this.raised++;
    // One background write at a time; a raise meanwhile is written by its loop.
    this.writing ??= this.writeUntilCurrent(kind, version).finally(() => (this.writing = null));
    return this.writing;
  }

  /**
   * Writes until the file holds the floors as they are: a raise during a write (this one's, or a
   * synchronous raise whose rename this write's may have overtaken) is written again after it.
   */
  private async writeUntilCurrent(kind: FloorKind, version: number): Promise<void> {
    let written = -1;
    while (written !== this.raised) {
      const at = this.raised;
      try {
        await writeFileAtomicAsync(this.file, this.text(), 0o640, 'bg');
      } catch (err) {
        this.notWritten(err, kind, version);
        return;
      }
      written = at;
    }
  }

  private text(): string {
    return `${JSON.stringify({ v: 1, ...this.floors })}\n`;
  }

  private notWritten(err: unknown, kind: FloorKind, version: number): void {
    // The store holds the version too: only a later reset of a corrupt store would miss it.
    this.log.error(
      { err: classifyStoreError(err, `cannot write the replay floor ${this.file}`), kind, version },
      'replay floor not written',
    );
  }
}
