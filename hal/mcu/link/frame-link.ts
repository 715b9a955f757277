// Link layer: sequence numbers, acks and retries over a byte transport. Symmetric:
// the agent and the simulated MCU run the same code. See docs/mcu-protocol.md.
//
// - Every frame but an ACK carries the sender's next sequence number (mod 256) and
//   is answered by an ACK carrying that number. Stop-and-wait: one unacked frame
//   in flight per direction; the rest wait in a queue.
// - No ACK within ackTimeoutMs: the same frame (same seq) again, up to maxRetries.
//   Then the peer is called unresponsive and the frame dropped; the layer above
//   re-sends its state when the peer answers again.
// - The receiver acks duplicates (its ACK was lost) but delivers a seq only once;
//   a HELLO always resets that memory (the peer restarted).
import type { HalLogger } from '../../log.js';
import { encodeFrame, FrameDecoder, type Frame } from '../framing/frame.js';
import type { ByteTransport } from '../transport/transport.js';

/** Frame types the link itself interprets. */
export const LINK_TYPES = { ack: 0x00, hello: 0x01, ping: 0x02 } as const;

const FRAMING_WARN_INTERVAL_MS = 10_000;

export interface LinkOptions {
  transport: ByteTransport;
  log: HalLogger;
  /** Every delivered frame that is not an ACK, once per sequence number. */
  onFrame: (frame: Frame) => void;
  /** The port came (back) up, or went down (with the transport's reason). */
  onTransport?: (up: boolean, reason?: string) => void;
  /** The peer stopped answering (false) or answered again (true). */
  onResponsive?: (responsive: boolean) => void;
  /** A frame was given up on (no ack after every retry, or the queue overflowed). */
  onDropped?: (type: number) => void;
  ackTimeoutMs?: number;
  maxRetries?: number;
  /** Silence after a partial frame before it is given up as truncated. */
  frameGapMs?: number;
  /** A PING goes out after this much idle time so a dead peer is noticed; 0 = never. */
  keepaliveMs?: number;
  queueMax?: number;
}

interface Outgoing {
  type: number;
  payload: Buffer;
  /** Queued frames with the same key are replaced, not added (display rows, LEDs). */
  key: string | undefined;
}

export interface LinkStats {
  sent: number;
  acked: number;
  retransmits: number;
  dropped: number;
  received: number;
  duplicates: number;
  framingErrors: number;
}

export class FrameLink {
  readonly stats: LinkStats = { sent: 0, acked: 0, retransmits: 0, dropped: 0, received: 0, duplicates: 0, framingErrors: 0 };
  private readonly decoder: FrameDecoder;
  private readonly queue: Outgoing[] = [];
  private inFlight: (Outgoing & { seq: number; tries: number }) | null = null;
  private txSeq = 0;
  private lastRxSeq: number | null = null;
  private responsive = false;
  private started = false;
  private ackTimer: NodeJS.Timeout | null = null;
  private gapTimer: NodeJS.Timeout | null = null;
  private keepaliveTimer: NodeJS.Timeout | null = null;
  private lastFramingWarn = -Infinity;
  private readonly ackTimeoutMs: number;
  private readonly maxRetries: number;
  private readonly frameGapMs: number;
  private readonly keepaliveMs: number;
  private readonly queueMax: number;

  constructor(private readonly opts: LinkOptions) {
    this.ackTimeoutMs = opts.ackTimeoutMs ?? 100;
    this.maxRetries = opts.maxRetries ?? 5;
    this.frameGapMs = opts.frameGapMs ?? 50;
    this.keepaliveMs = opts.keepaliveMs ?? 0;
    this.queueMax = opts.queueMax ?? 64;
    this.decoder = new FrameDecoder((reason) => {
      this.stats.framingErrors++;
      // A noisy line must not flood the log: one warning per interval, with counts.
      const now = Date.now();
      if (now - this.lastFramingWarn >= FRAMING_WARN_INTERVAL_MS) {
        this.lastFramingWarn = now;
        opts.log.warn({ reason, framingErrors: this.stats.framingErrors, ...this.decoder.stats }, 'bad bytes on the MCU line; resyncing');
      } else opts.log.debug({ reason }, 'frame dropped; resyncing');
    });
  }

  get isResponsive(): boolean {
    return this.responsive;
  }

  get queued(): number {
    return this.queue.length + (this.inFlight ? 1 : 0);
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.opts.transport.attach({
      data: (chunk) => this.receive(chunk),
      up: () => {
        this.decoder.reset();
        // A frame caught by the outage goes again, with a fresh retry budget.
        if (this.inFlight) {
          this.inFlight.tries = 0;
          this.transmit();
        } else this.next();
        this.armKeepalive();
        this.opts.onTransport?.(true);
      },
      down: (reason) => {
        this.clearTimer('ack');
        this.clearTimer('gap');
        this.decoder.reset();
        this.setResponsive(false);
        this.opts.onTransport?.(false, reason);
      },
    });
    this.opts.transport.start();
  }

