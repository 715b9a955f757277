// Chaos: the reference server (its own process, SQLite, notifications to a real
// SMTP sink) SIGKILLed between storing an emergency event and acknowledging it,
// and SIGKILLed while it sends the notifications; a real agent and Mosquitto.
// Counted at the far end: each event once in the server's database, its
// notifications planned once, every recipient mailed; mails sent twice are counted.
// E911_CHAOS_ROUNDS sets the kills (bounded 5 + 5; npm run chaos: 20 + 20).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { agentConfig, inProcessAgent, waitFor } from '../helpers/agent.js';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.js';
import { freePort } from '../helpers/ports.js';
import { requires } from '../helpers/require.js';
import { REPO } from '../helpers/emergency.js';
import { chaosRounds, printFigures, serverRows } from '../helpers/chaos.js';
import type { ChaosServerArgs } from '../helpers/chaos-server.js';
import { SERVER_DB_FILE } from '../../provisioning/server/db/repo.js';
import { generateSigningKeyPair } from '../../provisioning/protocol/signing.js';
import type { Agent } from '../../agent/root.js';

const gate = requires('chaos: server SIGKILLed between store and ack', ['broker']);
const SCRIPT = path.join(REPO, 'dist/test/helpers/chaos-server.js');
const ROUNDS = chaosRounds(5, 20);
const DEVICE = 'phone-srv';

