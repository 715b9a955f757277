// Nothing lost between the phone and the server, against a real Mosquitto: the
// server acknowledges an event (PUBACK, and events/ack to the phone) only once
// it stored it, and the phone keeps an emergency event until that ack, however
// the broker answered.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import mqtt from 'mqtt';
import { sampleAddress } from '../helpers/address.js';
import os from 'node:os';
import path from 'node:path';
import { MOSQUITTO, startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { agentConfig, spawnAgent, waitFor, type AgentProcess } from '../helpers/agent.js';
import { testKeys } from '../helpers/address.js';
import { silentLog } from '../helpers/log.js';
import { ProvisioningServer } from '../../provisioning/server/server.js';
import { controlRequest } from '../../agent/control/control-client.js';
import type { EventPayload } from '../../provisioning/protocol/messages.js';

if (!MOSQUITTO) console.warn('\n!!! SKIPPING reliability integration tests: mosquitto is not installed (run scripts/setup.sh)\n');

describe.skipIf(!MOSQUITTO)('reliability: acknowledged only once stored', () => {
  let broker: Mosquitto;
  let dir: string;
  const keys = testKeys();
  const procs: AgentProcess[] = [];
  const servers: ProvisioningServer[] = [];

  beforeAll(async () => {
    broker = await startMosquitto({ persistence: true });
  });
  afterAll(async () => {
    await broker?.close();
  });
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'e911-rel-'));
  });
  afterEach(async () => {
    for (const p of procs.splice(0)) p.child.kill('SIGKILL');
    for (const s of servers.splice(0)) await s.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const setup = (extra: Record<string, unknown> = {}) =>
    agentConfig(path.join(dir, 'phone-1'), { deviceId: 'phone-1', brokerUrl: broker.url, serverPublicKey: keys.pair.publicKey }, extra);
  const outbox = async (socket: string) => {
    const r = await controlRequest(socket, 'status');
    if (!r.ok) throw new Error(r.error);
    return (r.result as { outbox: { backlog: number; awaitingServer: number; confirmed: number } }).outbox;
  };
  const server = (clientId: string) => {
    const s = new ProvisioningServer({
      brokerUrl: broker.url,
      privateKey: keys.privateKey,
      log: silentLog(),
      protocolVersion: 5,
      clientId,
      eventRetryMs: [10, 10],
    });
    servers.push(s);
    return s;
  };

  it('a store that fails leaves the event unacknowledged: the broker sends it again, it is stored once, and only then leaves the phone', async () => {
    const s = server(`srv-${path.basename(dir)}`);
    let failures = 0;
    let failLeft = 5; // more than the server's in-place retries: it must reconnect to get it again
    const stored: EventPayload[] = [];
    s.setEventHandler((e) => {
      if (e.type === 'emergency-call' && failLeft > 0) {
        failLeft--;
        failures++;
        throw new Error('SQLITE_BUSY: database is locked');
      }
      if (stored.some((x) => x.id === e.id)) return false;
      stored.push(e);
      return true;
    });
    await s.start();
    const a = setup();
    const agent = await spawnAgent(a);
    procs.push(agent);
    // No voice stack in CI without the addon: the call is not placed, and the event still goes (placed: false).
    const dialed = await controlRequest(a.socketPath, 'dial', { digits: '911' });
    expect(dialed.ok).toBe(true);
    await waitFor(
      () => stored.some((e) => e.type === 'emergency-call'),
      15_000,
      () => agent.output(),
    );
    expect(failures).toBe(5);
    expect(stored.filter((e) => e.type === 'emergency-call')).toHaveLength(1);
    let ob = await outbox(a.socketPath);
    for (let i = 0; i < 200 && ob.backlog > 0; i++) {
      await new Promise((r) => setTimeout(r, 20));
      ob = await outbox(a.socketPath);
    }
    expect(ob).toMatchObject({ backlog: 0, confirmed: 1 });
  });

  it('the broker acknowledged it but no server had it: the phone keeps it and sends it again until a server confirms', async () => {
    // No server session yet: the broker takes the event (PUBACK) and drops it.
    const a = setup({ outbox: { serverAckTimeoutMs: 300 } });
    const agent = await spawnAgent(a);
    procs.push(agent);
    await controlRequest(a.socketPath, 'dial', { digits: '911' });
    let ob = await outbox(a.socketPath);
    for (let i = 0; i < 100 && ob.awaitingServer === 0; i++) {
      await new Promise((r) => setTimeout(r, 20));
      ob = await outbox(a.socketPath);
    }
    expect(ob.awaitingServer).toBe(1);
    // Every event waits for the server (outbox.serverConfirms 'all'): the call's progress event too.
    expect(ob.backlog).toBeGreaterThanOrEqual(1);
    const s = server(`srv2-${path.basename(dir)}`);
    const got: EventPayload[] = [];
    s.on('event', (e) => got.push(e));
    await s.start();
    await waitFor(
      () => got.some((e) => e.type === 'emergency-call'),
      10_000,
      () => agent.output(),
    );
    for (let i = 0; i < 200 && ob.backlog > 0; i++) {
      await new Promise((r) => setTimeout(r, 20));
      ob = await outbox(a.socketPath);
    }
    expect(ob).toMatchObject({ backlog: 0, confirmed: 1 });
  });

  it('a store reset: the phone says it has no address (address/state version 0) and the server pushes it again', async () => {
    const s = server(`srv3-${path.basename(dir)}`);
    await s.start();
    const a = setup();
    let agent = await spawnAgent(a);
    procs.push(agent);
    await s.pushAddress(sampleAddress({ deviceId: 'phone-1', version: 4 }));
    const version = async () =>
      ((await controlRequest(a.socketPath, 'address')) as { ok: boolean; result: { version: number } | null }).result?.version ?? null;
    for (let i = 0; i < 250 && (await version()) !== 4; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await version()).toBe(4);
    // The retained state says what the phone holds and the floors it refuses below (a server that
    // issued less, restored from a backup, issues above them: replay-floor-server.test.ts).
    const retained = async () => {
      const c = await mqtt.connectAsync(broker.url, { protocolVersion: 5, clientId: `peek-${Date.now()}` });
      try {
        const got = new Promise<Record<string, unknown>>((resolve) =>
          c.on('message', (_t, p) => resolve(JSON.parse(p.toString()) as Record<string, unknown>)),
        );
        await c.subscribeAsync('e911/v1/phone-1/address/state', { qos: 1 });
        return await got;
      } finally {
        await c.endAsync();
      }
    };
    expect(await retained()).toMatchObject({ version: 4, floor: { address: 4, locations: 0 } });
    // The store is lost (a reset, a corrupt file moved aside): the broker still holds address/state version 4.
    agent.child.kill('SIGKILL');
    await agent.exited;
    rmSync(a.raw.dataDir as string, { recursive: true, force: true });
    agent = await spawnAgent(a);
    procs.push(agent);
    for (let i = 0; i < 250 && (await version()) !== 4; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await version(), agent.output()).toBe(4);
  });

  it('an invalid event with an id is acknowledged to the phone too: it would otherwise be kept and sent again forever', async () => {
    const s = server(`srv4-${path.basename(dir)}`);
    await s.start();
    const phone = await mqtt.connectAsync(broker.url, { protocolVersion: 5, clientId: 'phone-bad' });
    try {
      const acked: string[] = [];
      phone.on('message', (_t, p) => acked.push(...(JSON.parse(p.toString()) as { ids: string[] }).ids));
      await phone.subscribeAsync('e911/v1/phone-bad/events/ack', { qos: 1 });
      // An event type this server does not know (a newer phone): invalid here.
      const bad = { v: 1, id: 'bad-event-1', type: 'no-such-type', deviceId: 'phone-bad', ts: new Date().toISOString(), data: {} };
      await phone.publishAsync('e911/v1/phone-bad/events', JSON.stringify(bad), { qos: 1 });
      for (let i = 0; i < 250 && !acked.includes('bad-event-1'); i++) await new Promise((r) => setTimeout(r, 20));
      expect(acked).toContain('bad-event-1');
    } finally {
      await phone.endAsync();
    }
  });
});
