// The link takes a large locations push's body off the socket as it arrives (publish-framer.ts)
// and hands the worker's sink the bytes; mqtt.js sees a stand-in. Through a real Mosquitto on
// loopback, MQTT 3.1.1 and 5, QoS 0 and 1, retained: the push arrives whole in the sink, a
// message after it keeps its order, a small push still comes as bytes, one over the bound is
// refused by size without being kept, and the broker still holds the retained push whole.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import mqtt from 'mqtt';
import { MqttLink } from '../../agent/link/link.js';
import type { OutboxDrainer } from '../../agent/link/outbox-drainer.js';
import type { PayloadStream, StreamedPayload } from '../../agent/location/locations-verifier.js';
import { parseConfig } from '../../agent/config.js';
import { MAX_LOCATIONS_PAYLOAD_BYTES } from '../../provisioning/protocol/messages.js';
import { topicFor } from '../../provisioning/protocol/topics.js';
import { generateSigningKeyPair } from '../../provisioning/protocol/signing.js';
import { silentLog } from '../helpers/log.js';
import { unitAgentRaw } from '../helpers/agent.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { requires } from '../helpers/require.js';

const gate = requires('a locations push streamed through a real broker', ['broker']);

const until = async (cond: () => boolean, ms = 5000) => {
  const deadline = Date.now() + ms;
  while (!cond() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  expect(cond()).toBe(true);
};

describe.skipIf(gate.skip)('a large locations push streamed from the socket', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  for (const version of [4, 5] as const) {
    for (const qos of [0, 1] as const) {
      it(`MQTT ${version === 4 ? '3.1.1' : '5'}, QoS ${qos}`, async () => {
        const broker = await startMosquitto();
        cleanups.push(() => broker.close());
        const dir = mkdtempSync(path.join(os.tmpdir(), 'e911-stream-'));
        cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
        const config = parseConfig(
          unitAgentRaw(dir, generateSigningKeyPair().publicKey, {
            deviceId: 'p1',
            broker: { urls: [broker.url], protocolVersion: version, reconnectMinMs: 50, reconnectMaxMs: 200 },
          }),
        );

        // The sink as the worker verifier is to the link: what it was given, per stream.
        const held = new Map<StreamedPayload, Buffer>();
        const released: StreamedPayload[] = [];
        const largePayloads = {
          openStream(length: number): PayloadStream {
            const pieces: Buffer[] = [];
            return {
              write: (c) => void pieces.push(Buffer.from(c)),
              end: () => {
                const h: StreamedPayload = { kind: 'streamed', length, release: () => void released.push(h) };
                held.set(h, Buffer.concat(pieces));
                return h;
              },
              abort: () => undefined,
            };
          },
        };
        const got: (Buffer | StreamedPayload)[] = [];
        const rejected: string[] = [];
        const acks: { ids: string[]; after: number }[] = [];
        const drainer = {
          attach: () => undefined,
          detach: () => undefined,
          serverAck: (ids: string[]) => void acks.push({ ids, after: got.length }),
        };
        const link = new MqttLink({
          config,
          log: silentLog(),
          drainer: drainer as unknown as OutboxDrainer,
          handlers: {
            addressSet: () => undefined,
            configSet: () => undefined,
            command: async () => undefined,
            rejected: (_k, reason) => void rejected.push(reason),
            locationsSet: (p) => void got.push(p),
          },
          agentVersion: 'test',
          largePayloads,
        });
        link.start();
        cleanups.push(() => link.stop());
        await until(() => link.state.state === 'online');
        await link.whenSubscribed();

        const server2 = await mqtt.connectAsync(broker.url, { protocolVersion: version });
        cleanups.push(() => server2.endAsync());
        const topic = topicFor('p1', 'locations/set');
        const big = Buffer.from(Array.from({ length: 300 * 1024 }, (_, i) => (i * 7) & 0xff));
        const props = version === 5 ? { properties: { contentType: 'application/json', userProperties: { k: 'v' } } } : {};
        await server2.publishAsync(topic, big, { qos, retain: true, ...props });
        // Right after it: delivered after it, as sent.
        await server2.publishAsync(topicFor('p1', 'events/ack'), JSON.stringify({ v: 1, ids: ['e-1'] }), { qos });
        await server2.publishAsync(topic, Buffer.from('{"v":1,"small":true}'), { qos });
        await server2.publishAsync(topic, Buffer.alloc(MAX_LOCATIONS_PAYLOAD_BYTES + 10, 0x20), { qos });
        await until(() => got.length === 2 && rejected.length === 1, 10_000).catch((err: Error) => {
          throw new Error(`${err.message}: got ${got.length}, rejected ${JSON.stringify(rejected)}, link ${JSON.stringify(link.state)}`);
        });

        const first = got[0] as StreamedPayload;
        expect(first.kind).toBe('streamed');
        expect(held.get(first)!.equals(big)).toBe(true);
        expect(Buffer.isBuffer(got[1])).toBe(true);
        expect((got[1] as Buffer).toString()).toBe('{"v":1,"small":true}');
        expect(acks).toEqual([{ ids: ['e-1'], after: 1 }]);
        expect(rejected).toEqual([`payload of ${MAX_LOCATIONS_PAYLOAD_BYTES + 10} bytes exceeds ${MAX_LOCATIONS_PAYLOAD_BYTES}`]);
        // Only the one within the bound was opened: the other was never kept.
        expect(held.size).toBe(1);
        expect(link.state.streamed).toBe(1);
        // The retained push comes again on a new subscription: the broker kept it whole.
        const other = await mqtt.connectAsync(broker.url, { protocolVersion: version });
        cleanups.push(() => other.endAsync());
        const retained = new Promise<Buffer>((resolve) => other.on('message', (_t, p) => resolve(p)));
        await other.subscribeAsync(topic, { qos: 1 });
        expect((await retained).equals(big)).toBe(true);
      });
    }
  }
});
