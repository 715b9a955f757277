// Drains the SQLite outbox to the broker: in order, QoS 1, a bounded window in
// flight, each row removed only after its PUBACK. SQLite is the only queue: after
// a disconnect everything unacknowledged is sent again from the table. At
// broker.publishQos 0 (NATS) "acknowledged" is "written to the socket", and the
// config requires every event to wait for events/ack (below).
//
// Events are kept past the PUBACK: the broker having them is not the server
// having them (a server killed, a broker killed or restarted without
// persistence, lose them: the chaos test measured it). They go when the server
// says it stored them (events/ack), and are sent again on every reconnect and
// every resendMs until then. The server de-duplicates by id. With
// confirm 'emergency' (a server older than events/ack for every event), only
// emergency and test-call events wait for the server; the rest go on PUBACK.
import type { Logger } from '../../provisioning/common/log.js';
import type { OutboxRow, Store } from '../store/store.js';
import { StoreError } from '../errors.js';
import { PROTECTED_EVENT_TYPES, type EventType } from '../../provisioning/protocol/messages.js';

const ACK_FLUSH_MS = 20;
const isProtected = (row: OutboxRow) => PROTECTED_EVENT_TYPES.has(row.type as EventType);
/** A removal the store refused (a full disk) is tried again after this. */
const ACK_RETRY_MS = 1000;
/** Rows read from SQLite per query: one query feeds several window refills. */
const READ_AHEAD = 256;

/**
 * Sends one row; calls done once, when the broker acknowledged it (no argument) or the
 * publish failed. A callback, not a promise: the drain makes one per event, and a
 * promise with its two reactions was a third of the garbage of a 10,000-event drain.
 */
export type PublishFn = (row: OutboxRow, done: (err?: Error | null) => void) => void;

export class OutboxDrainer {
  private publish: PublishFn | null = null;
  private generation = 0;
  /** Highest seq read from the table into the read-ahead buffer. */
  private cursor = 0;
  private buffer: OutboxRow[] = [];
  private next = 0;
  /**
   * The store's outbox mark when a read found every row after the cursor (fewer than asked for):
   * the rows inserted since are then taken from the store's memory, not read back from the
   * table just after they were written. Null after a rewind or a full read: read the table.
   */
  private tailMark: number | null = null;
  private readonly inFlight = new Set<number>();
  private acked: number[] = [];
  private flushTimer: NodeJS.Timeout | null = null;
  private filling = false;
  /** Counts rewinds: a publish that fails inside fill() (mqtt.js calls back at once while disconnecting) ends the loop. */
  private rewinds = 0;
  private fillScheduled = false;
  /** Rows the broker acknowledged, waiting for the server's ack, by seq (the row itself: no object more per event). */
  private readonly awaitingServer = new Map<number, OutboxRow>();
  /** Rows not to send yet: an emergency event between its first write and its completion. */
  private resendTimer: NodeJS.Timeout | null = null;
  /**
   * Ids the server confirmed whose rows the store could not remove yet (a full disk): removed
   * on the next try. Dropping them instead would strand their rows until the next reconnect
   * (no longer awaited, already passed by the cursor), and the outbox would never drain.
   */
  private readonly unremoved = new Set<string>();
  private ackRetryTimer: NodeJS.Timeout | null = null;
  /** Events acknowledged since start, for status and benchmarks. */
  delivered = 0;
  /** Emergency events the server confirmed since start. */
  confirmed = 0;

  constructor(
    private readonly store: Store,
    private readonly window: number,
    private readonly log: Logger,
    /** How long an event waits for the server's ack before it is sent again. */
    private readonly resendMs = 30_000,
    /** Which events wait for the server's ack: all (default), or only emergency and test-call events. */
    private readonly confirm: 'all' | 'emergency' = 'all',
  ) {}

