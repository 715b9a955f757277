// Behaviours README.md claims, each proven on real components:
// - a bad configuration stops the agent with exit code 78, naming every bad key;
// - a retained config/set is ignored (only a live one is applied);
// - the PSAP-callback suppression window, persisted by agent/root.ts, survives
//   a real restart of the agent process: the PSAP calling back after the
//   restart is still answered at once;
// - the same event id delivered to two server instances is notified once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { Store } from '../../agent/store/store.js';
import { ServerApp } from '../../provisioning/server/app.js';
import { generateSigningKeyPair } from '../../provisioning/protocol/signing.js';
import { documentHash } from '../../provisioning/protocol/signing.js';
import { topicFor } from '../../provisioning/protocol/topics.js';
import type { Agent } from '../../agent/root.js';
import { AGENT_MAIN, agentConfig, inProcessAgent, spawnAgent, waitFor, type AgentProcess } from '../helpers/agent.js';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.js';
import { startSipp } from '../helpers/sip.js';
import { e911ctl, staleBuild } from '../helpers/emergency.js';
import { HQ } from '../helpers/server-app.js';
import { freePort } from '../helpers/ports.js';
import { sampleAddress, testKeys } from '../helpers/address.js';
import { silentLog } from '../helpers/log.js';
import { requires } from '../helpers/require.js';

const FIX = path.resolve(import.meta.dirname, '..', 'fixtures');
const PSAP = path.join(FIX, 'emergency', 'psap.xml');
const CALLBACK = path.join(FIX, 'sipp', 'uac-callback-answered.xml');
const RINGS = path.join(FIX, 'sipp', 'uac-callback-rings.xml');

const stale = staleBuild(['agent/main.ts', 'agent/config.ts', 'agent/root.ts', 'agent/emergency/service.ts']);

describe('a bad configuration exits with code 78 (EX_CONFIG)', () => {
  const run = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = execFile(
        process.execPath,
        [AGENT_MAIN, ...args],
        { env: { PATH: process.env.PATH, ...env }, timeout: 15_000 },
        (_err, _out, stderr) => resolve({ code: child.exitCode, stderr }),
      );
    });
  let dir: string;
  beforeAll(() => {
    if (stale) throw new Error(stale);
    dir = mkdtempSync(path.join(os.tmpdir(), 'e911-badconf-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('names every bad key of the file, and exits 78 before starting anything', async () => {
    const file = path.join(dir, 'bad.json');
    writeFileSync(file, JSON.stringify({ deviceId: 'bad id!', serverPublicKey: 'short', broker: { urls: ['http://x'] }, surprise: 1 }));
    const r = await run(['--config', file]);
    expect(r.code).toBe(78);
    for (const key of ['deviceId', 'serverPublicKey', 'broker.urls', 'surprise']) expect(r.stderr).toContain(key);
  });

  it('a bad environment override is named with its variable; an unreadable file and invalid JSON exit 78 too', async () => {
    const file = path.join(dir, 'good.json');
    writeFileSync(
      file,
      JSON.stringify({
        deviceId: 'phone-1',
        serverPublicKey: 'A'.repeat(43),
        broker: { urls: ['mqtt://127.0.0.1:1'] },
        dataDir: path.join(dir, 'db'),
      }),
    );
    const env = await run(['--config', file], { E911_DEVICE_ID: 'bad id!' });
    expect(env.code).toBe(78);
    expect(env.stderr).toContain('E911_DEVICE_ID');
    expect((await run(['--config', path.join(dir, 'missing.json')])).code).toBe(78);
    const broken = path.join(dir, 'broken.json');
    writeFileSync(broken, '{ "deviceId": ');
    expect((await run(['--config', broken])).code).toBe(78);
  });
});

const brokerGate = requires('the retained config/set test', ['broker']);

