// The handset UI over the whole MCU stack (simulated MCU <-> framing/link/protocol
// over an in-process pipe) driving the real EmergencyService on the in-memory voice
// stack: keys reach the dial plan, 911 goes out on the last digit even with the
// notice up, the notice is acknowledged with OK only, and its state is stored.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { McuHandset } from '../../../hal/mcu/mcu-handset.js';
import { pipePair } from '../../../hal/mcu/transport/pipe.js';
import { McuSimulator } from '../../../hal/sim/mcu-simulator.js';
import { MemoryVoiceStack } from '../../../hal/voice/memory.js';
import { EmergencyService } from '../../../agent/emergency/service.js';
import { dialPlanSchema, emergencySchema, sipSchema } from '../../../agent/emergency/config.js';
import { HandsetUi, wrap, type KeypadDialer } from '../../../agent/handset/handset-ui.js';
import { EmergencyNotice } from '../../../agent/handset/notice.js';
import { Store, type StoredAddress } from '../../../agent/store/store.js';
import { eventFactory } from '../../../agent/events/events.js';
import { sampleAddress } from '../../helpers/address.js';
import { silentLog } from '../../helpers/log.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function stored(version = 3): StoredAddress {
  const doc = sampleAddress({ version });
  return { doc, version, hash: `hash-${version}`, signature: 'sig', receivedAt: doc.issuedAt, appliedAt: doc.issuedAt };
}

