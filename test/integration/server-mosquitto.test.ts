// The server against a real Mosquitto (MQTT 5) configured with the password
// file and ACL the server renders: a phone may use only its own topics; two
// server instances share the load through a shared subscription; the real
// agent logs in with its issued credentials and applies its address.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { agentConfig, inProcessAgent } from '../helpers/agent.js';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.js';
import { HQ } from '../helpers/server-app.js';
import { silentLog } from '../helpers/log.js';
import { freePort } from '../helpers/ports.js';
import { ServerApp } from '../../provisioning/server/app.js';
import { generateSigningKeyPair } from '../../provisioning/protocol/signing.js';
import { topicFor } from '../../provisioning/protocol/topics.js';
import type { Agent } from '../../agent/root.js';
import type { StoredEvent } from '../../provisioning/server/db/repo.js';
import { requires } from '../helpers/require.js';

const gate = requires('server Mosquitto tests', ['broker']);

async function until(cond: () => Promise<boolean> | boolean, ms = 10_000, why = '') {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${why}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe.skipIf(gate.skip)('provisioning server with Mosquitto: ACL and shared subscriptions', () => {
  let dir: string;
  let broker: Mosquitto;
  let smtp: SmtpSink;
  let a: ServerApp;
  let b: ServerApp;
  let agent: Agent;
  const keys = generateSigningKeyPair();
  const creds: Record<string, { username: string; password: string }> = {};
  const seen: Record<'a' | 'b', StoredEvent[]> = { a: [], b: [] };

  const make = async (brokerUrl: string) =>
    new ServerApp({
      dataDir: path.join(dir, 'data'),
      log: silentLog(),
      keyPair: keys,
      broker: { url: brokerUrl, protocolVersion: 5, shareGroup: 'e911-server' },
      http: { port: await freePort() },
      notify: { retry: { baseMs: 100, maxMs: 400, maxAttempts: 20 } },
    });

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'e911-mosq-srv-'));
    smtp = await startSmtpSink();
    // The broker's port must be known before the server exists: reserve it.
    const port = await freePort();
    // Both instances exist before the broker's files are rendered: each registers its own broker user.
    a = await make(`mqtt://127.0.0.1:${port}`);
    b = await make(`mqtt://127.0.0.1:${port}`);
    const { service, repo } = a;
    await service.updateAccount('test', { name: 'Example Corp', contactEmail: 'it@example.com' });
    await service.setNotificationSettings('test', {
      smtp: { host: '127.0.0.1', port: smtp.port, security: 'none', from: 'e911@example.com' },
    });
    const hq = await service.createLocation('test', HQ);
    await service.createUser('test', {
      username: 'alice',
      displayName: 'Alice',
      locationId: hq.id,
      callback: '+14085550100',
      deviceIds: ['phone-a'],
      emails: ['alice@example.com'],
    });
    await service.createUser('test', {
      username: 'bob',
      displayName: 'Bob',
      locationId: hq.id,
      callback: '+14085550101',
      deviceIds: ['phone-b'],
    });
    await service.createUser('test', {
      username: 'carol',
      displayName: 'Carol',
      locationId: hq.id,
      callback: '+14085550102',
      deviceIds: ['phone-c'],
    });
    for (const id of ['phone-a', 'phone-b', 'phone-c']) creds[id] = await service.issueCredentials('test', id);
    await service.setE911('test', true);
    // The files the server renders, as Mosquitto loads them.
    const conf = path.join(dir, 'mosquitto');
    mkdirSync(conf);
    const files = await a.brokerConfig(conf, [{ port, host: '127.0.0.1' }]);
    writeFileSync(path.join(conf, 'passwd'), files.passwd, { mode: 0o600 });
    writeFileSync(path.join(conf, 'acl'), files.acl);
    broker = await startMosquitto({ port, listener: false, extraConfig: files.conf.split('\n') });
    expect(await repo.deviceCredentials()).toHaveLength(3);
    expect((await repo.serverBrokerUsers()).map((u) => u.username).sort()).toEqual([a.brokerUser, b.brokerUser].sort());

    a.bus.on('event', (e) => seen.a.push(e));
    b.bus.on('event', (e) => seen.b.push(e));
    await a.start();
    await b.start();

    const setup = agentConfig(
      path.join(dir, 'phone-a'),
      { deviceId: 'phone-a', brokerUrl: broker.url, serverPublicKey: keys.publicKey },
      {
        broker: {
          urls: [broker.url],
          protocolVersion: 5,
          username: 'phone-a',
          password: creds['phone-a']!.password,
          reconnectMinMs: 100,
          reconnectMaxMs: 1000,
        },
      },
    );
    agent = inProcessAgent(setup).agent;
    await agent.start();
  });

  afterAll(async () => {
    await agent?.stop();
    await a?.stop();
    await b?.stop();
    await broker?.close();
    await smtp?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the agent logs in with its issued credentials and applies its signed address', async () => {
    await until(
      async () => {
        const d = await a.repo.device('phone-a');
        return d !== null && d.issuedVersion > 0 && d.appliedVersion === d.issuedVersion;
      },
      10_000,
      'phone-a never applied its address',
    );
  });

  it("a phone cannot publish on, or read, another phone's topics", async () => {
    // phone-c is the intruder (phone-a is the agent: a second login as phone-a would take its session over).
    const phoneA = await mqtt.connectAsync(broker.url, {
      clientId: 'phone-c',
      protocolVersion: 5,
      username: 'phone-c',
      password: creds['phone-c']!.password,
    });
    const phoneB = await mqtt.connectAsync(broker.url, {
      clientId: 'phone-b',
      protocolVersion: 5,
      username: 'phone-b',
      password: creds['phone-b']!.password,
    });
    try {
      const snooped: string[] = [];
      phoneA.on('message', (t) => snooped.push(t));
      const bGot: string[] = [];
      phoneB.on('message', (t) => bGot.push(t));
      await phoneA.subscribeAsync(['e911/v1/phone-b/address/set', 'e911/v1/+/address/set', '#'], { qos: 1 });
      await phoneB.subscribeAsync(topicFor('phone-b', 'address/set'), { qos: 1 });
      // A forged emergency event for phone-b: the broker refuses it (MQTT 5 reason 135, not authorized).
      const forged = { v: 1, id: 'forged-1', type: 'emergency-call', deviceId: 'phone-b', ts: new Date().toISOString(), data: {} };
      const refused = await phoneA.publishAsync(topicFor('phone-b', 'events'), JSON.stringify(forged), { qos: 1 }).then(
        () => null,
        (err: Error & { code?: number }) => err.code,
      );
      expect(refused).toBe(135);
      // A forged address push to phone-b: refused too.
      const forgedPush = await phoneA.publishAsync(topicFor('phone-b', 'address/set'), '{}', { qos: 1 }).then(
        () => null,
        (err: Error & { code?: number }) => err.code,
      );
      expect(forgedPush).toBe(135);
      // The server pushes phone-b's address: phone-b gets it, phone-a's snooping subscriptions get nothing.
      await a.service.repush('test', 'phone-b');
      await until(() => bGot.includes(topicFor('phone-b', 'address/set')), 10_000, 'phone-b got no push');
      // phone-c's own push, sent after, arrives on the same connection: by then phone-b's would have too.
      await phoneA.subscribeAsync(topicFor('phone-c', 'address/set'), { qos: 1 });
      await a.service.repush('test', 'phone-c');
      await until(() => snooped.includes(topicFor('phone-c', 'address/set')), 10_000, 'phone-c got no push of its own');
      expect(snooped.filter((t) => !t.startsWith('e911/v1/phone-c/'))).toEqual([]);
      // Its own event still goes through, and the forged one never reached either server.
      await phoneA.publishAsync(
        topicFor('phone-c', 'events'),
        JSON.stringify({ ...forged, id: 'own-1', deviceId: 'phone-c', type: 'diagnostics' }),
        { qos: 1 },
      );
      await until(() => [...seen.a, ...seen.b].some((e) => e.id === 'own-1'));
      expect([...seen.a, ...seen.b].some((e) => e.id === 'forged-1')).toBe(false);
      expect(await a.repo.event('forged-1')).toBeNull();
    } finally {
      await phoneA.endAsync();
      await phoneB.endAsync();
    }
  });

  it('refuses a wrong password and an unknown user', async () => {
    const tryLogin = (username: string, password: string) =>
      mqtt.connectAsync(broker.url, { clientId: `try-${username}`, protocolVersion: 5, username, password, reconnectPeriod: 0 }).then(
        async (c) => {
          await c.endAsync();
          return 'connected';
        },
        (err: Error) => err.message,
      );
    expect(await tryLogin('phone-b', 'wrong')).toMatch(/Not authorized|Bad user name or password/i);
    expect(await tryLogin('phone-z', 'anything')).toMatch(/Not authorized|Bad user name or password/i);
  });

  it('two server instances share the events through $share, each handled and mailed once', async () => {
    seen.a.length = 0;
    seen.b.length = 0;
    const n = 20;
    for (let i = 0; i < n; i++) agent.emit('test-call', { callRef: `shared-${i}`, numberDialed: '933' });
    await until(() => seen.a.length + seen.b.length >= n, 10_000, `events seen: ${seen.a.length}+${seen.b.length}`);
    // Both instances took a share; no event went to both.
    expect(seen.a.length).toBeGreaterThan(0);
    expect(seen.b.length).toBeGreaterThan(0);
    const ids = [...seen.a, ...seen.b].map((e) => e.id);
    expect(new Set(ids).size).toBe(ids.length);
    // Each event: one email to the user, one to the location's admin; every row sent once.
    const rows = async () => {
      const all = [];
      for (const id of ids) all.push(...(await a.repo.notifications({ eventId: id })));
      return all.filter((r) => r.channel === 'email');
    };
    await until(
      async () => (await rows()).length === 2 * n && (await rows()).every((r) => r.status === 'sent'),
      15_000,
      'emails not all sent',
    );
    const testMails = smtp.mails.filter((m) => m.subject.startsWith('Test Call Notification'));
    expect(testMails).toHaveLength(2 * n);
    for (const id of ids)
      expect(
        testMails
          .filter((m) => m.headers['x-e911-event-id'] === id)
          .map((m) => m.to[0])
          .sort(),
      ).toEqual(['alice@example.com', 'security@example.com']);
  });
});
