// The MCU side of the protocol, in TypeScript: what a phone maker's firmware does,
// for laptops, CI and the console backend. It keeps the screen, LEDs and tone the
// agent set, and sends keys and hook changes. Like real firmware should, it never
// drops a key or hook event: each is retried until the agent acks it, and events
// typed while the line is down are sent once it is back.
import type { HalLogger } from '../log.js';
import type { Key, LedColor, LedId, LedMode, Tone } from '../handset.js';
import { FrameLink } from '../mcu/link/frame-link.js';
import { CAPS, decodeMessage, encodeMessage, PROTOCOL_VERSION, type McuMessage } from '../mcu/protocol/messages.js';
import type { ByteTransport } from '../mcu/transport/transport.js';

export interface McuSimulatorOptions {
  transport: ByteTransport;
  log: HalLogger;
  rows?: number;
  cols?: number;
  firmware?: string;
  ackTimeoutMs?: number;
  /** Called after anything the agent changed (screen, LEDs, tone). */
  onChange?: () => void;
}

export interface SimScreen {
  lines: string[];
  inverse: boolean[];
  leds: Partial<Record<LedId, { mode: LedMode; color: LedColor }>>;
  tone: { tone: Tone; durationMs: number } | null;
}

export class McuSimulator {
  readonly rows: number;
  readonly cols: number;
  readonly screen: SimScreen;
  offHook = false;
  /** Every message the agent sent, in order (tests read it). */
  readonly received: McuMessage[] = [];
  private readonly link: FrameLink;

  constructor(private readonly opts: McuSimulatorOptions) {
    this.rows = opts.rows ?? 4;
    this.cols = opts.cols ?? 24;
    this.screen = { lines: Array<string>(this.rows).fill(''), inverse: Array<boolean>(this.rows).fill(false), leds: {}, tone: null };
    this.link = new FrameLink({
      transport: opts.transport,
      log: opts.log,
      onFrame: (f) => this.receive(f.type, f.payload),
      // Firmware boots when its line comes up: say hello with the display size.
      onTransport: (up) => up && this.hello(),
      // Keys and hook changes are never given up on.
      maxRetries: Number.POSITIVE_INFINITY,
      queueMax: 256,
      ...(opts.ackTimeoutMs !== undefined ? { ackTimeoutMs: opts.ackTimeoutMs } : {}),
    });
  }

  start(): void {
    this.link.start();
  }

  async stop(): Promise<void> {
    await this.link.stop();
  }

  /** Key and hook frames not yet acked by the agent. */
  get unacked(): number {
    return this.link.queued;
  }

  get stats() {
    return this.link.stats;
  }

  press(key: Key): void {
    this.send({ type: 'key', key, pressed: true });
  }

  /** Types a string of keypad keys, one KEY frame each. */
  type(keys: string): void {
    for (const k of keys) this.press(k as Key);
  }

  setHook(offHook: boolean): void {
    this.offHook = offHook;
    this.send({ type: 'hook', offHook });
  }

  private hello(): void {
    this.send({
      type: 'hello',
      version: PROTOCOL_VERSION,
      rows: this.rows,
      cols: this.cols,
      caps: CAPS.speakerphone | CAPS.alertLed | CAPS.tones,
      firmware: this.opts.firmware ?? 'e911-sim 1',
    });
  }

  private send(m: McuMessage): void {
    const { type, payload } = encodeMessage(m);
    this.link.send(type, payload);
  }

  private receive(type: number, payload: Buffer): void {
    const d = decodeMessage(type, payload);
    if (!d.ok) {
      this.opts.log.warn({ type, reason: d.reason }, 'sim: message not understood');
      return;
    }
    const m = d.msg;
    this.received.push(m);
    switch (m.type) {
      case 'display-line':
        if (m.row < this.rows) {
          this.screen.lines[m.row] = [...m.text].slice(0, this.cols).join('');
          this.screen.inverse[m.row] = m.inverse;
        }
        break;
      case 'display-clear':
        this.screen.lines.fill('');
        this.screen.inverse.fill(false);
        break;
      case 'led':
        this.screen.leds[m.led] = { mode: m.mode, color: m.color };
        break;
      case 'tone':
        this.screen.tone = m.tone === 'stop' ? null : { tone: m.tone, durationMs: m.durationMs };
        break;
      default:
        return; // hello from the agent: nothing to show
    }
    this.opts.onChange?.();
  }
}
