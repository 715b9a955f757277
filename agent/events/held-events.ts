// Events the store could not take (it is away, or a write failed: disk full,
// permission): kept in memory, in order, and written when the store is back.
// Bounded; emergency and test-call events are never dropped.
import type { Logger } from '../../provisioning/common/log.js';
import { PROTECTED_EVENT_TYPES, type EventPayload } from '../../provisioning/protocol/messages.js';

/** What the held events need of the store. */
export interface HeldEventsStore {
  enqueue(event: EventPayload): boolean;
}

export class HeldEvents {
  private readonly events: EventPayload[] = [];
  /** Unprotected events dropped because the bound was reached. */
  dropped = 0;

  constructor(
    private readonly log: Logger,
    private readonly max = 1000,
  ) {}

  get size(): number {
    return this.events.length;
  }

  add(event: EventPayload): void {
    if (this.events.length >= this.max) {
      // Full: the oldest ordinary event goes, as in the outbox; a protected event is always kept.
      const i = this.events.findIndex((e) => !PROTECTED_EVENT_TYPES.has(e.type));
      if (i >= 0) this.events.splice(i, 1);
      else if (!PROTECTED_EVENT_TYPES.has(event.type)) {
        this.dropped++;
        this.log.warn({ id: event.id, type: event.type }, 'held events full of emergency events: event dropped');
        return;
      }
      if (i >= 0) this.dropped++;
    }
    this.events.push(event);
  }

  /** Writes held events in order; stops at the first failure (the rest stay). Returns how many were written. */
  flushInto(store: HeldEventsStore): number {
    let written = 0;
    while (this.events.length > 0) {
      try {
        store.enqueue(this.events[0]!);
      } catch (err) {
        this.log.error({ err, held: this.events.length }, 'held events still cannot be stored: kept in memory');
        break;
      }
      this.events.shift();
      written++;
    }
    return written;
  }
}
