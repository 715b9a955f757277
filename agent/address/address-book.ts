// Applies signed address pushes: verify, validate, compare versions, store.
// Anything wrong is rejected with a reason; the stored address is never touched then.
import type { KeyObject } from 'node:crypto';
import type { Logger } from '../../provisioning/common/log.js';
import type { Store, StoredAddress } from '../store/store.js';
import type { EventFactory } from '../events/events.js';
import { AddressRejectedError, type AddressRejectCode } from '../errors.js';
import { decodePayload } from '../../provisioning/protocol/messages.js';
import { validateAddress } from '../../provisioning/protocol/address.js';
import { documentHash, verifyDocument } from '../../provisioning/protocol/signing.js';

/** A real address push is about 1 KiB; a malformed one larger than this is called malformed without the signature check. */
const LOOSE_CHECK_MAX_BYTES = 8 * 1024;

export type PushOutcome =
  | { result: 'applied'; address: StoredAddress }
  | { result: 'unchanged'; address: StoredAddress }
  | { result: 'rejected'; code: AddressRejectCode; reason: string };

export interface AddressBookDeps {
  store: Store;
  log: Logger;
  deviceId: string;
  serverKey: KeyObject;
  newEvent: EventFactory;
  now?: () => Date;
}

export class AddressBook {
  private readonly now: () => Date;
  constructor(private readonly deps: AddressBookDeps) {
    this.now = deps.now ?? (() => new Date());
  }

  current(): StoredAddress | null {
    return this.deps.store.getAddress();
  }

  /** Handles one address/set payload. Never throws for bad input. */
  handlePush(payload: Buffer | string): PushOutcome {
    const receivedAt = this.now().toISOString();
    try {
      return this.apply(payload, receivedAt);
    } catch (err) {
      if (!(err instanceof AddressRejectedError)) throw err;
      const code = err.code as AddressRejectCode;
      this.deps.log.warn({ code, reason: err.message }, 'address push rejected; stored address kept');
      this.deps.store.enqueue(
        this.deps.newEvent('address-rejected', { code, reason: err.message, keptVersion: this.current()?.version ?? null }),
      );
      return { result: 'rejected', code, reason: err.message };
    }
  }

  private apply(payload: Buffer | string, receivedAt: string): PushOutcome {
    const reject = (code: AddressRejectCode, reason: string): never => {
      throw new AddressRejectedError(code, reason);
    };
    const decoded = decodePayload('address/set', payload);
    if (!decoded.ok) {
      // A push that fails the schema is still called forged or unsigned when it is,
      // so the server's operator sees the more serious reason first.
      // Only for a push of an address document's size: a 64 KiB one would cost the keypad
      // several ms of canonical JSON on the main thread (measured: 9 ms p50 on x86-64) to classify.
      const small = (typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length) <= LOOSE_CHECK_MAX_BYTES;
      const raw = small && (decoded.code === 'invalid' || decoded.code === 'unknown-version') ? parseLoosely(payload) : null;
      if (raw !== null && typeof raw === 'object') {
        const { sig, doc } = raw as { sig?: unknown; doc?: unknown };
        if (sig === undefined) reject('unsigned', `push carries no signature (${decoded.reason})`);
        if (typeof sig !== 'string' || !verifyDocument(doc, sig, this.deps.serverKey)) {
          reject('bad-signature', `signature does not verify (${decoded.reason})`);
        }
      }
      reject('malformed', decoded.reason);
    }
    const { doc, sig } = (decoded as Extract<typeof decoded, { ok: true }>).value;
    if (!verifyDocument(doc, sig, this.deps.serverKey))
      reject('bad-signature', 'signature does not verify against the provisioned server key');
    if (doc.deviceId !== this.deps.deviceId) reject('wrong-device', `document is for ${doc.deviceId}, this phone is ${this.deps.deviceId}`);
    const issues = validateAddress(doc);
    if (issues.length > 0) reject('invalid-address', issues.map((i) => `${i.field} ${i.reason}`).join('; '));

    const hash = documentHash(doc);
    const current = this.current();
    // Also with no address on file (a reset of a corrupt store): what was applied before it still counts.
    const floor = this.deps.store.replayFloor('address');
    if (doc.version < floor && (!current || current.version < floor))
      reject('stale-version', `version ${doc.version} is older than ${floor}, applied before the store was reset`);
    if (current) {
      if (doc.version < current.version) reject('stale-version', `version ${doc.version} is older than applied ${current.version}`);
      if (doc.version === current.version) {
        if (hash === current.hash) return { result: 'unchanged', address: current };
        reject('version-conflict', `version ${doc.version} already applied with different content`);
      }
    }
    const event = this.deps.newEvent('address-applied', { version: doc.version, hash, previousVersion: current?.version ?? null });
    const address = this.deps.store.applyAddress({ doc, version: doc.version, hash, signature: sig, receivedAt }, event);
    this.deps.log.info({ version: doc.version, hash }, 'address applied');
    return { result: 'applied', address };
  }
}

function parseLoosely(payload: Buffer | string): unknown {
  try {
    return JSON.parse(typeof payload === 'string' ? payload : payload.toString('utf8'));
  } catch {
    return null; // decodePayload reports the JSON error with its reason
  }
}
