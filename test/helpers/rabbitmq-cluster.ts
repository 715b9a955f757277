// A real three-node RabbitMQ cluster with its MQTT plugin on free loopback ports, for the
// scale-brokers benchmark. Debian's rabbitmq-server, run as the current user in a temp
// folder with its own Erlang port mapper (so other test runs' nodes never meet these).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './ports.js';
import { stopProcess } from './process.js';
import { waitForPort } from './mosquitto.js';
import type { BrokerCluster, ClusterNode } from './nats-cluster.js';

const RABBIT_BIN = '/usr/lib/rabbitmq/bin';
export const RABBITMQ_SERVER = [path.join(RABBIT_BIN, 'rabbitmq-server')].find((p) => existsSync(p));
const run = promisify(execFile);

export interface RabbitCluster extends BrokerCluster {
  /** rabbitmqctl against node i (users, permissions, cluster status). */
  ctl(node: number, args: string[]): Promise<string>;
}

export interface RabbitClusterOptions {
  /** Extra rabbitmq.conf lines for every node. */
  extraConfig?: string[];
  startTimeoutMs?: number;
}

type RunningNode = ClusterNode & { start(): Promise<void>; stop(): Promise<void>; env: NodeJS.ProcessEnv };

export async function startRabbitCluster(opts: RabbitClusterOptions = {}): Promise<RabbitCluster> {
  if (!RABBITMQ_SERVER) throw new Error('rabbitmq-server is not installed');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'e911-rabbit-'));
  const timeout = opts.startTimeoutMs ?? 60_000;
  // Every node and rabbitmqctl read the cookie from $HOME: one cookie for this cluster only.
  writeFileSync(path.join(dir, '.erlang.cookie'), randomBytes(16).toString('hex'), { mode: 0o400 });
  writeFileSync(path.join(dir, 'enabled_plugins'), '[rabbitmq_mqtt].\n');
  const epmdPort = await freePort();
  const tag = randomBytes(3).toString('hex');
  const names = [1, 2, 3].map((i) => `e911r${i}${tag}@localhost`);
  const ports = [];
  for (let i = 0; i < 3; i++) ports.push({ amqp: await freePort(), dist: await freePort(), mqtt: await freePort() });
  const nodes: RunningNode[] = ports.map((p, i): RunningNode => {
    const base = path.join(dir, `n${i + 1}`);
    mkdirSync(base, { recursive: true });
    writeFileSync(
      path.join(base, 'rabbitmq.conf'),
      `${[
        `listeners.tcp.default = 127.0.0.1:${p.amqp}`,
        `mqtt.listeners.tcp.default = 127.0.0.1:${p.mqtt}`,
        'mqtt.allow_anonymous = true',
        // Durable (clean=false) sessions' queues as quorum queues: replicated, so a session
        // outlives its node (a classic queue lives on one node only).
        'mqtt.durable_queue_type = quorum',
        'cluster_formation.peer_discovery_backend = classic_config',
        ...names.map((n, j) => `cluster_formation.classic_config.nodes.${j + 1} = ${n}`),
        'log.console = false',
        'log.file.level = warning',
        ...(opts.extraConfig ?? []),
      ].join('\n')}\n`,
    );
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      HOME: dir,
      ERL_EPMD_PORT: String(epmdPort),
      RABBITMQ_NODENAME: names[i],
      RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
      RABBITMQ_NODE_PORT: String(p.amqp),
      RABBITMQ_DIST_PORT: String(p.dist),
      RABBITMQ_CONFIG_FILE: path.join(base, 'rabbitmq.conf'),
      RABBITMQ_ENABLED_PLUGINS_FILE: path.join(dir, 'enabled_plugins'),
      RABBITMQ_MNESIA_BASE: path.join(base, 'mnesia'),
      RABBITMQ_LOG_BASE: path.join(base, 'log'),
      RABBITMQ_PLUGINS_EXPAND_DIR: path.join(base, 'plugins'),
      RABBITMQ_PID_FILE: path.join(base, 'pid'),
      // The script then execs the Erlang VM itself: our child is the node (its RSS, its SIGKILL).
      RUNNING_UNDER_SYSTEMD: 'true',
    };
    let child: ChildProcess | null = null;
    let output = '';
    const start = async () => {
      output = '';
      child = spawn(RABBITMQ_SERVER!, [], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      const keep = (d: Buffer) => {
        output = (output + d.toString()).slice(-4000);
      };
      child.stdout!.on('data', keep);
      child.stderr!.on('data', keep);
      await waitForPort(p.mqtt, timeout, () => output);
    };
    return {
      name: names[i]!,
      mqttUrl: `mqtt://127.0.0.1:${p.mqtt}`,
      mqttPort: p.mqtt,
      env,
      pid: () => (child && child.exitCode === null ? (child.pid ?? null) : null),
      start,
      restart: start,
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
        await stopProcess(c, 15_000);
      },
    };
  });
  const ctl = async (node: number, args: string[]) => {
    const r = await run(path.join(RABBIT_BIN, 'rabbitmqctl'), ['-n', names[node]!, ...args], { env: nodes[node]!.env });
    return r.stdout;
  };
  const close = async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    // The port mapper the first node started (a daemon of its own) goes with the cluster.
    await run('epmd', ['-port', String(epmdPort), '-kill'], { env: { ...process.env, ERL_EPMD_PORT: String(epmdPort) } }).catch(
      () => undefined,
    );
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    // Together: a node started alone waits for its configured peers before it boots.
    await Promise.all(nodes.map((n) => n.start()));
    const status = await ctl(0, ['cluster_status', '--formatter', 'json']);
    const running = (JSON.parse(status) as { running_nodes: string[] }).running_nodes;
    if (running.length !== 3) throw new Error(`RabbitMQ cluster has ${running.length} running nodes: ${running.join(', ')}`);
  } catch (err) {
    await close();
    throw err;
  }
  return { engine: 'rabbitmq', nodes, dir, close, ctl };
}
