// Address push to applied, focused: the bundle as shipped (the unit's NODE_OPTIONS) takes
// signed address pushes from the provisioning server; the time from the server's publish
// to the address-applied event back at the server, each round beside a bare mqtt.js echo
// through another process (the same payloads), in the same round.
// BENCH_BASE_BUNDLE=FILE pushes to another build's bundle as well, alternately in each
// round (A/B in one run: the load moves both alike). BENCH_PUSH_ROUNDS (4), BENCH_PUSHES
// per round and kind (100). BENCH_PUSH_CPU_PROF=DIR writes a CPU profile of this tree's
// agent (0.1 ms sampling) there.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import { startMosquitto } from '../../test/helpers/mosquitto.js';
import { AGENT_BUNDLE, agentConfig, spawnAgent, waitFor, type AgentProcess } from '../../test/helpers/agent.js';
import { sampleAddress, testKeys } from '../../test/helpers/address.js';
import { silentLog } from '../../test/helpers/log.js';
import { ProvisioningServer } from '../../provisioning/server/server.js';
import { signDocument } from '../../provisioning/protocol/signing.js';
import type { EventPayload } from '../../provisioning/protocol/messages.js';
import { report, samples, summary } from './stats.js';
import { bundles, unitEnvironment, noDelay } from './agent-env.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const ROUNDS = Number(process.env.BENCH_PUSH_ROUNDS ?? 4);
const PUSHES = Number(process.env.BENCH_PUSHES ?? 100);
const WARM = 20;
// Pushes back to back (0) meet the previous push's trailing work (its location report, the
// server's acks); an administrator's pushes come seconds apart. BENCH_PUSH_GAP_MS spaces them.
const GAP_MS = Number(process.env.BENCH_PUSH_GAP_MS ?? 0);
const gap = () => (GAP_MS > 0 ? new Promise((r) => setTimeout(r, GAP_MS)) : Promise.resolve());
const BASE = bundles().base;
const PROF = process.env.BENCH_PUSH_CPU_PROF ? path.resolve(process.env.BENCH_PUSH_CPU_PROF) : null;
const ms = (a: bigint, b: bigint) => Number(b - a) / 1e6;

const unitEnv = unitEnvironment();

const broker = await startMosquitto();
const keys = testKeys();
const dir = mkdtempSync(path.join(os.tmpdir(), 'e911-push-'));
const server = new ProvisioningServer({
  brokerUrl: broker.url,
  privateKey: keys.privateKey,
  log: silentLog(),
  protocolVersion: 5,
  clientId: 'bench-server',
});
let onEvent: (e: EventPayload) => void = () => {};
server.on('event', (e) => onEvent(e));
await server.start();
// When the event's packet reached the server's client: the rest, to 'event', is the server's own work.
let packetAt = 0n;
(server as unknown as { client: mqtt.MqttClient }).client.on('packetreceive', (p) => {
  if (p.cmd === 'publish' && p.topic.endsWith('/events')) packetAt = process.hrtime.bigint();
});
const atServer: Record<'this' | 'base', number[]> = { this: [], base: [] };
const procs: AgentProcess[] = [];
const version = new Map<string, number>();

function payloadFor(deviceId: string): string {
  const v = (version.get(deviceId) ?? 0) + 1;
  version.set(deviceId, v);
  const doc = sampleAddress({ deviceId, version: v });
  return JSON.stringify({ v: 1, doc, sig: signDocument(doc, keys.privateKey) });
}

async function startAgent(deviceId: string, entry: string, prof: boolean): Promise<void> {
  const s = agentConfig(
    path.join(dir, deviceId),
    { deviceId, brokerUrl: broker.url, serverPublicKey: keys.pair.publicKey },
    { logLevel: 'warn' },
  );
  // node 20 refuses --cpu-prof in NODE_OPTIONS: on the command line.
  const execArgv = prof ? ['--cpu-prof', `--cpu-prof-dir=${PROF}`, '--cpu-prof-interval=100'] : [];
  const agent = await spawnAgent(s, unitEnv, entry, { execArgv });
  procs.push(agent);
  await waitFor(() => server.phone(deviceId)?.online === true, 10_000);
}

