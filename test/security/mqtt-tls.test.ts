// MQTT over TLS against a real Mosquitto whose TLS listener `e911-server broker-config`
// renders, with a CA the test makes (openssl): the server and the real agent connect over
// mqtts:// with the CA and client certificates, the address push and a phone's event cross
// it; clients that do not verify, speak plain MQTT, bring no certificate or one from another
// CA, or name a host the certificate does not cover, are refused.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { agentConfig, inProcessAgent } from '../helpers/agent.js';
import { HQ, startTestServer, type TestServer } from '../helpers/server-app.js';
import { silentLog } from '../helpers/log.js';
import { freePort } from '../helpers/ports.js';
import { makeTestCa, type TestCa } from '../helpers/test-ca.js';
import { requires } from '../helpers/require.js';
import { ServerApp } from '../../provisioning/server/app.js';
import { loadOrCreateKeyPair } from '../../provisioning/server/keys.js';
import type { Agent } from '../../agent/root.js';

const gate = requires('MQTT over TLS against Mosquitto', ['broker']);
const MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/provisioning/server/main.js');

function cli(args: string[]): Promise<{ code: number | null; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MAIN, ...args], { env: { PATH: process.env.PATH }, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('close', (code) => resolve({ code, err }));
  });
}

/**
 * One connection attempt: resolves once connected (and ends it), rejects with the error, or
 * with 'closed' when the broker drops the connection without a CONNACK (a TLS server that
 * refuses a client certificate after the handshake does that).
 */
function connectOnce(target: string, o: mqtt.IClientOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = mqtt.connect(target, { reconnectPeriod: 0, connectTimeout: 5000, ...o });
    const failed = (err: Error) => {
      c.removeAllListeners('close');
      c.end(true);
      reject(err);
    };
    c.once('connect', () => {
      c.removeAllListeners('close');
      c.removeAllListeners('error');
      void c.endAsync().then(() => resolve(), reject);
    });
    c.once('error', failed);
    c.once('close', () => failed(new Error('closed before CONNACK')));
  });
}

