// Attacks on the broker by someone holding one desk phone's credentials (they sit on every
// desk), run against both brokers the server supports: the embedded aedes broker and a real
// Mosquitto loaded with the configuration the server renders. The attacker (phone-m, valid
// login) tries to take over another phone's or the server's session, to publish as another
// phone or as the server, to read other phones' topics or every phone's events, to join the
// server's shared subscription, and to plant a will on another phone's status. Each is refused:
// the victim stays connected, the server records nothing forged and the attacker reads nothing.
// The attacker's phone belongs to another customer account than its victims (one deployment
// serves many): an account's phones reach no other account's topics or records.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { MOSQUITTO, startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { HQ } from '../helpers/server-app.js';
import { silentLog } from '../helpers/log.js';
import { freePort } from '../helpers/ports.js';
import { ServerApp } from '../../provisioning/server/app.js';
import { generateSigningKeyPair } from '../../provisioning/protocol/signing.js';
import { topicFor } from '../../provisioning/protocol/topics.js';

if (!MOSQUITTO)
  console.warn('\n!!! SKIPPING the Mosquitto half of the MQTT attack suite: mosquitto is not installed (run scripts/setup.sh)\n');

async function until(cond: () => boolean | Promise<boolean>, ms = 10_000, why = ''): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${why}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface Rig {
  app: ServerApp;
  url: string;
  v: 4 | 5;
  creds: Record<string, { username: string; password: string }>;
  stop(): Promise<void>;
}

/** The victims' account (the default one) and the attacker's, another customer on the same deployment. */
const ACCOUNTS = { default: ['phone-a', 'phone-b'], globex: ['phone-m'] } as const;
const ATTACKER_ACCOUNT = 'globex';

async function provision(app: ServerApp): Promise<Record<string, { username: string; password: string }>> {
  const { service, repo } = app;
  expect(await repo.createAccount(ATTACKER_ACCOUNT, 'Globex')).toBe(true);
  const creds: Record<string, { username: string; password: string }> = {};
  let n = 0;
  for (const [account, phones] of Object.entries(ACCOUNTS)) {
    await repo.inAccount(account, async () => {
      await service.updateAccount('test', { name: `${account} corp`, contactEmail: `it@${account}.example.com` });
      // No notice is sent in this suite (the phones' own events are diagnostics): a relay nobody runs will do.
      await service.setNotificationSettings('test', { smtp: { host: '127.0.0.1', port: 9, security: 'none', from: 'e911@example.com' } });
      const hq = await service.createLocation('test', HQ);
      for (const id of phones) {
        await service.createUser('test', {
          username: `u${n}`,
          displayName: `User${n}`,
          locationId: hq.id,
          callback: `+1408555010${n++}`,
          deviceIds: [id],
        });
        creds[id] = await service.issueCredentials('test', id);
      }
      await service.setE911('test', true);
    });
  }
  return creds;
}