describe.skipIf(brokerGate.skip)('a retained config/set is ignored', () => {
  let dir: string;
  let broker: Mosquitto;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'e911-retained-'));
    broker = await startMosquitto();
  });
  afterAll(async () => {
    await broker?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the retained one waiting at the broker is not applied; a live one after it is', async () => {
    const keys = testKeys();
    const server = await mqtt.connectAsync(broker.url, { protocolVersion: 5, clientId: 'test-server' });
    let agent: Agent | null = null;
    try {
      // Waiting at the broker before the phone subscribes: delivered to it with the retain flag.
      await server.publishAsync(topicFor('phone-r', 'config/set'), JSON.stringify({ v: 1, settings: { fromRetained: 1 } }), {
        qos: 1,
        retain: true,
      });
      const online = new Promise<void>((resolve) => {
        server.on('message', (_t, p) => JSON.parse(p.toString()).state === 'online' && resolve());
      });
      await server.subscribeAsync(topicFor('phone-r', 'status'), { qos: 1 });
      const setup = agentConfig(path.join(dir, 'agent'), {
        deviceId: 'phone-r',
        brokerUrl: broker.url,
        serverPublicKey: keys.pair.publicKey,
      });
      agent = inProcessAgent(setup).agent;
      await agent.start();
      await online; // published after its subscriptions were acknowledged: the retained one has been delivered
      // The marker: a live config/set on the same connection, handled after the retained one.
      await server.publishAsync(topicFor('phone-r', 'config/set'), JSON.stringify({ v: 1, settings: { live: 2 } }), { qos: 1 });
      const setting = (key: string) => {
        const store = new Store({ dataDir: setup.raw.dataDir as string, log: silentLog() });
        try {
          return store.getSetting(key);
        } finally {
          store.close();
        }
      };
      await waitFor(
        () => setting('server.live') !== undefined,
        10_000,
        () => 'the live config/set never applied',
      );
      expect(setting('server.live')).toBe('2');
      expect(setting('server.fromRetained')).toBeUndefined();
    } finally {
      await agent?.stop();
      await server.publishAsync(topicFor('phone-r', 'config/set'), '', { qos: 1, retain: true }); // clear it
      await server.endAsync();
    }
  });
});

const suppressionGate = requires('the suppression window across a real agent restart', ['voice', 'sipp', 'broker']);

