// What the project relies on from an MQTT broker, each checked against a running cluster
// with real mqtt.js clients: used by test/integration/cluster-broker.test.ts (which asserts
// them for the chosen engine) and by the scale-brokers benchmark (which reports them for
// every engine). A check that cannot see its property returns ok: false with the reason.
import { readFileSync } from 'node:fs';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { BrokerCluster } from './nats-cluster.js';

export type MqttVersion = 4 | 5;

export interface CheckResult {
  ok: boolean;
  detail: string;
}

let seq = 0;
/** A client id unique in this process (and across runs: brokers keep sessions). */
export const clientId = (what: string) => `${what}-${process.pid}-${Date.now().toString(36)}-${++seq}`;

/** Connects, or rejects with the broker's refusal (or a timeout). */
export async function connect(url: string, opts: IClientOptions = {}, timeoutMs = 5000): Promise<MqttClient> {
  const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: timeoutMs, clientId: clientId('c'), ...opts });
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no CONNACK from ${url} in ${timeoutMs} ms`)), timeoutMs);
      client.once('connect', () => {
        clearTimeout(timer);
        (client.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
        resolve();
      });
      client.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      client.once('close', () => {
        clearTimeout(timer);
        reject(new Error(`${url} closed the connection before CONNACK`));
      });
    });
  } catch (err) {
    client.end(true);
    throw err;
  }
  return client;
}

/**
 * Connects, trying again for up to 30 s as the agent and server do: right after a node is
 * lost a cluster may refuse connections for a moment (leaders re-elected, a session's id
 * still held for the dead node).
 */
export async function connectRetrying(url: string, opts: IClientOptions = {}, forMs = 30_000): Promise<MqttClient> {
  const deadline = Date.now() + forMs;
  let tries = 0;
  for (;;) {
    tries++;
    try {
      return await connect(url, opts, 5000);
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`${tries} tries in ${forMs} ms, the last: ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

/** Messages on a client, and a wait for the next few. */
export function collect(client: MqttClient): {
  got: { topic: string; payload: string; retain: boolean }[];
  waitFor(n: number, ms: number): Promise<boolean>;
} {
  const got: { topic: string; payload: string; retain: boolean }[] = [];
  const waiters: (() => void)[] = [];
  client.on('message', (topic, payload, packet) => {
    got.push({ topic, payload: payload.toString(), retain: packet.retain });
    for (const w of waiters.splice(0)) w();
  });
  return {
    got,
    waitFor: async (n, ms) => {
      const deadline = Date.now() + ms;
      while (got.length < n) {
        const left = deadline - Date.now();
        if (left <= 0) return false;
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, left);
          waiters.push(() => {
            clearTimeout(t);
            resolve();
          });
        });
      }
      return true;
    },
  };
}

/** The promise, or a rejection after ms: a broker that never answers must not hang a check. */
export async function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

const topicOf = (kind: string) => `e911/v1/ph${process.pid}x${++seq}/${kind}`;

/** Does the engine accept this protocol version at all? */
export async function acceptsVersion(url: string, v: MqttVersion): Promise<CheckResult> {
  try {
    const c = await connect(url, { protocolVersion: v, clean: true });
    await c.endAsync();
    return { ok: true, detail: `MQTT ${v === 5 ? '5' : '3.1.1'} accepted` };
  } catch (err) {
    return { ok: false, detail: `MQTT ${v === 5 ? '5' : '3.1.1'} refused: ${(err as Error).message}` };
  }
}

/** A retained message published on node A is given to a new subscriber on node C. */
export async function retainedClusterWide(cluster: BrokerCluster, v: MqttVersion): Promise<CheckResult> {
  const [a, , c] = cluster.nodes;
  const topic = topicOf('locations/set');
  const pub = await connect(a!.mqttUrl, { protocolVersion: v });
  await pub.publishAsync(topic, 'retained-1', { qos: 1, retain: true });
  await pub.endAsync();
  const sub = await connect(c!.mqttUrl, { protocolVersion: v });
  const box = collect(sub);
  await sub.subscribeAsync(topic, { qos: 1 });
  const arrived = await box.waitFor(1, 5000);
  await sub.endAsync();
  const m = box.got[0];
  if (!arrived || !m) return { ok: false, detail: 'retained message not delivered on another node within 5 s' };
  if (m.payload !== 'retained-1' || !m.retain) return { ok: false, detail: `got ${m.payload} (retain ${m.retain})` };
  return { ok: true, detail: 'retained message published on node 1 delivered to a new subscriber on node 3' };
}

