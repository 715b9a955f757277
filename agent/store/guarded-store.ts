// The store as the location service sees it (observations written from event
// callbacks: LLDP, DHCP, HELD, network changes): a write that fails with a
// typed store error (a full disk, an I/O error) is reported through onFailure instead of thrown into an event callback, where it
// would be an uncaught exception and stop the agent. The event a write carried
// is handed to hold (kept in memory, written when the store takes writes again);
// the write reports "not written" (false), reads report nothing.
import { StoreError } from '../errors.js';
import type { EventPayload } from '../../provisioning/protocol/messages.js';
import type { Store } from './store.js';

export interface GuardedStoreDeps {
  onFailure: (err: StoreError) => void;
  hold: (event: EventPayload) => void;
}

export function guardedStore(store: Store, deps: GuardedStoreDeps): Store {
  const guard = <T>(fn: () => T, fallback: T, event?: EventPayload): T => {
    try {
      return fn();
    } catch (err) {
      if (!(err instanceof StoreError)) throw err;
      deps.onFailure(err);
      if (event) deps.hold(event);
      return fallback;
    }
  };
  // The location service's observations only: the locations push (LocationsBook, settings) handles
  // a failed write itself (a not-stored outcome) and must see it thrown.
  const wrapped: Partial<Store> = {
    recordObservation: (source, fingerprint, data, event) =>
      guard(() => store.recordObservation(source, fingerprint, data, event), false, event),
    getObservation: (source) => guard(() => store.getObservation(source), undefined),
  };
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (typeof prop === 'string' && prop in wrapped) return wrapped[prop as keyof Store];
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}
