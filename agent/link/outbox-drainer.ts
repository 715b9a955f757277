// Drains the SQLite outbox to the broker: in order, QoS 1, a bounded window in
// flight, each row removed only after its PUBACK. SQLite is the only queue: after
// a disconnect everything unacknowledged is sent again from the table.
import type { Logger } from '../log.js';
import type { OutboxRow, Store } from '../store/store.js';

export type PublishFn = (row: OutboxRow) => Promise<void>;

export class OutboxDrainer {
  private publish: PublishFn | null = null;
  private generation = 0;
  private cursor = 0;
  private readonly inFlight = new Set<number>();
  private acked: number[] = [];
  private flushScheduled = false;
  private filling = false;
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
    this.cursor = 0;
    this.inFlight.clear();
    this.fill();
  }

  /** The connection is gone: whatever was in flight will be sent again on attach. */
  detach(): void {
    this.generation++;
    this.publish = null;
    this.inFlight.clear();
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
    this.flushScheduled = false;
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
        const rows = this.store.pendingEvents(this.cursor, this.window - this.inFlight.size);
        if (rows.length === 0) break;
        for (const row of rows) {
          if (this.inFlight.has(row.seq)) this.cursor = row.seq; // after a rewind: already on its way
          else this.send(row);
        }
      }
    } finally {
      this.filling = false;
    }
  }

  private send(row: OutboxRow): void {
    const publish = this.publish!;
    const generation = this.generation;
    this.cursor = row.seq;
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
        this.fill();
      },
      (err: Error) => {
        if (generation !== this.generation) return;
        // Not acknowledged: rewind so it goes again, in order, on this connection or the next.
        this.log.warn({ err: err.message, seq: row.seq }, 'event publish failed; will resend');
        this.inFlight.delete(row.seq);
        this.cursor = Math.min(this.cursor, row.seq - 1);
        setTimeout(() => generation === this.generation && this.fill(), 1000).unref();
      },
    );
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // Acks arriving in one burst are deleted in one transaction: fewer writes to flash.
    setImmediate(() => this.flushAcks());
  }
}