/**
 * A persistent session (the server's: clean=false, QoS 1) on node A; node A is killed;
 * QoS 1 messages published meanwhile on node B are delivered when the same client id
 * comes back on node C. Node A is restarted afterwards.
 */
export async function sessionSurvivesNodeLoss(cluster: BrokerCluster, v: MqttVersion, count = 5): Promise<CheckResult> {
  const [a, b, c] = cluster.nodes;
  const id = clientId('server');
  const topic = topicOf('events');
  const filter = topic.replace(/\/ph[^/]+\//, '/+/');
  const sessionOpts: IClientOptions = {
    protocolVersion: v,
    clientId: id,
    clean: false,
    ...(v === 5 ? { properties: { sessionExpiryInterval: 3600 } } : {}),
  };
  const first = await connect(a!.mqttUrl, sessionOpts);
  await first.subscribeAsync(filter, { qos: 1 });
  // The subscription (a replicated JetStream consumer on NATS) must be known cluster-wide before the node goes.
  await new Promise((r) => setTimeout(r, 1500));
  const closed = new Promise<void>((r) => first.once('close', () => r()));
  await a!.kill();
  await within(10_000, 'the client seeing its node die', closed);
  first.end(true);
  try {
    let pub: MqttClient;
    try {
      pub = await connectRetrying(b!.mqttUrl, { protocolVersion: v });
    } catch (err) {
      return { ok: false, detail: `a phone could not connect to a surviving node: ${(err as Error).message}` };
    }
    try {
      for (let i = 0; i < count; i++) await within(10_000, 'PUBACK with a node down', pub.publishAsync(topic, `event-${i}`, { qos: 1 }));
    } catch (err) {
      return { ok: false, detail: (err as Error).message };
    } finally {
      pub.end(true);
    }
    let again: MqttClient;
    try {
      again = await connectRetrying(c!.mqttUrl, sessionOpts);
    } catch (err) {
      return { ok: false, detail: `the session's client could not reconnect on another node: ${(err as Error).message}` };
    }
    const box = collect(again);
    const present = (again as unknown as { connackPacket?: { sessionPresent?: boolean } }).connackPacket?.sessionPresent;
    await box.waitFor(count, 10_000);
    again.end(true);
    const payloads = new Set(box.got.filter((m) => m.topic === topic).map((m) => m.payload));
    if (payloads.size !== count)
      return {
        ok: false,
        detail: `${payloads.size} of ${count} queued QoS 1 messages delivered after the node loss (session present: ${present})`,
      };
    return {
      ok: true,
      detail: `all ${count} QoS 1 messages queued while its node was down delivered on another node (session present: ${present})`,
    };
  } finally {
    await a!.restart();
  }
}

/**
 * Last will: the watcher sits on node B; the phone on node A either vanishes (socket
 * destroyed, no DISCONNECT, its node lives) or loses its node (node A killed, then restarted).
 */
export async function lastWill(cluster: BrokerCluster, v: MqttVersion, how: 'client vanishes' | 'node dies'): Promise<CheckResult> {
  const [a, b] = cluster.nodes;
  const topic = topicOf('status');
  const watcher = await connect(b!.mqttUrl, { protocolVersion: v });
  const box = collect(watcher);
  await watcher.subscribeAsync(topic, { qos: 1 });
  const phone = await connect(a!.mqttUrl, {
    protocolVersion: v,
    keepalive: 2,
    will: { topic, payload: Buffer.from('offline'), qos: 1, retain: true },
  });
  await phone.publishAsync(topic, 'online', { qos: 1, retain: true });
  await box.waitFor(1, 3000);
  if (how === 'client vanishes') phone.stream.destroy();
  else await a!.kill();
  phone.end(true);
  try {
    // Keepalive 2 s: a broker that only notices by keepalive has 1.5 x 2 s, plus slack.
    await box.waitFor(2, 8000);
  } finally {
    await watcher.endAsync();
    if (how === 'node dies') await a!.restart();
  }
  return box.got.some((m) => m.payload === 'offline')
    ? {
        ok: true,
        detail: `will delivered on another node when ${how === 'client vanishes' ? 'the client vanished' : "the client's node died"}`,
      }
    : { ok: false, detail: `no will within 8 s when ${how === 'client vanishes' ? 'the client vanished' : "the client's node died"}` };
}

/**
 * Two server instances on two nodes subscribe $share/<group>/e911/v1/+/events; a phone on
 * the third publishes: each message must reach exactly one of them, and both must get some.
 */
export async function sharedSubscription(cluster: BrokerCluster, v: MqttVersion, count = 100): Promise<CheckResult & { split: number[] }> {
  const [a, b, c] = cluster.nodes;
  const topic = topicOf('events');
  const group = `g${seq}`;
  const filter = `$share/${group}/${topic.replace(/\/ph[^/]+\//, '/+/')}`;
  const servers: MqttClient[] = [];
  const boxes: ReturnType<typeof collect>[] = [];
  try {
    for (const n of [a!, b!]) {
      const s = await connect(n.mqttUrl, { protocolVersion: v });
      servers.push(s);
      boxes.push(collect(s));
      const granted = await s.subscribeAsync(filter, { qos: 1 });
      const code = granted[0]?.qos ?? 128;
      if (code >= 128) return { ok: false, detail: `SUBSCRIBE ${filter} refused (code ${code})`, split: [0, 0] };
    }
    await new Promise((r) => setTimeout(r, 300));
    const pub = await connect(c!.mqttUrl, { protocolVersion: v });
    for (let i = 0; i < count; i++) await pub.publishAsync(topic, `e${i}`, { qos: 1 });
    await pub.endAsync();
    const total = () => boxes[0]!.got.length + boxes[1]!.got.length;
    const deadline = Date.now() + 5000;
    while (total() < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    // Duplicates show as more than count in all.
    await new Promise((r) => setTimeout(r, 300));
    const split = boxes.map((x) => x.got.length);
    const distinct = new Set(boxes.flatMap((x) => x.got.map((m) => m.payload))).size;
    const ok = distinct === count && total() === count && split.every((n) => n > 0);
    return { ok, detail: `${count} messages: ${split.join(' + ')} received by the two instances, ${distinct} distinct`, split };
  } finally {
    await Promise.all(servers.map((s) => s.endAsync()));
  }
}

/**
 * QoS 1 publish on one node to a QoS 1 subscriber on another (or the same) node: messages
 * delivered a second, and how many were delivered. `publishers` connections share the count and
 * a window of 256 unacknowledged publishes (one: a busy server; many: phones). After 120 s it
 * stops with what came: NATS, just after a node came back, delivered 3,093 of 5,000 in that
 * time (a figure for the report, not a reason to lose the run's other figures).
 */
export async function throughput(
  pubUrl: string,
  subUrl: string,
  v: MqttVersion,
  count: number,
  publishers = 1,
  opts: { retain?: boolean; qos?: 0 | 1 } = {},
): Promise<{ perSecond: number; received: number }> {
  const qos = opts.qos ?? 1;
  // Retained: each message on a topic of its own, as the server's locations push is one per phone.
  const base = topicOf('events');
  const run = base.split('/')[2]!;
  const topic = opts.retain ? 'e911/v1/+/locations/set' : base;
  const topicFor = (i: number) => (opts.retain ? `e911/v1/${run}r${i}/locations/set` : base);
  const sub = await connect(subUrl, { protocolVersion: v });
  await sub.subscribeAsync(topic, { qos });
  const pubs = await Promise.all(Array.from({ length: publishers }, () => connect(pubUrl, { protocolVersion: v })));
  await new Promise((r) => setTimeout(r, 300));
  const payload = Buffer.alloc(200, 'x');
  let received = 0;
  const done = new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 120_000);
    sub.on('message', (t) => {
      // Another run's retained messages on the same cluster are not this run's.
      if (opts.retain && !t.startsWith(`e911/v1/${run}r`)) return;
      if (++received === count) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  const t0 = performance.now();
  const per = Math.ceil(count / publishers);
  const window = Math.max(1, Math.floor(256 / publishers));
  const published = Promise.all(
    pubs.map(
      (pub, p) =>
        new Promise<void>((resolve, reject) => {
          const mine = Math.min(per, count - p * per);
          let sent = 0;
          let acked = 0;
          if (mine <= 0) return resolve();
          const next = () => {
            if (sent >= mine) return;
            const i = p * per + sent++;
            pub.publish(topicFor(i), payload, { qos, retain: opts.retain ?? false }, (err) => {
              if (err) return reject(err);
              if (++acked === mine) resolve();
              next();
            });
          };
          for (let i = 0; i < window; i++) next();
        }),
    ),
  );
  // Publishes the broker stopped acknowledging end with the 120 s too; a failed one is thrown.
  let publishFailed: unknown = null;
  published.catch((err: unknown) => {
    publishFailed = err;
  });
  await Promise.race([published, done]);
  await done;
  if (publishFailed) throw publishFailed;
  const delivered = received;
  const perSecond = delivered / ((performance.now() - t0) / 1000);
  await Promise.all([...pubs.map((x) => x.endAsync()), sub.endAsync()]);
  return { perSecond, received: delivered };
}

/** Resident memory of a process in MB (Linux /proc). */
export function rssMb(pid: number | null): number {
  if (pid === null) return NaN;
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}
