// The emergency event made durable before the INVITE (decision 2). begin() runs
// on the call path: one prepared INSERT, no fsync, never a throw. complete()
// runs after the INVITE is out: the same event id with the call's details,
// synced, then released to the outbox drain. An event the store cannot take
// (store away, disk full) is kept in memory and written when the store is back.
import type { Logger } from '../../provisioning/common/log.js';
import type { EventFactory } from './events.js';
import type { EventPayload } from '../../provisioning/protocol/messages.js';
import type { EmergencyJournal } from '../emergency/service.js';

/** What the journal needs of the store (the agent's Store, or nothing while it is away). */
export interface JournalStore {
  /** payload: the event as JSON text when the caller has it already (the call path). */
  beginEmergencyEvent(event: EventPayload, payload?: string): void;
  completeEmergencyEvent(event: EventPayload): void;
}

/** What the journal needs of the outbox drain. */
export interface JournalDrain {
  wake(): void;
}

export class StoreEmergencyJournal implements EmergencyJournal {
  /** Events begun: id -> whether the store took the first write, and the first write. */
  private readonly open = new Map<string, { stored: boolean; first: EventPayload }>();
  /** Completed events the store could not take: written by flushPending() when it is back. */
  private readonly pending = new Map<string, EventPayload>();

  constructor(
    private readonly deps: {
      store: () => JournalStore | null;
      drain: () => JournalDrain | null;
      newEvent: EventFactory;
      log: Logger;
      /** An event is held in memory: the owner retries flushPending() later. */
      onHeld?: () => void;
    },
  ) {}

  begin(type: 'emergency-call' | 'test-call', data: Record<string, unknown>): string {
    return this.beginWith(this.deps.newEvent(type, data), undefined);
  }

  /** begin() with the data already as JSON text: the row is written as given, not serialised again. */
  beginJson(type: 'emergency-call' | 'test-call', dataJson: string): string {
    const event = this.deps.newEvent(type, {});
    // The envelope's own keys (v, id, type, deviceId, ts), then the data as given.
    const { data: _none, ...envelope } = event;
    const payload = `${JSON.stringify(envelope).slice(0, -1)},"data":${dataJson}}`;
    return this.beginWith(event, payload, dataJson);
  }

  private beginWith(event: EventPayload, payload: string | undefined, dataJson?: string): string {
    // The store keeps it apart from the outbox until complete(): the drain cannot send the first write.
    let stored = false;
    try {
      const store = this.deps.store();
      if (store) {
        store.beginEmergencyEvent(event, payload);
        stored = true;
      }
    } catch (err) {
      // Never stops the call: kept in memory, completed (and written) after the INVITE.
      this.deps.log.error({ err, eventId: event.id }, 'emergency event not stored before the INVITE: kept in memory');
    }
    if (!stored) {
      // Held in memory with its data (parsed only on this rare path).
      if (dataJson !== undefined) event.data = JSON.parse(dataJson) as Record<string, unknown>;
      this.pending.set(event.id, event);
      this.deps.onHeld?.();
    }
    this.open.set(event.id, { stored, first: event });
    return event.id;
  }

  complete(id: string, type: 'emergency-call' | 'test-call', data: Record<string, unknown>): void {
    const begun = this.open.get(id);
    this.open.delete(id);
    // Same id and timestamp as the first write: the server sees one event.
    const event: EventPayload = begun ? { ...begun.first, data: { ...data, recorded: 'complete' } } : { ...this.deps.newEvent(type, data), id };
    this.pending.set(id, event);
    this.write(id, event);
  }

  /** Events held in memory (store away): how many. */
  get pendingCount(): number {
    return this.pending.size;
  }

  /** The store is back: write what it could not take. */
  flushPending(): number {
    let written = 0;
    for (const [id, event] of [...this.pending]) {
      if (this.open.has(id)) continue; // still being completed: complete() writes it
      if (this.write(id, event)) written++;
      else break;
    }
    return written;
  }

  private write(id: string, event: EventPayload): boolean {
    const store = this.deps.store();
    const drain = this.deps.drain();
    try {
      if (!store) throw new Error('the store is not available');
      store.completeEmergencyEvent(event);
      this.pending.delete(id);
    } catch (err) {
      this.deps.log.error({ err, eventId: id, held: this.pending.size }, 'emergency event not stored: kept in memory until the store is back');
      this.deps.onHeld?.();
      return false;
    }
    drain?.wake();
    return true;
  }
}
