// The push command against a real Mosquitto configured by `e911-server broker-config`: it
// logs in as its own server user (the broker binds client id to user name), so it needs no
// anonymous access, takes over no running instance's session, and is refused with a wrong
// password or none.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { HQ } from '../helpers/server-app.js';
import { silentLog } from '../helpers/log.js';
import { freePort } from '../helpers/ports.js';
import { sampleAddress } from '../helpers/address.js';
import { requires } from '../helpers/require.js';
import { ServerApp } from '../../provisioning/server/app.js';
import { loadOrCreateKeyPair } from '../../provisioning/server/keys.js';
import { topicFor } from '../../provisioning/protocol/topics.js';
import { publicKeyFromText, verifyDocument } from '../../provisioning/protocol/signing.js';

const gate = requires('push command against Mosquitto', ['broker']);
const MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/provisioning/server/main.js');

/** Runs the CLI without blocking this process (the phone's MQTT client must keep reading). */
function cli(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MAIN, ...args], { env: { PATH: process.env.PATH }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('close', (code) => resolve({ code, out, err }));
  });
}

async function until(cond: () => boolean, why: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${why}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe.skipIf(gate.skip)('e911-server push against Mosquitto', () => {
  let dir: string;
  let data: string;
  let broker: Mosquitto;
  let app: ServerApp;
  let phone: mqtt.MqttClient;
  let serverConnects = 0;
  const got: Buffer[] = [];

  beforeAll(async () => {
    if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`npm run build\``);
    dir = mkdtempSync(path.join(os.tmpdir(), 'e911-push-'));
    data = path.join(dir, 'data');
    const port = await freePort();
    // The key the CLI signs with, in the data folder as `run` would leave it.
    const { pair } = loadOrCreateKeyPair(path.join(data, 'signing-key.json'));
    app = new ServerApp({
      dataDir: data,
      log: silentLog(),
      keyPair: pair,
      broker: { url: `mqtt://127.0.0.1:${port}`, protocolVersion: 5 },
      http: null,
    });
    const hq = await app.service.createLocation('test', HQ);
    await app.service.createUser('test', {
      username: 'pat',
      displayName: 'Pat',
      locationId: hq.id,
      callback: '+14085550100',
      deviceIds: ['desk-p'],
    });
    const creds = await app.service.issueCredentials('test', 'desk-p');
    // The files as an operator makes them: the CLI, on the same data folder.
    const conf = path.join(dir, 'mosq');
    const rendered = await cli(['--data', data, 'broker-config', '--out', conf, '--listen', `127.0.0.1:${port}`]);
    expect(rendered.code, rendered.err).toBe(0);
    broker = await startMosquitto({
      port,
      listener: false,
      extraConfig: readFileSync(path.join(conf, 'mosquitto.conf'), 'utf8').split('\n'),
    });
    app.link.on('connected', () => serverConnects++);
    await app.start();
    phone = await mqtt.connectAsync(broker.url, {
      clientId: 'desk-p',
      protocolVersion: 5,
      username: creds.username,
      password: creds.password,
    });
    phone.on('message', (_t, p) => got.push(p));
    await phone.subscribeAsync(topicFor('desk-p', 'address/set'), { qos: 1 });
  });

  afterAll(async () => {
    await phone?.endAsync();
    await app?.stop();
    await broker?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('pushes a signed address as e911-server-cli, and the running server keeps its session', async () => {
    expect(serverConnects).toBe(1);
    const file = path.join(dir, 'addr.json');
    const doc = sampleAddress({ deviceId: 'desk-p', version: 7 });
    writeFileSync(file, JSON.stringify(doc));
    const r = await cli(['--data', data, 'push', '--broker', broker.url, '--address', file]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain('"as":"e911-server-cli"');
    await until(() => got.length === 1, 'the phone got no push');
    const signed = JSON.parse(got[0]!.toString()) as { doc: unknown; sig: string };
    expect(signed.doc).toEqual(doc);
    expect(
      verifyDocument(signed.doc, signed.sig, publicKeyFromText(loadOrCreateKeyPair(path.join(data, 'signing-key.json')).pair.publicKey)),
    ).toBe(true);
    // Its own client id: the instance (e911-server-main) was not kicked off and did not reconnect.
    expect(app.link.connected).toBe(true);
    expect(serverConnects).toBe(1);
  });

  it('is refused with a wrong password, or as a user the broker does not know, and publishes nothing', async () => {
    got.length = 0;
    const file = path.join(dir, 'addr.json');
    const wrong = await cli([
      '--data',
      data,
      'push',
      '--broker',
      broker.url,
      '--address',
      file,
      '--broker-username',
      'e911-server-cli',
      '--broker-password',
      'wrong',
    ]);
    expect(wrong.code).toBe(1);
    expect(wrong.err).toMatch(/refused e911-server-cli/);
    // An instance created after the files were rendered: Mosquitto has not heard of it.
    const unknown = await cli(['--data', data, 'push', '--broker', broker.url, '--address', file, '--instance', 'later']);
    expect(unknown.code).toBe(1);
    expect(unknown.err).toMatch(/refused e911-server-later.*broker-config/);
    // The old way, anonymous with a free client id, is gone.
    await expect(
      mqtt.connectAsync(broker.url, { clientId: `e911-server-push-${process.pid}`, protocolVersion: 5, reconnectPeriod: 0 }),
    ).rejects.toThrow(/Not authorized|Bad User Name or Password/i);
    expect(got).toEqual([]);
    expect(serverConnects).toBe(1);
  });
});
