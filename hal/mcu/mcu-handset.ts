// Adapter: the Handset interface over the MCU protocol. Keeps the screen and LEDs
// the agent asked for and writes them all again whenever the MCU may have lost
// them (port back, MCU restarted, MCU answering again after silence).
import type { HalLogger } from '../log.js';
import type { Handset, HandsetStatus, HookListener, Key, KeyListener, LedColor, LedId, LedMode, Tone } from '../handset.js';
import { FrameLink } from './link/frame-link.js';
import { decodeMessage, encodeMessage, PROTOCOL_VERSION, type McuMessage } from './protocol/messages.js';
import type { ByteTransport } from './transport/transport.js';

export interface McuHandsetOptions {
  transport: ByteTransport;
  log: HalLogger;
  /** Sent in our HELLO so the MCU can log who talks to it. */
  agentVersion: string;
  /** Display size until the MCU's HELLO says otherwise. */
  rows?: number;
  cols?: number;
  ackTimeoutMs?: number;
  maxRetries?: number;
  frameGapMs?: number;
  keepaliveMs?: number;
}

interface Row {
  text: string;
  inverse: boolean;
}

export class McuHandset implements Handset {
  private readonly link: FrameLink;
  private readonly keyListeners = new Set<KeyListener>();
  private readonly hookListeners = new Set<HookListener>();
  private readonly resizeListeners = new Set<() => void>();
  private readonly linkLostListeners = new Set<(reason: string) => void>();
  private screen: Row[] = [];
  private readonly leds = new Map<LedId, { mode: LedMode; color: LedColor }>();
  private hook = false;
  private firmware: string | null = null;
  private dims: { rows: number; cols: number };
  /** Frames were dropped unacked: the MCU's screen may differ from ours. */
  private stale = false;

  constructor(private readonly opts: McuHandsetOptions) {
    this.dims = { rows: opts.rows ?? 4, cols: opts.cols ?? 24 };
    this.link = new FrameLink({
      transport: opts.transport,
      log: opts.log,
      onFrame: (f) => this.receive(f.type, f.payload),
      onTransport: (up, reason) => {
        if (up) this.greet();
        else for (const fn of this.linkLostListeners) this.safely(() => fn(reason ?? 'the handset port went away'));
      },
      onResponsive: (r) => {
        opts.log.info({ responsive: r }, r ? 'MCU answering' : 'MCU not answering');
        if (r && this.stale) this.repaint();
      },
      // Whatever was dropped, the MCU's screen may now differ from ours: redraw when it answers.
      onDropped: () => (this.stale = true),
      ...(opts.ackTimeoutMs !== undefined ? { ackTimeoutMs: opts.ackTimeoutMs } : {}),
      ...(opts.maxRetries !== undefined ? { maxRetries: opts.maxRetries } : {}),
      ...(opts.frameGapMs !== undefined ? { frameGapMs: opts.frameGapMs } : {}),
      keepaliveMs: opts.keepaliveMs ?? 5000,
    });
  }

  get rows(): number {
    return this.dims.rows;
  }

  get cols(): number {
    return this.dims.cols;
  }

  get offHook(): boolean {
    return this.hook;
  }

  async start(): Promise<void> {
    this.link.start();
  }

  async stop(): Promise<void> {
    await this.link.stop();
  }

  onKey(fn: KeyListener): () => void {
    this.keyListeners.add(fn);
    return () => this.keyListeners.delete(fn);
  }

  onHook(fn: HookListener): () => void {
    this.hookListeners.add(fn);
    return () => this.hookListeners.delete(fn);
  }

  onLinkLost(fn: (reason: string) => void): () => void {
    this.linkLostListeners.add(fn);
    return () => this.linkLostListeners.delete(fn);
  }

  onResize(fn: () => void): () => void {
    this.resizeListeners.add(fn);
    return () => this.resizeListeners.delete(fn);
  }

  setLine(row: number, text: string, opts: { inverse?: boolean } = {}): void {
    if (row < 0 || row >= this.dims.rows) return;
    const next = { text, inverse: opts.inverse ?? false };
    const cur = this.screen[row];
    if (cur && cur.text === next.text && cur.inverse === next.inverse) return;
    this.screen[row] = next;
    this.sendRow(row);
  }

