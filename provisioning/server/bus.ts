// Live happenings inside the server, for the admin API's event stream (and the
// portal that reads it): emergency calls, job progress, phone state, deliveries.
import { EventEmitter } from 'node:events';
import { DEFAULT_ACCOUNT, type Job, type Notification, type StoredEvent } from './db/repo.js';
import type { EmergencyFacts } from './notify/message.js';

export interface BusEvents {
  emergency: [{ event: StoredEvent; facts: EmergencyFacts }];
  event: [StoredEvent];
  phone: [{ deviceId: string; change: 'status' | 'applied' | 'location' | 'mismatch' | 'disagreement' | 'issued' | 'notice' }];
  job: [Job];
  notification: [Notification];
  change: [{ entity: string; id: string | number | null; action: string }];
}

/**
 * Each happening belongs to the account it was emitted in (the repository's running account,
 * db/scope.ts): a listener reads emittingAccount while it runs, and the event stream passes
 * on only its own account's.
 */
export class Bus extends EventEmitter<BusEvents> {
  private emitting: string | null = null;

  constructor(private readonly accountOf: () => string = () => DEFAULT_ACCOUNT) {
    super();
    // Every open portal holds one listener per kind.
    this.setMaxListeners(0);
  }

  override emit<K extends keyof BusEvents>(event: K, ...args: BusEvents[K]): boolean {
    const outer = this.emitting;
    this.emitting = this.accountOf();
    try {
      return (super.emit as (e: K, ...a: BusEvents[K]) => boolean)(event, ...args);
    } finally {
      this.emitting = outer;
    }
  }

  /** The account of the happening being emitted (listeners run synchronously inside emit). */
  get emittingAccount(): string {
    return this.emitting ?? this.accountOf();
  }
}
