// Foundation benchmarks, each beside a baseline measured in the same run:
//  - address push to address-applied event (p50/p99, 500 pushes) vs a bare mqtt.js echo loop
//  - outbox drain of 10,000 events vs a bare mqtt.js QoS 1 publish loop with the same window
//  - agent start to ready (store open, address loaded, link up) vs a bare `node -e`
//  - idle RSS and database writes after BENCH_IDLE_SECONDS (default 600) vs a bare node process
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import { startMosquitto } from '../../test/helpers/mosquitto.js';
import { AGENT_BUNDLE, AGENT_MAIN, VOICE_ADDON, agentConfig, spawnAgent, waitFor, type AgentProcess } from '../../test/helpers/agent.js';
import { sampleAddress, testKeys } from '../../test/helpers/address.js';
import { silentLog } from '../../test/helpers/log.js';
import { ProvisioningServer } from '../../provisioning/server/server.js';
import { signDocument } from '../../provisioning/protocol/signing.js';
import { Store } from '../../agent/store/store.js';
import { eventFactory } from '../../agent/events/events.js';
import { controlRequest } from '../../agent/control/control-client.js';
import type { EventPayload } from '../../provisioning/protocol/messages.js';
import { report, samples, summary } from './stats.js';
import { storeWrites } from '../../test/helpers/control.js';
import { unitEnvironment, noDelay } from './agent-env.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const PUSHES = Number(process.env.BENCH_PUSHES ?? 500);
const DRAIN = Number(process.env.BENCH_DRAIN_EVENTS ?? 10_000);
const IDLE_SECONDS = Number(process.env.BENCH_IDLE_SECONDS ?? 600);

