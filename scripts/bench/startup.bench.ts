// Start-up of the bundle as shipped, with the phone's network parts (the netlink
// watcher's `ip monitor` and `ip -6 neigh`, lldpcli), beside `node -e 0` in the
// same run; foundation.bench.ts measures start-up with the simulated network,
// which starts no helper at all. Per start:
//  - start to the "agent ready" log line (systemd's READY=1 goes with it);
//  - start to online at the server (link up and subscribed);
//  - start to the first location report retained at the broker.
// BENCH_BASE_BUNDLE=FILE runs another build's bundle alternately with this tree's
// (an A/B in one run: the load moves both alike). The same bundle also runs as the phone
// runs it: a single executable with its V8 code cache, built here for this machine's
// architecture from the host's node as scripts/build-arm.mjs builds the phone's
// (BENCH_STARTUP_SEA=0 skips it). lldpd itself is not run (it would
// speak LLDP on the host's interfaces): lldpcli finds no daemon and is restarted.
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
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
const WITH_SEA = process.env.BENCH_STARTUP_SEA !== '0';
const ms = (a: bigint, b: bigint) => Number(b - a) / 1e6;

// As the phone's systemd unit runs it.
const unitEnv = unitEnvironment();
const env = { ...unitEnv, ...(existsSync(VOICE_ADDON) ? { E911_VOICE_ADDON: VOICE_ADDON } : {}) };

/**
 * The bundle as a single executable for this machine, the way scripts/build-arm.mjs makes the
 * phone's: the code cache made with the unit's NODE_OPTIONS (V8 rejects one made under other
 * heap flags), --predictable, postject into a copy of this node. Its lib/ is the host's addons.
 */
function hostExecutable(dir: string): string {
  const work = path.join(dir, 'work');
  mkdirSync(work, { recursive: true });
  copyFileSync(AGENT_BUNDLE, path.join(work, 'e911-agent.cjs'));
  const config = { main: 'e911-agent.cjs', output: 'sea.blob', disableExperimentalSEAWarning: true, useCodeCache: true };
  writeFileSync(path.join(work, 'sea-config.json'), JSON.stringify(config));
  const flags = (unitEnv.NODE_OPTIONS ?? '').split(/\s+/).filter(Boolean);
  execFileSync(process.execPath, [...flags, '--predictable', '--experimental-sea-config', 'sea-config.json'], {
    cwd: work,
    stdio: 'ignore',
  });
  const exe = path.join(dir, 'e911-agent');
  copyFileSync(process.execPath, exe);
  chmodSync(exe, 0o755);
  const postject = createRequire(import.meta.url).resolve('postject/dist/cli.js');
  execFileSync(
    process.execPath,
    [postject, exe, 'NODE_SEA_BLOB', path.join(work, 'sea.blob'), '--sentinel-fuse', 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2'],
    {
      stdio: 'ignore',
    },
  );
  symlinkSync(path.join(path.dirname(AGENT_BUNDLE), 'lib'), path.join(dir, 'lib'));
  return exe;
}

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
/** The command for a bundle (run by this node) or an executable (run as it is). */
const command = (entry: string): [string, string[]] =>
  entry.endsWith('.cjs') || entry.endsWith('.js') ? [process.execPath, [entry]] : [entry, []];

async function startOnce(entry: string): Promise<Start> {
  await waitFor(() => server.phone(deviceId)?.online !== true, 5000);
  reportAt = 0n;
  let readyAt = 0n;
  const t0 = process.hrtime.bigint();
  const [file, args] = command(entry);
  const child = spawn(file, [...args, '--config', setup.configFile], {
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
  type Kind = 'this' | 'sea' | 'base';
  const runs: Record<Kind, Start[]> = { this: [], sea: [], base: [] };
  const entries: Record<Kind, string> = {
    this: AGENT_BUNDLE,
    sea: WITH_SEA ? hostExecutable(path.join(dir, 'sea')) : '',
    base: BASE ?? '',
  };
  const kinds = (['this', 'sea', 'base'] as const).filter((k) => entries[k] !== '');
  const node: number[] = [];
  for (let i = 0; i < STARTS; i++) {
    // Rotate which goes first, so none always follows the baseline.
    const order = kinds.map((_, j) => kinds[(i + j) % kinds.length]!);
    for (const which of order) runs[which].push(await startOnce(entries[which]));
    node.push(await bareNode());
  }
  const nodeP50 = summary(node).p50;
  process.stdout.write(
    `start of the bundle (unit env ${Object.entries(unitEnv)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')}), netlink network, lldpcli; median of ${STARTS} (baseline: node -e 0, same run)\n`,
  );
  const labels: Record<Kind, string> = { this: 'this tree', sea: 'single executable, code cache', base: 'BENCH_BASE_BUNDLE' };
  for (const which of kinds) {
    const label = labels[which];
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
