// A phone in a terminal: keys typed become MCU key and hook events; the screen,
// LEDs and tone the agent set are drawn. Used by scripts/dev/phone-sim.ts and by
// the console handset backend.
import type { Key } from '../handset.js';
import type { McuSimulator } from './mcu-simulator.js';

/** Terminal input to phone keys. Letters are for keys a keyboard lacks. */
const KEYMAP: Record<string, Key | 'hook' | 'quit'> = {
  '\r': 'ok',
  '\n': 'ok',
  '\x1b': 'cancel',
  '\x7f': 'cancel',
  '\x1b[A': 'up',
  '\x1b[B': 'down',
  '\x1bOP': 'soft1',
  '\x1bOQ': 'soft2',
  '\x1bOR': 'soft3',
  '\x1bOS': 'soft4',
  h: 'hook',
  s: 'speaker',
  m: 'mute',
  o: 'hold',
  r: 'redial',
  '\x03': 'quit',
};

export const TERMINAL_HELP =
  'keys: 0-9 * #  | h hook off/on | s speaker | m mute | Enter OK | Esc cancel | arrows up/down | F1-F4 soft keys | Ctrl-C quit';

/** Draws the phone's face as text lines (no escape codes: tests can read it). */
export function renderPhone(sim: McuSimulator): string[] {
  const bar = `+${'-'.repeat(sim.cols + 2)}+`;
  const rows = sim.screen.lines.map((l, i) => {
    const text = l.padEnd(sim.cols).slice(0, sim.cols);
    return `| ${sim.screen.inverse[i] ? `[${text.slice(0, sim.cols - 2)}]` : text} |`;
  });
  const leds = Object.entries(sim.screen.leds)
    .filter(([, v]) => v && v.mode !== 'off')
    .map(([id, v]) => `${id}:${v!.mode}${v!.color !== 'default' ? `/${v!.color}` : ''}`);
  const tone = sim.screen.tone ? `tone ${sim.screen.tone.tone}` : '';
  return [bar, ...rows, bar, `${sim.offHook ? 'OFF-HOOK' : 'on-hook'}  LEDs ${leds.join(' ') || 'off'}  ${tone}`.trimEnd()];
}

export interface TerminalPhoneOptions {
  sim: McuSimulator;
  input: NodeJS.ReadStream;
  output: NodeJS.WritableStream;
  onQuit: () => void;
  /** Printed under the phone (e.g. which port to give the agent). */
  banner?: string;
}

export class TerminalPhone {
  private readonly onData = (chunk: Buffer | string) => this.typed(chunk.toString());

  constructor(private readonly opts: TerminalPhoneOptions) {}

  start(): void {
    const { input } = this.opts;
    if (input.isTTY) input.setRawMode(true);
    input.on('data', this.onData);
    input.resume();
    this.draw();
  }

  stop(): void {
    const { input } = this.opts;
    input.off('data', this.onData);
    if (input.isTTY) input.setRawMode(false);
    input.pause();
  }

  /** Redraws the phone (ANSI: clear screen, home). */
  draw(): void {
    this.opts.output.write(
      `\x1b[2J\x1b[H${renderPhone(this.opts.sim).join('\n')}\n\n${TERMINAL_HELP}\n${this.opts.banner ? `${this.opts.banner}\n` : ''}`,
    );
  }

  private typed(s: string): void {
    const { sim } = this.opts;
    const whole = KEYMAP[s];
    // An escape sequence (arrow, F-key) arrives whole; plain keys may arrive several at once.
    const keys = whole !== undefined ? [whole] : [...s].map((c) => (/^[0-9*#]$/.test(c) ? (c as Key) : KEYMAP[c.toLowerCase()]));
    for (const k of keys) {
      if (k === undefined) continue;
      if (k === 'quit') this.opts.onQuit();
      else if (k === 'hook') sim.setHook(!sim.offHook);
      else sim.press(k);
    }
    this.draw();
  }
}
