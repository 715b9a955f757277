// What the keypad path adds to an emergency call: from the last '1' of 911 as a KEY
// frame to VoiceStack.makeCall, through framing, link, protocol, McuHandset and the
// handset UI into the real EmergencyService (on the in-memory voice stack).
// Baseline, same run: EmergencyService.keypad('1') called directly.
// With socat present, the same over a real pty pair (serialport on both ends).
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { MemoryVoiceStack } from '../../hal/voice/memory.js';
import { EmergencyService } from '../../agent/emergency/service.js';
import { dialPlanSchema, emergencySchema, sipSchema } from '../../agent/emergency/config.js';
import { HandsetUi } from '../../agent/handset/handset-ui.js';
import { EmergencyNotice } from '../../agent/handset/notice.js';
import { McuHandset } from '../../hal/mcu/mcu-handset.js';
import { encodeFrame } from '../../hal/mcu/framing/frame.js';
import { encodeMessage, type McuMessage } from '../../hal/mcu/protocol/messages.js';
import type { ByteTransport, TransportListener } from '../../hal/mcu/transport/transport.js';
import { McuSimulator } from '../../hal/sim/mcu-simulator.js';
import { startPtyPair } from '../../hal/sim/pty-pair.js';
import { nativePortFactory, SerialTransport } from '../../hal/mcu/transport/serial.js';
import { summary, report } from './stats.js';

const WARMUP = 50;
const N = 300 + WARMUP;
const log = pino({ level: 'silent' });
const now = () => performance.now();

/** Bytes handed straight to the agent's stack: no wire, no scheduling. */
class DirectTransport implements ByteTransport {
  readonly name = 'direct';
  readonly reopens = 0;
  readonly isUp = true;
  listener: TransportListener | null = null;
  attach(l: TransportListener): void {
    this.listener = l;
  }
  start(): void {
    this.listener?.up();
  }
  async stop(): Promise<void> {}
  write(): void {}
}

async function emergency(voice: MemoryVoiceStack): Promise<EmergencyService> {
  const svc = new EmergencyService({
    voice,
    emergency: emergencySchema.parse({ routes: { primary: 'sip:10.0.0.1:5060' }, suppressMinutes: 0 }),
    dialPlan: dialPlanSchema.parse({}),
    sip: sipSchema.parse({ port: 5062, bindAddress: '10.0.0.50' }),
    deviceId: 'bench',
    agentVersion: 'bench',
    log,
    emitEvent: () => {},
    network: () => ({ interface: 'eth0', ip: '10.0.0.50', mac: '00:d0:1e:12:34:56' }),
  });
  await svc.start(null);
  return svc;
}

/** Stamps each makeCall; the caller reads the stamp of the call it caused. */
function stamp(voice: MemoryVoiceStack): { last: number } {
  const s = { last: 0 };
  const make = voice.makeCall.bind(voice);
  voice.makeCall = (t, o) => {
    s.last = now();
    return make(t, o);
  };
  return s;
}

function uiFor(handset: McuHandset, svc: EmergencyService): HandsetUi {
  const store = { noticeState: () => null, saveNoticeShown: () => {}, saveNoticeAcknowledged: () => {} };
  const notice = new EmergencyNotice({
    store,
    log,
    newEvent: () => {
      throw new Error('unused');
    },
    wake: () => {},
  });
  const ui = new HandsetUi({ handset, log, notice, address: () => null, dialer: () => svc, deviceLabel: 'bench' });
  ui.start();
  return ui;
}

async function direct(): Promise<number[]> {
  const voice = new MemoryVoiceStack();
  const svc = await emergency(voice);
  const s = stamp(voice);
  const out: number[] = [];
  for (let i = 0; i < N; i++) {
    svc.keypad('9');
    svc.keypad('1');
    const t0 = now();
    svc.keypad('1');
    out.push(s.last - t0);
    svc.hangup();
  }
  await svc.stop();
  return out;
}

