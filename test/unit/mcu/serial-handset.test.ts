// The agent's MCU stack (McuHandset over SerialTransport) against serialport's
// MockBinding: the exact bytes it writes, acks, retries, resync after garbage and
// truncation, and a port that vanishes and returns without losing a keypress.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { McuHandset } from '../../../hal/mcu/mcu-handset.js';
import { SerialTransport } from '../../../hal/mcu/transport/serial.js';
import { McuSimulator } from '../../../hal/sim/mcu-simulator.js';
import type { Key } from '../../../hal/handset.js';
import { MockBinding, MockMcuWire } from '../../helpers/mock-mcu-wire.js';
import { recordingLog, silentLog } from '../../helpers/log.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
// Expected frames, computed independently of the code under test (see framing.test.ts).
const HOST_HELLO = hex('a5 13 00 01 01 00 00 00 65 39 31 31 2d 61 67 65 6e 74 20 74 65 73 74 6a 50'); // seq 0, "e911-agent test"
const KEY9_SEQ7 = hex('a5 02 07 10 39 01 e8 ed');
const ACK7 = hex('a5 00 07 00 55 0b');
const ACK0 = hex('a5 00 00 00 cc 9c');
const ROW0_BLANK_SEQ1 = hex('a5 02 01 20 00 00 a5 fd'); // DISPLAY_LINE row 0, "" (the repaint after HELLO)

let n = 0;
const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const s of stops.splice(0)) await s();
  MockBinding.reset();
});

function setup(opts: { log?: ReturnType<typeof silentLog>; maxRetries?: number } = {}) {
  const log = opts.log ?? silentLog();
  const wire = new MockMcuWire(`/dev/ttyMOCK${++n}`);
  const transport = new SerialTransport({ path: wire.path, openPort: wire.openPort, log, backoffMinMs: 5, backoffMaxMs: 20 });
  const handset = new McuHandset({
    transport,
    log,
    agentVersion: 'test',
    ackTimeoutMs: 25,
    maxRetries: opts.maxRetries ?? 2,
    frameGapMs: 15,
    keepaliveMs: 0,
  });
  const keys: Key[] = [];
  handset.onKey((k) => keys.push(k));
  stops.push(() => handset.stop());
  return { wire, handset, keys, log };
}

