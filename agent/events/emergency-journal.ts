// The emergency event made durable before the INVITE. begin() runs on the call
// path and never throws: one line appended to the begin file (a syscall, no
// fsync); when the file cannot take it, one prepared INSERT into the store's
// emergency_begun table; when neither can, memory. complete() runs after the
// INVITE is out: the same event id with the call's details into the outbox,
// synced, then released to the outbox drain, and the file emptied once nothing
// in it is still waiting. An event the store cannot take (store away, disk full)
// is kept in memory and written when the store is back.
import type { Logger } from '../../provisioning/common/log.js';
import type { BeginSink } from './begin-file.js';
import type { EventFactory } from './events.js';
import type { EventPayload } from '../../provisioning/protocol/messages.js';
import type { EmergencyJournal } from '../emergency/service.js';

/** What the journal needs of the store (the agent's Store, or nothing while it is away). */
export interface JournalStore {
  /** False for a store kept in memory (a database from a newer agent): nothing in it survives the process. */
  readonly onDisk?: boolean;
  /** payload: the event as JSON text when the caller has it already (the call path). */
  beginEmergencyEvent(event: EventPayload, payload?: string): void;
  completeEmergencyEvent(event: EventPayload): void;
  /** Events a process that died began in the begin file: into the outbox unless there by id. */
  recoverEmergencyEvents(events: readonly EventPayload[]): number;
  /** A non-emergency event for the outbox (the report of unreadable begin-file lines). */
  enqueue(event: EventPayload): boolean;
}

/** What the journal needs of the outbox drain. */
export interface JournalDrain {
  wake(): void;
}

export class StoreEmergencyJournal implements EmergencyJournal {
  /** Events begun: id -> where the first write went, and the first write. */
  private readonly open = new Map<string, { stored: 'file' | 'store' | false; first: EventPayload }>();
  /** Events whose line is in the begin file and that are not in the store yet (open or pending). */
  private readonly inFile = new Set<string>();
  /** The next event of each type, drawn ahead of its call (prepare()). */
  private readonly ahead = new Map<'emergency-call' | 'test-call', { event: EventPayload; prefix: string }>();
  /** Completed events the store could not take: written by flushPending() when it is back. */
  private readonly pending = new Map<string, EventPayload>();

  constructor(
    private readonly deps: {
      store: () => JournalStore | null;
      drain: () => JournalDrain | null;
      /** The begin file (opened already); null or absent: the first write goes to the store. */
      file?: BeginSink | null;
      newEvent: EventFactory;
      /** The clock the call's time is read from (the one newEvent uses). */
      now?: () => Date;
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
    // Made ahead: the call stamps only its time. The envelope's keys (v, id, type, deviceId),
    // then ts, then the data as given: the order newEvent gives.
    const ahead = this.ahead.get(type) ?? this.envelope(type);
    this.ahead.delete(type);
    const event = ahead.event;
    event.ts = (this.deps.now?.() ?? new Date()).toISOString();
    return this.beginWith(event, `${ahead.prefix},"ts":"${event.ts}","data":${dataJson}}`, dataJson);
  }

  /**
   * Draws the next event of each type ahead of its call (its id, its envelope as JSON text):
   * on a cold cache each step of it costs microseconds the call would wait for. Called at
   * start and after each call, off the call path.
   */
  prepare(): void {
    for (const type of ['emergency-call', 'test-call'] as const) if (!this.ahead.has(type)) this.ahead.set(type, this.envelope(type));
  }

  private envelope(type: 'emergency-call' | 'test-call'): { event: EventPayload; prefix: string } {
    const event = this.deps.newEvent(type, {});
    const { data: _data, ts: _ts, ...head } = event;
    return { event, prefix: JSON.stringify(head).slice(0, -1) };
  }

  private beginWith(event: EventPayload, payload: string | undefined, dataJson?: string): string {
    // Apart from the outbox until complete(): the drain cannot send the first write.
    let stored: 'file' | 'store' | false = false;
    const file = this.deps.file;
    try {
      if (file?.append(payload ?? JSON.stringify(event))) {
        stored = 'file';
        this.inFile.add(event.id);
      }
    } catch (err) {
      this.deps.log.error({ err, eventId: event.id }, 'emergency event not written to the begin file: the store is tried');
    }
    if (!stored) {
      try {
        const store = this.deps.store();
        if (store) {
          store.beginEmergencyEvent(event, payload);
          stored = 'store';
        }
      } catch (err) {
        // Never stops the call: kept in memory, completed (and written) after the INVITE.
        this.deps.log.error({ err, eventId: event.id }, 'emergency event not stored before the INVITE: kept in memory');
      }
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
    const event: EventPayload = begun
      ? { ...begun.first, data: { ...data, recorded: 'complete' } }
      : { ...this.deps.newEvent(type, data), id };
    this.pending.set(id, event);
    this.write(id, event);
    this.prepare();
  }

  /** Events held in memory whose line is not in the begin file either: lost if the process stops now. */
  get pendingOnlyInMemory(): number {
    let n = 0;
    for (const id of this.pending.keys()) if (!this.inFile.has(id)) n++;
    return n;
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

  /** Events a previous process left in the begin file, not yet in the store. */
  get leftoverCount(): number {
    return this.deps.file?.leftover.events.length ?? 0;
  }

  /**
   * The store is open: what a process that died left in the begin file goes into the
   * outbox (as recoverBegun does for the table's rows), and unreadable lines are
   * reported. Returns how many events went in; false when the store could not take them
   * (they stay in the file, and this is called again).
   */
  recoverLeftover(): number | false {
    const file = this.deps.file;
    const store = this.deps.store();
    if (!file || !store) return file ? false : 0;
    const { events, unreadable } = file.leftover;
    if (events.length === 0 && unreadable === 0) return 0;
    let moved: number;
    try {
      moved = store.recoverEmergencyEvents(events);
      if (unreadable > 0) {
        const reason = `emergency begin file: ${unreadable} unreadable line(s) skipped (a write cut short by the process dying: its INVITE never left)`;
        store.enqueue(this.deps.newEvent('store-incident', { at: new Date().toISOString(), reason, unreadableLines: unreadable }));
      }
    } catch (err) {
      this.deps.log.error(
        { err, events: events.length },
        'emergency events begun before the agent stopped could not be moved to the outbox yet',
      );
      this.deps.onHeld?.();
      return false;
    }
    file.forgetLeftover();
    if (this.inFile.size === 0) file.clear();
    else for (const e of events) file.markDone(e.id);
    this.deps.drain()?.wake();
    return moved;
  }

  private write(id: string, event: EventPayload): boolean {
    const store = this.deps.store();
    const drain = this.deps.drain();
    try {
      if (!store) throw new Error('the store is not available');
      store.completeEmergencyEvent(event);
      this.pending.delete(id);
    } catch (err) {
      this.deps.log.error(
        { err, eventId: id, held: this.pending.size },
        'emergency event not stored: kept in memory until the store is back',
      );
      this.deps.onHeld?.();
      return false;
    }
    // A store in memory is not on disk: the line stays the event's only durable copy.
    if (store.onDisk !== false) this.settleFile(id);
    drain?.wake();
    return true;
  }

  /** The event is in the store: its line in the begin file is no longer needed. */
  private settleFile(id: string): void {
    const file = this.deps.file;
    if (!file || !this.inFile.delete(id)) return;
    // Emptied when no line in it is still needed; otherwise this one is marked done.
    if (this.inFile.size === 0 && file.leftover.events.length === 0) file.clear();
    else file.markDone(id);
  }
}