  /** The server stored these events: they leave the outbox now. */
  serverAck(ids: readonly string[]): void {
    const set = new Set(ids);
    for (const [seq, w] of this.awaitingServer) if (set.has(w.id)) this.awaitingServer.delete(seq);
    if (this.awaitingServer.size === 0 && this.resendTimer) {
      clearTimeout(this.resendTimer);
      this.resendTimer = null;
    }
    this.removeConfirmed([...this.takeUnremoved(), ...ids]);
  }

  /** At stop, after the last flushAcks(): no retry may run against a closed store. */
  close(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    if (this.ackRetryTimer) clearTimeout(this.ackRetryTimer);
    if (this.resendTimer) clearTimeout(this.resendTimer);
    this.flushTimer = this.ackRetryTimer = this.resendTimer = null;
    this.publish = null;
  }

  /** Removes the rows of confirmed events; what the store refuses waits for the next try. */
  private removeConfirmed(ids: string[]): void {
    if (ids.length === 0) return;
    try {
      // Counted from the rows removed: an ack may arrive while its event is being sent again.
      this.confirmed += this.store.ackEventsById(ids).emergency;
    } catch (err) {
      if (!(err instanceof StoreError)) throw err;
      for (const id of ids) this.unremoved.add(id);
      this.log.warn(
        { err: err.message, events: this.unremoved.size },
        'confirmed events cannot be removed from the outbox yet: trying again',
      );
      if (!this.ackRetryTimer) {
        this.ackRetryTimer = setTimeout(() => {
          this.ackRetryTimer = null;
          this.removeConfirmed(this.takeUnremoved());
        }, ACK_RETRY_MS);
        this.ackRetryTimer.unref?.();
      }
    }
  }

  private takeUnremoved(): string[] {
    const ids = [...this.unremoved];
    this.unremoved.clear();
    return ids;
  }

  /** Emergency and test-call events the broker has and the server has not confirmed yet. */
  awaitingServerCount(): number {
    let n = 0;
    for (const row of this.awaitingServer.values()) if (isProtected(row)) n++;
    return n;
  }

  /** A connection is up: (re)send everything not yet acknowledged, from the oldest. */
  attach(publish: PublishFn): void {
    this.generation++;
    this.publish = publish;
    this.rewind(0);
    this.inFlight.clear();
    // A new connection: whatever the server has not confirmed goes again.
    this.awaitingServer.clear();
    this.fill();
  }

  /** The connection is gone: whatever was in flight will be sent again on attach. */
  detach(): void {
    this.generation++;
    this.publish = null;
    this.inFlight.clear();
    this.awaitingServer.clear();
    if (this.resendTimer) clearTimeout(this.resendTimer);
    this.resendTimer = null;
    this.rewind(0);
    this.flushAcks();
  }

  /** Something was enqueued: send it if the window allows. */
  wake(): void {
    this.fill();
  }

  inFlightCount(): number {
    return this.inFlight.size;
  }

  flushAcks(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    if (this.acked.length === 0) return;
    const seqs = this.acked;
    this.acked = [];
    this.removeConfirmed(this.takeUnremoved());
    try {
      this.store.ackEvents(seqs);
    } catch (err) {
      // A full disk: kept for the next flush (from a timer, a throw here would stop the agent).
      if (!(err instanceof StoreError)) throw err;
      this.acked = [...seqs, ...this.acked];
      this.log.warn(
        { err: err.message, events: this.acked.length },
        'delivered events cannot be removed from the outbox yet: trying again',
      );
      if (!this.flushTimer) {
        this.flushTimer = setTimeout(() => this.flushAcks(), ACK_RETRY_MS);
        // A retry never keeps a stopping agent alive (stop flushes once more, then closes).
        this.flushTimer.unref?.();
      }
    }
  }

