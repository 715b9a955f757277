// The server and the agent on a real three-node NATS cluster (its MQTT 3.1.1 listener), with
// the authorization the server renders: per-phone permissions enforced against the same
// attacks as the Mosquitto ACL (server-mosquitto.test.ts), made by a phone of another
// customer account; two server instances sharing the phones' reports through a NATS queue
// group, a phone marked offline after a silence (the will is not published when a phone's
// node dies), and a real agent that loses its node, reconnects to another and gets its 933
// event stored.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import mqtt from 'mqtt';
import { connect as natsConnect } from '@nats-io/transport-node';
import { type BrokerCluster, clusterConnections, startNatsCluster } from '../helpers/nats-cluster.js';
import { agentConfig, inProcessAgent } from '../helpers/agent.js';
import { HQ } from '../helpers/server-app.js';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.js';
import { silentLog } from '../helpers/log.js';
import { freePort } from '../helpers/ports.js';
import { ServerApp, renderNatsConfig } from '../../provisioning/server/app.js';
import { retainedLinkOf } from '../../provisioning/server/server.js';
import { generateSigningKeyPair } from '../../provisioning/protocol/signing.js';
import { topicFor } from '../../provisioning/protocol/topics.js';
import type { Agent } from '../../agent/root.js';
import type { StoredEvent } from '../../provisioning/server/db/repo.js';

