// The clustered engine chosen in docs/scale.md (NATS with JetStream and MQTT, three nodes)
// keeps what the project relies on from its broker: retained state seen on every node, the
// phone's last will, and events shared between server instances (a NATS queue group: its
// MQTT side has no $share). A QoS 1 session outliving its node is not relied on: NATS 2.9.10
// loses its queued messages in about half the runs, so it is measured by
// `npm run bench -- scale-brokers` (docs/scale.md), not asserted here.
import { connect as natsConnect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acceptsVersion, collect, connect, lastWill, retainedClusterWide } from '../helpers/cluster-checks.js';
import { type BrokerCluster, startNatsCluster } from '../helpers/nats-cluster.js';

// No skip when nats-server is missing: the setup step installs it, and a missing engine fails here, loudly.
describe('clustered broker: NATS, three nodes', () => {
  let cluster: BrokerCluster;
  beforeAll(async () => {
    cluster = await startNatsCluster();
  }, 30_000);
  afterAll(async () => {
    await cluster?.close();
  });

  it('speaks MQTT 3.1.1 (the agent and server must use protocolVersion 4 on it)', async () => {
    expect((await acceptsVersion(cluster.nodes[0]!.mqttUrl, 4)).ok).toBe(true);
  });

  it('gives a retained message published on node 1 to a new subscriber on node 3', async () => {
    const r = await retainedClusterWide(cluster, 4);
    expect(r.ok, r.detail).toBe(true);
  });

  it('publishes the will of a phone whose connection vanished to a watcher on another node', async () => {
    const r = await lastWill(cluster, 4, 'client vanishes');
    expect(r.ok, r.detail).toBe(true);
  }, 15_000);

  it('shares phones’ MQTT events between two server instances of one queue group, each event to one', async () => {
    const [a, b, c] = cluster.nodes;
    const group = 'e911-servers';
    const got: string[][] = [[], []];
    const instances = await Promise.all([a!, b!].map((n) => natsConnect({ servers: n.nativeUrl! })));
    try {
      // MQTT topic e911/v1/<id>/events is NATS subject e911.v1.<id>.events.
      const subs = instances.map((nc, i) =>
        nc.subscribe('e911.v1.*.events', {
          queue: group,
          callback: (err, m) => {
            if (err) throw err;
            got[i]!.push(m.string());
          },
        }),
      );
      await Promise.all(instances.map((nc) => nc.flush()));
      // The queue subscriptions travel to node 3 over the cluster routes.
      await new Promise((r) => setTimeout(r, 500));
      const phone = await connect(c!.mqttUrl, { protocolVersion: 4 });
      const count = 60;
      for (let i = 0; i < count; i++) await phone.publishAsync(`e911/v1/phone-${i % 6}/events`, `event-${i}`, { qos: 1 });
      await phone.endAsync();
      const deadline = Date.now() + 5000;
      while (got[0]!.length + got[1]!.length < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      await new Promise((r) => setTimeout(r, 200));
      const all = [...got[0]!, ...got[1]!];
      expect(all).toHaveLength(count);
      expect(new Set(all).size).toBe(count);
      // Random member per message: 60 all to one instance would be a 2^-59 chance.
      expect(got[0]!.length).toBeGreaterThan(0);
      expect(got[1]!.length).toBeGreaterThan(0);
      for (const s of subs) s.unsubscribe();
    } finally {
      await Promise.all(instances.map((nc) => nc.close()));
    }
  }, 20_000);

  it('keeps MQTT subscribers and NATS queue members apart: an MQTT QoS 1 subscriber still gets its copy', async () => {
    const [a, , c] = cluster.nodes;
    const watcher = await connect(a!.mqttUrl, { protocolVersion: 4 });
    const box = collect(watcher);
    await watcher.subscribeAsync('e911/v1/+/address/state', { qos: 1 });
    const phone = await connect(c!.mqttUrl, { protocolVersion: 4 });
    await phone.publishAsync('e911/v1/phone-x/address/state', 'applied', { qos: 1 });
    await phone.endAsync();
    expect(await box.waitFor(1, 5000)).toBe(true);
    await watcher.endAsync();
  });
});