describe.skipIf(suppressionGate.skip)('the suppression window across a real restart of the agent', () => {
  let dir: string;
  let broker: Mosquitto;
  let agent: AgentProcess | null = null;
  beforeAll(async () => {
    if (stale) throw new Error(stale);
    dir = mkdtempSync(path.join(os.tmpdir(), 'e911-suppress-'));
    broker = await startMosquitto();
  });
  afterAll(async () => {
    if (agent && agent.child.exitCode === null) {
      agent.child.kill('SIGTERM');
      await agent.exited;
    }
    await broker?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('after 911 and a restart, the PSAP calling back is still answered at once (before 911 it only rang)', async () => {
    const keys = testKeys();
    const psapPort = await freePort();
    const sipPort = await freePort();
    const setup = agentConfig(
      path.join(dir, 'agent'),
      { deviceId: 'phone-s', brokerUrl: broker.url, serverPublicKey: keys.pair.publicKey },
      {
        sip: { bindAddress: '127.0.0.1', publicAddress: '127.0.0.1', port: sipPort, rtpPort: await freePort(), sound: 'null' },
        emergency: { routes: { primary: `sip:127.0.0.1:${psapPort}` } },
      },
    );
    const doc = sampleAddress({ deviceId: 'phone-s', version: 2 });
    const store = new Store({ dataDir: setup.raw.dataDir as string, log: silentLog() });
    store.applyAddress(
      { doc, version: doc.version, hash: documentHash(doc), signature: 'seeded-by-test', receivedAt: doc.issuedAt },
      { v: 1, id: 'seed-address', type: 'address-applied', deviceId: 'phone-s', ts: doc.issuedAt, data: {} },
    );
    store.close();
    const phone = `127.0.0.1:${sipPort}`;
    /** The PSAP's callback, from the route's address (127.0.0.1): exit 0 if the phone behaved as the scenario expects. */
    const callBack = async (scenario: string) => {
      const port = await freePort();
      const sipp = await startSipp({
        scenario,
        remote: phone,
        port,
        service: 'phone',
        keys: { psap_host: '127.0.0.1', psap_port: port },
        timeoutSec: 15,
      });
      try {
        return { code: (await sipp.exited).code, log: sipp.messages() };
      } finally {
        await sipp.close();
      }
    };
    const status = async () => (await e911ctl(setup.socketPath, 'status')).json.result.emergency as { suppressedUntil: string | null };

    agent = await spawnAgent(setup);
    expect((await status()).suppressedUntil).toBeNull();
    // Before any 911: a call from the route's address is an ordinary call. It rings (the scenario cancels on 180).
    const before = await callBack(RINGS);
    expect(before.code, before.log).toBe(0);

    const psap = await startSipp({ scenario: PSAP, port: psapPort, timeoutSec: 20 });
    try {
      expect((await e911ctl(setup.socketPath, 'dial', '911')).json.ok).toBe(true);
      await waitFor(
        () => /ACK /.test(psap.messages()),
        10_000,
        () => `${psap.messages()}\n${agent!.output()}`,
      );
      expect((await e911ctl(setup.socketPath, 'hangup')).code).toBe(0);
      expect((await psap.exited).code).toBe(0);
    } finally {
      await psap.close();
    }
    // The window starts when the call ends (its DISCONNECTED), and is written to the store off the call path.
    let until: string | null = null;
    const deadline = Date.now() + 10_000;
    while (until === null && Date.now() < deadline) until = (await status()).suppressedUntil;
    expect(until).not.toBeNull();

    agent.child.kill('SIGTERM');
    expect(await agent.exited).toBe(0);
    agent = await spawnAgent(setup);
    expect((await status()).suppressedUntil).toBe(until);
    // The PSAP calls back after the restart: answered at once (the scenario needs a 200).
    const after = await callBack(CALLBACK);
    expect(after.code, after.log).toBe(0);
    expect(after.log).toMatch(/SIP\/2\.0 200 OK/);
  });
});

const twoGate = requires('the same event on two server instances', ['broker']);

describe.skipIf(twoGate.skip)('the same event id delivered to two server instances', () => {
  let dir: string;
  let broker: Mosquitto;
  let smtp: SmtpSink;
  let a: ServerApp;
  let b: ServerApp;
  let agent: Agent;
  let observer: mqtt.MqttClient;
  const acks: { id: string; n: number }[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'e911-two-'));
    smtp = await startSmtpSink();
    broker = await startMosquitto();
    const keys = generateSigningKeyPair();
    // Two instances of one database, each with its own, NON-shared subscription: every event reaches both.
    const make = async (instance: string) =>
      new ServerApp({
        dataDir: path.join(dir, 'data'),
        log: silentLog(),
        keyPair: keys,
        broker: { url: broker.url, protocolVersion: 5, instance },
        http: { port: await freePort() },
        notify: { retry: { baseMs: 100, maxMs: 400, maxAttempts: 20 } },
      });
    a = await make('a');
    b = await make('b');
    await a.service.updateAccount('test', { name: 'Example Corp', contactEmail: 'it@example.com' });
    await a.service.setNotificationSettings('test', {
      smtp: { host: '127.0.0.1', port: smtp.port, security: 'none', from: 'e911@example.com' },
    });
    const hq = await a.service.createLocation('test', HQ);
    await a.service.createUser('test', {
      username: 'alice',
      displayName: 'Alice',
      locationId: hq.id,
      callback: '+14085550100',
      deviceIds: ['phone-2'],
      emails: ['alice@example.com'],
    });
    await a.service.setE911('test', true);
    await a.start();
    await b.start();
    // Each instance acknowledges what it handled to the phone: counting acks per id shows both had it.
    observer = await mqtt.connectAsync(broker.url, { protocolVersion: 5, clientId: 'observer' });
    observer.on('message', (_t, p) => {
      for (const id of (JSON.parse(p.toString()) as { ids: string[] }).ids) {
        const row = acks.find((x) => x.id === id);
        if (row) row.n++;
        else acks.push({ id, n: 1 });
      }
    });
    await observer.subscribeAsync(topicFor('phone-2', 'events/ack'), { qos: 1 });
    const setup = agentConfig(path.join(dir, 'phone'), { deviceId: 'phone-2', brokerUrl: broker.url, serverPublicKey: keys.publicKey });
    agent = inProcessAgent(setup).agent;
    await agent.start();
  });

  afterAll(async () => {
    await agent?.stop();
    await observer?.endAsync();
    await a?.stop();
    await b?.stop();
    await broker?.close();
    await smtp?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('both instances receive and acknowledge it; it is stored once and each recipient is mailed once', async () => {
    const ackCount = (x: string) => acks.find((r) => r.id === x)?.n ?? 0;
    /** Emits an event from the phone; its id, once an instance acknowledged it. */
    const emit = async (callRef: string) => {
      const id = agent.emit('test-call', { callRef, numberDialed: '933' });
      await waitFor(
        () => ackCount(id) > 0,
        15_000,
        () => `no ack: ${JSON.stringify(acks)}`,
      );
      return id;
    };
    const id = await emit('twice-1');
    await waitFor(
      () => ackCount(id) === 2,
      15_000,
      () => `acks: ${JSON.stringify(acks)}`,
    );
    const mails = (x: string) => smtp.mails.filter((m) => m.headers['x-e911-event-id'] === x);
    const rows = async (x: string) => (await a.repo.notifications({ eventId: x })).filter((r) => r.channel === 'email');
    await waitFor(
      async () => (await rows(id)).length === 2 && (await rows(id)).every((r) => r.status === 'sent'),
      15_000,
      () => JSON.stringify(rows(id)),
    );
    // The marker: a second event, mailed after the first; by then a duplicate of the first would be here too.
    const marker = await emit('twice-2');
    await waitFor(
      () => ackCount(marker) === 2 && mails(marker).length === 2,
      15_000,
      () => `acks: ${JSON.stringify(acks)}; mails: ${smtp.mails.length}`,
    );
    await waitFor(async () => (await rows(marker)).every((r) => r.status === 'sent'), 15_000);
    expect(
      mails(id)
        .map((m) => m.to[0])
        .sort(),
    ).toEqual(['alice@example.com', 'security@example.com']);
    expect(await a.repo.event(id)).toMatchObject({ id, type: 'test-call' });
  });
});