async function rig(o: { address?: StoredAddress | null; dialer?: 'real' | KeypadDialer | null } = {}) {
  const dir = mkdtempSync(path.join(tmpdir(), 'e911-ui-'));
  const store = new Store({ dataDir: dir, log: silentLog() });
  cleanups.push(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  let address: StoredAddress | null = o.address === undefined ? stored() : o.address;
  const [host, mcu] = pipePair();
  const sim = new McuSimulator({ transport: mcu, log: silentLog(), rows: 4, cols: 24 });
  const handset = new McuHandset({ transport: host, log: silentLog(), agentVersion: 'test', keepaliveMs: 0 });
  const voice = new MemoryVoiceStack();
  let dialer: KeypadDialer | null = null;
  let service: EmergencyService | null = null;
  if (o.dialer === undefined || o.dialer === 'real') {
    service = new EmergencyService({
      voice,
      emergency: emergencySchema.parse({ routes: { primary: 'sip:10.0.0.1:5060' } }),
      dialPlan: dialPlanSchema.parse({}),
      sip: sipSchema.parse({ port: 5062, bindAddress: '10.0.0.50' }),
      deviceId: 'phone-1',
      agentVersion: 'test',
      log: silentLog(),
      emitEvent: () => {},
      network: () => ({ interface: 'eth0', ip: '10.0.0.50', mac: '00:d0:1e:12:34:56' }),
    });
    await service.start(address);
    cleanups.push(() => service!.stop());
    dialer = service;
  } else dialer = o.dialer;
  let ui: HandsetUi | null = null;
  const notice = new EmergencyNotice({
    store,
    log: silentLog(),
    newEvent: eventFactory('phone-1'),
    wake: () => {},
    onChange: () => ui?.refreshNotice(),
  });
  const testCalls: string[] = [];
  ui = new HandsetUi({
    handset,
    log: silentLog(),
    notice,
    address: () => address,
    dialer: () => dialer,
    deviceLabel: 'phone-1',
    onTestCall: (ref) => testCalls.push(ref),
  });
  notice.sync(address);
  ui.start();
  sim.start();
  await handset.start();
  cleanups.push(async () => {
    ui!.stop();
    await handset.stop();
    await sim.stop();
  });
  await vi.waitFor(() => expect(handset.status().firmware).toBe('e911-sim 1'));
  const screen = () => sim.screen.lines.join('\n');
  return { sim, handset, ui, notice, store, voice, service, testCalls, screen, setAddress: (a: StoredAddress | null) => (address = a) };
}

describe('handset UI', () => {
  it('shows the notice with the address on first start, blinking the alert LED', async () => {
    const { sim, screen, notice } = await rig();
    expect(notice.pending).toBe(true);
    await vi.waitFor(() => expect(screen()).toContain('EMERGENCY 911 NOTICE'));
    await vi.waitFor(() => expect(sim.screen.leds.alert?.mode).toBe('blink-slow'));
  });

  it('off-hook and 911 places the emergency call on the last digit, with the notice still unacknowledged', async () => {
    const { sim, voice, notice, screen } = await rig();
    sim.setHook(true);
    sim.type('91');
    await vi.waitFor(() => expect(screen()).toContain('Dial: 91'));
    expect(voice.calls).toHaveLength(0);
    sim.type('1');
    await vi.waitFor(() => expect(voice.calls).toHaveLength(1));
    expect(voice.calls[0]!.target).toBe('sip:911@10.0.0.1:5060');
    expect(notice.pending).toBe(true); // 911 never waits for the notice
    await vi.waitFor(() => expect(screen()).toContain('CALLING 911'));
    await vi.waitFor(() => expect(sim.screen.leds.alert?.mode).toBe('blink-fast'));
    sim.setHook(false);
    await vi.waitFor(() => expect(voice.calls[0]!.hangupCode).toBeDefined());
  });

  it('digits do not acknowledge the notice; OK does, once, and it is stored with its event', async () => {
    const { sim, notice, store, screen } = await rig();
    await vi.waitFor(() => expect(screen()).toContain('NOTICE'));
    sim.press('5');
    sim.press('cancel');
    sim.press('down');
    await vi.waitFor(() => expect(sim.unacked).toBe(0));
    expect(notice.pending).toBe(true);
    const before = store.outboxBacklog();
    sim.press('ok');
    await vi.waitFor(() => expect(notice.pending).toBe(false));
    expect(store.noticeState()).toMatchObject({ addressVersion: 3, acknowledgedVia: 'keypad' });
    const events = store.pendingEvents(0, 100).filter((e) => e.type === 'notice-acknowledged');
    expect(events).toHaveLength(1);
    expect(store.outboxBacklog()).toBe(before + 1);
    await vi.waitFor(() => expect(screen()).not.toContain('NOTICE'));
    await vi.waitFor(() => expect(sim.screen.leds.alert?.mode).toBe('off'));
    sim.press('ok'); // nothing left to acknowledge
    await vi.waitFor(() => expect(sim.unacked).toBe(0));
    expect(store.pendingEvents(0, 100).filter((e) => e.type === 'notice-acknowledged')).toHaveLength(1);
  });

  it('a new address brings the notice back; the same address at the next start does not (and writes nothing)', async () => {
    const { notice, store, sim, screen, setAddress, ui } = await rig();
    notice.acknowledge('keypad');
    const writes = store.writes;
    notice.sync(stored(3)); // the next start, same address
    expect(store.writes).toBe(writes);
    expect(notice.pending).toBe(false);
    setAddress(stored(4));
    notice.sync(stored(4));
    expect(notice.pending).toBe(true);
    expect(store.noticeState()).toMatchObject({ addressVersion: 4, acknowledgedAt: null });
    ui.refreshNotice();
    await vi.waitFor(() => expect(screen()).toContain('NOTICE'));
    sim.press('soft1');
    await vi.waitFor(() => expect(notice.pending).toBe(false));
  });

  it('with no address on file the notice says so, and 911 still goes out', async () => {
    const { sim, voice, screen } = await rig({ address: null });
    await vi.waitFor(() => expect(screen()).toContain('No address is on'));
    sim.setHook(true);
    sim.type('911');
    await vi.waitFor(() => expect(voice.calls).toHaveLength(1));
    await vi.waitFor(() => expect(screen()).toContain('NO ADDRESS ON FILE'));
  });

  it('933 from the keypad places the test call and hands its reference to diagnostics', async () => {
    const { sim, voice, testCalls } = await rig();
    sim.press('speaker'); // speakerphone opens the line like lifting the handset
    sim.type('933');
    await vi.waitFor(() => expect(testCalls).toHaveLength(1));
    expect(voice.calls[0]!.target).toBe('sip:933@10.0.0.1:5060');
  });

  it('shows raised alerts above the idle screen and passes them their keys', async () => {
    const keys: string[] = [];
    const { sim, ui, notice, screen } = await rig();
    notice.acknowledge('keypad');
    ui.refreshNotice();
    ui.raise({
      id: 'mismatch',
      lines: ['LOCATION CHANGED?', 'Press OK to confirm'],
      onKey: (k) => {
        keys.push(k);
        return k === 'ok';
      },
    });
    await vi.waitFor(() => expect(screen()).toContain('LOCATION CHANGED?'));
    sim.press('ok');
    await vi.waitFor(() => expect(keys).toEqual(['ok']));
    ui.clear('mismatch');
    await vi.waitFor(() => expect(screen()).not.toContain('LOCATION CHANGED?'));
  });

  it('tells the user when the agent has no call path', async () => {
    const { sim, screen } = await rig({ dialer: null });
    sim.setHook(true);
    sim.type('9');
    await vi.waitFor(() => expect(screen()).toContain('CANNOT PLACE CALLS'));
  });
});

describe('wrap', () => {
  it('wraps at word boundaries and cuts words longer than the line', () => {
    expect(wrap('911 calls from this phone send', 10)).toEqual(['911 calls', 'from this', 'phone send']);
    expect(wrap('Supercalifragilistic', 8)).toEqual(['Supercal', 'ifragili', 'stic']);
    expect(wrap('', 8)).toEqual(['']);
  });
});
