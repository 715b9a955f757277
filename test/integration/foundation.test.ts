// The foundation end to end against a real Mosquitto: signed pushes applied and
// kept across restarts, bad pushes refused, subscriptions at QoS 0 (as on NATS) losing
// nothing, the outbox surviving a broker outage and a SIGKILL in the middle of a drain.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import type { Packet } from 'mqtt-packet';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { startMqttRelay } from '../helpers/mqtt-relay.js';
import { agentConfig, inProcessAgent, spawnAgent, waitFor, type AgentProcess } from '../helpers/agent.js';
import { sampleAddress, signedPush, testKeys } from '../helpers/address.js';
import { silentLog } from '../helpers/log.js';
import { ProvisioningServer } from '../../provisioning/server/server.js';
import { controlRequest } from '../../agent/control/control-client.js';
import { Store } from '../../agent/store/store.js';
import { eventFactory } from '../../agent/events/events.js';
import type { EventPayload } from '../../provisioning/protocol/messages.js';
import { signDocument } from '../../provisioning/protocol/signing.js';
import { requires } from '../helpers/require.js';

const gate = requires('foundation integration tests', ['broker']);

describe.skipIf(gate.skip)('foundation against a real Mosquitto', () => {
  let broker: Mosquitto;
  let server: ProvisioningServer;
  let dir: string;
  const keys = testKeys();
  let events: EventPayload[] = [];
  let duplicates: EventPayload[] = [];
  const procs: AgentProcess[] = [];

  beforeAll(async () => {
    broker = await startMosquitto({ persistence: true });
  });
  afterAll(async () => {
    await broker?.close();
  });
  beforeEach(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'e911-found-'));
    events = [];
    duplicates = [];
    // A fresh client id per test: each test has its own persistent server session.
    server = new ProvisioningServer({
      brokerUrl: broker.url,
      privateKey: keys.privateKey,
      log: silentLog(),
      protocolVersion: 5,
      clientId: `srv-${path.basename(dir)}`,
    });
    server.on('event', (e) => events.push(e));
    server.on('duplicate', (e) => duplicates.push(e));
    await server.start();
  });
  afterEach(async () => {
    for (const p of procs.splice(0)) p.child.kill('SIGKILL');
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const setup = (deviceId = 'phone-1') =>
    agentConfig(path.join(dir, deviceId), { deviceId, brokerUrl: broker.url, serverPublicKey: keys.pair.publicKey });
  const ofType = (type: string) => events.filter((e) => e.type === type);
  const address = async (socket: string) => {
    const r = await controlRequest(socket, 'address');
    if (!r.ok) throw new Error(r.error);
    return r.result as { version: number; doc: unknown } | null;
  };

  it('applies a signed push, reports it, and keeps it across a restart', async () => {
    const s = setup();
    const first = await spawnAgent(s);
    procs.push(first);
    const doc = sampleAddress({ version: 4 });
    await server.pushAddress(doc);
    await waitFor(
      () => ofType('address-applied').length === 1,
      5000,
      () => first.output(),
    );
    expect(ofType('address-applied')[0]!.data).toMatchObject({ version: 4, previousVersion: null });
    await waitFor(() => server.phone('phone-1')?.appliedVersion === 4, 5000);
    expect(await address(s.socketPath)).toMatchObject({ version: 4, doc });

    // SIGTERM: a clean stop, retained status says offline. Exit 0 is the 5 s budget
    // (agent/main.ts exits 1 when its stop deadline passes); the time is a bench figure.
    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);
    expect(first.output()).not.toContain('stop deadline passed');
    await waitFor(() => server.phone('phone-1')?.online === false, 3000);

    const second = await spawnAgent(s);
    procs.push(second);
    expect(await address(s.socketPath)).toMatchObject({ version: 4, doc });
    await waitFor(() => server.phone('phone-1')?.online === true, 5000);
    // The same signed push again (as a re-push after a reconnect) changes nothing and reports
    // nothing. Marker: garbage pushed after it on the same topic is reported in turn; once its
    // address-rejected is in, an address-applied for the repeat would be in too.
    await server.pushAddress(doc);
    await server.publishRaw('phone-1', 'marker: not a push');
    await waitFor(
      () => ofType('address-rejected').length === 1,
      5000,
      () => second.output(),
    );
    expect(ofType('address-rejected')[0]!.data).toMatchObject({ code: 'malformed', keptVersion: 4 });
    expect(ofType('address-applied')).toHaveLength(1);
    const status = await controlRequest(s.socketPath, 'status');
    expect(status).toMatchObject({
      ok: true,
      result: { link: { state: 'online' }, store: { journalMode: 'wal', incident: null }, address: { version: 4 } },
    });

    // The retained address/state is there for anyone who subscribes later.
    const probe = await mqtt.connectAsync(broker.url, { protocolVersion: 5 });
    const retained = await new Promise<string>((resolve) => {
      probe.on('message', (_t, p) => resolve(p.toString()));
      void probe.subscribeAsync('e911/v1/phone-1/address/state');
    });
    await probe.endAsync();
    expect(JSON.parse(retained)).toMatchObject({ v: 1, version: 4 });
  });

  it('refuses forged, replayed, invalid and garbage pushes and keeps the applied address', async () => {
    const s = setup();
    const { agent } = inProcessAgent(s);
    await agent.start();
    try {
      await server.pushAddress(sampleAddress({ version: 5 }));
      await waitFor(
        () => ofType('address-applied').length === 1,
        5000,
        () => JSON.stringify({ events, duplicates: duplicates.map((d) => [d.type, d.id]) }),
      );

      const forger = testKeys();
      const invalid = sampleAddress({ version: 6, civic: { country: 'US', A1: 'CA', A3: 'X', RD: 'Y', HNO: '1', PC: 'ABCDE' } });
      await server.publishRaw(
        'phone-1',
        signedPush(sampleAddress({ version: 7, civic: { ...sampleAddress().civic, ROOM: 'attacker' } }), forger),
      );
      await server.publishRaw('phone-1', signedPush(sampleAddress({ version: 3 }), keys));
      await server.publishRaw('phone-1', JSON.stringify({ v: 1, doc: invalid, sig: signDocument(invalid, keys.privateKey) }));
      await server.publishRaw('phone-1', JSON.stringify({ v: 1, doc: sampleAddress({ version: 8 }) }));
      await server.publishRaw('phone-1', Buffer.from([0xff, 0x00, 0x7b, 0x22]));
      await waitFor(
        () => ofType('address-rejected').length === 5,
        5000,
        () => JSON.stringify(events.map((e) => e.type)),
      );
      expect(ofType('address-rejected').map((e) => e.data.code)).toEqual([
        'bad-signature',
        'stale-version',
        'invalid-address',
        'unsigned',
        'malformed',
      ]);
      for (const e of ofType('address-rejected')) expect(e.data).toMatchObject({ keptVersion: 5, reason: expect.stringMatching(/\w{4,}/) });
      expect(await address(s.socketPath)).toMatchObject({ version: 5, doc: sampleAddress({ version: 5 }) });
    } finally {
      await agent.stop();
    }
  });

  it('with broker.subscribeQos 0 the broker grants and delivers QoS 0; the push is applied and events/ack empties the outbox', async () => {
    // A relay between the phone and the broker reads what the broker sends the phone.
    const fromBroker: Packet[] = [];
    const relay = await startMqttRelay(broker.port, (p) => {
      fromBroker.push(p);
      return true;
    });
    const relayUrl = relay.url;
    const s = agentConfig(
      path.join(dir, 'phone-1'),
      { deviceId: 'phone-1', brokerUrl: relayUrl, serverPublicKey: keys.pair.publicKey },
      { broker: { urls: [relayUrl], protocolVersion: 4, subscribeQos: 0, reconnectMinMs: 100, reconnectMaxMs: 1000 } },
    );
    const { agent } = inProcessAgent(s);
    await agent.start();
    try {
      await waitFor(() => fromBroker.some((p) => p.cmd === 'suback'), 5000);
      const subacks = fromBroker.flatMap((p) => (p.cmd === 'suback' ? [p.granted] : []));
      // One SUBSCRIBE for all of the server's topics, every filter granted QoS 0.
      expect(subacks).toHaveLength(1);
      expect(subacks[0]!.length).toBeGreaterThan(1);
      expect(new Set(subacks[0])).toEqual(new Set([0]));

      // The server publishes the push and events/ack at QoS 1; the phone gets them at QoS 0.
      await server.pushAddress(sampleAddress({ version: 4 }));
      await waitFor(
        () => ofType('address-applied').length === 1,
        5000,
        () => JSON.stringify(events.map((e) => e.type)),
      );
      expect(await address(s.socketPath)).toMatchObject({ version: 4 });
      // Every event waits for events/ack (serverConfirms 'all', resent only after 30 s): an empty outbox is the ack heard.
      await waitFor(
        () => (agent.status().outbox as { backlog: number }).backlog === 0,
        5000,
        () => JSON.stringify(agent.status().outbox),
      );
      const publishes = fromBroker.flatMap((p) => (p.cmd === 'publish' ? [{ topic: p.topic, qos: p.qos }] : []));
      expect(publishes).toContainEqual({ topic: 'e911/v1/phone-1/address/set', qos: 0 });
      expect(publishes).toContainEqual({ topic: 'e911/v1/phone-1/events/ack', qos: 0 });
      expect(publishes.filter((p) => p.qos !== 0)).toEqual([]);
    } finally {
      await agent.stop();
      await relay.close();
    }
  });

  it('as on NATS (broker.publishQos 0, retain false) every publish and the will are QoS 0, not retained; a 911 event lost on the way is sent again until events/ack', async () => {
    const fromPhone: Packet[] = [];
    let lost = 0;
    const relay = await startMqttRelay(
      broker.port,
      () => true,
      4,
      (p) => {
        fromPhone.push(p);
        // The first 911 event is lost on the way, as a QoS 0 publish may be.
        const isEmergency = p.cmd === 'publish' && p.topic.endsWith('/events') && p.payload.toString().includes('"emergency-call"');
        if (isEmergency && lost === 0) {
          lost++;
          return false;
        }
        return true;
      },
    );
    const s = agentConfig(
      path.join(dir, 'phone-1'),
      { deviceId: 'phone-1', brokerUrl: relay.url, serverPublicKey: keys.pair.publicKey },
      {
        broker: {
          urls: [relay.url],
          protocolVersion: 4,
          subscribeQos: 0,
          publishQos: 0,
          retain: false,
          reconnectMinMs: 100,
          reconnectMaxMs: 1000,
        },
        outbox: { serverAckTimeoutMs: 500 },
      },
    );
    const { agent } = inProcessAgent(s);
    await agent.start();
    try {
      await waitFor(() => server.phone('phone-1')?.online === true, 5000);
      const id = agent.emit('emergency-call', { numberDialed: '911', callback: '+14085550100' });
      const emergencies = () => events.filter((e) => e.id === id);
      await waitFor(
        () => emergencies().length === 1,
        5000,
        () => JSON.stringify(events.map((e) => e.type)),
      );
      // Sent twice (the first lost), stored once, and gone from the outbox once the server said so.
      expect(lost).toBe(1);
      const sent = fromPhone.filter((p) => p.cmd === 'publish' && p.payload.toString().includes(id));
      expect(sent).toHaveLength(2);
      await waitFor(
        () => (agent.status().outbox as { backlog: number }).backlog === 0,
        5000,
        () => JSON.stringify(agent.status().outbox),
      );
      expect(duplicates.filter((e) => e.id === id)).toHaveLength(0);

      const connect = fromPhone.find((p) => p.cmd === 'connect');
      expect(connect?.cmd === 'connect' && connect.will).toMatchObject({ topic: 'e911/v1/phone-1/status', qos: 0, retain: false });
      const publishes = fromPhone.flatMap((p) => (p.cmd === 'publish' ? [{ topic: p.topic, qos: p.qos, retain: p.retain }] : []));
      expect(publishes).toContainEqual({ topic: 'e911/v1/phone-1/status', qos: 0, retain: false });
      expect(publishes).toContainEqual({ topic: 'e911/v1/phone-1/address/state', qos: 0, retain: false });
      expect(publishes).toContainEqual({ topic: 'e911/v1/phone-1/events', qos: 0, retain: false });
      expect(publishes.filter((p) => p.qos !== 0 || p.retain)).toEqual([]);
      expect(fromPhone.filter((p) => p.cmd === 'puback')).toEqual([]);
    } finally {
      await agent.stop();
      await relay.close();
    }
  });

  it('queues events while the broker is down and delivers each exactly once after it returns', async () => {
    const s = setup();
    const { agent } = inProcessAgent(s);
    await agent.start();
    try {
      await waitFor(() => server.phone('phone-1')?.online === true, 5000);
      await broker.stop();
      for (let i = 0; i < 300; i++) agent.emit('diagnostics', { i, bench: 'outage' });
      const backlog = (agent.status().outbox as { backlog: number }).backlog;
      expect(backlog).toBeGreaterThanOrEqual(300);
      await broker.restart();
      // Only this test's events: the agent may report other things of its own meanwhile.
      const mine = (list: EventPayload[]) => list.filter((e) => e.type === 'diagnostics' && e.data.bench === 'outage');
      await waitFor(
        () => mine(events).length >= 300,
        15_000,
        () => `got ${mine(events).length}`,
      );
      // Marker: one more event after the 300, drained in order behind them; when it is in,
      // any resend or duplicate of the 300 would be in too.
      agent.emit('diagnostics', { bench: 'outage-marker' });
      await waitFor(() => events.some((e) => e.type === 'diagnostics' && e.data.bench === 'outage-marker'), 5000);
      expect(mine(events)).toHaveLength(300);
      expect(mine(duplicates)).toHaveLength(0);
      expect(mine(events).map((e) => e.data.i)).toEqual(Array.from({ length: 300 }, (_, i) => i)); // in order, too
      await waitFor(() => (agent.status().outbox as { backlog: number }).backlog === 0, 3000);
    } finally {
      await agent.stop();
    }
  });

  it('loses nothing when the agent is SIGKILLed during a drain', async () => {
    const s = setup();
    // A backlog already on the phone's flash, as after a long outage.
    const store = new Store({ dataDir: s.raw.dataDir as string, log: silentLog() });
    const newEvent = eventFactory('phone-1');
    const queued = Array.from({ length: 6000 }, (_, i) => newEvent('location-changed', { i }));
    for (const e of queued) store.enqueue(e);
    store.close();

    const queuedIds = new Set(queued.map((e) => e.id));
    const mine = (list: EventPayload[]) => list.filter((e) => queuedIds.has(e.id));
    // Killed from the server's own event handler the moment the 2000th arrives: mid-drain
    // however fast this machine drains (polling for it could see the drain already done).
    let first: AgentProcess | null = null;
    let seen = 0;
    let due = false;
    const killAt = (e: EventPayload) => {
      if (!queuedIds.has(e.id) || ++seen !== 2000) return;
      due = true;
      first?.child.kill('SIGKILL');
    };
    server.on('event', killAt);
    first = await spawnAgent(s);
    procs.push(first);
    if (due) first.child.kill('SIGKILL'); // reached 2000 before spawnAgent returned
    await first.exited;
    server.off('event', killAt);
    const beforeRestart = mine(events).length;
    expect(beforeRestart).toBeLessThan(6000); // killed mid-drain

    const second = await spawnAgent(s);
    procs.push(second);
    await waitFor(
      () => mine(events).length >= 6000,
      30_000,
      () => `got ${mine(events).length}`,
    );
    expect(new Set(mine(events).map((e) => e.id))).toEqual(queuedIds);
    expect(mine(events)).toHaveLength(6000); // de-duplicated by id at the server
    // Redeliveries are allowed: an event stays on the phone until the server confirms it
    // stored it, so whatever the server had but the killed phone had not heard back about
    // (or not yet written down) comes again, once. Nothing the server never had is a duplicate.
    expect(mine(duplicates).length).toBeLessThanOrEqual(beforeRestart);
    expect(new Set(mine(duplicates).map((e) => e.id)).size).toBe(mine(duplicates).length);
    let backlog = -1;
    for (let i = 0; i < 100 && backlog !== 0; i++) {
      const status = await controlRequest(s.socketPath, 'status');
      backlog = status.ok ? (status.result as { outbox: { backlog: number } }).outbox.backlog : -1;
      if (backlog !== 0) await new Promise((r) => setTimeout(r, 50));
    }
    expect(backlog).toBe(0);
  });
});