async function until(cond: () => boolean | Promise<boolean>, why: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${why}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe.skipIf(gate.skip)('MQTT over TLS (Mosquitto, a CA made by the test)', () => {
  let dir: string;
  let ca: TestCa;
  let rogue: TestCa;
  let broker: Mosquitto;
  let app: ServerApp;
  let agent: Agent;
  let url: string;
  let port: number;
  let creds: Record<string, { username: string; password: string }>;

  const tryConnect = (target: string, o: mqtt.IClientOptions) => connectOnce(target, { protocolVersion: 5, ...o });
  const phoneLogin = (id: string) => ({ clientId: id, username: id, password: creds[id]!.password });
  const pem = (file: string) => readFileSync(file);

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'e911-mqtts-'));
    ca = makeTestCa(dir);
    // Another CA, which the broker does not trust, and which no client should.
    rogue = makeTestCa(mkdtempSync(path.join(dir, 'rogue-')), 'rogue-ca');
    const brokerCert = ca.server('broker', ['IP:127.0.0.1']);
    port = await freePort();
    url = `mqtts://127.0.0.1:${port}`;
    const data = path.join(dir, 'data');
    const { pair } = loadOrCreateKeyPair(path.join(data, 'signing-key.json'));
    const serverCert = ca.client('e911-server-main');
    app = new ServerApp({
      dataDir: data,
      log: silentLog(),
      keyPair: pair,
      broker: { url, protocolVersion: 5, tls: { ca: pem(ca.cert), cert: pem(serverCert.cert), key: pem(serverCert.key) } },
      http: null,
    });
    const hq = await app.service.createLocation('test', HQ);
    await app.service.updateAccount('test', { name: 'Example Corp', contactEmail: 'it@example.com' });
    await app.service.setNotificationSettings('test', {
      smtp: { host: '127.0.0.1', port: 2525, security: 'none', from: 'e911@example.com' },
    });
    creds = {};
    for (const [user, id] of [
      ['tess', 'phone-t'],
      ['uma', 'phone-u'],
    ] as const) {
      await app.service.createUser('test', {
        username: user,
        displayName: user,
        locationId: hq.id,
        callback: '+14085550100',
        deviceIds: [id],
      });
      creds[id] = await app.service.issueCredentials('test', id);
    }
    await app.service.setE911('test', true);
    // The broker's files as an operator renders them: a TLS listener only, client certificates required.
    const conf = path.join(dir, 'mosq');
    const r = await cli([
      '--data',
      data,
      'broker-config',
      '--out',
      conf,
      '--tls-listen',
      `127.0.0.1:${port}`,
      '--tls-certfile',
      brokerCert.cert,
      '--tls-keyfile',
      brokerCert.key,
      '--tls-cafile',
      ca.cert,
      '--require-client-cert',
    ]);
    expect(r.code, r.err).toBe(0);
    broker = await startMosquitto({
      port,
      listener: false,
      extraConfig: readFileSync(path.join(conf, 'mosquitto.conf'), 'utf8').split('\n'),
    });
    await app.start();
    const phoneCert = ca.client('phone-t');
    const setup = agentConfig(
      path.join(dir, 'phone-t'),
      { deviceId: 'phone-t', brokerUrl: url, serverPublicKey: pair.publicKey },
      {
        broker: {
          urls: [url],
          protocolVersion: 5,
          username: 'phone-t',
          password: creds['phone-t']!.password,
          reconnectMinMs: 100,
          reconnectMaxMs: 1000,
          tls: { ca: ca.cert, cert: phoneCert.cert, key: phoneCert.key },
        },
      },
    );
    agent = inProcessAgent(setup).agent;
    await agent.start();
  }, 60_000); // keys and certificates made with openssl, a broker and an agent started: slow on a loaded CI machine

  afterAll(async () => {
    await agent?.stop();
    await app?.stop();
    await broker?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('renders a TLS listener that binds client id to user and requires a client certificate', () => {
    const conf = readFileSync(path.join(dir, 'mosq', 'mosquitto.conf'), 'utf8');
    expect(conf).toContain(
      `listener ${port} 127.0.0.1\n# A login is its client id: no client can take over another client's session.\nuse_username_as_clientid true\ncertfile `,
    );
    expect(conf).toContain('require_certificate true');
    expect(conf).not.toMatch(/^listener 1883/m);
  });

  it('the server and the real agent talk over TLS: the signed address is applied, a call event is stored', async () => {
    expect(app.link.connected).toBe(true);
    await until(async () => {
      const d = await app.repo.device('phone-t');
      return d !== null && d.issuedVersion > 0 && d.appliedVersion === d.issuedVersion;
    }, 'phone-t never applied its address over TLS');
    agent.emit('test-call', { callRef: 'tls-1', numberDialed: '933' });
    await until(
      async () => (await app.repo.events({ deviceId: 'phone-t', types: ['test-call'], limit: 10 })).length === 1,
      'the test call never reached the server over TLS',
    );
  });

  it('refuses clients that do not verify the broker, speak plain MQTT, or lack a good client certificate', async () => {
    const good = ca.client('phone-u');
    const login = phoneLogin('phone-u');
    // The reference: the right CA, a certificate from it, the right password.
    await expect(tryConnect(url, { ...login, ca: pem(ca.cert), cert: pem(good.cert), key: pem(good.key) })).resolves.toBeUndefined();
    // The broker's certificate is not from a CA this client trusts.
    await expect(tryConnect(url, { ...login, cert: pem(good.cert), key: pem(good.key) })).rejects.toThrow(
      /self[- ]signed|unable to (get|verify)/i,
    );
    await expect(tryConnect(url, { ...login, ca: pem(rogue.cert), cert: pem(good.cert), key: pem(good.key) })).rejects.toThrow(
      /self[- ]signed|unable to (get|verify)/i,
    );
    // A name the certificate does not cover (it names 127.0.0.1 only).
    await expect(
      tryConnect(`mqtts://localhost:${port}`, { ...login, ca: pem(ca.cert), cert: pem(good.cert), key: pem(good.key) }),
    ).rejects.toThrow(/altnames|does not match|Hostname/i);
    // Plain MQTT to the TLS port.
    await expect(tryConnect(`mqtt://127.0.0.1:${port}`, login)).rejects.toThrow();
    // No client certificate, or one from another CA: the handshake fails.
    await expect(tryConnect(url, { ...login, ca: pem(ca.cert) })).rejects.toThrow();
    const forged = rogue.client('phone-u');
    await expect(tryConnect(url, { ...login, ca: pem(ca.cert), cert: pem(forged.cert), key: pem(forged.key) })).rejects.toThrow();
    // The certificate does not replace the password: a wrong one is still refused.
    await expect(
      tryConnect(url, { ...login, password: 'wrong', ca: pem(ca.cert), cert: pem(good.cert), key: pem(good.key) }),
    ).rejects.toThrow(/Bad User ?Name or Password|Not authorized/i);
    // Through all of it the server and the agent stayed connected.
    expect(app.link.connected).toBe(true);
  });
});

