// The handset as the agent sees it: keypad and hookswitch in; display lines, LEDs and
// tones out. Backends: hal/mcu (a serial MCU, real or simulated) and none.
// Parts of the agent that only draw on the phone take Display and Leds, not Handset.

export const KEYPAD_KEYS = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '#'] as const;
export type KeypadKey = (typeof KEYPAD_KEYS)[number];

/** Keys besides the twelve keypad keys. soft1..soft4 sit under the display. */
export const FUNCTION_KEYS = [
  'speaker',
  'mute',
  'hold',
  'redial',
  'volume-up',
  'volume-down',
  'headset',
  'ok',
  'cancel',
  'up',
  'down',
  'soft1',
  'soft2',
  'soft3',
  'soft4',
] as const;
export type FunctionKey = (typeof FUNCTION_KEYS)[number];
export type Key = KeypadKey | FunctionKey;

export function isKeypadKey(k: string): k is KeypadKey {
  return (KEYPAD_KEYS as readonly string[]).includes(k);
}

export const LED_IDS = ['alert', 'message', 'speaker', 'mute', 'line1', 'line2'] as const;
export type LedId = (typeof LED_IDS)[number];
export const LED_MODES = ['off', 'on', 'blink-slow', 'blink-fast'] as const;
export type LedMode = (typeof LED_MODES)[number];
export const LED_COLORS = ['default', 'red', 'green', 'amber'] as const;
export type LedColor = (typeof LED_COLORS)[number];

export const TONES = ['dial', 'ringback', 'busy', 'confirm', 'error', 'alert'] as const;
export type Tone = (typeof TONES)[number];

export interface Display {
  /** Rows and columns the display reported (a default until the MCU has said). */
  readonly rows: number;
  readonly cols: number;
  /** Writes one row (0-based); text longer than the row is cut by the display. */
  setLine(row: number, text: string, opts?: { inverse?: boolean }): void;
  /** Replaces the whole screen: rows beyond `lines` are blanked. */
  show(lines: readonly string[]): void;
}

export interface Leds {
  setLed(led: LedId, mode: LedMode, color?: LedColor): void;
}

export interface HandsetStatus {
  backend: string;
  /** The transport is open (serial port present). */
  connected: boolean;
  /** The MCU has answered recently (acked a frame or sent one). */
  responsive: boolean;
  offHook: boolean;
  firmware: string | null;
  rows: number;
  cols: number;
  /** Frames dropped by the framing layer (garbage, bad CRC, truncation). */
  framingErrors: number;
  retransmits: number;
  reopens: number;
  /** Frames not yet acknowledged by the MCU (in flight and waiting): 0 when the display shows all it was sent. */
  queued: number;
}

export type KeyListener = (key: Key) => void;
export type HookListener = (offHook: boolean) => void;

export interface Handset extends Display, Leds {
  readonly offHook: boolean;
  /** Key presses (releases are not reported). Returns an unsubscribe function. */
  onKey(fn: KeyListener): () => void;
  onHook(fn: HookListener): () => void;
  /** The display reported its size (the MCU said hello): time to redraw. */
  onResize(fn: () => void): () => void;
  /** Plays a tone; durationMs 0 plays until stopTone() or the next tone. */
  tone(tone: Tone, durationMs?: number): void;
  stopTone(): void;
  status(): HandsetStatus;
  /**
   * The link to the keypad and display was lost while running (the serial port went away);
   * the backend reopens it by itself. For the agent's report. Returns an unsubscribe function.
   */
  onLinkLost?(fn: (reason: string) => void): () => void;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Something that needs the user's attention on the phone: shown on the display,
 * above the idle screen, with the alert LED blinking, until it is cleared.
 * Implemented by agent/handset's screen manager; used by e.g. the location check.
 */
export interface Alerts {
  /**
   * Shows (or updates) an alert. onKey hears the function keys (ok, cancel, up, down,
   * soft1..4) while the alert is on top; returning true consumes the key. Keypad
   * digits always go to the dialer, never to an alert.
   */
  raise(alert: { id: string; lines: readonly string[]; led?: LedMode; onKey?: (key: FunctionKey) => boolean }): void;
  clear(id: string): void;
}
