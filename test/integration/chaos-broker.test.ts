// Chaos: Mosquitto SIGKILLed and restarted in the middle of a burst of events
// from a real agent to the reference server. Counted in the server's SQLite
// database: every event the agent recorded is there once. Emergency events are
// kept on the phone until the server confirms storing them (events/ack); the
// others too by default (outbox.serverConfirms 'all'). The baseline in the same
// run is 'emergency' (the others leave the phone on the broker's PUBACK): a
// broker that dies holding them loses them, and the figures show how many.
// E911_CHAOS_ROUNDS sets the broker kills (bounded 3; npm run chaos: 20).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { agentConfig, inProcessAgent } from '../helpers/agent.js';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { freePort } from '../helpers/ports.js';
import { silentLog } from '../helpers/log.js';
import { requires } from '../helpers/require.js';
import { chaosRounds, chaosSeed, printFigures, seededRandom, serverRows } from '../helpers/chaos.js';
import { ServerApp } from '../../provisioning/server/app.js';
import { SERVER_DB_FILE } from '../../provisioning/server/db/repo.js';
import { generateSigningKeyPair } from '../../provisioning/protocol/signing.js';
import type { Agent } from '../../agent/root.js';

const gate = requires('chaos: broker killed mid-burst', ['broker']);
const KILLS = chaosRounds(3, 20);
const BURST = 200 * KILLS;

async function until(cond: () => boolean | Promise<boolean>, timeoutMs: number, why: () => string = () => ''): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms. ${why()}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe.skipIf(gate.skip)(`chaos: the broker SIGKILLed mid-burst (${KILLS} kills, ${BURST} events)`, () => {
  let dir: string;
  let broker: Mosquitto;
  let server: ServerApp;
  const agents: Agent[] = [];
  const keys = generateSigningKeyPair();

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'e911-chaos-broker-'));
    broker = await startMosquitto({ persistence: true });
    server = new ServerApp({
      dataDir: path.join(dir, 'server'),
      log: silentLog(),
      keyPair: keys,
      broker: { url: broker.url, protocolVersion: 5 },
      http: { port: await freePort() },
    });
    await server.start();
  }, 30_000);

  afterAll(async () => {
    for (const a of agents) await a.stop();
    await server?.stop();
    await broker?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function burst(deviceId: string, serverConfirms: 'all' | 'emergency') {
    const setup = agentConfig(
      path.join(dir, deviceId),
      { deviceId, brokerUrl: broker.url, serverPublicKey: keys.publicKey },
      { outbox: { serverAckTimeoutMs: 1000, serverConfirms } },
    );
    const agent = inProcessAgent(setup).agent;
    agents.push(agent);
    await agent.start();
    const seed = chaosSeed();
    const random = seededRandom(seed);
    const db = path.join(dir, 'server', SERVER_DB_FILE);
    const stored = () => serverRows(db, deviceId).events.filter((e) => e.type === 'emergency-call' || e.type === 'diagnostics');
    // One in ten is an emergency event; the rest ordinary.
    for (let i = 0; i < BURST; i++) agent.emit(i % 10 === 0 ? 'emergency-call' : 'diagnostics', { chaosSeq: i });
    const outbox = () => agent.status().outbox as { backlog: number; awaitingServer: number; inFlight: number };
    for (let k = 1; k <= KILLS; k++) {
      // Mid-burst: after a share of it reached the server (a condition, not a sleep), at a random point past it;
      // or once the phone has nothing left to send (the baseline may have lost the rest: the mark never comes).
      const mark = Math.floor((BURST * (k - 0.5 + random() * 0.4)) / (KILLS + 1));
      await until(
        () => stored().length >= mark || (outbox().backlog === 0 && outbox().inFlight === 0),
        20_000,
        () => `${stored().length} of ${mark} stored; agent ${JSON.stringify(outbox())}`,
      );
      await broker.kill();
      await broker.restart();
    }
    await until(
      () => outbox().backlog === 0,
      30_000,
      () => JSON.stringify(outbox()),
    );
    // Marker: one more emergency event, confirmed by the server after everything before it was handled.
    agent.emit('emergency-call', { chaosSeq: -1 });
    await until(() => stored().some((e) => (JSON.parse(e.data) as { chaosSeq: number }).chaosSeq === -1) && outbox().backlog === 0, 10_000);

    const rows = stored().filter((e) => (JSON.parse(e.data) as { chaosSeq: number }).chaosSeq >= 0);
    const seqs = rows.map((e) => (JSON.parse(e.data) as { chaosSeq: number }).chaosSeq);
    const missing = [...Array(BURST).keys()].filter((i) => !seqs.includes(i));
    const lostEmergency = missing.filter((i) => i % 10 === 0).length;
    const lostOther = missing.length - lostEmergency;
    const duplicates = seqs.length - new Set(seqs).size;
    printFigures({
      scenario: `broker SIGKILL mid-burst, serverConfirms ${serverConfirms} (${BURST} events; emergency lost ${lostEmergency}, others lost ${lostOther})`,
      seed,
      rounds: KILLS,
      eventsAtServer: rows.length,
      notificationsSent: 0,
      lost: missing.length,
      duplicates,
    });
    return { lostEmergency, lostOther, duplicates };
  }

  it(
    'every event reaches the server database once (serverConfirms all, the default)',
    async () => {
      expect(await burst('phone-burst', 'all')).toEqual({ lostEmergency: 0, lostOther: 0, duplicates: 0 });
    },
    60_000 + KILLS * 5000,
  );

  it(
    'baseline, serverConfirms emergency: emergency events are all there once; ordinary ones the broker held may be lost (counted)',
    async () => {
      const r = await burst('phone-burst-baseline', 'emergency');
      expect({ lostEmergency: r.lostEmergency, duplicates: r.duplicates }).toEqual({ lostEmergency: 0, duplicates: 0 });
    },
    60_000 + KILLS * 5000,
  );
});