// The embedded broker (aedes) with a TLS listener for phones; its plain listener stays on
// loopback for the server's own link. MQTT 3.1.1 (aedes speaks nothing newer).
describe('MQTT over TLS on the embedded broker (a CA made by the test)', () => {
  let dir: string;
  let ca: TestCa;
  let rogue: TestCa;
  let srv: TestServer;
  let agent: Agent;
  let creds: Record<string, { username: string; password: string }>;

  const tryConnect = (target: string, o: mqtt.IClientOptions) => connectOnce(target, { protocolVersion: 4, ...o });
  const pem = (file: string) => readFileSync(file);

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'e911-aedes-tls-'));
    ca = makeTestCa(dir);
    rogue = makeTestCa(mkdtempSync(path.join(dir, 'rogue-')), 'rogue-ca');
    const brokerCert = ca.server('broker', ['IP:127.0.0.1']);
    srv = await startTestServer({
      broker: {
        embeddedTls: {
          port: await freePort(),
          host: '127.0.0.1',
          cert: pem(brokerCert.cert),
          key: pem(brokerCert.key),
          ca: pem(ca.cert),
          requireCertificate: true,
        },
      },
    });
    const { service } = srv.app;
    await service.updateAccount('test', { name: 'Example Corp', contactEmail: 'it@example.com' });
    await service.setNotificationSettings('test', { smtp: { host: '127.0.0.1', port: 2525, security: 'none', from: 'e911@example.com' } });
    const hq = await service.createLocation('test', HQ);
    creds = {};
    for (const [user, id] of [
      ['tess', 'phone-t'],
      ['uma', 'phone-u'],
    ] as const) {
      await service.createUser('test', { username: user, displayName: user, locationId: hq.id, callback: '+14085550100', deviceIds: [id] });
      creds[id] = await service.issueCredentials('test', id);
    }
    await service.setE911('test', true);
    const phoneCert = ca.client('phone-t');
    const url = srv.app.brokerTlsUrl!;
    const setup = agentConfig(
      path.join(dir, 'phone-t'),
      { deviceId: 'phone-t', brokerUrl: url, serverPublicKey: srv.keys.publicKey, protocolVersion: 4 },
      {
        broker: {
          urls: [url],
          protocolVersion: 4,
          username: 'phone-t',
          password: creds['phone-t']!.password,
          reconnectMinMs: 100,
          reconnectMaxMs: 1000,
          tls: { ca: ca.cert, cert: phoneCert.cert, key: phoneCert.key },
        },
      },
    );
    agent = inProcessAgent(setup).agent;
    await agent.start();
  }, 60_000); // keys and certificates made with openssl, a broker and an agent started: slow on a loaded CI machine

  afterAll(async () => {
    await agent?.stop();
    await srv?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the real agent applies its signed address over the TLS listener; the plain one stays on loopback for the server', async () => {
    expect(srv.app.brokerTlsUrl).toMatch(/^mqtts:\/\/127\.0\.0\.1:\d+$/);
    expect(srv.app.brokerUrl).toMatch(/^mqtt:\/\/127\.0\.0\.1:\d+$/);
    await until(async () => {
      const d = await srv.app.repo.device('phone-t');
      return d !== null && d.issuedVersion > 0 && d.appliedVersion === d.issuedVersion;
    }, 'phone-t never applied its address over TLS');
    agent.emit('test-call', { callRef: 'aedes-tls-1', numberDialed: '933' });
    await until(
      async () => (await srv.app.repo.events({ deviceId: 'phone-t', types: ['test-call'], limit: 10 })).length === 1,
      'the test call never reached the server over TLS',
    );
  });

  it('refuses clients that do not verify it, speak plain MQTT, or lack a good client certificate', async () => {
    const url = srv.app.brokerTlsUrl!;
    const good = ca.client('phone-u');
    const login = { clientId: 'phone-u', username: 'phone-u', password: creds['phone-u']!.password };
    await expect(tryConnect(url, { ...login, ca: pem(ca.cert), cert: pem(good.cert), key: pem(good.key) })).resolves.toBeUndefined();
    await expect(tryConnect(url, { ...login, cert: pem(good.cert), key: pem(good.key) })).rejects.toThrow(
      /self[- ]signed|unable to (get|verify)/i,
    );
    await expect(tryConnect(url, { ...login, ca: pem(rogue.cert), cert: pem(good.cert), key: pem(good.key) })).rejects.toThrow(
      /self[- ]signed|unable to (get|verify)/i,
    );
    await expect(tryConnect(url.replace('mqtts:', 'mqtt:'), login)).rejects.toThrow();
    await expect(tryConnect(url, { ...login, ca: pem(ca.cert) })).rejects.toThrow();
    const forged = rogue.client('phone-u');
    await expect(tryConnect(url, { ...login, ca: pem(ca.cert), cert: pem(forged.cert), key: pem(forged.key) })).rejects.toThrow();
    await expect(
      tryConnect(url, { ...login, password: 'wrong', ca: pem(ca.cert), cert: pem(good.cert), key: pem(good.key) }),
    ).rejects.toThrow(/Bad User ?Name or Password|Not authorized/i);
    // The client id is still bound to the login over TLS: phone-u's login cannot take phone-t's id.
    await expect(
      tryConnect(url, { ...login, clientId: 'phone-t', ca: pem(ca.cert), cert: pem(good.cert), key: pem(good.key) }),
    ).rejects.toThrow(/Identifier rejected/i);
    expect(srv.app.link.connected).toBe(true);
  });
});
