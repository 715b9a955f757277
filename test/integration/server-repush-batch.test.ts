// A server instance that did not issue the phones' addresses (a second instance, or one just
// restarted) checks each reporting phone for a stale address. With a read or two per report,
// a second instance made 17 times the database commits of one during a push (npm run bench --
// scale, PostgreSQL); the reports that arrive together are now checked with one read. Real
// Mosquitto; the phones are plain MQTT clients publishing their retained status.
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { sampleAddress, testKeys } from '../helpers/address.js';
import { silentLog } from '../helpers/log.js';
import { waitFor } from '../helpers/agent.js';
import { ProvisioningServer, type DesiredAddressStore } from '../../provisioning/server/server.js';
import { signDocument } from '../../provisioning/protocol/signing.js';
import { topicFor } from '../../provisioning/protocol/topics.js';
import type { SignedAddress } from '../../provisioning/protocol/messages.js';

const cleanup: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

describe('re-push check on an instance that did not issue', () => {
  it('phones reporting together are checked in one read; the one stale phone is re-pushed', async () => {
    const broker: Mosquitto = await startMosquitto();
    cleanup.push(() => broker.close());
    const keys = testKeys();
    const phones = Array.from({ length: 40 }, (_, i) => `desk-${i}`);
    const stale = phones[7]!;
    // What the shared database says: version 2 issued to all, applied by all but one.
    const signed = (deviceId: string): SignedAddress => {
      const doc = sampleAddress({ deviceId, version: 2 });
      return { v: 1, doc, sig: signDocument(doc, keys.privateKey) };
    };
    const calls = { versions: 0, get: 0 };
    const desired: DesiredAddressStore = {
      get: (id) => {
        calls.get++;
        return signed(id);
      },
      set: () => undefined,
      versions: async (ids) => {
        calls.versions++;
        return new Map(ids.map((id) => [id, { desired: 2, applied: id === stale ? 1 : 2 }]));
      },
    };
    const server = new ProvisioningServer({
      brokerUrl: broker.url,
      privateKey: keys.privateKey,
      log: silentLog(),
      protocolVersion: 5,
      desired,
    });
    await server.start();
    cleanup.push(() => server.stop());

    // The stale phone listens for its address; the others only say they are online.
    const listener = await mqtt.connectAsync(broker.url, { clientId: 'listener' });
    cleanup.push(() => listener.endAsync());
    const pushed: string[] = [];
    listener.on('message', (topic) => pushed.push(topic));
    await listener.subscribeAsync(topicFor(stale, 'address/set'), { qos: 1 });

    const phoneClient = await mqtt.connectAsync(broker.url, { clientId: 'phones' });
    cleanup.push(() => phoneClient.endAsync());
    await Promise.all(
      phones.map((deviceId) =>
        phoneClient.publishAsync(topicFor(deviceId, 'status'), JSON.stringify({ v: 1, state: 'online', deviceId }), { qos: 1 }),
      ),
    );
    await waitFor(() => pushed.length === 1, 5000);
    await new Promise((r) => setTimeout(r, 200));

    expect(pushed).toEqual([topicFor(stale, 'address/set')]);
    // One read per batch of reports that arrived together: a few, never one per phone; the
    // document itself (get) only for the phone re-pushed.
    expect(calls.versions).toBeGreaterThan(0);
    expect(calls.versions).toBeLessThanOrEqual(5);
    expect(calls.get).toBe(1);
  });
});