  private fill(): void {
    if (!this.publish || this.filling) return;
    this.filling = true;
    try {
      while (this.inFlight.size < this.window) {
        if (this.next >= this.buffer.length) {
          this.buffer = this.readRows();
          this.next = 0;
          if (this.buffer.length === 0) break;
          this.cursor = this.buffer[this.buffer.length - 1]!.seq;
        }
        const row = this.buffer[this.next++]!;
        // After a rewind: skip what is on its way, or waiting for the server.
        if (this.inFlight.has(row.seq) || this.awaitingServer.has(row.seq)) continue;
        const rewinds = this.rewinds;
        this.send(row);
        // Failed before send() returned: the retry timer refills; going on would send it again at once, forever.
        if (rewinds !== this.rewinds) break;
      }
    } finally {
      this.filling = false;
    }
  }

  /** The rows after the cursor: from the store's memory when it has every one, else from the table. */
  private readRows(): OutboxRow[] {
    const known = this.tailMark === null ? null : this.store.takeInserted(this.tailMark);
    const mark = this.store.outboxMark();
    if (known) {
      this.tailMark = mark;
      const cursor = this.cursor;
      return known.filter((r) => r.seq > cursor);
    }
    const rows = this.store.pendingEvents(this.cursor, READ_AHEAD);
    this.tailMark = rows.length < READ_AHEAD ? mark : null;
    return rows;
  }

  /** Reading starts again after seq: the buffer is dropped. */
  private rewind(afterSeq: number): void {
    this.rewinds++;
    this.tailMark = null;
    this.cursor = afterSeq;
    this.buffer = [];
    this.next = 0;
  }

  private send(row: OutboxRow): void {
    const publish = this.publish!;
    const generation = this.generation;
    this.inFlight.add(row.seq);
    publish(row, (err) => (err ? this.failed(row, generation, err) : this.brokerAcked(row, generation)));
  }

  private brokerAcked(row: OutboxRow, generation: number): void {
    const keep = this.confirm === 'all' || isProtected(row);
    if (generation !== this.generation) {
      // Acknowledged on a connection we already gave up on: still delivered (to the broker).
      if (!keep) {
        this.acked.push(row.seq);
        this.scheduleFlush();
      }
      return;
    }
    this.inFlight.delete(row.seq);
    this.delivered++;
    if (keep) {
      // The broker has it; the row stays until the server says it stored it.
      this.awaitingServer.set(row.seq, row);
      this.scheduleResend();
      this.scheduleFill();
      return;
    }
    this.acked.push(row.seq);
    this.scheduleFlush();
    this.scheduleFill();
  }

  private failed(row: OutboxRow, generation: number, err: Error): void {
    if (generation !== this.generation) return;
    // Not acknowledged: rewind so it goes again, in order, on this connection or the next.
    this.log.warn({ err: err.message, seq: row.seq }, 'event publish failed; will resend');
    this.inFlight.delete(row.seq);
    const unsent = this.buffer[this.next];
    this.rewind(Math.min(row.seq, unsent?.seq ?? this.cursor + 1) - 1);
    setTimeout(() => generation === this.generation && this.fill(), 1000).unref();
  }

  /** Events the server has not confirmed within resendMs go again, on this connection. */
  private scheduleResend(): void {
    if (this.resendTimer) return;
    const generation = this.generation;
    this.resendTimer = setTimeout(() => {
      this.resendTimer = null;
      if (generation !== this.generation || this.awaitingServer.size === 0) return;
      this.log.warn({ events: this.awaitingServer.size }, 'server has not confirmed events: sending them again');
      this.awaitingServer.clear();
      this.rewind(0);
      this.fill();
    }, this.resendMs);
    this.resendTimer.unref?.();
  }

  /** Acks arriving in one read are refilled with one query, not one per ack. */
  private scheduleFill(): void {
    if (this.fillScheduled) return;
    this.fillScheduled = true;
    setImmediate(() => {
      this.fillScheduled = false;
      this.fill();
    });
  }

  private scheduleFlush(): void {
    if (this.flushTimer) return;
    // Acks arriving within a few ms are deleted in one transaction: fewer writes to flash.
    this.flushTimer = setTimeout(() => this.flushAcks(), ACK_FLUSH_MS);
  }
}
