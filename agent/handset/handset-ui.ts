// What the phone's keypad, hookswitch, display and LEDs do. Keypad digits go to the
// emergency path first, before anything is drawn: off-hook and 911 dials at once,
// whatever is on the screen (the notice included). Screens stack by priority; the
// top one is drawn, wrapped to the display and scrollable with up/down.
import type { Logger } from '../../provisioning/common/log.js';
import type { StoredAddress } from '../store/store.js';
import { isKeypadKey, type Alerts, type FunctionKey, type Handset, type Key, type LedMode } from '../../hal/handset.js';
import { formatAddressLines } from '../../provisioning/protocol/address.js';
import { noticeLines, type EmergencyNotice } from './notice.js';

/** What a key returns from the emergency path (agent/emergency EmergencyService.keypad). */
export interface KeypadOutcome {
  kind: string;
  placed?: boolean;
  collected?: string;
  callRef?: string;
  dialed?: string;
  number?: string;
  target?: string;
  error?: string;
  reason?: string;
  addressMissing?: boolean;
  /** The civic address the INVITE carried first. */
  locationSent?: Record<string, string>;
}

/** The emergency path as the keypad drives it; EmergencyService fits as it is. */
export interface KeypadDialer {
  keypad(key: string): KeypadOutcome;
  /** Handset back on hook: ends calls, clears digits. */
  hangup(): unknown;
}

export interface HandsetUiDeps {
  handset: Handset;
  log: Logger;
  notice: EmergencyNotice;
  address: () => StoredAddress | null;
  /** null until the emergency path exists in this agent. */
  dialer: () => KeypadDialer | null;
  /** The keypad placed a test call (933): run the checks and follow that call. */
  onTestCall?: (callRef: string) => void;
  deviceLabel: string;
}

interface Screen {
  id: string;
  priority: number;
  lines: readonly string[];
  led?: LedMode;
  scroll: number;
  onKey?: (key: FunctionKey) => boolean;
}

const PRIORITY = { emergencyCall: 100, dial: 90, diagnostics: 80, testCall: 70, notice: 60, alert: 40 } as const;

export class HandsetUi implements Alerts {
  private readonly screens = new Map<string, Screen>();
  private speaker = false;
  private unsubscribe: (() => void)[] = [];

  constructor(private readonly deps: HandsetUiDeps) {}

  start(): void {
    const h = this.deps.handset;
    this.unsubscribe = [h.onKey((k) => this.key(k)), h.onHook((off) => this.hook(off)), h.onResize(() => this.render())];
    this.refreshNotice();
  }

  stop(): void {
    for (const u of this.unsubscribe) u();
    this.unsubscribe = [];
  }

  /** The line is open: handset lifted or speakerphone on. */
  get lineOpen(): boolean {
    return this.deps.handset.offHook || this.speaker;
  }

  // ---- Alerts (for other parts: location mismatch and the like) ----

  raise(alert: { id: string; lines: readonly string[]; led?: LedMode; onKey?: (key: FunctionKey) => boolean }): void {
    const id = `alert:${alert.id}`;
    this.put({
      id,
      priority: PRIORITY.alert,
      lines: alert.lines,
      scroll: this.screens.get(id)?.scroll ?? 0,
      led: alert.led ?? 'blink-slow',
      ...(alert.onKey ? { onKey: alert.onKey } : {}),
    });
  }

  clear(id: string): void {
    this.remove(`alert:${id}`);
  }

  // ---- notice and diagnostics ----

  /** Shows the notice while it waits for the user; call after the notice's state changed. */
  refreshNotice(): void {
    if (!this.deps.notice.pending) {
      this.remove('notice');
      return;
    }
    this.put({
      id: 'notice',
      priority: PRIORITY.notice,
      lines: noticeLines(this.deps.address()),
      scroll: 0,
      led: 'blink-slow',
      onKey: (k) => {
        if (k !== 'ok' && k !== 'soft1') return false;
        this.deps.notice.acknowledge('keypad');
        this.deps.handset.tone('confirm', 200);
        return true;
      },
    });
  }

  diagnosticsRunning(): void {
    this.put({ id: 'diagnostics', priority: PRIORITY.diagnostics, lines: ['933 TEST', 'Checking the phone...'], scroll: 0 });
  }

  /** The report's lines (address read back, then what failed) until OK. */
  showDiagnostics(lines: readonly string[], failed: boolean): void {
    this.put({
      id: 'diagnostics',
      priority: PRIORITY.diagnostics,
      lines,
      scroll: 0,
      ...(failed ? { led: 'on' as const } : {}),
      onKey: (k) => {
        if (k !== 'ok' && k !== 'cancel' && k !== 'soft1') return false;
        this.remove('diagnostics');
        return true;
      },
    });
  }

  // ---- keys and hook ----

  private key(k: Key): void {
    if (isKeypadKey(k)) {
      this.digit(k);
      return;
    }
    if (k === 'speaker') {
      const wasOpen = this.lineOpen;
      this.speaker = !this.speaker;
      this.lineChanged(wasOpen);
      return;
    }
    const top = this.top();
    if (top?.onKey?.(k)) return;
    if (top && (k === 'up' || k === 'down')) {
      top.scroll = Math.max(0, top.scroll + (k === 'down' ? 1 : -1));
      this.render();
    }
  }

  private digit(k: string): void {
    // The emergency path first: nothing on the screen may delay 911.
    const dialer = this.deps.dialer();
    let out: KeypadOutcome | null = null;
    try {
      out = dialer ? dialer.keypad(k) : null;
    } catch (err) {
      this.deps.log.error({ err, key: k }, 'emergency path refused a key');
    }
    this.deps.handset.stopTone();
    if (!out) {
      this.put({
        id: 'dial',
        priority: PRIORITY.dial,
        lines: ['CANNOT PLACE CALLS', 'This phone has no call path: dial 911 from another phone'],
        scroll: 0,
        led: 'blink-fast',
      });
      return;
    }
    this.outcome(out);
  }