async function aedesRig(): Promise<Rig> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'e911-sec-aedes-'));
  const app = new ServerApp({
    dataDir: dir,
    log: silentLog(),
    keyPair: generateSigningKeyPair(),
    broker: { embeddedPort: await freePort() },
    http: null,
  });
  const creds = await provision(app);
  await app.start();
  return {
    app,
    url: app.brokerUrl,
    v: 4,
    creds,
    stop: async () => {
      await app.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function mosquittoRig(): Promise<Rig> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'e911-sec-mosq-'));
  const port = await freePort();
  const url = `mqtt://127.0.0.1:${port}`;
  const app = new ServerApp({
    dataDir: path.join(dir, 'data'),
    log: silentLog(),
    keyPair: generateSigningKeyPair(),
    broker: { url, protocolVersion: 5, shareGroup: 'e911-server' },
    http: null,
  });
  const creds = await provision(app);
  const conf = path.join(dir, 'mosquitto');
  mkdirSync(conf);
  const files = await app.brokerConfig(conf, [{ port, host: '127.0.0.1' }]);
  writeFileSync(path.join(conf, 'passwd'), files.passwd, { mode: 0o600 });
  writeFileSync(path.join(conf, 'acl'), files.acl);
  const broker: Mosquitto = await startMosquitto({ port, listener: false, extraConfig: files.conf.split('\n') });
  await app.start();
  return {
    app,
    url,
    v: 5,
    creds,
    stop: async () => {
      await app.stop();
      await broker.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Connects, or says why not (the broker's refusal). */
async function tryConnect(url: string, o: IClientOptions): Promise<MqttClient | string> {
  return mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 5000, ...o }).then(
    (c) => c,
    (err: Error) => err.message,
  );
}

/**
 * Publishes QoS 1 and says what the broker did: 'accepted' (PUBACK 0), 'refused' (MQTT 5
 * PUBACK 135, not authorized) or 'disconnected' (aedes drops a client whose publish it refuses).
 */
async function attemptPublish(
  c: MqttClient,
  topic: string,
  payload: string,
  opts: { retain?: boolean } = {},
): Promise<'accepted' | 'refused' | 'disconnected'> {
  const closed = new Promise<'disconnected'>((resolve) => c.once('close', () => resolve('disconnected')));
  const published = c.publishAsync(topic, payload, { qos: 1, ...opts }).then(
    () => 'accepted' as const,
    (err: Error & { code?: number }) => (err.code === 135 ? ('refused' as const) : Promise.reject(err)),
  );
  return Promise.race([published, closed]);
}

const event = (id: string, deviceId: string, type = 'emergency-call') =>
  JSON.stringify({ v: 1, id, type, deviceId, ts: new Date().toISOString(), data: { numberDialed: '911' } });

describe.each([
  { name: 'aedes (embedded)', make: aedesRig, skip: false },
  { name: 'Mosquitto (rendered configuration)', make: mosquittoRig, skip: !MOSQUITTO },
])('MQTT attack suite: $name', ({ make, skip }) => {
  let rig: Rig;
  /** The real phone-a, with reconnects off: any takeover ends it for good and is seen. */
  let victim: MqttClient;
  let victimClosed = 0;
  const victimGot: string[] = [];
  const login = (id: string, o: IClientOptions = {}) =>
    tryConnect(rig.url, { protocolVersion: rig.v, clientId: id, username: id, password: rig.creds[id]!.password, ...o });
  const inAttackerAccount = <T>(fn: () => Promise<T>) => rig.app.repo.inAccount(ATTACKER_ACCOUNT, fn);
  const attacker = async (o: IClientOptions = {}) => {
    const c = await login('phone-m', o);
    if (typeof c === 'string') throw new Error(`the attacker's own login failed: ${c}`);
    return c;
  };
  /** One round trip through the server and the victim: the server pushes to phone-a, phone-a gets it. */
  const victimRoundTrip = async () => {
    const before = victimGot.length;
    await rig.app.service.repush('test', 'phone-a');
    await until(() => victimGot.length > before, 10_000, 'phone-a got no push');
  };

  beforeAll(async () => {
    if (skip) return;
    rig = await make();
    const c = await login('phone-a');
    if (typeof c === 'string') throw new Error(`phone-a could not log in: ${c}`);
    victim = c;
    victim.on('close', () => victimClosed++);
    victim.on('message', (t) => victimGot.push(t));
    await victim.subscribeAsync(topicFor('phone-a', 'address/set'), { qos: 1 });
    await victim.publishAsync(
      topicFor('phone-a', 'status'),
      JSON.stringify({ v: 1, state: 'online', deviceId: 'phone-a', ts: new Date().toISOString(), agentVersion: 'test' }),
      { qos: 1, retain: true },
    );
    await until(async () => (await rig.app.repo.device('phone-a'))?.online === true, 10_000, 'phone-a never online');
  });
  afterAll(async () => {
    await victim?.endAsync();
    await rig?.stop();
  });

  it.skipIf(skip)("cannot take over another phone's or the server's client id", async () => {
    for (const target of ['phone-a', rig.app.brokerUser]) {
      const c = await login('phone-m', { clientId: target });
      if (typeof c === 'string') {
        // aedes refuses the connect outright.
        expect(c).toMatch(/Identifier rejected/i);
        continue;
      }
      // Mosquitto replaces the client id with the user name: the attacker is phone-m, and it
      // still may not use the target's topics.
      expect(await attemptPublish(c, topicFor('phone-a', 'events'), event(`takeover-${target}`, 'phone-a'))).not.toBe('accepted');
      c.end(true);
    }
    // Without a user name there is no session at all.
    expect(await tryConnect(rig.url, { protocolVersion: rig.v, clientId: 'phone-a' })).toMatch(
      /Not authorized|Bad user ?name or password/i,
    );
    // The victim and the server were never disconnected: the victim still gets its push, the
    // server still takes its events.
    await victimRoundTrip();
    expect(victimClosed).toBe(0);
    expect(rig.app.link.connected).toBe(true);
    await victim.publishAsync(topicFor('phone-a', 'events'), event('after-takeover', 'phone-a', 'diagnostics'), { qos: 1 });
    await until(async () => (await rig.app.repo.event('after-takeover')) !== null, 10_000, "the server lost phone-a's event");
    expect(await rig.app.repo.event('takeover-phone-a')).toBeNull();
    expect(await inAttackerAccount(() => rig.app.repo.event('takeover-phone-a'))).toBeNull();
  });

  it.skipIf(skip)('cannot log in as the server or with a reserved device id', async () => {
    expect(
      await tryConnect(rig.url, {
        protocolVersion: rig.v,
        clientId: rig.app.brokerUser,
        username: rig.app.brokerUser,
        password: rig.creds['phone-m']!.password,
      }),
    ).toMatch(/Not authorized|Bad user ?name or password/i);
    await expect(rig.app.service.issueCredentials('test', 'e911-server-evil')).rejects.toThrow(/reserved/);
    await expect(rig.app.service.issueCredentials('test', 'E911-Server')).rejects.toThrow(/reserved/);
    await expect(
      rig.app.service.createUser('test', { username: 'eve', displayName: 'Eve', deviceIds: ['e911-server-main'] }),
    ).rejects.toThrow(/reserved/);
  });

  it.skipIf(skip)("cannot publish to another phone's topics, as the phone or as the server", async () => {
    const attempts: [string, string][] = [
      [topicFor('phone-a', 'events'), event('forged-event', 'phone-a')],
      [topicFor('phone-a', 'status'), JSON.stringify({ v: 1, state: 'offline', deviceId: 'phone-a' })],
      [topicFor('phone-a', 'address/set'), '{"forged":true}'],
      [topicFor('phone-a', 'cmd', 'ping'), '{}'],
      [topicFor('phone-m', 'address/set'), '{"forged":true}'],
      ['e911/v1', '{}'],
      ['$SYS/broker/x', '{}'],
    ];
    for (const [topic, payload] of attempts) {
      const c = await attacker();
      expect(await attemptPublish(c, topic, payload, { retain: true }), topic).not.toBe('accepted');
      c.end(true);
    }
    // Nothing forged arrived anywhere: a round trip through the victim comes after it all.
    await victimRoundTrip();
    expect(victimGot.every((t) => t === topicFor('phone-a', 'address/set'))).toBe(true);
    expect(await rig.app.repo.event('forged-event')).toBeNull();
    expect(await inAttackerAccount(() => rig.app.repo.event('forged-event'))).toBeNull();
    expect((await rig.app.repo.device('phone-a'))?.online).toBe(true);
    // The attacker's own topics still work: the refusals are about whose topics, not about it.
    const c = await attacker();
    expect(await attemptPublish(c, topicFor('phone-m', 'events'), event('own-event', 'phone-m', 'diagnostics'))).toBe('accepted');
    // Stored in the attacker's own account, and not visible in the victims'.
    await until(async () => (await inAttackerAccount(() => rig.app.repo.event('own-event'))) !== null);
    expect(await rig.app.repo.event('own-event')).toBeNull();
    c.end(true);
  });

  it.skipIf(skip)("cannot read other phones' topics, every phone's events, or join the server's shared subscription", async () => {
    const c = await attacker();
    const got: string[] = [];
    c.on('message', (t) => got.push(t));
    const filters = [
      topicFor('phone-a', 'address/set'),
      topicFor('phone-a', 'events'),
      'e911/v1/+/events',
      'e911/v1/+/status',
      'e911/v1/+/location',
      'e911/v1/+/address/set',
      'e911/v1/#',
      '#',
      '$SYS/#',
      // Guesses at the server's share group: its real name carries a secret suffix.
      ...['e911-server', 'e911', 'server', 'share', 'e911-server-main'].map((g) => `$share/${g}/e911/v1/+/events`),
    ];
    const granted = new Promise<number[]>((resolve) =>
      c.on('packetreceive', (p) => p.cmd === 'suback' && resolve((p as { granted: number[] }).granted)),
    );
    c.subscribe(filters, { qos: 1 }, () => undefined);
    const codes = await granted;
    // aedes refuses each (0x80). Mosquitto 2.0 grants patterns it cannot decide at subscribe
    // time and checks read access on every message instead: what counts is what arrives.
    if (rig.v === 4) expect(codes).toEqual(filters.map(() => 128));
    // Every phone's events and statuses flow: none reaches the attacker, none is lost to it.
    const n = 20;
    for (let i = 0; i < n; i++)
      await victim.publishAsync(topicFor('phone-a', 'events'), event(`snoop-${i}`, 'phone-a', 'diagnostics'), { qos: 1 });
    await until(
      async () => (await Promise.all(Array.from({ length: n }, (_, i) => rig.app.repo.event(`snoop-${i}`)))).every((e) => e !== null),
      10_000,
      'the server did not get every event (a share group took some?)',
    );
    await victimRoundTrip();
    // The attacker's own push, published after all that, arrives on the same connection.
    await c.subscribeAsync(topicFor('phone-m', 'address/set'), { qos: 1 });
    await inAttackerAccount(() => rig.app.service.repush('test', 'phone-m'));
    await until(() => got.includes(topicFor('phone-m', 'address/set')), 10_000, 'phone-m got no push of its own');
    expect(got.filter((t) => !t.startsWith('e911/v1/phone-m/'))).toEqual([]);
    c.end(true);
  });

  it.skipIf(skip)("cannot plant a will on another phone's status", async () => {
    const c = await login('phone-m', {
      will: {
        topic: topicFor('phone-a', 'status'),
        payload: Buffer.from(JSON.stringify({ v: 1, state: 'offline', deviceId: 'phone-a' })),
        qos: 1,
        retain: true,
      },
    });
    if (typeof c !== 'string') {
      const closed = new Promise<void>((resolve) => c.once('close', () => resolve()));
      (c.stream as { destroy(): void }).destroy();
      await closed;
      // Logging in again as phone-m ends the old session on the broker's side for certain (a
      // takeover of its own id), so its will has fired, or been refused, before this connects.
      const again = await attacker();
      again.end(true);
    }
    // Either way (refused at connect, or the will refused when it fires), phone-a stays online.
    await victimRoundTrip();
    await victim.publishAsync(topicFor('phone-a', 'events'), event('after-will', 'phone-a', 'diagnostics'), { qos: 1 });
    await until(async () => (await rig.app.repo.event('after-will')) !== null);
    expect((await rig.app.repo.device('phone-a'))?.online).toBe(true);
    expect(victimClosed).toBe(0);
  });
});