async function throughStack(): Promise<number[]> {
  const voice = new MemoryVoiceStack();
  const svc = await emergency(voice);
  const s = stamp(voice);
  const t = new DirectTransport();
  const handset = new McuHandset({ transport: t, log, agentVersion: 'bench', keepaliveMs: 0 });
  uiFor(handset, svc);
  await handset.start();
  let seq = 0;
  const frame = (m: McuMessage) => {
    const { type, payload } = encodeMessage(m);
    return encodeFrame({ seq: seq++ & 0xff, type, payload });
  };
  const out: number[] = [];
  for (let i = 0; i < N; i++) {
    t.listener!.data(frame({ type: 'hook', offHook: true }));
    t.listener!.data(frame({ type: 'key', key: '9', pressed: true }));
    t.listener!.data(frame({ type: 'key', key: '1', pressed: true }));
    const last = frame({ type: 'key', key: '1', pressed: true });
    const t0 = now();
    t.listener!.data(last);
    out.push(s.last - t0);
    t.listener!.data(frame({ type: 'hook', offHook: false }));
    // The stack reports the hang-up after it returns (as PJSIP does): let it end before the next 911.
    await new Promise((r) => setImmediate(r));
  }
  await handset.stop();
  await svc.stop();
  return out;
}

async function overPty(): Promise<number[] | null> {
  if (!['/usr/bin/socat', '/usr/local/bin/socat'].some((p) => existsSync(p))) return null;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'e911-bench-pty-'));
  const pair = await startPtyPair(dir);
  const voice = new MemoryVoiceStack();
  const svc = await emergency(voice);
  const s = stamp(voice);
  const handset = new McuHandset({
    transport: new SerialTransport({ path: pair.agent, openPort: await nativePortFactory(pair.agent, 115200), log }),
    log,
    agentVersion: 'bench',
    keepaliveMs: 0,
  });
  uiFor(handset, svc);
  const sim = new McuSimulator({
    transport: new SerialTransport({ path: pair.mcu, openPort: await nativePortFactory(pair.mcu, 115200), log }),
    log,
  });
  sim.start();
  await handset.start();
  const until = async (cond: () => boolean) => {
    while (!cond()) await new Promise((r) => setImmediate(r));
  };
  await until(() => handset.status().firmware !== null);
  const out: number[] = [];
  for (let i = 0; i < N; i++) {
    sim.setHook(true);
    sim.type('91');
    await until(() => sim.unacked === 0);
    const calls = voice.calls.length;
    const t0 = now();
    sim.press('1'); // written to the pty at once: the link is idle
    await until(() => voice.calls.length > calls);
    out.push(s.last - t0);
    sim.setHook(false);
    await until(() => sim.unacked === 0);
  }
  await sim.stop();
  await handset.stop();
  await svc.stop();
  await pair.stop();
  rmSync(dir, { recursive: true, force: true });
  return out;
}

// The first iterations (JIT warm-up) are not counted.
const measured = (xs: number[]) => summary(xs.slice(WARMUP));
const base = measured(await direct());
const stack = measured(await throughStack());
report('911 last key -> makeCall, MCU stack p50 (us)', stack.p50 * 1000, 'us', base.p50 * 1000, 'adds < 1 ms');
report('911 last key -> makeCall, MCU stack p99 (us)', stack.p99 * 1000, 'us', base.p99 * 1000, 'adds < 1 ms');
const pty = await overPty();
if (pty) {
  const p = measured(pty);
  report('911 last key frame over a pty p50 (us)', p.p50 * 1000, 'us', base.p50 * 1000, 'adds < 5 ms');
  report('911 last key frame over a pty p99 (us)', p.p99 * 1000, 'us', base.p99 * 1000, 'adds < 5 ms');
} else process.stdout.write('!!! socat not installed: the pty figure is not measured\n');
process.exit(0);
