// The anti-replay floor: the highest address and locations version this phone has
// applied, kept in a small file beside the store. A corrupt store is moved aside
// and a fresh one starts empty; without this file the phone would then accept any
// older signed push (a replay of an address it left behind). The file is written
// atomically with fsync (old or new, whole) and only when a floor rises, which is
// rare (an administrator's change).
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../../provisioning/common/log.js';
import { writeFileAtomic } from '../../provisioning/common/atomic-file.js';
import { classifyStoreError } from '../errors.js';

export type FloorKind = 'address' | 'locations';
export const REPLAY_FLOOR_FILE = 'replay-floor.json';

export class ReplayFloor {
  readonly file: string;
  private readonly floors: Record<FloorKind, number> = { address: 0, locations: 0 };
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
    try {
      writeFileAtomic(this.file, `${JSON.stringify({ v: 1, ...this.floors })}\n`, 0o640);
    } catch (err) {
      // The store holds the version too: only a later reset of a corrupt store would miss it.
      this.log.error(
        { err: classifyStoreError(err, `cannot write the replay floor ${this.file}`), kind, version },
        'replay floor not written',
      );
    }
  }
}