describe.skipIf(gate.skip)(`chaos: the server SIGKILLed between store and ack, and while notifying (${ROUNDS} + ${ROUNDS} kills)`, () => {
  let dir: string;
  let broker: Mosquitto;
  let smtp: SmtpSink;
  let agent: Agent;
  let serverProc: ChildProcess | null = null;
  let first = true;
  /** The same API port each start: the same instance name, so a restart takes back its own unfinished sends. */
  let httpPort: number;
  const keyPair = generateSigningKeyPair();

  /** Starts the server process; resolves once it printed READY, with a promise of its exit. */
  async function startServer(killAfterStore: boolean): Promise<{ child: ChildProcess; exited: Promise<string> }> {
    const args: ChaosServerArgs = {
      dataDir: path.join(dir, 'server'),
      brokerUrl: broker.url,
      httpPort,
      keyPair,
      smtpPort: smtp.port,
      deviceId: DEVICE,
      setup: first,
      killAfterStore,
    };
    first = false;
    const child = spawn(process.execPath, [SCRIPT, JSON.stringify(args)], { stdio: ['ignore', 'pipe', 'pipe'] });
    serverProc = child;
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<string>((r) => child.once('exit', (code, signal) => r(signal ?? String(code))));
    await waitFor(
      () => out.includes('READY'),
      15_000,
      () => out,
      exited,
    );
    return { child, exited };
  }

  beforeAll(async () => {
    if (!existsSync(SCRIPT)) throw new Error(`${SCRIPT} is missing: run \`npm run build\``);
    dir = mkdtempSync(path.join(os.tmpdir(), 'e911-chaos-srv-'));
    httpPort = await freePort();
    broker = await startMosquitto({ persistence: true });
    smtp = await startSmtpSink();
    const setup = agentConfig(
      path.join(dir, 'agent'),
      { deviceId: DEVICE, brokerUrl: broker.url, serverPublicKey: keyPair.publicKey },
      { outbox: { serverAckTimeoutMs: 500 } },
    );
    agent = inProcessAgent(setup).agent;
    await agent.start();
  }, 30_000);

  afterAll(async () => {
    serverProc?.kill('SIGKILL');
    await agent?.stop();
    await smtp?.close();
    await broker?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const db = () => path.join(dir, 'server', SERVER_DB_FILE);
  const outbox = () => agent.status().outbox as { backlog: number; awaitingServer: number; confirmed: number };
  const emergencyData = (round: number) => ({
    numberDialed: '911',
    emergencyNumber: '911',
    callRef: `chaos-${round}`,
    placed: true,
    addressMissing: false,
  });

  it(
    'an emergency event stored just before the crash is acknowledged once the server is back: once in the database, notified once',
    async () => {
      for (let round = 0; round < ROUNDS; round++) {
        const srv = await startServer(true);
        agent.emit('emergency-call', emergencyData(round));
        // The server dies by its own hand the moment the event and its notification rows are committed.
        expect(await srv.exited).toBe('SIGKILL');
        const ev = serverRows(db(), DEVICE).events.filter((e) => JSON.parse(e.data).callRef === `chaos-${round}`);
        expect(ev).toHaveLength(1); // stored ...
        expect(outbox().backlog).toBeGreaterThanOrEqual(1); // ... but never acknowledged: still on the phone
      }
      const srv = await startServer(false);
      await waitFor(
        () => outbox().backlog === 0,
        20_000,
        () => JSON.stringify(outbox()),
      );
      const { events, notifications } = serverRows(db(), DEVICE);
      const calls = events.filter((e) => e.type === 'emergency-call');
      expect(calls).toHaveLength(ROUNDS);
      // Two recipients each (the user and the location's admin address), planned once.
      expect(notifications).toHaveLength(ROUNDS * 2);
      await waitFor(() => serverRows(db(), DEVICE).notifications.every((n) => n.status === 'sent'), 20_000);
      const keys = smtp.mails.map((m) => `${m.headers['x-e911-event-id']} ${m.to.join(',')}`);
      const duplicates = keys.length - new Set(keys).size;
      printFigures({
        scenario: 'server SIGKILL between store and ack',
        seed: 0,
        rounds: ROUNDS,
        eventsAtServer: calls.length,
        notificationsSent: smtp.mails.length,
        lost: ROUNDS - calls.length,
        duplicates,
      });
      expect(duplicates).toBe(0);
      expect(new Set(keys).size).toBe(ROUNDS * 2);
      srv.child.kill('SIGTERM');
      await srv.exited;
    },
    60_000 + ROUNDS * 5000,
  );

  it(
    'killed while sending notifications: every recipient is mailed (a mail may go twice: counted)',
    async () => {
      const before = smtp.mails.length;
      const base = ROUNDS;
      let srv = await startServer(false);
      for (let round = base; round < base + ROUNDS; round++) {
        const mailsBefore = smtp.mails.length;
        agent.emit('emergency-call', emergencyData(round));
        // The first mail of this event reached the sink: kill now, mid-notification.
        await waitFor(() => smtp.mails.length > mailsBefore, 15_000);
        srv.child.kill('SIGKILL');
        await srv.exited;
        srv = await startServer(false);
      }
      await waitFor(
        () => outbox().backlog === 0,
        20_000,
        () => JSON.stringify(outbox()),
      );
      await waitFor(
        () => {
          const n = serverRows(db(), DEVICE).notifications;
          return n.length === 4 * ROUNDS && n.every((x) => x.status === 'sent');
        },
        20_000,
        () => JSON.stringify(serverRows(db(), DEVICE).notifications.map((n) => n.status)),
      );
      const { events } = serverRows(db(), DEVICE);
      const mine = events.filter((e) => e.type === 'emergency-call' && Number(String(JSON.parse(e.data).callRef).slice(6)) >= base);
      expect(mine).toHaveLength(ROUNDS);
      const mails = smtp.mails.slice(before);
      const keys = mails.map((m) => `${m.headers['x-e911-event-id']} ${m.to.join(',')}`);
      const distinct = new Set(keys).size;
      const duplicates = keys.length - distinct;
      printFigures({
        scenario: 'server SIGKILL while notifying',
        seed: 0,
        rounds: ROUNDS,
        eventsAtServer: mine.length,
        notificationsSent: mails.length,
        lost: ROUNDS * 2 - distinct,
        duplicates,
      });
      expect(distinct).toBe(ROUNDS * 2); // nobody missed
      srv.child.kill('SIGTERM');
      await srv.exited;
    },
    60_000 + ROUNDS * 5000,
  );
});