  async stop(): Promise<void> {
    this.started = false;
    for (const t of ['ack', 'gap', 'keepalive'] as const) this.clearTimer(t);
    this.queue.length = 0;
    this.inFlight = null;
    await this.opts.transport.stop();
  }

  /** Queues a frame. With a key, a still-queued frame with that key is replaced. */
  send(type: number, payload: Buffer = Buffer.alloc(0), key?: string): void {
    if (key !== undefined) {
      const i = this.queue.findIndex((q) => q.key === key);
      if (i >= 0) {
        this.queue[i] = { type, payload, key };
        return;
      }
    }
    if (this.queue.length >= this.queueMax) {
      const old = this.queue.shift()!;
      this.stats.dropped++;
      this.opts.log.debug({ type: old.type }, 'link queue full; oldest frame dropped');
      this.opts.onDropped?.(old.type);
    }
    this.queue.push({ type, payload, key });
    if (!this.inFlight) this.next();
  }

  /** Drops every queued frame not yet on the wire (the layer above will resend state). */
  clearQueue(): void {
    this.queue.length = 0;
  }

  private next(): void {
    if (this.inFlight || !this.started) return;
    const out = this.queue.shift();
    if (!out) return;
    this.inFlight = { ...out, seq: this.txSeq, tries: 0 };
    this.txSeq = (this.txSeq + 1) & 0xff;
    this.transmit();
  }

  private transmit(): void {
    const f = this.inFlight;
    if (!f || !this.opts.transport.isUp) return;
    if (f.tries > 0) this.stats.retransmits++;
    else this.stats.sent++;
    f.tries++;
    this.opts.transport.write(encodeFrame({ seq: f.seq, type: f.type, payload: f.payload }));
    this.armKeepalive();
    this.clearTimer('ack');
    this.ackTimer = setTimeout(() => {
      this.ackTimer = null;
      this.ackTimedOut();
    }, this.ackTimeoutMs);
  }

  private ackTimedOut(): void {
    const f = this.inFlight;
    if (!f) return;
    if (f.tries <= this.maxRetries) {
      this.transmit();
      return;
    }
    this.stats.dropped++;
    this.opts.log.debug({ type: f.type, seq: f.seq, tries: f.tries }, 'no ack; frame dropped');
    this.inFlight = null;
    this.setResponsive(false);
    this.opts.onDropped?.(f.type);
    this.next();
  }

  private receive(chunk: Buffer): void {
    this.clearTimer('gap');
    for (const f of this.decoder.push(chunk)) this.handle(f);
    if (this.decoder.pending) {
      this.gapTimer = setTimeout(() => {
        this.gapTimer = null;
        for (const f of this.decoder.abandonPartial()) this.handle(f);
      }, this.frameGapMs);
    }
  }

  private handle(f: Frame): void {
    // Any valid frame shows the peer is alive.
    this.setResponsive(true);
    if (f.type === LINK_TYPES.ack) {
      if (this.inFlight && f.seq === this.inFlight.seq) {
        this.clearTimer('ack');
        this.stats.acked++;
        this.inFlight = null;
        this.next();
      }
      return;
    }
    this.opts.transport.write(encodeFrame({ seq: f.seq, type: LINK_TYPES.ack, payload: Buffer.alloc(0) }));
    if (f.type !== LINK_TYPES.hello && f.seq === this.lastRxSeq) {
      this.stats.duplicates++;
      return;
    }
    this.lastRxSeq = f.seq;
    this.stats.received++;
    if (f.type === LINK_TYPES.ping) return;
    this.opts.onFrame(f);
  }

  private setResponsive(r: boolean): void {
    if (r === this.responsive) return;
    this.responsive = r;
    this.opts.onResponsive?.(r);
  }

  private armKeepalive(): void {
    if (this.keepaliveMs <= 0 || !this.started) return;
    this.clearTimer('keepalive');
    this.keepaliveTimer = setTimeout(() => {
      this.keepaliveTimer = null;
      if (!this.inFlight && this.queue.length === 0) this.send(LINK_TYPES.ping, Buffer.alloc(0), 'ping');
      else this.armKeepalive();
    }, this.keepaliveMs);
  }

  private clearTimer(which: 'ack' | 'gap' | 'keepalive'): void {
    const t = which === 'ack' ? this.ackTimer : which === 'gap' ? this.gapTimer : this.keepaliveTimer;
    if (t) clearTimeout(t);
    if (which === 'ack') this.ackTimer = null;
    else if (which === 'gap') this.gapTimer = null;
    else this.keepaliveTimer = null;
  }
}