async function pushRound(deviceId: string, n: number, serverWork: number[] = []): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    await gap();
    const payload = payloadFor(deviceId);
    const v = version.get(deviceId)!;
    const applied = new Promise<void>(
      (resolve) => (onEvent = (e) => e.deviceId === deviceId && e.type === 'address-applied' && e.data.version === v && resolve()),
    );
    const t0 = process.hrtime.bigint();
    await server.publishRaw(deviceId, payload);
    await applied;
    const t1 = process.hrtime.bigint();
    out.push(ms(t0, t1));
    serverWork.push(ms(packetAt, t1));
  }
  return out;
}

const echo = spawn(process.execPath, [path.join(here, 'echo-peer.js'), broker.url, 'bench/echo'], {
  stdio: ['ignore', 'pipe', 'inherit'],
});
await new Promise<void>((resolve) => echo.stdout!.once('data', () => resolve()));
const pinger = await mqtt.connectAsync(broker.url, { protocolVersion: 5 });
noDelay(pinger);
await pinger.subscribeAsync('bench/echo/pong', { qos: 1 });
let onPong: () => void = () => {};
pinger.on('message', () => onPong());
async function echoRound(n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    await gap();
    const payload = payloadFor('echo');
    const back = new Promise<void>((resolve) => (onPong = resolve));
    const t0 = process.hrtime.bigint();
    await pinger.publishAsync('bench/echo/ping', payload, { qos: 1 });
    await back;
    out.push(ms(t0, process.hrtime.bigint()));
  }
  return out;
}

const load = () => os.loadavg()[0]!.toFixed(1);
type Kind = 'this' | 'base' | 'echo';
const lat: Record<Kind, number[]> = { this: [], base: [], echo: [] };
try {
  if (PROF) mkdirSync(PROF, { recursive: true });
  await startAgent('push-this', AGENT_BUNDLE, PROF !== null);
  if (BASE) await startAgent('push-base', BASE, false);
  // Warm-up: each path's first pushes compile and fill caches.
  await pushRound('push-this', WARM);
  if (BASE) await pushRound('push-base', WARM);
  await echoRound(WARM);
  for (let r = 0; r < ROUNDS; r++) {
    const order: Kind[] = r % 2 ? ['echo', 'this', 'base'] : ['base', 'this', 'echo'];
    for (const which of order) {
      if (which === 'base' && !BASE) continue;
      const l =
        which === 'echo' ? await echoRound(PUSHES) : await pushRound(which === 'this' ? 'push-this' : 'push-base', PUSHES, atServer[which]);
      lat[which].push(...l);
      const s = summary(l);
      process.stdout.write(
        `round ${r + 1} ${which.padEnd(4)} p50 ${s.p50.toFixed(2).padStart(6)} p99 ${s.p99.toFixed(2).padStart(7)} ms  load ${load()}\n`,
      );
    }
  }
  const e = summary(lat.echo);
  process.stdout.write(
    `address push to applied event, bundle as shipped, ${ROUNDS} rounds of ${PUSHES}, ${GAP_MS} ms apart (baseline: bare mqtt.js echo through another process, same rounds)\n`,
  );
  const t = summary(lat.this);
  const ts = summary(atServer.this);
  process.stdout.write(
    `of which the server's own work (event packet received to its 'event'): p50 ${ts.p50.toFixed(2)} p99 ${ts.p99.toFixed(2)} ms\n`,
  );
  report('push->applied p50, this tree', t.p50, 'ms', e.p50, '-');
  report('push->applied p99, this tree', t.p99, 'ms', e.p99, '<= 2x baseline');
  samples('push->applied (bundle)', 'ms', lat.this, lat.echo, { agent: 'push to applied event', baseline: 'bare mqtt.js echo' });
  if (BASE) {
    const b = summary(lat.base);
    report('push->applied p50, BENCH_BASE_BUNDLE', b.p50, 'ms', e.p50, '-');
    report('push->applied p99, BENCH_BASE_BUNDLE', b.p99, 'ms', e.p99, '<= 2x baseline');
  }
} finally {
  for (const p of procs) {
    p.child.kill('SIGTERM');
    await p.exited;
  }
  echo.kill('SIGTERM');
  await pinger.endAsync();
  await server.stop();
  await broker.close();
  rmSync(dir, { recursive: true, force: true });
}
