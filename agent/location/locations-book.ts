// Applies the server's signed 'locations/set' push: the account's locations with
// their IP groups and switch ports, whether this user gets recommendations, and
// the assigned location. Verified with the same server key as address pushes;
// an older version is a replay.
//
// Never behind a big push (issue 14): a push may be 2 MiB. The verifier (a worker
// thread in the agent) does the JSON, schema and signature work; here the main
// thread only takes back the document in parts of about 64 KiB and, one part per
// turn of the event loop, stores it as its own settings row and compiles its rules
// into a compact index (locations-view.ts), so a keypad digit waits at most for one
// part. The parts stay as text: the parsed locations are not kept (see
// locations-view.ts for why), and are read again when one is shown or chosen. The new document becomes current in
// one small write (the pointer row) once every part is stored: a crash before
// it keeps the old document whole, and the rows left over are removed at load.
// Pushes are applied one at a time, in order; of those arriving meanwhile only
// the newest waits (a retained topic is state: the older ones are superseded).
import type { Logger } from '../../provisioning/common/log.js';
import type { LocationsDocument } from '../../provisioning/protocol/locations.js';
import {
  cutParts,
  type AppliedLocations,
  type LocationsHead,
  type LocationsRejectCode,
  type VerifiedLocations,
} from './locations-verify.js';
import { isStreamed, type LocationsPayload, type LocationsVerifier } from './locations-verifier.js';
import { CompactLocations, CompactLocationsBuilder, partText } from './locations-view.js';

export interface SettingsStore {
  getSetting(key: string): string | undefined;
  setSetting(key: string, value: string): boolean;
  /** The same write with the value as its UTF-8 bytes (no string made for it); where missing, setSetting is used. */
  setSettingUtf8?(key: string, utf8: Uint8Array): boolean;
  deleteSetting(key: string): boolean;
  settingKeys(prefix: string): string[];
  /** The highest locations version applied, surviving a reset of a corrupt store (where the store keeps one). */
  replayFloor?(kind: 'locations'): number;
  /** The floor rises at once; its file is written after this turn (replay-floor.ts). */
  raiseReplayFloor?(kind: 'locations', version: number): void;
}

export type LocationsPushOutcome =
  | { result: 'applied' | 'unchanged'; version: number }
  | { result: 'rejected'; code: LocationsRejectCode | 'verifier-failed' | 'not-stored'; reason: string }
  /** A newer push arrived while this one waited: it was never looked at. */
  | { result: 'superseded' };

/** The pointer row: which generation of parts is the current document. */
const KEY = 'locations.doc';
const PART_PREFIX = 'locations.part.';
const partKey = (gen: number, i: number) => `${PART_PREFIX}${gen}.${i}`;

interface Pointer {
  format: 2;
  gen: number;
  version: number;
  hash: string;
  head: LocationsHead;
  parts: number;
  count: number;
}

type Applied = AppliedLocations & { gen: number; parts: number };

export interface LocationsBookDeps {
  store: SettingsStore;
  log: Logger;
  verifier: LocationsVerifier;
  /** Lets the event loop run between parts (default setImmediate: I/O that is waiting goes first). */
  yieldTurn?: () => Promise<void>;
}

export class LocationsBook {
  private doc: CompactLocations | null = null;
  private applied: Applied | null = null;
  private readonly yieldTurn: () => Promise<void>;
  private loading: Promise<void> | null = null;
  private busy = false;
  private next: { payload: LocationsPayload; resolve: (o: LocationsPushOutcome) => void } | null = null;

  constructor(private readonly deps: LocationsBookDeps) {
    this.yieldTurn = deps.yieldTurn ?? (() => new Promise<void>((resolve) => setImmediate(resolve)));
  }

  /** The current document as the main thread keeps it (parts as text, a compact matcher index). */
  view(): CompactLocations | null {
    return this.doc;
  }

  /**
   * The current document whole, every location parsed: costly for a big one (tests,
   * diagnostics); the agent reads it through view().
   */
  current(): LocationsDocument | null {
    return this.doc ? ({ ...this.doc.head, locations: this.doc.all() } as LocationsDocument) : null;
  }

  /** Reads the stored document, a part per turn; removes parts a crash left behind. Once; pushes wait for it. */
  load(): Promise<void> {
    this.loading ??= this.readStored().catch((err: unknown) => {
      this.deps.log.error({ err }, 'stored locations could not be read: none until the server pushes them again');
      this.doc = null;
      this.applied = null;
      // Read again by the next push (the store may be back).
      this.loading = null;
    });
    return this.loading;
  }

  /** One locations/set payload. Never rejects: bad input, a failed verifier or store is an outcome. */
  handlePush(payload: LocationsPayload): Promise<LocationsPushOutcome> {
    if (!this.busy) return this.drive(payload);
    if (this.next) {
      this.deps.log.info('locations push superseded by a newer one before it was looked at');
      // A streamed one's bytes wait in the verifier (the worker): freed now.
      if (isStreamed(this.next.payload)) this.next.payload.release();
      this.next.resolve({ result: 'superseded' });
    }
    return new Promise((resolve) => (this.next = { payload, resolve }));
  }

  private async drive(payload: LocationsPayload): Promise<LocationsPushOutcome> {
    this.busy = true;
    let outcome: LocationsPushOutcome;
    try {
      outcome = await this.apply(payload);
    } catch (err) {
      this.deps.log.error({ err }, 'locations push not stored: the stored locations are kept');
      outcome = { result: 'rejected', code: 'not-stored', reason: `not stored: ${(err as Error).message}` };
    }
    const n = this.next;
    this.next = null;
    if (n) void this.drive(n.payload).then(n.resolve);
    else this.busy = false;
    return outcome;
  }

