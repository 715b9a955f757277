// Start-up of the bundle as shipped, with the phone's network parts (the netlink
// watcher's `ip monitor` and `ip -6 neigh`, lldpcli), beside `node -e 0` in the
// same run; foundation.bench.ts measures start-up with the simulated network,
// which starts no helper at all. Per start:
//  - start to the "agent ready" log line (systemd's READY=1 goes with it);
//  - start to online at the server (link up and subscribed);
//  - start to the first location report retained at the broker.
// BENCH_BASE_BUNDLE=FILE runs another build's bundle alternately with this tree's
// (an A/B in one run: the load moves both alike). lldpd itself is not run (it would
// speak LLDP on the host's interfaces): lldpcli finds no daemon and is restarted.
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { startMosquitto } from '../../test/helpers/mosquitto.js';
import { AGENT_BUNDLE, VOICE_ADDON, agentConfig, waitFor } from '../../test/helpers/agent.js';
import { sampleAddress, testKeys } from '../../test/helpers/address.js';
import { silentLog } from '../../test/helpers/log.js';
import { freePort } from '../../test/helpers/ports.js';
import { ProvisioningServer } from '../../provisioning/server/server.js';
import { topicFor } from '../../provisioning/protocol/topics.js';
import { report, samples, summary } from './stats.js';
import { bundles, unitEnvironment } from './agent-env.js';

const STARTS = Number(process.env.BENCH_STARTS ?? 9);
const BASE = bundles().base;
const ms = (a: bigint, b: bigint) => Number(b - a) / 1e6;

// As the phone's systemd unit runs it.
const unitEnv = unitEnvironment();
const env = { ...unitEnv, ...(existsSync(VOICE_ADDON) ? { E911_VOICE_ADDON: VOICE_ADDON } : {}) };

const broker = await startMosquitto();
const keys = testKeys();
const dir = mkdtempSync(path.join(os.tmpdir(), 'e911-bench-start-'));
// lldpcli drops to the _lldpd user before it connects: the socket's folder must be reachable.
chmodSync(dir, 0o755);
const server = new ProvisioningServer({
  brokerUrl: broker.url,
  privateKey: keys.privateKey,
  log: silentLog(),
  protocolVersion: 5,
  clientId: 'bench-server',
});
await server.start();
const deviceId = 'bench-start';
const setup = agentConfig(
  path.join(dir, 'agent'),
  { deviceId, brokerUrl: broker.url, serverPublicKey: keys.pair.publicKey },
  {
    logLevel: 'info',
    network: {
      backend: 'netlink',
      interfaces: [],
      lldp: { enabled: true, runDaemon: false, socketPath: path.join(dir, 'lldpd.sock') },
      dhcp: { enabled: false },
    },
    sip: { sound: 'null', port: await freePort() },
    emergency: { routes: { primary: 'sip:127.0.0.1:9', fallback: 'sip:127.0.0.1:9' } },
  },
);
// The address on file, as on a phone that has been provisioned (the emergency path has it at ready).
{
  const first = spawn(process.execPath, [AGENT_BUNDLE, '--config', setup.configFile], { env: { PATH: process.env.PATH, ...env } });
  let out = '';
  first.stdout.on('data', (d: Buffer) => (out += d.toString()));
  first.stderr.on('data', (d: Buffer) => (out += d.toString()));
  await waitFor(
    () => server.phone(deviceId)?.online === true,
    10_000,
    () => out.slice(-3000),
  );
  await server.pushAddress(sampleAddress({ deviceId, version: 1 }));
  await waitFor(() => server.phone(deviceId)?.appliedVersion === 1, 10_000);
  const exited = new Promise((r) => first.once('exit', r));
  first.kill('SIGTERM');
  await exited;
}
const watcher = await mqtt.connectAsync(broker.url, { protocolVersion: 5 });
let reportAt = 0n;
watcher.on('message', (_t, payload, packet) => {
  // The retained copy of the previous run's report comes at subscribe time: not this start's.
  if (!packet.retain && payload.length > 0 && reportAt === 0n) reportAt = process.hrtime.bigint();
});
await watcher.subscribeAsync(topicFor(deviceId, 'location'), { qos: 1, rh: 2 });

interface Start {
  ready: number;
  online: number;
  report: number;
}
async function startOnce(entry: string): Promise<Start> {
  await waitFor(() => server.phone(deviceId)?.online !== true, 5000);
  reportAt = 0n;
  let readyAt = 0n;
  const t0 = process.hrtime.bigint();
  const child = spawn(process.execPath, [entry, '--config', setup.configFile], {
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  // pino writes to stderr.
  const onData = (d: Buffer) => {
    out += d.toString();
    if (readyAt === 0n && out.includes('"msg":"agent ready"')) readyAt = process.hrtime.bigint();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise((r) => child.once('exit', r));
  let onlineAt = 0n;
  await waitFor(
    () => {
      if (onlineAt === 0n && server.phone(deviceId)?.online === true) onlineAt = process.hrtime.bigint();
      return readyAt !== 0n && onlineAt !== 0n && reportAt !== 0n;
    },
    20_000,
    () => `ready ${readyAt} online ${onlineAt} report ${reportAt}:\n${out.slice(0, 3000)}`,
  );
  child.kill('SIGTERM');
  await exited;
  return { ready: ms(t0, readyAt), online: ms(t0, onlineAt), report: ms(t0, reportAt) };
}
async function bareNode(): Promise<number> {
  const t0 = process.hrtime.bigint();
  await new Promise<void>((resolve) => spawn(process.execPath, ['-e', '0']).once('exit', () => resolve()));
  return ms(t0, process.hrtime.bigint());
}

try {
  const runs: Record<'this' | 'base', Start[]> = { this: [], base: [] };
  const node: number[] = [];
  for (let i = 0; i < STARTS; i++) {
    // Alternate which goes first, so neither always follows the baseline.
    const order: ('this' | 'base')[] = BASE ? (i % 2 ? ['base', 'this'] : ['this', 'base']) : ['this'];
    for (const which of order) runs[which].push(await startOnce(which === 'this' ? AGENT_BUNDLE : BASE!));
    node.push(await bareNode());
  }
  const nodeP50 = summary(node).p50;
  process.stdout.write(
    `start of the bundle (unit env ${Object.entries(unitEnv)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')}), netlink network, lldpcli; median of ${STARTS} (baseline: node -e 0, same run)\n`,
  );
  for (const which of BASE ? (['this', 'base'] as const) : (['this'] as const)) {
    const label = which === 'this' ? 'this tree' : 'BENCH_BASE_BUNDLE';
    const r = runs[which];
    report(`start->agent ready, ${label}`, summary(r.map((x) => x.ready)).p50, 'ms', nodeP50, '<= baseline + 100 ms');
    report(`start->online, ${label}`, summary(r.map((x) => x.online)).p50, 'ms', nodeP50, '-');
    report(`start->first location report, ${label}`, summary(r.map((x) => x.report)).p50, 'ms', nodeP50, '-');
    samples(
      `start->agent ready, ${label}`,
      'ms',
      r.map((x) => x.ready),
      node,
      { agent: `agent start to ready (${label})`, baseline: 'node -e 0' },
    );
  }
  process.stdout.write(
    `load average at the end: ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}\n`,
  );
} finally {
  await watcher.endAsync();
  await server.stop();
  await broker.close();
  rmSync(dir, { recursive: true, force: true });
}