  private outcome(out: KeypadOutcome): void {
    switch (out.kind) {
      case 'pending':
        this.put({
          id: 'dial',
          priority: PRIORITY.dial,
          lines: [`Dial: ${out.collected ?? ''}`],
          scroll: 0,
          onKey: (k) => k === 'cancel' && this.cancelDialing(),
        });
        return;
      case 'emergency': {
        this.remove('dial');
        const sent = out.locationSent ?? this.deps.address()?.doc.civic;
        const lines = out.placed
          ? [
              `CALLING ${out.number ?? '911'}`,
              ...(sent ? ['Location sent:', ...formatAddressLines(sent)] : ['NO ADDRESS ON FILE', 'Tell the call taker where you are']),
            ]
          : [`${out.dialed ?? '911'} CALL FAILED`, out.error ?? 'unknown error', 'Use another phone'];
        this.put({ id: 'call', priority: PRIORITY.emergencyCall, lines, scroll: 0, led: 'blink-fast' });
        return;
      }
      case 'test':
        this.remove('dial');
        this.put({
          id: 'call',
          priority: PRIORITY.testCall,
          lines: out.placed ? [`TEST CALL ${out.number ?? '933'}`] : ['TEST CALL FAILED', out.error ?? ''],
          scroll: 0,
        });
        if (out.placed && out.callRef) this.deps.onTestCall?.(out.callRef);
        return;
      case 'ordinary':
        this.remove('dial');
        this.put({
          id: 'call',
          priority: PRIORITY.testCall,
          lines: out.placed ? [`Calling ${out.target ?? out.dialed ?? ''}`] : ['Call not placed', out.reason ?? ''],
          scroll: 0,
        });
        return;
      default:
        this.put({ id: 'dial', priority: PRIORITY.dial, lines: [`Dial: ${out.dialed ?? ''}`, out.reason ?? 'invalid number'], scroll: 0 });
    }
  }

  /** Cancel while dialing: the digits (and any call they made) go. */
  private cancelDialing(): true {
    this.endLine();
    return true;
  }

  private hook(offHook: boolean): void {
    // Lifting with the speaker on changes nothing on the line; putting down ends it.
    const wasOpen = offHook ? this.speaker : true;
    if (!offHook) this.speaker = false;
    this.lineChanged(wasOpen);
  }

  private lineChanged(wasOpen: boolean): void {
    const open = this.lineOpen;
    if (open === wasOpen) return;
    if (open) {
      this.deps.handset.tone('dial');
      this.put({ id: 'dial', priority: PRIORITY.dial, lines: ['Dial:'], scroll: 0, onKey: (k) => k === 'cancel' && this.cancelDialing() });
      return;
    }
    this.endLine();
  }

  private endLine(): void {
    this.deps.handset.stopTone();
    try {
      this.deps.dialer()?.hangup();
    } catch (err) {
      this.deps.log.error({ err }, 'hangup failed');
    }
    this.remove('dial');
    this.remove('call');
  }

  // ---- drawing ----

  private put(s: Screen): void {
    this.screens.set(s.id, s);
    this.render();
  }

  private remove(id: string): void {
    if (this.screens.delete(id)) this.render();
  }

  private top(): Screen | undefined {
    let best: Screen | undefined;
    for (const s of this.screens.values()) if (!best || s.priority > best.priority) best = s;
    return best;
  }

  private render(): void {
    const h = this.deps.handset;
    const top = this.top();
    const lines = top ? top.lines : this.idleLines();
    const wrapped = lines.flatMap((l) => wrap(l, h.cols));
    let shown: string[];
    if (wrapped.length <= h.rows) shown = wrapped;
    else {
      // Last row says there is more; the rest scrolls.
      const body = Math.max(1, h.rows - 1);
      const maxScroll = wrapped.length - body;
      if (top) top.scroll = Math.min(top.scroll, maxScroll);
      const from = top?.scroll ?? 0;
      shown = [
        ...wrapped.slice(from, from + body),
        `${from > 0 ? '^' : ' '}${from < maxScroll ? 'v more' : ' end'}${top?.onKey ? '  OK' : ''}`,
      ];
    }
    h.show(shown);
    const led = [...this.screens.values()].map((s) => s.led).filter((m): m is LedMode => m !== undefined);
    h.setLed(
      'alert',
      led.includes('blink-fast') ? 'blink-fast' : led.includes('on') ? 'on' : led.includes('blink-slow') ? 'blink-slow' : 'off',
      'red',
    );
  }

  private idleLines(): string[] {
    const a = this.deps.address();
    if (!a) return [this.deps.deviceLabel, 'E911: NO ADDRESS', 'Dial 911 for emergencies'];
    return [a.doc.displayName, `E911: ${formatAddressLines(a.doc.civic).slice(0, 2).join(', ')}`];
  }
}

/** Word-wraps one line to the display width; long words are cut. */
export function wrap(text: string, cols: number): string[] {
  if (cols <= 0) return [text];
  const out: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    let w = word;
    while ([...w].length > cols) {
      if (line) {
        out.push(line);
        line = '';
      }
      out.push([...w].slice(0, cols).join(''));
      w = [...w].slice(cols).join('');
    }
    if (!line) line = w;
    else if ([...line].length + 1 + [...w].length <= cols) line += ` ${w}`;
    else {
      out.push(line);
      line = w;
    }
  }
  if (line || out.length === 0) out.push(line);
  return out;
}
