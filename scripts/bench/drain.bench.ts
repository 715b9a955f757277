// Outbox drain, focused: the bundle as shipped (the unit's NODE_OPTIONS) draining
// BENCH_DRAIN_EVENTS (10,000) queued events to Mosquitto, each round beside a bare
// mqtt.js QoS 1 publish loop with the same window, in the same round.
// BENCH_BASE_BUNDLE=FILE drains with another build's bundle as well, alternately in
// each round (A/B in one run: the load moves both alike). BENCH_DRAIN_ROUNDS (3).
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { startMosquitto } from '../../test/helpers/mosquitto.js';
import { AGENT_BUNDLE, agentConfig, spawnAgent } from '../../test/helpers/agent.js';
import { sampleAddress, testKeys } from '../../test/helpers/address.js';
import { silentLog } from '../../test/helpers/log.js';
import { Store } from '../../agent/store/store.js';
import { eventFactory } from '../../agent/events/events.js';
import { report, summary } from './stats.js';
import { bundles, unitEnvironment, noDelay } from './agent-env.js';

const DRAIN = Number(process.env.BENCH_DRAIN_EVENTS ?? 10_000);
const ROUNDS = Number(process.env.BENCH_DRAIN_ROUNDS ?? 3);
const BASE = bundles().base;
const WINDOW = 64;
const ms = (a: bigint, b: bigint) => Number(b - a) / 1e6;

const unitEnv = unitEnvironment();

const broker = await startMosquitto();
const keys = testKeys();
const dir = mkdtempSync(path.join(os.tmpdir(), 'e911-drain-'));
const counter = await mqtt.connectAsync(broker.url, { protocolVersion: 5 });
noDelay(counter);
await counter.subscribeAsync(['e911/v1/+/events', 'bench/drain'], { qos: 1 });
let received = 0;
let first = 0n;
let done: () => void = () => {};
counter.on('message', () => {
  if (received++ === 0) first = process.hrtime.bigint();
  if (received === DRAIN) done();
});
const newEvent = eventFactory('bench');
const body = JSON.stringify(newEvent('location-changed', { i: 0, source: 'bench', civic: sampleAddress().civic }));

/** Events per second from the first to the last event the counter received. */
async function agentDrain(entry: string, n: number): Promise<number> {
  const deviceId = `drain-${n}`;
  const d = agentConfig(
    path.join(dir, deviceId),
    { deviceId, brokerUrl: broker.url, serverPublicKey: keys.pair.publicKey },
    { logLevel: 'warn' },
  );
  const store = new Store({ dataDir: d.raw.dataDir as string, log: silentLog(), outboxMax: DRAIN * 2 });
  const ev = eventFactory(deviceId);
  for (let i = 0; i < DRAIN; i++) store.enqueue(ev('location-changed', { i, source: 'bench', civic: sampleAddress().civic }));
  store.close();
  received = 0;
  const finished = new Promise<void>((resolve) => (done = resolve));
  const agent = await spawnAgent(d, unitEnv, entry);
  await finished;
  const rate = DRAIN / (ms(first, process.hrtime.bigint()) / 1000);
  agent.child.kill('SIGTERM');
  await agent.exited;
  return rate;
}

async function bareDrain(): Promise<number> {
  received = 0;
  const finished = new Promise<void>((resolve) => (done = resolve));
  const bare = await mqtt.connectAsync(broker.url, { protocolVersion: 5 });
  noDelay(bare);
  let sent = 0;
  let inFlight = 0;
  const pump = () => {
    while (inFlight < WINDOW && sent < DRAIN) {
      inFlight++;
      sent++;
      bare.publish('bench/drain', body, { qos: 1 }, () => {
        inFlight--;
        pump();
      });
    }
  };
  pump();
  await finished;
  const rate = DRAIN / (ms(first, process.hrtime.bigint()) / 1000);
  await bare.endAsync();
  return rate;
}

const load = () => os.loadavg()[0]!.toFixed(1);
const rates: Record<'this' | 'base' | 'bare', number[]> = { this: [], base: [], bare: [] };
try {
  let n = 0;
  for (let r = 0; r < ROUNDS; r++) {
    // Alternate which goes first: neither always meets the same moment of the load.
    const order: ('this' | 'base' | 'bare')[] = r % 2 ? ['bare', 'this', 'base'] : ['base', 'this', 'bare'];
    for (const which of order) {
      if (which === 'base' && !BASE) continue;
      const rate = which === 'bare' ? await bareDrain() : await agentDrain(which === 'this' ? AGENT_BUNDLE : BASE!, n++);
      rates[which].push(rate);
      process.stdout.write(`round ${r + 1} ${which.padEnd(4)} ${rate.toFixed(0).padStart(7)} ev/s  load ${load()}\n`);
    }
  }
  const bare = summary(rates.bare).p50;
  process.stdout.write(
    `outbox drain of ${DRAIN} events, window ${WINDOW}, bundle as shipped, median of ${ROUNDS} (baseline: bare mqtt.js QoS 1 loop, same rounds)\n`,
  );
  report('drain rate, this tree', summary(rates.this).p50, 'ev/s', bare, '>= 0.8x baseline');
  if (BASE) report('drain rate, BENCH_BASE_BUNDLE', summary(rates.base).p50, 'ev/s', bare, '>= 0.8x baseline');
} finally {
  await counter.endAsync();
  await broker.close();
  rmSync(dir, { recursive: true, force: true });
}
