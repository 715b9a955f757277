// Drains the SQLite outbox to the broker: in order, QoS 1, a bounded window in
// flight, each row removed only after its PUBACK. SQLite is the only queue: after
// a disconnect everything unacknowledged is sent again from the table.
import type { Logger } from '../log.js';
import type { OutboxRow, Store } from '../store/store.js';

const ACK_FLUSH_MS = 20;
/** Rows read from SQLite per query: one query feeds several window refills. */
const READ_AHEAD = 256;

export type PublishFn = (row: OutboxRow) => Promise<void>;

export class OutboxDrainer {
  private publish: PublishFn | null = null;
  private generation = 0;
  /** Highest seq read from the table into the read-ahead buffer. */
  private cursor = 0;
  private buffer: OutboxRow[] = [];
  private next = 0;
  private readonly inFlight = new Set<number>();
  private acked: number[] = [];
  private flushTimer: NodeJS.Timeout | null = null;
  private filling = false;
  private fillScheduled = false;
  /** Events acknowledged since start, for status and benchmarks. */
  delivered = 0;

  constructor(
    private readonly store: Store,
    private readonly window: number,
    private readonly log: Logger,
  ) {}

  /** A connection is up: (re)send everything not yet acknowledged, from the oldest. */
  attach(publish: PublishFn): void {
    this.generation++;
    this.publish = publish;
    this.rewind(0);
    this.inFlight.clear();
    this.fill();
  }

  /** The connection is gone: whatever was in flight will be sent again on attach. */
  detach(): void {
    this.generation++;
    this.publish = null;
    this.inFlight.clear();
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
    this.store.ackEvents(seqs);
  }

  private fill(): void {
    if (!this.publish || this.filling) return;
    this.filling = true;
    try {
      while (this.inFlight.size < this.window) {
        if (this.next >= this.buffer.length) {
          this.buffer = this.store.pendingEvents(this.cursor, READ_AHEAD);
          this.next = 0;
          if (this.buffer.length === 0) break;
          this.cursor = this.buffer[this.buffer.length - 1]!.seq;
        }
        const row = this.buffer[this.next++]!;
        if (!this.inFlight.has(row.seq)) this.send(row); // after a rewind: skip what is on its way
      }
    } finally {
      this.filling = false;
    }
  }

  /** Reading starts again after seq: the buffer is dropped. */
  private rewind(afterSeq: number): void {
    this.cursor = afterSeq;
    this.buffer = [];
    this.next = 0;
  }

  private send(row: OutboxRow): void {
    const publish = this.publish!;
    const generation = this.generation;
    this.inFlight.add(row.seq);
    publish(row).then(
      () => {
        if (generation !== this.generation) {
          // Acknowledged on a connection we already gave up on: still delivered.
          this.acked.push(row.seq);
          this.scheduleFlush();
          return;
        }
        this.inFlight.delete(row.seq);
        this.acked.push(row.seq);
        this.delivered++;
        this.scheduleFlush();
        this.scheduleFill();
      },
      (err: Error) => {
        if (generation !== this.generation) return;
        // Not acknowledged: rewind so it goes again, in order, on this connection or the next.
        this.log.warn({ err: err.message, seq: row.seq }, 'event publish failed; will resend');
        this.inFlight.delete(row.seq);
        const unsent = this.buffer[this.next];
        this.rewind(Math.min(row.seq, unsent?.seq ?? this.cursor + 1) - 1);
        setTimeout(() => generation === this.generation && this.fill(), 1000).unref();
      },
    );
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
