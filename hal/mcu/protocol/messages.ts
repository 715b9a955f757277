// Protocol layer: the typed messages carried in frames, and their byte layout.
// docs/mcu-protocol.md is the reference for phone makers; keep the two in step.
import {
  FUNCTION_KEYS,
  LED_COLORS,
  LED_IDS,
  LED_MODES,
  TONES,
  type Key,
  type LedColor,
  type LedId,
  type LedMode,
  type Tone,
} from '../../handset.js';
import { MAX_PAYLOAD } from '../framing/frame.js';
import { LINK_TYPES } from '../link/frame-link.js';

export const PROTOCOL_VERSION = 1;

export const MSG = {
  ...LINK_TYPES,
  key: 0x10,
  hook: 0x11,
  displayLine: 0x20,
  displayClear: 0x21,
  led: 0x22,
  tone: 0x23,
} as const;

/** HELLO capability bits (MCU to agent). */
export const CAPS = { speakerphone: 0x01, alertLed: 0x02, tones: 0x04 } as const;

export type McuMessage =
  | { type: 'hello'; version: number; rows: number; cols: number; caps: number; firmware: string }
  | { type: 'ping' }
  | { type: 'key'; key: Key; pressed: boolean }
  | { type: 'hook'; offHook: boolean }
  | { type: 'display-line'; row: number; inverse: boolean; text: string }
  | { type: 'display-clear' }
  | { type: 'led'; led: LedId; mode: LedMode; color: LedColor }
  | { type: 'tone'; tone: Tone | 'stop'; durationMs: number };

export type Decoded = { ok: true; msg: McuMessage } | { ok: false; reason: string };

const FIRMWARE_MAX = 32;
const FIRST_FUNCTION_KEY = 0x80;

export function keyCode(key: Key): number {
  if (key.length === 1) return key.charCodeAt(0);
  return FIRST_FUNCTION_KEY + FUNCTION_KEYS.indexOf(key as (typeof FUNCTION_KEYS)[number]);
}

export function keyFromCode(code: number): Key | null {
  if ((code >= 0x30 && code <= 0x39) || code === 0x2a || code === 0x23) return String.fromCharCode(code) as Key;
  return FUNCTION_KEYS[code - FIRST_FUNCTION_KEY] ?? null;
}

/** UTF-8 cut at a character boundary so it fits `max` bytes. */
export function utf8Fit(text: string, max: number): Buffer {
  let buf = Buffer.from(text, 'utf8');
  if (buf.length <= max) return buf;
  let end = max;
  while (end > 0 && (buf[end]! & 0xc0) === 0x80) end--; // never split a multi-byte character
  buf = buf.subarray(0, end);
  return buf;
}

export function encodeMessage(m: McuMessage): { type: number; payload: Buffer } {
  switch (m.type) {
    case 'hello':
      return {
        type: MSG.hello,
        payload: Buffer.concat([Buffer.from([m.version, m.rows, m.cols, m.caps]), utf8Fit(m.firmware, FIRMWARE_MAX)]),
      };
    case 'ping':
      return { type: MSG.ping, payload: Buffer.alloc(0) };
    case 'key':
      return { type: MSG.key, payload: Buffer.from([keyCode(m.key), m.pressed ? 1 : 0]) };
    case 'hook':
      return { type: MSG.hook, payload: Buffer.from([m.offHook ? 1 : 0]) };
    case 'display-line':
      return { type: MSG.displayLine, payload: Buffer.concat([Buffer.from([m.row, m.inverse ? 1 : 0]), utf8Fit(m.text, MAX_PAYLOAD - 2)]) };
    case 'display-clear':
      return { type: MSG.displayClear, payload: Buffer.alloc(0) };
    case 'led':
      return { type: MSG.led, payload: Buffer.from([LED_IDS.indexOf(m.led), LED_MODES.indexOf(m.mode), LED_COLORS.indexOf(m.color)]) };
    case 'tone': {
      const p = Buffer.alloc(3);
      p[0] = m.tone === 'stop' ? 0 : TONES.indexOf(m.tone) + 1;
      p.writeUInt16BE(Math.min(0xffff, Math.max(0, Math.round(m.durationMs))), 1);
      return { type: MSG.tone, payload: p };
    }
  }
}

/** Never throws: a message this side cannot read is a reason (acked, logged, ignored). */
export function decodeMessage(type: number, p: Buffer): Decoded {
  const bad = (reason: string): Decoded => ({ ok: false, reason });
  const ok = (msg: McuMessage): Decoded => ({ ok: true, msg });
  switch (type) {
    case MSG.hello:
      if (p.length < 4) return bad('HELLO shorter than 4 bytes');
      return ok({ type: 'hello', version: p[0]!, rows: p[1]!, cols: p[2]!, caps: p[3]!, firmware: p.subarray(4).toString('utf8') });
    case MSG.ping:
      return ok({ type: 'ping' });
    case MSG.key: {
      if (p.length < 2) return bad('KEY shorter than 2 bytes');
      const key = keyFromCode(p[0]!);
      if (!key) return bad(`unknown key code 0x${p[0]!.toString(16)}`);
      return ok({ type: 'key', key, pressed: p[1] !== 0 });
    }
    case MSG.hook:
      if (p.length < 1) return bad('HOOK without a state byte');
      return ok({ type: 'hook', offHook: p[0] !== 0 });
    case MSG.displayLine:
      if (p.length < 2) return bad('DISPLAY_LINE shorter than 2 bytes');
      return ok({ type: 'display-line', row: p[0]!, inverse: (p[1]! & 1) === 1, text: p.subarray(2).toString('utf8') });
    case MSG.displayClear:
      return ok({ type: 'display-clear' });
    case MSG.led: {
      if (p.length < 2) return bad('LED shorter than 2 bytes');
      const led = LED_IDS[p[0]!];
      const mode = LED_MODES[p[1]!];
      if (!led || !mode) return bad(`unknown LED ${p[0]} or mode ${p[1]}`);
      return ok({ type: 'led', led, mode, color: LED_COLORS[p[2] ?? 0] ?? 'default' });
    }
    case MSG.tone: {
      if (p.length < 3) return bad('TONE shorter than 3 bytes');
      const tone = p[0] === 0 ? 'stop' : TONES[p[0]! - 1];
      if (!tone) return bad(`unknown tone ${p[0]}`);
      return ok({ type: 'tone', tone, durationMs: p.readUInt16BE(1) });
    }
    default:
      return bad(`unknown message type 0x${type.toString(16)}`);
  }
}