  private async apply(payload: LocationsPayload): Promise<LocationsPushOutcome> {
    await this.load();
    const { store, log } = this.deps;
    const before = this.applied;
    let v: VerifiedLocations;
    try {
      v = await this.deps.verifier.verify(payload, before ? { version: before.version, hash: before.hash } : null);
    } catch (err) {
      return this.reject('verifier-failed', `could not be verified: ${(err as Error).message}`);
    }
    if (!v.ok) return this.reject(v.code, v.reason);
    if (v.result === 'unchanged') return { result: 'unchanged', version: v.version };
    const floor = store.replayFloor?.('locations') ?? 0;
    if (!before && v.version < floor)
      return this.reject('stale-version', `version ${v.version} is older than ${floor}, applied before the store was reset`);
    // Past every generation in the store, not only the current one: after a failed load the
    // current one is unknown, and reusing a stored generation would mix its parts with ours.
    const gen = this.highestGen() + 1;
    // Indexed by the verifier (the worker): the parts are only stored here. Otherwise compiled here, a part per turn.
    const built = v.index ? null : new CompactLocationsBuilder();
    for (let i = 0; i < v.parts.length; i++) {
      await this.yieldTurn();
      // A part sent as bytes is written as bytes (no main-thread string for it); the view keeps the bytes.
      const part = v.parts[i]!;
      if (typeof part !== 'string' && store.setSettingUtf8) store.setSettingUtf8(partKey(gen, i), part);
      else store.setSetting(partKey(gen, i), partText(part));
      built?.addPart(partText(part));
    }
    await this.yieldTurn();
    // Checked before the switch: an index that does not fit its parts rejects the push (not-stored), the old document kept.
    const doc = built ? built.finish(v.head) : CompactLocations.fromIndex(v.head, v.parts, v.index!);
    const pointer: Pointer = { format: 2, gen, version: v.version, hash: v.hash, head: v.head, parts: v.parts.length, count: v.count };
    // The switch: one small row. Before it the old document is current, after it the new one.
    store.setSetting(KEY, JSON.stringify(pointer));
    this.applied = { version: v.version, hash: v.hash, gen, parts: v.parts.length };
    // Raised at once; its file is written after this turn, its fsyncs off the main thread.
    store.raiseReplayFloor?.('locations', v.version);
    this.doc = doc;
    log.info(
      { version: v.version, locations: v.count, parts: v.parts.length, recommendations: v.head.recommendations },
      'locations applied',
    );
    // After the switch the push is applied whatever happens to the old parts: rows left
    // over are removed at the next load.
    if (before && before.gen > 0) {
      try {
        await this.dropParts(before.gen, before.parts);
      } catch (err) {
        log.warn({ err, gen: before.gen }, 'parts of the replaced locations not removed yet: removed at the next start');
      }
    }
    return { result: 'applied', version: v.version };
  }

  private async readStored(): Promise<void> {
    const { store, log } = this.deps;
    const raw = store.getSetting(KEY);
    const parsed = raw ? (JSON.parse(raw) as Partial<Pointer> & Partial<LocationsDocument>) : null;
    if (parsed && parsed.format === 2) {
      const p = parsed as Pointer;
      const built = new CompactLocationsBuilder();
      for (let i = 0; i < p.parts; i++) {
        await this.yieldTurn();
        const part = store.getSetting(partKey(p.gen, i));
        if (part === undefined) throw new Error(`stored locations part ${i} of ${p.parts} is missing`);
        built.addPart(part);
      }
      this.doc = built.finish(p.head);
      this.applied = { version: p.version, hash: p.hash, gen: p.gen, parts: p.parts };
    } else if (parsed) {
      // Stored whole by an agent before this one: read once, kept as parts in memory (the next
      // push stores it in parts). No hash: the next push is applied even when it is the same document.
      const { locations, ...head } = parsed as LocationsDocument;
      const built = new CompactLocationsBuilder();
      for (const part of cutParts(locations)) {
        await this.yieldTurn();
        built.addPart(part);
      }
      this.doc = built.finish(head);
      this.applied = { version: head.version, hash: '', gen: 0, parts: 0 };
      log.info({ version: head.version }, 'locations stored whole by an earlier agent: kept until the next push');
    }
    // Parts of a push a crash interrupted, or of a document replaced before a crash.
    const keep = this.applied && this.applied.gen > 0 ? `${PART_PREFIX}${this.applied.gen}.` : null;
    for (const key of store.settingKeys(PART_PREFIX)) {
      if (keep && key.startsWith(keep)) continue;
      await this.yieldTurn();
      store.deleteSetting(key);
    }
  }

  private highestGen(): number {
    let highest = this.applied?.gen ?? 0;
    const pointer = this.deps.store.getSetting(KEY);
    if (pointer) {
      try {
        const g = (JSON.parse(pointer) as Partial<Pointer>).gen;
        if (typeof g === 'number' && g > highest) highest = g;
      } catch {
        // An unreadable pointer names no generation; the parts below still count.
      }
    }
    for (const key of this.deps.store.settingKeys(PART_PREFIX)) {
      const g = Number(key.slice(PART_PREFIX.length).split('.')[0]);
      if (Number.isInteger(g) && g > highest) highest = g;
    }
    return highest;
  }

  private async dropParts(gen: number, parts: number): Promise<void> {
    for (let i = 0; i < parts; i++) {
      await this.yieldTurn();
      this.deps.store.deleteSetting(partKey(gen, i));
    }
  }

  private reject(code: LocationsRejectCode | 'verifier-failed', reason: string): LocationsPushOutcome {
    this.deps.log.warn({ code, reason }, 'locations push rejected; the stored locations are kept');
    return { result: 'rejected', code, reason };
  }
}
