// Operations around the agent process: systemd notifications, e911ctl, a corrupt
// store reported once connected, commands over MQTT (retained ones ignored).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { agentConfig, spawnAgent, waitFor } from '../helpers/agent.js';
import { sampleAddress, testKeys } from '../helpers/address.js';
import { silentLog } from '../helpers/log.js';
import { ProvisioningServer } from '../../provisioning/server/server.js';
import type { EventPayload } from '../../provisioning/protocol/messages.js';
import { requires } from '../helpers/require.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const E911CTL = path.join(repo, 'dist/agent/cli/e911ctl.js');

const gate = requires('agent operations tests', ['broker']);
const python = requires('agent operations: systemd notifications (python3 plays systemd)', ['python']);

describe.skipIf(gate.skip)('agent operations', () => {
  let broker: Mosquitto;
  let server: ProvisioningServer;
  let dir: string;
  const keys = testKeys();
  const events: EventPayload[] = [];

  beforeAll(async () => {
    broker = await startMosquitto();
    dir = mkdtempSync(path.join(os.tmpdir(), 'e911-ops-'));
    server = new ProvisioningServer({
      brokerUrl: broker.url,
      privateKey: keys.privateKey,
      log: silentLog(),
      protocolVersion: 5,
      clientId: 'srv-ops',
    });
    server.on('event', (e) => events.push(e));
    await server.start();
  });
  afterAll(async () => {
    await server.stop();
    await broker.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const ctl = (socket: string, ...args: string[]) => {
    const r = spawnSync(process.execPath, [E911CTL, '--socket', socket, ...args], { encoding: 'utf8' });
    return { code: r.status, out: r.stdout, err: r.stderr };
  };

  it.skipIf(python.skip)('tells systemd READY, WATCHDOG and STOPPING through NOTIFY_SOCKET', async () => {
    const s = agentConfig(
      path.join(dir, 'sd'),
      { deviceId: 'phone-sd', brokerUrl: broker.url, serverPublicKey: keys.pair.publicKey },
      { watchdogMs: 100 },
    );
    const sock = path.join(dir, 'notify.sock');
    // Node cannot receive AF_UNIX datagrams; a few lines of Python play systemd.
    const listener = spawn('python3', [
      '-u',
      '-c',
      [
        'import socket,sys',
        's=socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)',
        's.bind(sys.argv[1])',
        'print("bound", flush=True)',
        'while True: print(s.recv(4096).decode().replace("\\n","|"), flush=True)',
      ].join('\n'),
      sock,
    ]);
    let heard = '';
    listener.stdout.on('data', (d: Buffer) => (heard += d.toString()));
    try {
      await waitFor(() => heard.includes('bound'), 3000);
      const agent = await spawnAgent(s, { NOTIFY_SOCKET: sock });
      await waitFor(
        () => heard.includes('READY=1') && (heard.match(/WATCHDOG=1/g) ?? []).length >= 2,
        5000,
        () => heard,
      );
      expect(heard).toMatch(new RegExp(`READY=1\\|MAINPID=${agent.child.pid}`));
      agent.child.kill('SIGTERM');
      expect(await agent.exited).toBe(0);
      await waitFor(
        () => heard.includes('STOPPING=1'),
        2000,
        () => heard,
      );
    } finally {
      listener.kill();
    }
  });

  it('e911ctl answers status and address as text and --json, with scriptable exit codes', async () => {
    const s = agentConfig(path.join(dir, 'ctl'), { deviceId: 'phone-ctl', brokerUrl: broker.url, serverPublicKey: keys.pair.publicKey });
    const agent = await spawnAgent(s);
    try {
      const none = ctl(s.socketPath, 'address');
      expect(none.code).toBe(0);
      expect(none.out).toMatch(/no address on file/);

      await server.pushAddress(sampleAddress({ deviceId: 'phone-ctl', version: 2 }));
      await waitFor(() => events.some((e) => e.deviceId === 'phone-ctl' && e.type === 'address-applied'), 5000);
      const text = ctl(s.socketPath, 'address');
      expect(text.out).toMatch(/version 2/);
      expect(text.out).toMatch(/100 Main St/);
      expect(text.out).toMatch(/San Jose, CA 95110/);
      const json = JSON.parse(ctl(s.socketPath, 'address', '--json').out);
      expect(json).toMatchObject({ ok: true, result: { version: 2, doc: { deviceId: 'phone-ctl', civic: { ROOM: '210' } } } });

      // The server's ack of address-applied reaches the phone a moment after the server has it:
      // until then the event is still in the outbox (it waits for that ack).
      const statusNow = () => JSON.parse(ctl(s.socketPath, 'status', '--json').out) as { result: { outbox: { backlog: number } } };
      let status = statusNow();
      for (let i = 0; i < 100 && status.result.outbox.backlog !== 0; i++) {
        await new Promise((r) => setTimeout(r, 50));
        status = statusNow();
      }
      expect(status.result).toMatchObject({
        deviceId: 'phone-ctl',
        link: { state: 'online' },
        outbox: { backlog: 0 },
        store: { schemaVersion: expect.any(Number) },
      });

      expect(ctl(s.socketPath, 'frobnicate').code).toBe(2);
      expect(ctl(path.join(dir, 'nope.sock'), 'status').code).toBe(3);
    } finally {
      agent.child.kill('SIGTERM');
      await agent.exited;
    }
  });

  it('keeps a corrupt database aside, starts fresh, and reports the incident once connected', async () => {
    const s = agentConfig(path.join(dir, 'corrupt'), {
      deviceId: 'phone-bad',
      brokerUrl: broker.url,
      serverPublicKey: keys.pair.publicKey,
    });
    mkdirSync(s.raw.dataDir as string, { recursive: true });
    writeFileSync(path.join(s.raw.dataDir as string, 'agent.db'), 'garbage '.repeat(1000));
    const agent = await spawnAgent(s);
    try {
      await waitFor(
        () => events.some((e) => e.deviceId === 'phone-bad' && e.type === 'store-incident'),
        5000,
        () => agent.output(),
      );
      const incident = events.find((e) => e.type === 'store-incident')!;
      expect(incident.data).toMatchObject({ reason: expect.stringMatching(/not a database/i) });
      expect(existsSync(String(incident.data.keptAs))).toBe(true);
    } finally {
      agent.child.kill('SIGTERM');
      await agent.exited;
    }
  });

  it('answers commands over MQTT, ignores retained ones, and reports garbage once', async () => {
    const s = agentConfig(path.join(dir, 'cmd'), { deviceId: 'phone-cmd', brokerUrl: broker.url, serverPublicKey: keys.pair.publicKey });
    const agent = await spawnAgent(s);
    await waitFor(() => server.phone('phone-cmd')?.online === true, 3000);
    const client = await mqtt.connectAsync(broker.url, { protocolVersion: 5 });
    const responses: Record<string, unknown>[] = [];
    client.on('message', (_t, p) => responses.push(JSON.parse(p.toString()) as Record<string, unknown>));
    try {
      await client.subscribeAsync('e911/v1/phone-cmd/response/+', { qos: 1 });
      await client.publishAsync('e911/v1/phone-cmd/cmd/ping', JSON.stringify({ v: 1, correlationId: 'c-1' }), { qos: 1 });
      await waitFor(() => responses.length === 1, 3000);
      expect(responses[0]).toEqual({ v: 1, correlationId: 'c-1', ok: true, result: { pong: true } });

      // A retained command would be delivered on every (re)subscribe: the agent must not run it.
      agent.child.kill('SIGTERM');
      await agent.exited;
      await client.publishAsync('e911/v1/phone-cmd/cmd/ping', JSON.stringify({ v: 1, correlationId: 'retained' }), {
        qos: 1,
        retain: true,
      });
      await waitFor(() => server.phone('phone-cmd')?.online === false, 3000);
      const again = await spawnAgent(s);
      try {
        await waitFor(() => server.phone('phone-cmd')?.online === true, 3000);
        await client.publishAsync('e911/v1/phone-cmd/cmd/ping', JSON.stringify({ v: 1, correlationId: 'c-2' }), { qos: 1 });
        await waitFor(() => responses.some((r) => r.correlationId === 'c-2'), 3000);
        expect(responses.map((r) => r.correlationId)).not.toContain('retained');

        for (let i = 0; i < 5; i++) await client.publishAsync('e911/v1/phone-cmd/cmd/ping', '{"v":1,"correlationId":', { qos: 1 });
        // Marker: garbage on another topic kind, sent after the five, has its own report; it
        // counts the four cmd reports held back since the last one.
        await client.publishAsync('e911/v1/phone-cmd/config/set', 'not json', { qos: 1 });
        const rejectedOf = (topic: string) =>
          events.filter((e) => e.deviceId === 'phone-cmd' && e.type === 'payload-rejected' && e.data.topic === topic);
        await waitFor(
          () => rejectedOf('config/set').length === 1,
          3000,
          () => JSON.stringify(events.filter((e) => e.deviceId === 'phone-cmd')),
        );
        const rejected = rejectedOf('cmd');
        expect(rejected).toHaveLength(1); // rate-limited: one report a minute per topic kind
        expect(rejected[0]!.data).toMatchObject({ topic: 'cmd', reason: expect.stringMatching(/invalid JSON/), suppressedSinceLast: 0 });
        expect(rejectedOf('config/set')[0]!.data).toMatchObject({ suppressedSinceLast: 4 });
        expect(again.child.exitCode).toBeNull();
      } finally {
        again.child.kill('SIGTERM');
        await again.exited;
      }
    } finally {
      await client.publishAsync('e911/v1/phone-cmd/cmd/ping', '', { qos: 1, retain: true });
      await client.endAsync();
    }
  });
});
