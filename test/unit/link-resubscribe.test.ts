// The agent's link asks again for a subscription the broker refused (SUBACK 0x80), on the same
// connection: a NATS node refuses a QoS 1 subscription while JetStream cannot create its
// consumer (after another node's loss), and the phone stayed connected without ever hearing
// events/ack (failover-cluster.test.ts). A real broker (aedes on loopback) refuses the
// events/ack filter twice, then grants it.
import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Aedes } from 'aedes';
import mqtt from 'mqtt';
import { MqttLink } from '../../agent/link/link.js';
import type { OutboxDrainer } from '../../agent/link/outbox-drainer.js';
import { parseConfig } from '../../agent/config.js';
import { silentLog } from '../helpers/log.js';
import { unitAgentRaw } from '../helpers/agent.js';
import { generateSigningKeyPair } from '../../provisioning/protocol/signing.js';

describe('a refused subscription is asked for again', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('events/ack refused twice, then granted on the same connection; the server ack reaches the outbox', async () => {
    let refusals = 2;
    const asked: string[] = [];
    const broker = await Aedes.createBroker({
      authorizeSubscribe(_client, sub, done) {
        asked.push(sub.topic);
        if (sub.topic.endsWith('/events/ack') && refusals > 0) {
          refusals--;
          done(null, null); // SUBACK 0x80 for this filter
        } else done(null, sub);
      },
    });
    const server = net.createServer(broker.handle);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as net.AddressInfo).port;
    cleanups.push(() => new Promise<void>((r) => broker.close(() => server.close(() => r()))));

    const dir = mkdtempSync(path.join(os.tmpdir(), 'e911-resub-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const config = parseConfig(
      unitAgentRaw(dir, generateSigningKeyPair().publicKey, {
        deviceId: 'p1',
        broker: { urls: [`mqtt://127.0.0.1:${port}`], protocolVersion: 4, reconnectMinMs: 50, reconnectMaxMs: 200 },
      }),
    );
    const acked: string[][] = [];
    const drainer = { attach: () => undefined, detach: () => undefined, serverAck: (ids: string[]) => acked.push(ids) };
    const link = new MqttLink({
      config,
      log: silentLog(),
      drainer: drainer as unknown as OutboxDrainer,
      handlers: { addressSet: () => undefined, configSet: () => undefined, command: async () => undefined, rejected: () => undefined },
      agentVersion: 'test',
    });
    link.start();
    cleanups.push(() => link.stop());

    const deadline = Date.now() + 5000;
    while (asked.filter((t) => t.endsWith('/events/ack')).length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(asked.filter((t) => t.endsWith('/events/ack'))).toHaveLength(3);
    // Only the refused filter was asked for again, and the link never dropped its connection for it.
    expect(asked.filter((t) => t.endsWith('/address/set'))).toHaveLength(1);
    expect(link.state).toMatchObject({ state: 'online', connects: 1 });

    const server2 = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { protocolVersion: 4 });
    cleanups.push(() => server2.endAsync());
    await new Promise((r) => setTimeout(r, 50)); // the granted SUBSCRIBE is in place (aedes subscribes after authorizing)
    await server2.publishAsync('e911/v1/p1/events/ack', JSON.stringify({ v: 1, ids: ['e-1'] }), { qos: 1 });
    const until = Date.now() + 3000;
    while (acked.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    expect(acked).toEqual([['e-1']]);
  });
});