async function until(cond: () => Promise<boolean> | boolean, ms = 10_000, why = '') {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${why}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const OFFLINE_AFTER_MS = 2000;

const OTHER_ACCOUNT = 'globex';

describe('provisioning server and agent on NATS, three nodes', () => {
  let dir: string;
  let cluster: BrokerCluster;
  let a: ServerApp;
  let b: ServerApp;
  let agent: Agent;
  let authFile: string;
  let smtp: SmtpSink;
  const keys = generateSigningKeyPair();
  const creds: Record<string, { username: string; password: string }> = {};
  const seen: Record<'a' | 'b', StoredEvent[]> = { a: [], b: [] };
  const mqttUrls = () => cluster.nodes.map((n) => n.mqttUrl);

  const make = async (port: number, natsServers: string[], mqttList: string[]) =>
    new ServerApp({
      dataDir: path.join(dir, 'data'),
      log: silentLog(),
      keyPair: keys,
      broker: {
        url: mqttList[0]!,
        urls: mqttList,
        nats: { servers: natsServers },
        offlineAfterMs: OFFLINE_AFTER_MS,
        instance: `i${port}`,
      },
      http: { port },
    });

  /** The authorization the server renders, written where every node includes it, and each node told to reload. */
  const renderAndReload = async (reload: boolean) => {
    const r = await renderNatsConfig(a.repo);
    writeFileSync(authFile, r.conf, { mode: 0o600 });
    if (reload) for (const n of cluster.nodes) if (n.pid()) process.kill(n.pid()!, 'SIGHUP');
    return r;
  };

  const login = (username: string, password: string, url = cluster.nodes[1]!.mqttUrl) =>
    // A refused or unanswered login fails within seconds (mqtt.js would wait 30 s for a CONNACK).
    mqtt.connectAsync(url, {
      clientId: `${username}-${Date.now()}`,
      protocolVersion: 4,
      username,
      password,
      reconnectPeriod: 0,
      connectTimeout: 3000,
    });

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'e911-nats-srv-'));
    authFile = path.join(dir, 'nats-auth.conf');
    // An empty authorization until the server has rendered it: the cluster's ports must be known first.
    writeFileSync(authFile, `authorization { users = [ { user: "nobody", password: "${randomBytes(18).toString('base64url')}" } ] }\n`);
    // NATS resolves an include from the configuration's folder (the cluster's, beside this one in the temp folder).
    cluster = await startNatsCluster({ extraConfig: [`include "../${path.basename(dir)}/nats-auth.conf"`] });
    const natsServers = cluster.nodes.map((n) => n.nativeUrl!);
    a = await make(await freePort(), natsServers, mqttUrls());
    b = await make(await freePort(), natsServers, [...mqttUrls()].reverse());
    const { service } = a;
    await service.updateAccount('test', { name: 'Example Corp', contactEmail: 'it@example.com' });
    smtp = await startSmtpSink();
    await service.setNotificationSettings('test', {
      smtp: { host: '127.0.0.1', port: smtp.port, security: 'none', from: 'e911@example.com' },
    });
    const hq = await service.createLocation('test', HQ);
    await service.createUser('test', {
      username: 'alice',
      displayName: 'Alice',
      locationId: hq.id,
      callback: '+14085550100',
      deviceIds: ['phone-a', 'phone-b'],
    });
    for (const id of ['phone-a', 'phone-b']) creds[id] = await service.issueCredentials('test', id);
    await service.setE911('test', true);
    // The intruder, phone-c, is another customer's phone on the same deployment.
    expect(await a.repo.createAccount(OTHER_ACCOUNT, 'Globex')).toBe(true);
    await a.repo.inAccount(OTHER_ACCOUNT, async () => {
      const site = await service.createLocation('test', HQ);
      await service.createUser('test', {
        username: 'mallory',
        displayName: 'Mallory',
        locationId: site.id,
        callback: '+14085550199',
        deviceIds: ['phone-c'],
      });
      creds['phone-c'] = await service.issueCredentials('test', 'phone-c');
    });
    expect((await renderAndReload(true)).skipped).toEqual([]);
    // The reload reaches every node before the servers log in.
    await until(
      () =>
        login('phone-c', creds['phone-c']!.password, cluster.nodes[0]!.mqttUrl).then(
          async (c) => {
            await c.endAsync();
            return true;
          },
          () => false,
        ),
      10_000,
      'the rendered authorization never took effect',
    );
    a.bus.on('event', (e) => seen.a.push(e));
    b.bus.on('event', (e) => seen.b.push(e));
    await a.start();
    await b.start();
    const setup = agentConfig(
      path.join(dir, 'phone-a'),
      { deviceId: 'phone-a', brokerUrl: mqttUrls()[0]!, serverPublicKey: keys.publicKey, protocolVersion: 4 },
      {
        broker: {
          urls: mqttUrls(),
          protocolVersion: 4,
          username: 'phone-a',
          password: creds['phone-a']!.password,
          keepaliveSec: 5,
          reconnectMinMs: 200,
          reconnectMaxMs: 2000,
          heartbeatSec: 1,
          // As NATS deployments run (docs/scale.md): a QoS 1 subscription is a replicated JetStream consumer,
          // and a QoS 1 publish or a retained one a write to a replicated stream that nobody reads.
          subscribeQos: 0,
          publishQos: 0,
          retain: false,
        },
      },
    );
    agent = inProcessAgent(setup).agent;
    await agent.start();
  }, 60_000);

  afterAll(async () => {
    await agent?.stop();
    await a?.stop();
    await b?.stop();
    await cluster?.close();
    await smtp?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the agent (MQTT 3.1.1) logs in with its issued credentials and applies its signed address', async () => {
    await until(
      async () => {
        const d = await a.repo.device('phone-a');
        return d !== null && d.issuedVersion > 0 && d.appliedVersion === d.issuedVersion && d.online;
      },
      15_000,
      'phone-a never applied its address',
    );
  }, 20_000);

  it('pushes at QoS 0: a phone subscribed at QoS 1 gets the push at QoS 0 (a QoS 1 publish is a replicated JetStream write per push)', async () => {
    const phone = await login('phone-b', creds['phone-b']!.password, cluster.nodes[2]!.mqttUrl);
    try {
      const got: { payload: string; qos: number }[] = [];
      phone.on('message', (_t, p, packet) => got.push({ payload: p.toString(), qos: packet.qos }));
      await phone.subscribeAsync(topicFor('phone-b', 'address/set'), { qos: 1 });
      // The path every push takes (publishSigned ends here); the bytes need not be a document.
      await a.link.publishRaw('phone-b', 'qos-probe');
      await until(async () => got.some((m) => m.payload === 'qos-probe'), 10_000, 'the push never arrived');
      expect(got.find((m) => m.payload === 'qos-probe')!.qos).toBe(0);
    } finally {
      await phone.endAsync();
    }
  });

  it("pushes the locations lists over eight connections, each phone's always on the same one (NATS stores a retained message before it reads the next from that connection)", async () => {
    // Messages each of the server's MQTT connections has published, by client id, over all nodes.
    const published = async () =>
      new Map(
        (await clusterConnections(cluster)).flatMap((c) => (c.mqtt_client?.startsWith('e911-server-') ? [[c.mqtt_client, c.in_msgs]] : [])),
      );
    const phones = Array.from({ length: 24 }, (_, i) => `phone-rl${i}`);
    const before = await published();
    const issuedAt = new Date().toISOString();
    // Two lists per phone, one after the other: the second is the one kept, so both take the same connection.
    for (const version of [1, 2])
      for (const deviceId of phones)
        await a.link.pushLocations({ v: 1, deviceId, version, issuedAt, recommendations: false, assignedLocationId: null, locations: [] });
    const after = await published();
    // Instance a's retained links, by the phones each carries (the main links publish pushes and acks meanwhile).
    const grew = [...after].filter(([id, n]) => /-r\d$/.test(id) && n > (before.get(id) ?? 0));
    expect(new Set(grew.map(([id]) => id.replace(/-r\d$/, ''))).size).toBe(1);
    const expected = new Map<string, number>();
    const prefix = grew[0]![0].replace(/-r\d$/, '');
    for (const deviceId of phones) {
      const link = `${prefix}-r${retainedLinkOf(deviceId, 8) + 1}`;
      expected.set(link, (expected.get(link) ?? 0) + 2);
    }
    expect(new Map(grew.map(([id, n]) => [id, n - (before.get(id) ?? 0)]))).toEqual(expected);
    expect(expected.size).toBeGreaterThan(4);
  });

  it('refuses a wrong password and an unknown user', async () => {
    const tryLogin = (username: string, password: string) =>
      login(username, password).then(
        async (c) => {
          await c.endAsync();
          return 'connected';
        },
        (err: Error) => err.message,
      );
    expect(await tryLogin('phone-b', 'wrong')).toMatch(/Not authorized|Bad user name or password/i);
    expect(await tryLogin('phone-z', 'anything')).toMatch(/Not authorized|Bad user name or password/i);
  });

  it("a phone cannot publish on, or read, another phone's or the servers' topics", async () => {
    const intruder = await login('phone-c', creds['phone-c']!.password);
    const victim = await login('phone-b', creds['phone-b']!.password, cluster.nodes[2]!.mqttUrl);
    try {
      const snooped: string[] = [];
      intruder.on('message', (t) => snooped.push(t));
      const victimGot: string[] = [];
      victim.on('message', (t) => victimGot.push(t));
      // Each of these SUBSCRIBEs is refused (granted 0x80): another phone's push, every phone's, every topic, the events.
      for (const f of ['e911/v1/phone-b/address/set', 'e911/v1/+/address/set', '#', 'e911/v1/+/events', 'e911/v1/phone-b/events/ack']) {
        const granted = await intruder.subscribeAsync(f, { qos: 1 }).then(
          (g) => g[0]?.qos,
          () => 128,
        );
        expect(granted, f).toBe(128);
      }
      await victim.subscribeAsync(topicFor('phone-b', 'address/set'), { qos: 1 });
      // A forged emergency event for phone-b and a forged push to it: NATS drops both (MQTT 3.1.1 has no refusal code).
      const forged = { v: 1, id: 'forged-1', type: 'emergency-call', deviceId: 'phone-b', ts: new Date().toISOString(), data: {} };
      await intruder.publishAsync(topicFor('phone-b', 'events'), JSON.stringify(forged), { qos: 1 }).catch(() => undefined);
      await intruder.publishAsync(topicFor('phone-b', 'address/set'), '{"forged":true}', { qos: 1 }).catch(() => undefined);
      // The server pushes phone-b's address: phone-b gets it (the real one only).
      await a.service.repush('test', 'phone-b');
      await until(() => victimGot.includes(topicFor('phone-b', 'address/set')), 10_000, 'phone-b got no push');
      // The intruder's own event goes through, on the same connection after the forged one.
      await intruder.publishAsync(
        topicFor('phone-c', 'events'),
        JSON.stringify({ ...forged, id: 'own-1', deviceId: 'phone-c', type: 'diagnostics' }),
        { qos: 1 },
      );
      await until(() => [...seen.a, ...seen.b].some((e) => e.id === 'own-1'), 10_000, 'own event not stored');
      expect(await a.repo.event('forged-1')).toBeNull();
      expect(await a.repo.inAccount(OTHER_ACCOUNT, () => a.repo.event('forged-1'))).toBeNull();
      // The intruder's own event is its account's, not the victims'.
      expect(await a.repo.event('own-1')).toBeNull();
      expect(await a.repo.inAccount(OTHER_ACCOUNT, () => a.repo.event('own-1'))).not.toBeNull();
      expect(snooped).toEqual([]);
      expect(victimGot.filter((t) => t === topicFor('phone-b', 'address/set'))).toHaveLength(1);
    } finally {
      await intruder.endAsync();
      await victim.endAsync();
    }
  }, 30_000);

  it("a phone's login on NATS's own port cannot join the servers' queue group nor read the events", async () => {
    const nc = await natsConnect({ servers: cluster.nodes[0]!.nativeUrl!, user: 'phone-c', pass: creds['phone-c']!.password });
    const errors: string[] = [];
    void (async () => {
      for await (const s of nc.status()) if (s.type === 'error') errors.push(String((s as { error?: unknown }).error));
    })().catch(() => undefined);
    const stolen: string[] = [];
    const refused: string[] = [];
    nc.subscribe('e911.v1.*.events', {
      queue: 'e911-servers',
      callback: (err, m) => {
        if (err) refused.push(err.message);
        else stolen.push(m.subject);
      },
    });
    await nc.flush().catch(() => undefined);
    agent.emit('test-call', { callRef: 'queue-steal', numberDialed: '933' });
    await until(() => [...seen.a, ...seen.b].some((e) => e.type === 'test-call'), 10_000, 'event not stored by the servers');
    expect(stolen).toEqual([]);
    await until(() => refused.length > 0, 5000, 'no permissions violation reported');
    expect(refused.join(' ')).toMatch(/permission/i);
    await nc.close();
  }, 20_000);

  it('two server instances share the events through the NATS queue group: each stored once, acknowledged to the phone', async () => {
    seen.a.length = 0;
    seen.b.length = 0;
    const n = 30;
    for (let i = 0; i < n; i++) agent.emit('test-call', { callRef: `shared-${i}`, numberDialed: '933' });
    await until(() => seen.a.length + seen.b.length >= n, 15_000, `events seen: ${seen.a.length}+${seen.b.length}`);
    expect(seen.a.length).toBeGreaterThan(0);
    expect(seen.b.length).toBeGreaterThan(0);
    const ids = [...seen.a, ...seen.b].map((e) => e.id);
    expect(new Set(ids).size).toBe(ids.length);
    // The phone got the server's events/ack over MQTT: nothing waits in its outbox. Under CI
    // load once an ack had not come in 15 s: allowed up to the outbox's resend (30 s), after
    // which the server acknowledges the resent event again.
    await until(
      () => {
        const o = (agent.status() as { outbox: { backlog: number; awaitingServer: number } }).outbox;
        return o.backlog === 0 && o.awaitingServer === 0;
      },
      40_000,
      'the outbox never emptied (no events/ack)',
    );
  }, 75_000);

  it('marks a phone offline after a silence although its retained status says online (no will when its node dies)', async () => {
    const phone = await login('phone-b', creds['phone-b']!.password);
    try {
      await phone.publishAsync(
        topicFor('phone-b', 'status'),
        JSON.stringify({ v: 1, state: 'online', deviceId: 'phone-b', ts: new Date().toISOString(), agentVersion: 'test' }),
        { qos: 1, retain: true },
      );
      await until(async () => (await a.repo.device('phone-b'))?.online === true, 10_000, 'phone-b never online');
      const t0 = Date.now();
      // Still connected, but silent: no heartbeat.
      await until(async () => (await a.repo.device('phone-b'))?.online === false, OFFLINE_AFTER_MS * 3, 'phone-b never marked offline');
      expect(Date.now() - t0).toBeGreaterThanOrEqual(OFFLINE_AFTER_MS * 0.5);
      // The agent says online every second (heartbeatSec 1): it stays online.
      expect((await a.repo.device('phone-a'))?.online).toBe(true);
    } finally {
      phone.end(true);
    }
  }, 20_000);

  it('refuses NATS credentials for a device id with a dot, and leaves it out of the authorization', async () => {
    await expect(a.service.issueCredentials('test', 'phone.d')).rejects.toThrow(/dot/);
  });

  it('a phone given credentials after the start logs in once the re-rendered authorization is reloaded', async () => {
    const d = await a.service.issueCredentials('test', 'phone-d');
    const tryLogin = () =>
      login('phone-d', d.password).then(
        async (c) => {
          await c.endAsync();
          return true;
        },
        () => false,
      );
    expect(await tryLogin()).toBe(false);
    await renderAndReload(true);
    await until(tryLogin, 25_000, 'phone-d refused after the reload');
  }, 40_000);

  it('the agent loses its node, reconnects to another and its 933 event reaches a server; it is back online', async () => {
    const url = (agent.status() as { link: { url: string } }).link.url;
    const node = cluster.nodes.find((n) => n.mqttUrl === url)!;
    expect(node).toBeDefined();
    const t0 = Date.now();
    await node.kill();
    try {
      agent.emit('test-call', { callRef: 'after-node-loss', numberDialed: '933' });
      await until(
        () => {
          const l = (agent.status() as { link: { state: string; url: string } }).link;
          return l.state === 'online' && l.url !== url;
        },
        30_000,
        'the agent never reconnected to another node',
      );
      const reconnectMs = Date.now() - t0;
      await until(
        () => [...seen.a, ...seen.b].some((e) => (e.data as { callRef?: string }).callRef === 'after-node-loss'),
        30_000,
        'the 933 event never reached a server',
      );
      const storedMs = Date.now() - t0;
      // Its heartbeats are retained publishes, which NATS keeps in JetStream: likely they do not get
      // through while the streams' leaders are elected again, and the silence sweep marks it offline
      // (CI: still offline 10 s after its event was stored). The failover test bounds this at 40 s.
      await until(
        async () => (await a.repo.device('phone-a'))?.online === true,
        30_000,
        `phone-a not online (back on a node after ${reconnectMs} ms, event stored after ${storedMs} ms)`,
      );
      console.log(`node loss: agent back on another node after ${reconnectMs} ms, its 933 event stored after ${storedMs} ms`);
    } finally {
      await node.restart();
    }
  }, 100_000);
});
