// Clustered MQTT engines for issue 16's broker choice, each beside single-node Mosquitto
// measured in the same run (docs/scale.md):
//  - start time and resident memory of three nodes (NATS with JetStream and MQTT;
//    RabbitMQ with its MQTT plugin) beside one Mosquitto;
//  - QoS 1 publish -> receive throughput across two nodes beside Mosquitto's on one, and of
//    retained publishes, one topic each (the server's locations push), at QoS 1 and 0 and from 8 connections;
//  - the properties the project relies on, yes or no: MQTT 3.1.1 / 5, retained messages
//    cluster-wide, a QoS 1 session outliving its node, last will (client vanishes / its
//    node dies), $share shared subscriptions.
//   npm run bench -- scale-brokers
// BENCH_BROKER_MSGS (default 5000) sets the throughput run; BENCH_BROKERS=nats,rabbitmq picks engines.
import { type Mosquitto, startMosquitto } from '../../test/helpers/mosquitto.js';
import { type BrokerCluster, startNatsCluster } from '../../test/helpers/nats-cluster.js';
import { startRabbitCluster } from '../../test/helpers/rabbitmq-cluster.js';
import {
  type CheckResult,
  type MqttVersion,
  acceptsVersion,
  lastWill,
  retainedClusterWide,
  rssMb,
  sessionSurvivesNodeLoss,
  sharedSubscription,
  throughput,
} from '../../test/helpers/cluster-checks.js';
import { report } from './stats.js';

const MSGS = Number(process.env.BENCH_BROKER_MSGS ?? 5000);
const ENGINES = (process.env.BENCH_BROKERS ?? 'nats,rabbitmq').split(',');

const line = (s: string) => process.stdout.write(`${s}\n`);
const yes = (r: CheckResult) => `${r.ok ? 'yes' : 'NO '}  ${r.detail}`;

/** Messages a second, saying so when not all were delivered within the run's 120 s. */
async function perSecond(what: string, run: Promise<{ perSecond: number; received: number }>): Promise<number> {
  const r = await run;
  if (r.received < MSGS) line(`  ${what}: only ${r.received} of ${MSGS} delivered within 120 s`);
  return r.perSecond;
}

/** Mosquitto as a "cluster" of one node named three times: the same checks, no node loss. */
function single(m: Mosquitto): BrokerCluster {
  const node = {
    name: 'mosquitto',
    mqttUrl: m.url,
    mqttPort: m.port,
    pid: () => m.pid(),
    kill: () => m.kill(),
    restart: () => m.restart(),
  };
  return { engine: 'mosquitto', nodes: [node, node, node], dir: m.dir, close: () => m.close() };
}

async function properties(cluster: BrokerCluster, failover: boolean): Promise<MqttVersion> {
  const url = cluster.nodes[0]!.mqttUrl;
  const v5 = await acceptsVersion(url, 5);
  const v4 = await acceptsVersion(url, 4);
  line(`  MQTT 5:                 ${yes(v5)}`);
  line(`  MQTT 3.1.1:             ${yes(v4)}`);
  const v: MqttVersion = v5.ok ? 5 : 4;
  line(`  retained cluster-wide:  ${yes(await retainedClusterWide(cluster, v))}`);
  const share = await sharedSubscription(cluster, v);
  line(`  $share (MQTT ${v === 5 ? '5' : '3.1.1'}):       ${yes(share)}`);
  if (v === 5) line(`  $share (MQTT 3.1.1):    ${yes(await sharedSubscription(cluster, 4))}`);
  if (failover) {
    line(`  QoS 1 session, node lost (MQTT ${v === 5 ? '5' : '3.1.1'}): ${yes(await sessionSurvivesNodeLoss(cluster, v))}`);
  }
  line(`  will, client vanishes:  ${yes(await lastWill(cluster, v, 'client vanishes'))}`);
  if (failover) line(`  will, its node dies:    ${yes(await lastWill(cluster, v, 'node dies'))}`);
  return v;
}