/** SIGTERM to exit of a bare node process that only waits for it: the floor of any stop. */
async function bareStop(): Promise<number> {
  const child = spawn(
    process.execPath,
    ['-e', "process.on('SIGTERM', () => process.exit(0)); setInterval(() => {}, 1000); process.stdout.write('r')"],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const t0 = process.hrtime.bigint();
  child.kill('SIGTERM');
  await exited;
  return Number(process.hrtime.bigint() - t0) / 1e6;
}
const WINDOW = 64;
const ms = (a: bigint, b: bigint) => Number(b - a) / 1e6;

const broker = await startMosquitto();
const keys = testKeys();
const dir = mkdtempSync(path.join(os.tmpdir(), 'e911-bench-'));
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
const procs: AgentProcess[] = [];

try {
  // --- push to applied ---------------------------------------------------------
  const s = agentConfig(
    path.join(dir, 'push'),
    { deviceId: 'bench-1', brokerUrl: broker.url, serverPublicKey: keys.pair.publicKey },
    { logLevel: 'warn' },
  );
  const agent = await spawnAgent(s);
  procs.push(agent);
  await waitFor(() => server.phone('bench-1')?.online === true, 5000);
  const payloads = Array.from({ length: PUSHES + 20 }, (_, i) => {
    const doc = sampleAddress({ deviceId: 'bench-1', version: i + 1 });
    return JSON.stringify({ v: 1, doc, sig: signDocument(doc, keys.privateKey) });
  });
  const pushLatency: number[] = [];
  for (let i = 0; i < payloads.length; i++) {
    const applied = new Promise<void>(
      (resolve) => (onEvent = (e) => e.type === 'address-applied' && e.data.version === i + 1 && resolve()),
    );
    const t0 = process.hrtime.bigint();
    await server.publishRaw('bench-1', payloads[i]!);
    await applied;
    if (i >= 20) pushLatency.push(ms(t0, process.hrtime.bigint())); // first 20 warm up
  }
  agent.child.kill('SIGTERM');
  await agent.exited;

  const echo = spawn(process.execPath, [path.join(here, 'echo-peer.js'), broker.url, 'bench/echo'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve) => echo.stdout!.once('data', () => resolve()));
  const pinger = await mqtt.connectAsync(broker.url, { protocolVersion: 5 });
  noDelay(pinger);
  await pinger.subscribeAsync('bench/echo/pong', { qos: 1 });
  let onPong: () => void = () => {};
  pinger.on('message', () => onPong());
  const echoLatency: number[] = [];
  for (let i = 0; i < PUSHES + 20; i++) {
    const back = new Promise<void>((resolve) => (onPong = resolve));
    const t0 = process.hrtime.bigint();
    await pinger.publishAsync('bench/echo/ping', payloads[i]!, { qos: 1 });
    await back;
    if (i >= 20) echoLatency.push(ms(t0, process.hrtime.bigint()));
  }
  echo.kill('SIGTERM');
  await pinger.endAsync();
  const p = summary(pushLatency);
  const e = summary(echoLatency);
  process.stdout.write(`push to applied event over ${p.n} pushes (baseline: bare mqtt.js echo through another process)\n`);
  report('push->applied p50', p.p50, 'ms', e.p50, '-');
  report('push->applied p99', p.p99, 'ms', e.p99, '<= 2x baseline');
  samples('push->applied', 'ms', pushLatency, echoLatency, { agent: 'push to applied event', baseline: 'bare mqtt.js echo' });

  // --- outbox drain -------------------------------------------------------------
  // Its own broker: nothing but the agent (or the baseline) and the counter on it.
  const drainBroker = await startMosquitto();
  const d = agentConfig(
    path.join(dir, 'drain'),
    { deviceId: 'bench-2', brokerUrl: drainBroker.url, serverPublicKey: keys.pair.publicKey },
    { logLevel: 'warn' },
  );
  const store = new Store({ dataDir: d.raw.dataDir as string, log: silentLog(), outboxMax: DRAIN * 2 });
  const newEvent = eventFactory('bench-2');
  for (let i = 0; i < DRAIN; i++) store.enqueue(newEvent('location-changed', { i, source: 'bench', civic: sampleAddress().civic }));
  store.close();
  const counter = await mqtt.connectAsync(drainBroker.url, { protocolVersion: 5 });
  noDelay(counter);
  await counter.subscribeAsync(['e911/v1/bench-2/events', 'bench/drain'], { qos: 1 });
  let received = 0;
  let first = 0n;
  let done: () => void = () => {};
  counter.on('message', () => {
    if (received++ === 0) first = process.hrtime.bigint();
    if (received === DRAIN) done();
  });
  let finished = new Promise<void>((resolve) => (done = resolve));
  const drainer = await spawnAgent(d);
  procs.push(drainer);
  await finished;
  const agentRate = DRAIN / (ms(first, process.hrtime.bigint()) / 1000);
  drainer.child.kill('SIGTERM');
  await drainer.exited;

  // Baseline: the same events, QoS 1, the same window, from a bare mqtt.js client.
  received = 0;
  finished = new Promise<void>((resolve) => (done = resolve));
  const bare = await mqtt.connectAsync(drainBroker.url, { protocolVersion: 5 });
  noDelay(bare);
  const body = JSON.stringify(newEvent('location-changed', { i: 0, source: 'bench', civic: sampleAddress().civic }));
  let sent = 0;
  await new Promise<void>((resolve) => {
    let inFlight = 0;
    const pump = () => {
      while (inFlight < WINDOW && sent < DRAIN) {
        inFlight++;
        sent++;
        bare.publish('bench/drain', body, { qos: 1 }, () => {
          inFlight--;
          if (sent === DRAIN && inFlight === 0) resolve();
          else pump();
        });
      }
    };
    pump();
  });
  await finished;
  const bareRate = DRAIN / (ms(first, process.hrtime.bigint()) / 1000);
  await bare.endAsync();
  await counter.endAsync();
  await drainBroker.close();
  process.stdout.write(`outbox drain of ${DRAIN} events, window ${WINDOW} (baseline: bare mqtt.js QoS 1 publish loop, same window)\n`);
  report('drain rate', agentRate, 'ev/s', bareRate, '>= 0.8x baseline');

  // --- start to ready, idle RSS and writes: the tsc output and, when built, the bundle the phone runs
  const entries: [string, string, NodeJS.ProcessEnv][] = [['dist (tsc output)', AGENT_MAIN, {}]];
  // As the phone's systemd unit runs it: the same environment (NODE_OPTIONS, MALLOC_ARENA_MAX).
  const unitEnv = unitEnvironment();
  if (existsSync(AGENT_BUNDLE)) {
    process.stdout.write(
      `bundle (as shipped): run with the unit's ${Object.entries(unitEnv)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ')}\n`,
    );
    entries.push([
      'bundle (as shipped)',
      AGENT_BUNDLE,
      { ...unitEnv, ...(existsSync(VOICE_ADDON) ? { E911_VOICE_ADDON: VOICE_ADDON } : {}) },
    ]);
  } else process.stdout.write(`(no ${AGENT_BUNDLE}: run npm run build:arm to measure the shipped bundle too)\n`);
  for (const [label, entry, env] of entries) {
    const startTimes: number[] = [];
    const nodeTimes: number[] = [];
    const stopTimes: number[] = [];
    const bareStopTimes: number[] = [];
    for (let i = 0; i < 7; i++) {
      await waitFor(() => server.phone('bench-1')?.online !== true, 3000);
      const t0 = process.hrtime.bigint();
      const a = await spawnAgent(s, env, entry);
      await waitFor(() => server.phone('bench-1')?.online === true, 5000);
      startTimes.push(ms(t0, process.hrtime.bigint()));
      const ts = process.hrtime.bigint();
      a.child.kill('SIGTERM');
      await a.exited;
      stopTimes.push(ms(ts, process.hrtime.bigint()));
      bareStopTimes.push(await bareStop());
      const t1 = process.hrtime.bigint();
      await new Promise<void>((resolve) => spawn(process.execPath, ['-e', '0']).once('exit', () => resolve()));
      nodeTimes.push(ms(t1, process.hrtime.bigint()));
    }
    process.stdout.write(
      `${label}: start to ready (store open, address loaded, link up and subscribed), median of 7 (baseline: node -e 0)\n`,
    );
    report(`start->ready, ${label}`, summary(startTimes).p50, 'ms', summary(nodeTimes).p50, '<= baseline + 100 ms');
    samples(`start->ready, ${label}`, 'ms', startTimes, nodeTimes, { agent: 'agent start to ready', baseline: 'node -e 0' });
    // The README's budget: SIGTERM to a clean exit within 5 s (agent/main.ts exits 1 past it).
    process.stdout.write(
      `${label}: SIGTERM to exit (offline published, store closed), max of 7 (baseline: a bare node process that exits on SIGTERM)\n`,
    );
    report(`SIGTERM->exit, ${label}`, summary(stopTimes).max, 'ms', summary(bareStopTimes).max, '<= 5000 ms');
  }

  // Idle: every entry at once (each its own phone), beside one bare node process.
  await waitFor(() => server.phone('bench-1')?.online !== true, 3000);
  const idlers = await Promise.all(
    entries.map(async ([label, entry, env], i) => {
      const deviceId = `idle-${i}`;
      const setup = agentConfig(
        path.join(dir, deviceId),
        { deviceId, brokerUrl: broker.url, serverPublicKey: keys.pair.publicKey },
        { logLevel: 'warn' },
      );
      const proc = await spawnAgent(setup, env, entry);
      procs.push(proc);
      await server.pushAddress(sampleAddress({ deviceId, version: 1 }));
      await waitFor(() => server.phone(deviceId)?.appliedVersion === 1, 5000);
      return { label, setup, proc };
    }),
  );
  const bareNode = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)']);
  // Let start-up work settle (acks of the applied event, the first location report, the
  // inventory 5 s after start) so the window sees only idling.
  await new Promise((r) => setTimeout(r, 20_000));
  const writesOf = async (socket: string) => storeWrites(await controlRequest(socket, 'status'));
  const stamp = (dataDir: string) =>
    ['', '-wal']
      .map((x) => {
        try {
          const st = statSync(path.join(dataDir, 'agent.db') + x);
          return `${st.size}:${st.mtimeMs}`;
        } catch {
          return '-';
        }
      })
      .join(',');
  const before = await Promise.all(
    idlers.map(async (a) => ({ w: await writesOf(a.setup.socketPath), f: stamp(a.setup.raw.dataDir as string) })),
  );
  process.stdout.write(`idling ${IDLE_SECONDS} s (BENCH_IDLE_SECONDS), address applied, link up...\n`);
  await new Promise((r) => setTimeout(r, IDLE_SECONDS * 1000));
  const rss = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
  const nodeRss = rss(bareNode.pid!);
  bareNode.kill();
  for (const [i, a] of idlers.entries()) {
    const agentRss = rss(a.proc.child.pid!);
    const w1 = await writesOf(a.setup.socketPath);
    const f1 = stamp(a.setup.raw.dataDir as string);
    process.stdout.write(`${a.label}: idle after ${IDLE_SECONDS} s (baseline: bare node process, same time)\n`);
    report(`idle RSS, ${a.label}`, agentRss, 'MB', nodeRss, '<= 60 MB');
    report(`db write transactions per minute, ${a.label}`, ((w1 - before[i]!.w) / IDLE_SECONDS) * 60, '/min', 0, '0');
    process.stdout.write(`database files ${before[i]!.f === f1 ? 'unchanged' : `CHANGED (${before[i]!.f} -> ${f1})`} while idle\n`);
  }
} finally {
  for (const p of procs) p.child.kill('SIGKILL');
  await server.stop();
  await broker.close();
  rmSync(dir, { recursive: true, force: true });
}
