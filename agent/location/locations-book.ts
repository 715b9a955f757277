// Applies the server's signed 'locations/set' push: the account's locations with
// their IP groups and switch ports, whether this user gets recommendations, and
// the assigned location. Verified with the same server key as address pushes;
// an older version is a replay. Kept in settings, written only when it changes.
import type { KeyObject } from 'node:crypto';
import type { Logger } from '../log.js';
import { decodePayload } from '../../provisioning/protocol/messages.js';
import { verifyDocument } from '../../provisioning/protocol/signing.js';
import type { LocationsDocument } from '../../provisioning/protocol/locations.js';

export interface SettingsStore {
  getSetting(key: string): string | undefined;
  setSetting(key: string, value: string): boolean;
  /** The highest locations version applied, surviving a reset of a corrupt store (the agent's Store). */
  replayFloor?(kind: 'locations'): number;
  raiseReplayFloor?(kind: 'locations', version: number): void;
}

export type LocationsPushOutcome =
  | { result: 'applied' | 'unchanged'; doc: LocationsDocument }
  | { result: 'rejected'; reason: string };

const KEY = 'locations.doc';

export class LocationsBook {
  private doc: LocationsDocument | null;

  constructor(
    private readonly deps: { store: SettingsStore; log: Logger; deviceId: string; serverKey: KeyObject },
  ) {
    const raw = deps.store.getSetting(KEY);
    this.doc = raw ? (JSON.parse(raw) as LocationsDocument) : null;
  }

  current(): LocationsDocument | null {
    return this.doc;
  }

  handlePush(payload: Buffer | string): LocationsPushOutcome {
    const d = decodePayload('locations/set', payload);
    if (!d.ok) return this.reject(d.reason);
    const { doc, sig } = d.value;
    if (!verifyDocument(doc, sig, this.deps.serverKey)) return this.reject('signature does not verify against the provisioned server key');
    if (doc.deviceId !== this.deps.deviceId) return this.reject(`document is for ${doc.deviceId}, this phone is ${this.deps.deviceId}`);
    if (this.doc && doc.version < this.doc.version) return this.reject(`version ${doc.version} is older than applied ${this.doc.version}`);
    const floor = this.deps.store.replayFloor?.('locations') ?? 0;
    if (!this.doc && doc.version < floor) return this.reject(`version ${doc.version} is older than ${floor}, applied before the store was reset`);
    const text = JSON.stringify(doc);
    if (this.doc && text === JSON.stringify(this.doc)) return { result: 'unchanged', doc };
    this.doc = doc;
    this.deps.store.setSetting(KEY, text);
    this.deps.store.raiseReplayFloor?.('locations', doc.version);
    this.deps.log.info({ version: doc.version, locations: doc.locations.length, recommendations: doc.recommendations }, 'locations applied');
    return { result: 'applied', doc };
  }

  private reject(reason: string): LocationsPushOutcome {
    this.deps.log.warn({ reason }, 'locations push rejected');
    return { result: 'rejected', reason };
  }
}
