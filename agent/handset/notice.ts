// The emergency-services notice: on first start and after every address change the
// phone shows what 911 calls send (the address, the callback number) until the user
// acknowledges it with a key. Acknowledgement is stored and reported to the server.
// The notice never gates 911: the keypad dials whatever the notice's state.
import type { Logger } from '../../provisioning/common/log.js';
import type { NoticeState, StoredAddress } from '../store/store.js';
import type { EventFactory } from '../events/events.js';
import type { EventPayload } from '../../provisioning/protocol/messages.js';
import { formatAddressLines } from '../../provisioning/protocol/address.js';

export type { NoticeState };

export interface NoticeStore {
  noticeState(): NoticeState | null;
  /** Starts a new notice (a new address): not yet acknowledged. */
  saveNoticeShown(s: NoticeState): void;
  /** Stores the acknowledgement and queues its event, in one transaction. */
  saveNoticeAcknowledged(s: NoticeState, event: EventPayload): void;
}

export class EmergencyNotice {
  constructor(
    private readonly deps: {
      store: NoticeStore;
      log: Logger;
      newEvent: EventFactory;
      /** The acknowledgement's event is queued: send it. */
      wake: () => void;
      now?: () => Date;
      onChange?: () => void;
    },
  ) {}

  state(): NoticeState | null {
    return this.deps.store.noticeState();
  }

  /** Waiting for the user's key. */
  get pending(): boolean {
    const s = this.state();
    return s !== null && s.acknowledgedAt === null;
  }

  /**
   * At start and after each applied address: a notice for an address the user has not
   * seen begins (written once per address, not on every start: flash).
   */
  sync(address: StoredAddress | null): void {
    const s = this.state();
    const hash = address?.hash ?? null;
    if (s && s.addressHash === hash) return;
    const now = (this.deps.now ?? (() => new Date()))().toISOString();
    this.deps.store.saveNoticeShown({
      addressHash: hash,
      addressVersion: address?.version ?? null,
      shownAt: now,
      acknowledgedAt: null,
      acknowledgedVia: null,
    });
    this.deps.log.info({ addressVersion: address?.version ?? null }, 'emergency-services notice shown: waiting for the user');
    this.deps.onChange?.();
  }

  /** The user pressed the key (or a technician acknowledged for them). Idempotent. */
  acknowledge(via: 'keypad' | 'cli'): NoticeState | null {
    const s = this.state();
    if (!s || s.acknowledgedAt !== null) return s;
    const acked = { ...s, acknowledgedAt: (this.deps.now ?? (() => new Date()))().toISOString(), acknowledgedVia: via };
    this.deps.store.saveNoticeAcknowledged(acked, this.deps.newEvent('notice-acknowledged', { ...acked }));
    this.deps.wake();
    this.deps.log.info({ addressVersion: s.addressVersion, via }, 'emergency-services notice acknowledged');
    this.deps.onChange?.();
    return acked;
  }
}

/** The notice's text, before wrapping to the display. */
export function noticeLines(address: StoredAddress | null): string[] {
  if (!address) {
    return [
      'EMERGENCY 911 NOTICE',
      'No address is on file for this phone.',
      '911 calls still go out, but WITHOUT your location: tell responders where you are.',
      'Ask your administrator to assign one.',
      'Press OK to confirm you have read this.',
    ];
  }
  const d = address.doc;
  return [
    'EMERGENCY 911 NOTICE',
    '911 calls from this phone send this address to responders:',
    ...formatAddressLines(d.civic),
    `Callback ${d.callback} (${d.displayName})`,
    'If it is wrong, tell your administrator. You can still dial 911.',
    'Press OK to confirm.',
  ];
}