  show(lines: readonly string[]): void {
    for (let r = 0; r < this.dims.rows; r++) this.setLine(r, lines[r] ?? '');
  }

  setLed(led: LedId, mode: LedMode, color: LedColor = 'default'): void {
    const cur = this.leds.get(led);
    if (cur && cur.mode === mode && cur.color === color) return;
    this.leds.set(led, { mode, color });
    this.sendMessage({ type: 'led', led, mode, color }, `led:${led}`);
  }

  tone(tone: Tone, durationMs = 0): void {
    this.sendMessage({ type: 'tone', tone, durationMs }, 'tone');
  }

  stopTone(): void {
    this.sendMessage({ type: 'tone', tone: 'stop', durationMs: 0 }, 'tone');
  }

  status(): HandsetStatus {
    return {
      backend: this.opts.transport.name,
      connected: this.opts.transport.isUp,
      responsive: this.link.isResponsive,
      offHook: this.hook,
      firmware: this.firmware,
      rows: this.dims.rows,
      cols: this.dims.cols,
      framingErrors: this.link.stats.framingErrors,
      retransmits: this.link.stats.retransmits,
      reopens: this.opts.transport.reopens,
      queued: this.link.queued,
    };
  }

  private greet(): void {
    // Queued frames from before the outage would only be redrawn again below.
    this.link.clearQueue();
    this.sendMessage({
      type: 'hello',
      version: PROTOCOL_VERSION,
      rows: 0,
      cols: 0,
      caps: 0,
      firmware: `e911-agent ${this.opts.agentVersion}`,
    });
    this.repaint();
  }

  private repaint(): void {
    this.stale = false;
    // Every row, blank ones too, rather than a clear: a clear queued after a row that
    // is still waiting would wipe it (queued rows are replaced in place, see FrameLink.send).
    for (let r = 0; r < this.dims.rows; r++) this.sendRow(r);
    for (const [led, { mode, color }] of this.leds) this.sendMessage({ type: 'led', led, mode, color }, `led:${led}`);
  }

  private sendRow(row: number): void {
    const r = this.screen[row] ?? { text: '', inverse: false };
    this.sendMessage({ type: 'display-line', row, inverse: r.inverse, text: r.text }, `row:${row}`);
  }

  private sendMessage(m: McuMessage, key?: string): void {
    const { type, payload } = encodeMessage(m);
    this.link.send(type, payload, key);
  }

  private receive(type: number, payload: Buffer): void {
    const d = decodeMessage(type, payload);
    if (!d.ok) {
      this.opts.log.warn({ type, reason: d.reason }, 'MCU message not understood; ignored');
      return;
    }
    const m = d.msg;
    switch (m.type) {
      case 'hello':
        this.opts.log.info({ version: m.version, rows: m.rows, cols: m.cols, caps: m.caps, firmware: m.firmware }, 'MCU hello');
        if (m.version !== PROTOCOL_VERSION)
          this.opts.log.warn({ theirs: m.version, ours: PROTOCOL_VERSION }, 'MCU speaks another protocol version');
        this.firmware = m.firmware;
        this.repaint(); // the MCU (re)started with a blank screen
        if (m.rows > 0 && m.cols > 0 && (m.rows !== this.dims.rows || m.cols !== this.dims.cols)) {
          this.dims = { rows: m.rows, cols: m.cols };
          this.screen = this.screen.slice(0, m.rows);
          for (const fn of this.resizeListeners) this.safely(fn);
        }
        return;
      case 'key':
        if (m.pressed) this.emitKey(m.key);
        return;
      case 'hook':
        if (m.offHook === this.hook) return;
        this.hook = m.offHook;
        for (const fn of this.hookListeners) this.safely(() => fn(m.offHook));
        return;
      default:
        this.opts.log.warn({ type: m.type }, 'message meant for the MCU came from it; ignored');
    }
  }

  private emitKey(key: Key): void {
    for (const fn of this.keyListeners) this.safely(() => fn(key));
  }

  /** A throwing listener must not take the serial line down with it. */
  private safely(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.opts.log.error({ err }, 'handset listener failed');
    }
  }
}
