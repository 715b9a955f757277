// A real NATS cluster (JetStream and its MQTT listener), three nodes unless told otherwise, on
// free loopback ports, for integration tests and the benchmarks. Debian's nats-server.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './ports.js';
import { stopProcess } from './process.js';
import { waitForPort } from './mosquitto.js';

export const NATS_SERVER = ['/usr/bin/nats-server', '/usr/sbin/nats-server'].find((p) => existsSync(p));

export interface ClusterNode {
  name: string;
  /** The MQTT listener (mqtt://127.0.0.1:port). */
  mqttUrl: string;
  mqttPort: number;
  /** The engine's own protocol, when it has one a test uses (NATS: nats://127.0.0.1:port). */
  nativeUrl?: string;
  /** The engine's process id while it runs (RSS is read from /proc). */
  pid(): number | null;
  /** SIGKILL: the node is gone without a word to its clients or peers. */
  kill(): Promise<void>;
  /** Starts it again with the same ports and store (after kill). */
  restart(): Promise<void>;
  /** The tail of the engine's own log (stderr), for a failing test to show. */
  logTail?(): string;
  /** The engine's monitoring endpoint, when it has one (NATS: http://127.0.0.1:port, /connz and the like). */
  monitorUrl?: string;
}

export interface BrokerCluster {
  engine: string;
  nodes: ClusterNode[];
  dir: string;
  /** Stops every node and removes the folder. */
  close(): Promise<void>;
}

export interface NatsClusterOptions {
  /** Extra lines inside every node's configuration (accounts, authorization, ...). */
  extraConfig?: string[];
  /** Extra lines inside the mqtt { } block. */
  mqttConfig?: string[];
  startTimeoutMs?: number;
  /** Nodes in the cluster (3). More spread the phones' sockets: each node is one process with its own open-files limit. */
  nodes?: number;
}

type RunningNode = ClusterNode & { start(): Promise<void>; stop(): Promise<void> };

interface Ports {
  client: number;
  cluster: number;
  mqtt: number;
  http: number;
}

/** GET on the monitoring port; null when nothing answers yet. */
async function httpStatus(port: number, pathName: string): Promise<number | null> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}${pathName}`, { signal: AbortSignal.timeout(1000) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return null;
  }
}

export async function startNatsCluster(opts: NatsClusterOptions = {}): Promise<BrokerCluster> {
  if (!NATS_SERVER) throw new Error('nats-server is not installed (scripts/setup.sh installs it)');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'e911-nats-'));
  const ports: Ports[] = [];
  for (let i = 0; i < (opts.nodes ?? 3); i++) {
    ports.push({ client: await freePort(), cluster: await freePort(), mqtt: await freePort(), http: await freePort() });
  }
  const timeout = opts.startTimeoutMs ?? 20_000;
  const nodes: RunningNode[] = ports.map((p, i): RunningNode => {
    const name = `n${i + 1}`;
    const store = path.join(dir, name);
    mkdirSync(store, { recursive: true });
    const conf = path.join(dir, `${name}.conf`);
    writeFileSync(
      conf,
      `${[
        `server_name: ${name}`,
        `listen: 127.0.0.1:${p.client}`,
        `http: 127.0.0.1:${p.http}`,
        `jetstream { store_dir: "${store}", max_memory_store: 256MB, max_file_store: 2GB }`,
        'cluster {',
        '  name: e911',
        `  listen: 127.0.0.1:${p.cluster}`,
        `  routes: [${ports.map((q) => `nats-route://127.0.0.1:${q.cluster}`).join(', ')}]`,
        '}',
        // The MQTT streams (sessions, retained, QoS 1 messages) kept on three nodes.
        `mqtt { listen: 127.0.0.1:${p.mqtt}, stream_replicas: 3, consumer_replicas: 3${(opts.mqttConfig ?? []).map((l) => `, ${l}`).join('')} }`,
        ...(opts.extraConfig ?? []),
      ].join('\n')}\n`,
    );
    let child: ChildProcess | null = null;
    let stderr = '';
    const start = async () => {
      stderr = '';
      child = spawn(NATS_SERVER!, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
      child.stderr!.on('data', (d: Buffer) => {
        // Only the tail matters: why it failed to start, or what it did last.
        stderr = (stderr + d.toString()).slice(-20_000);
      });
      await waitForPort(p.mqtt, timeout, () => stderr);
    };
    return {
      name,
      mqttUrl: `mqtt://127.0.0.1:${p.mqtt}`,
      mqttPort: p.mqtt,
      nativeUrl: `nats://127.0.0.1:${p.client}`,
      monitorUrl: `http://127.0.0.1:${p.http}`,
      pid: () => (child && child.exitCode === null ? (child.pid ?? null) : null),
      logTail: () => stderr,
      start,
      restart: async () => {
        await start();
        await waitHealthy([p.http], timeout);
      },
      kill: async () => {
        const c = child;
        child = null;
        if (!c || c.exitCode !== null) return;
        const gone = new Promise((r) => c.once('exit', r));
        c.kill('SIGKILL');
        await gone;
      },
      stop: async () => {
        const c = child;
        child = null;
        await stopProcess(c, 5000);
      },
    };
  });
  const close = async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await Promise.all(nodes.map((n) => n.start()));
    await waitHealthy(
      ports.map((p) => p.http),
      timeout,
    );
  } catch (err) {
    await close();
    throw err;
  }
  return { engine: 'nats', nodes, dir, close };
}

/** One NATS connection as the monitoring endpoint's /connz tells it (the fields the tests and benchmarks read). */
export interface NatsConnection {
  mqtt_client?: string;
  in_msgs: number;
  reason?: string;
}

/** /connz of every node, its connections together: `query` as /connz takes it ("state=closed", ...). */
export async function clusterConnections(cluster: BrokerCluster, query = ''): Promise<NatsConnection[]> {
  const all: NatsConnection[] = [];
  for (const n of cluster.nodes) {
    const z = (await (await fetch(`${n.monitorUrl}/connz?limit=200000${query ? `&${query}` : ''}`)).json()) as {
      connections: NatsConnection[];
    };
    all.push(...z.connections);
  }
  return all;
}

/** JetStream answers healthy on every node: a meta leader is elected and the MQTT streams can be made. */
async function waitHealthy(httpPorts: number[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const codes = await Promise.all(httpPorts.map((p) => httpStatus(p, '/healthz')));
    if (codes.every((c) => c === 200)) return;
    if (Date.now() > deadline) throw new Error(`NATS cluster not healthy after ${timeoutMs} ms (healthz ${codes.join(', ')})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