async function main(): Promise<void> {
  // Baseline: one Mosquitto, started, measured and left running beside the clusters.
  let t0 = performance.now();
  const mosq = await startMosquitto();
  const mosqStart = performance.now() - t0;
  const mosqRss = () => rssMb(mosq.pid());
  line(`mosquitto (1 node): started in ${mosqStart.toFixed(0)} ms, RSS ${mosqRss().toFixed(1)} MB`);
  try {
    const base = single(mosq);
    line('mosquitto properties (no node loss possible):');
    await properties(base, false);
    const mosqRate = await perSecond('mosquitto, QoS 1', throughput(mosq.url, mosq.url, 5, MSGS));
    line(`mosquitto: QoS 1 ${mosqRate.toFixed(0)} msg/s, RSS after ${mosqRss().toFixed(1)} MB`);

    for (const engine of ENGINES) {
      t0 = performance.now();
      const cluster = engine === 'nats' ? await startNatsCluster() : await startRabbitCluster();
      const started = performance.now() - t0;
      const rss = () => cluster.nodes.reduce((s, n) => s + rssMb(n.pid()), 0);
      const rssIdle = rss();
      line(`\n${engine} (3 nodes): started in ${started.toFixed(0)} ms, RSS ${rssIdle.toFixed(1)} MB`);
      try {
        const v = await properties(cluster, true);
        const [a, b] = cluster.nodes;
        // The same-run baseline again right before, so both figures see the same machine.
        const baseRate = await perSecond('mosquitto, QoS 1 (baseline)', throughput(mosq.url, mosq.url, 5, MSGS));
        const rate = await perSecond('QoS 1, node 1 -> node 2', throughput(a!.mqttUrl, b!.mqttUrl, v, MSGS));
        const rateSame = await perSecond('QoS 1, same node', throughput(a!.mqttUrl, a!.mqttUrl, v, MSGS));
        const baseMany = await perSecond('mosquitto, 32 publishers (baseline)', throughput(mosq.url, mosq.url, 5, MSGS, 32));
        const rateMany = await perSecond('QoS 1, 32 publishers, node 1 -> 2', throughput(a!.mqttUrl, b!.mqttUrl, v, MSGS, 32));
        // Retained, one topic each (the server's locations push): NATS stores each in a stream from the connection's read loop.
        const baseRetained = await perSecond(
          'mosquitto, retained (baseline)',
          throughput(mosq.url, mosq.url, 5, MSGS, 1, { retain: true }),
        );
        const retained1 = await perSecond('retained QoS 1, node 1 -> 2', throughput(a!.mqttUrl, b!.mqttUrl, v, MSGS, 1, { retain: true }));
        const retained0 = await perSecond(
          'retained QoS 0, node 1 -> 2',
          throughput(a!.mqttUrl, b!.mqttUrl, v, MSGS, 1, { retain: true, qos: 0 }),
        );
        const retained8 = await perSecond(
          'retained QoS 1, 8 publishers, node 1 -> 2',
          throughput(a!.mqttUrl, b!.mqttUrl, v, MSGS, 8, { retain: true }),
        );
        const rssLoaded = rss();
        report(`${engine}: start, 3 nodes`, started, 'ms', mosqStart, 'none (baseline: 1 Mosquitto)');
        report(`${engine}: RSS idle, 3 nodes`, rssIdle, 'MB', mosqRss(), 'none (baseline: 1 Mosquitto)');
        report(`${engine}: RSS after throughput, 3 nodes`, rssLoaded, 'MB', mosqRss(), 'none (baseline: 1 Mosquitto)');
        report(`${engine}: QoS 1 msg/s, node 1 -> node 2`, rate, 'msg/s', baseRate, 'none (baseline: 1 Mosquitto)');
        report(`${engine}: QoS 1 msg/s, same node`, rateSame, 'msg/s', baseRate, 'none (baseline: 1 Mosquitto)');
        report(`${engine}: QoS 1 msg/s, 32 publishers, node 1 -> 2`, rateMany, 'msg/s', baseMany, 'none (baseline: 1 Mosquitto)');
        report(`${engine}: retained QoS 1 msg/s, node 1 -> 2`, retained1, 'msg/s', baseRetained, 'none (baseline: 1 Mosquitto)');
        report(`${engine}: retained QoS 0 msg/s, node 1 -> 2`, retained0, 'msg/s', baseRetained, 'none (baseline: 1 Mosquitto, QoS 1)');
        report(
          `${engine}: retained QoS 1 msg/s, 8 publishers, node 1 -> 2`,
          retained8,
          'msg/s',
          baseRetained,
          'none (baseline: 1 Mosquitto, 1 publisher)',
        );
      } finally {
        await cluster.close();
      }
    }
  } finally {
    await mosq.close();
  }
}

await main();
