// The location parts (the netlink watcher's `ip monitor` and `ip -6 neigh`, lldpcli)
// start after "agent ready": 911 works at ready with the provisioned address, whether
// or not the network monitor has started, and the first location report follows.
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Agent } from '../../agent/root.js';
import { parseConfig } from '../../agent/config.js';
import { hostPaths } from '../../hal/host.js';
import { Store } from '../../agent/store/store.js';
import type { EmergencyService } from '../../agent/emergency/service.js';
import { MemoryVoiceStack } from '../../hal/voice/memory.js';
import { SimNetwork, hostStillSnapshot } from '../../hal/net/sim.js';
import { documentHash, generateSigningKeyPair } from '../../provisioning/protocol/signing.js';
import type { AddressDocument } from '../../provisioning/protocol/address.js';
import type { EventPayload } from '../../provisioning/protocol/messages.js';
import { recordingLog, silentLog } from '../helpers/log.js';
import { unitAgentRaw, waitFor } from '../helpers/agent.js';
import { startMosquitto } from '../helpers/mosquitto.js';

/** A simulated network whose start waits until the test opens it (a slow `ip monitor` fork). */
class GatedNetwork extends SimNetwork {
  startCalled = false;
  private open: () => void = () => {};
  private readonly gate = new Promise<void>((resolve) => (this.open = resolve));
  onStart: () => void = () => {};
  override async start(): Promise<void> {
    this.startCalled = true;
    this.onStart();
    await this.gate;
    await super.start();
  }
  release(): void {
    this.open();
  }
}

const dirs: string[] = [];
const agents: Agent[] = [];
afterEach(async () => {
  for (const a of agents.splice(0)) await a.stop();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('location parts start after ready', () => {
  it('ready and 911 with the provisioned address before the network monitor starts; then the first report', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'e911-loc-after-ready-'));
    dirs.push(dir);
    const raw = unitAgentRaw(dir, generateSigningKeyPair().publicKey);
    const doc: AddressDocument = {
      v: 1,
      deviceId: 'phone-1',
      version: 2,
      issuedAt: '2026-11-22T07:00:00.000Z',
      civic: { country: 'US', A1: 'CA', A3: 'San Jose', RD: 'Main', HNO: '100', PC: '95110' },
      callback: '+14085550100',
      displayName: 'Front Desk',
    };
    const seed = new Store({ dataDir: raw.dataDir, log: silentLog() });
    seed.applyAddress(
      { doc, version: 2, hash: documentHash(doc), signature: 'x', receivedAt: doc.issuedAt },
      { v: 1, id: 'seed', type: 'address-applied', deviceId: 'phone-1', ts: doc.issuedAt, data: {} },
    );
    seed.close();
    const { log, lines } = recordingLog();
    const network = new GatedNetwork(hostStillSnapshot());
    const voice = new MemoryVoiceStack();
    const agent = new Agent({ config: parseConfig(raw), log, env: {}, host: hostPaths({}), voice, network });
    agents.push(agent);
    let readyWhenMonitorStarted: boolean | null = null;
    network.onStart = () => (readyWhenMonitorStarted = lines().some((l) => l.msg === 'agent ready'));

    // Before: start() waited for the monitor, so it never resolved while the monitor's start hung.
    const started = agent.start().then(() => 'started' as const);
    const blocked = new Promise<'blocked'>((resolve) => {
      const prev = network.onStart;
      network.onStart = () => {
        prev();
        setImmediate(() => resolve('blocked'));
      };
    });
    expect(await Promise.race([started, blocked])).toBe('started');
    expect(lines().some((l) => l.msg === 'agent ready')).toBe(true);

    // 911 at ready: the provisioned address in the PIDF-LO, the monitor's start still waiting.
    const emergency = (agent as unknown as { core: { emergency: EmergencyService } }).core.emergency;
    expect(emergency.pidfNow()).toContain('<ca:RD>Main</ca:RD>');
    expect(emergency.dial('911')).toMatchObject({ kind: 'emergency', placed: true });
    expect(voice.calls).toHaveLength(1);
    expect(network.current()).toBeNull();

    await waitFor(() => network.startCalled, 5000);
    expect(readyWhenMonitorStarted).toBe(true);
    const store = (agent as unknown as { parts: { store: Store } }).parts.store;
    const reports = () =>
      store
        .pendingEvents(0, 1000)
        .map((r) => JSON.parse(r.payload) as EventPayload)
        .filter((e) => e.type === 'location-changed');
    // No report without the network's snapshot.
    expect(reports()).toHaveLength(0);
    network.release();
    await waitFor(
      () => reports().length > 0,
      5000,
      () => JSON.stringify(reports()),
    );
    expect(reports()[0]!.data).toMatchObject({ reason: 'start' });
    expect((reports()[0]!.data as { network: unknown }).network).not.toBeNull();
    expect(lines().some((l) => l.msg === 'location parts started')).toBe(true);
  });

  it('stop while the location parts are still starting: the monitor is stopped after its start ends', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'e911-loc-after-ready-'));
    dirs.push(dir);
    const raw = unitAgentRaw(dir, generateSigningKeyPair().publicKey);
    const network = new GatedNetwork(hostStillSnapshot());
    let stoppedAfterStart: boolean | null = null;
    let startEnded = false;
    const origStart = network.start.bind(network);
    network.start = async () => {
      await origStart();
      startEnded = true;
    };
    network.stop = async () => {
      stoppedAfterStart = startEnded;
    };
    const agent = new Agent({
      config: parseConfig(raw),
      log: silentLog(),
      env: {},
      host: hostPaths({}),
      voice: new MemoryVoiceStack(),
      network,
    });
    await agent.start();
    await waitFor(() => network.startCalled, 5000);
    // The start is let go a little after stop() begins: a stop that does not wait for it
    // reaches the monitor's stop first.
    const stopping = agent.stop();
    setTimeout(() => network.release(), 200);
    await stopping;
    expect(stoppedAfterStart).toBe(true);
  });
  it('they wait for the link to be up and subscribed; with no broker, about a second after ready', async () => {
    const start = async (over: Record<string, unknown>) => {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'e911-loc-after-ready-'));
      dirs.push(dir);
      const { log, lines } = recordingLog();
      const network = new GatedNetwork(hostStillSnapshot());
      let linkUpAtStart: boolean | null = null;
      network.onStart = () => (linkUpAtStart = lines().some((l) => l.msg === 'link up'));
      const agent = new Agent({
        config: parseConfig(unitAgentRaw(dir, generateSigningKeyPair().publicKey, over)),
        log,
        env: {},
        host: hostPaths({}),
        voice: new MemoryVoiceStack(),
        network,
      });
      agents.push(agent);
      await agent.start();
      const readyAt = performance.now();
      await waitFor(() => network.startCalled, 5000);
      network.release();
      return { linkUpAtStart, afterReady: performance.now() - readyAt };
    };
    const broker = await startMosquitto();
    try {
      const up = await start({ broker: { urls: [broker.url], reconnectMinMs: 100 } });
      expect(up.linkUpAtStart).toBe(true);
    } finally {
      await Promise.all(agents.splice(0).map((a) => a.stop()));
      await broker.close();
    }
    // Port 9: nothing answers. Before, they started at once after ready.
    const none = await start({});
    expect(none.linkUpAtStart).toBe(false);
    expect(none.afterReady).toBeGreaterThanOrEqual(900);
  });
});