describe('McuHandset over a MockBinding serial port', () => {
  it('says HELLO first, byte for byte, and waits for its ACK before the next frame', async () => {
    const { wire, handset } = setup();
    await handset.start();
    await vi.waitFor(() => expect(wire.written.length).toBeGreaterThan(0));
    expect(wire.written[0]).toEqual(HOST_HELLO);
    // Stop-and-wait: nothing else until the HELLO is acked (only HELLO retransmits).
    await new Promise((r) => setTimeout(r, 10));
    expect(wire.written.every((w) => w.equals(HOST_HELLO))).toBe(true);
    // The MCU's ACK, arriving in two pieces as serial reads do.
    wire.emit(ACK0.subarray(0, 4));
    wire.emit(ACK0.subarray(4));
    await vi.waitFor(() => expect(wire.written.some((w) => w.equals(ROW0_BLANK_SEQ1))).toBe(true));
  });

  it('acks a key frame byte-exactly and delivers a retransmitted duplicate once', async () => {
    const { wire, handset, keys } = setup();
    await handset.start();
    await vi.waitFor(() => expect(wire.isUp).toBe(true));
    wire.emit(KEY9_SEQ7);
    await vi.waitFor(() => expect(keys).toEqual(['9']));
    await vi.waitFor(() => expect(wire.written.filter((w) => w.equals(ACK7))).toHaveLength(1));
    wire.emit(KEY9_SEQ7); // our ACK was "lost": the MCU sends the same seq again
    await vi.waitFor(() => expect(wire.written.filter((w) => w.equals(ACK7))).toHaveLength(2));
    expect(keys).toEqual(['9']);
  });

  it('retransmits an unacked frame maxRetries times, then reports the MCU unresponsive', async () => {
    const { wire, handset } = setup({ maxRetries: 2 });
    await handset.start();
    await vi.waitFor(() => expect(wire.written.length).toBeGreaterThan(0));
    wire.emit(ACK0); // the MCU acks the HELLO, then goes silent
    await vi.waitFor(() => expect(handset.status().responsive).toBe(true));
    await vi.waitFor(() => expect(handset.status().responsive).toBe(false));
    // The first repaint row after HELLO: first try + 2 retries, same seq, same bytes.
    expect(wire.written.filter((w) => w.equals(ROW0_BLANK_SEQ1))).toHaveLength(3);
  });

  it('resyncs after garbage and a truncated frame, logs it, and loses no key', async () => {
    const { log, lines } = recordingLog();
    const { wire, handset, keys } = setup({ log });
    await handset.start();
    await vi.waitFor(() => expect(wire.isUp).toBe(true));
    wire.emit(hex('00 13 37 ff a5 ff')); // noise, then a start byte with an impossible length
    wire.emit(hex('a5 20 01 10')); // a frame cut off: its length swallows the next frame
    wire.emit(KEY9_SEQ7);
    await vi.waitFor(() => expect(keys).toEqual(['9']));
    expect(handset.status().framingErrors).toBeGreaterThanOrEqual(3);
    expect(lines().some((l) => l.msg === 'bad bytes on the MCU line; resyncing')).toBe(true);
  });

  it('waits for a port that is not there yet, then opens it', async () => {
    const { wire, handset } = setup();
    MockBinding.reset(); // no device at start
    await handset.start();
    await new Promise((r) => setTimeout(r, 30));
    expect(handset.status().connected).toBe(false);
    wire.restore();
    await vi.waitFor(() => expect(handset.status().connected).toBe(true));
  });

  it('reopens a vanished port with backoff; keys typed meanwhile arrive once, in order', async () => {
    const { wire, handset, keys } = setup();
    // The agent reports each loss (part-failed, handset) while the transport reopens the port.
    const lost: string[] = [];
    handset.onLinkLost((reason) => lost.push(reason));
    const sim = new McuSimulator({ transport: wire, log: silentLog(), ackTimeoutMs: 25 });
    stops.push(() => sim.stop());
    sim.start();
    await handset.start();
    await vi.waitFor(() => expect(handset.status().firmware).toBe('e911-sim 1'));
    sim.type('9');
    await vi.waitFor(() => expect(keys).toEqual(['9']));
    expect(lost).toEqual([]);

    wire.vanish();
    await vi.waitFor(() => expect(handset.status().connected).toBe(false));
    expect(lost).toHaveLength(1);
    sim.type('11'); // typed while the agent cannot hear the MCU
    sim.setHook(true);
    await new Promise((r) => setTimeout(r, 60)); // several failed reopen attempts
    expect(keys).toEqual(['9']);
    expect(sim.unacked).toBe(3);

    wire.restore();
    await vi.waitFor(() => expect(keys).toEqual(['9', '1', '1']));
    await vi.waitFor(() => expect(handset.offHook).toBe(true));
    await vi.waitFor(() => expect(sim.unacked).toBe(0));
    expect(handset.status().reopens).toBe(1);
    expect(wire.opened).toBe(2);
  });

  it('redraws the screen and LEDs after the port comes back', async () => {
    const { wire, handset } = setup();
    const sim = new McuSimulator({ transport: wire, log: silentLog(), ackTimeoutMs: 25 });
    stops.push(() => sim.stop());
    sim.start();
    await handset.start();
    handset.show(['EMERGENCY NOTICE', '100 Main St']);
    handset.setLed('alert', 'blink-slow', 'red');
    await vi.waitFor(() => expect(sim.screen.lines.slice(0, 2)).toEqual(['EMERGENCY NOTICE', '100 Main St']));
    wire.vanish();
    sim.screen.lines.fill(''); // as if the MCU lost its screen meanwhile
    sim.screen.leds = {};
    wire.restore();
    await vi.waitFor(() => expect(sim.screen.lines.slice(0, 2)).toEqual(['EMERGENCY NOTICE', '100 Main St']));
    await vi.waitFor(() => expect(sim.screen.leds.alert).toEqual({ mode: 'blink-slow', color: 'red' }));
  });
});

describe('repaint ordering', () => {
  it('a row still queued when the MCU says hello is not wiped by the repaint', async () => {
    const { wire, handset } = setup();
    const sim = new McuSimulator({ transport: wire, log: silentLog(), ackTimeoutMs: 25 });
    stops.push(() => sim.stop());
    await handset.start(); // the agent's HELLO and rows queue while no MCU answers
    handset.show(['Dial: 45']);
    sim.start(); // the MCU boots: its HELLO asks for a repaint behind the queued row
    await vi.waitFor(() => expect(handset.status().firmware).toBe('e911-sim 1'));
    await vi.waitFor(() => expect(sim.unacked).toBe(0));
    await vi.waitFor(() => expect(sim.screen.lines[0]).toBe('Dial: 45'));
    expect(sim.received.some((m) => m.type === 'display-clear')).toBe(false);
  });
});
