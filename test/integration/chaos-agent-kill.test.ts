// Chaos: the real agent (dist/agent/main.js, PJSIP) is SIGKILLed at random
// moments around 911 and 933 dials, again and again on the same data folder,
// with SIPp as the PSAP, Mosquitto, and the reference server (its SQLite
// database, notifications to a real SMTP sink). Counted at the far end: every
// call that reached the PSAP has its event in the server's database, once, with
// its notifications, each mail sent once; no helper process outlives its agent.
// E911_CHAOS_ROUNDS sets the kills (bounded 20; npm run chaos: 200),
// E911_CHAOS_SEED replays a run.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { agentConfig, spawnAgent, waitFor, type AgentProcess } from '../helpers/agent.js';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { startSipp, type Sipp } from '../helpers/sip.js';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.js';
import { chaosServerApp } from '../helpers/server-app.js';
import { freePort } from '../helpers/ports.js';
import { requires } from '../helpers/require.js';
import { e911ctl, hdr, receivedInvites, staleBuild } from '../helpers/emergency.js';
import { alive, chaosRounds, chaosSeed, childrenOf, printFigures, seededRandom, serverRows } from '../helpers/chaos.js';
import { controlRequest } from '../../agent/control/control-client.js';
import type { ServerApp } from '../../provisioning/server/app.js';
import { SERVER_DB_FILE } from '../../provisioning/server/db/repo.js';
import { generateSigningKeyPair } from '../../provisioning/protocol/signing.js';

const PSAP_ANY = path.resolve(import.meta.dirname, '..', 'fixtures', 'emergency', 'psap-any.xml');
const gate = requires('chaos: agent SIGKILLed around 911/933', ['voice', 'sipp', 'broker']);
const stale = staleBuild(['agent/main.ts', 'agent/root.ts', 'agent/events/emergency-journal.ts', 'agent/link/link.ts']);
const ROUNDS = chaosRounds(20, 200);
const DEVICE = 'phone-chaos';

async function until(
  cond: () => Promise<boolean> | boolean,
  timeoutMs: number,
  why: () => string | Promise<string> = () => '',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms. ${await why()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe.skipIf(gate.skip)(`chaos: the agent SIGKILLed around 911 and 933 (${ROUNDS} kills)`, () => {
  let dir: string;
  let broker: Mosquitto;
  let smtp: SmtpSink;
  let server: ServerApp;
  let sipp: Sipp;
  let psapPort: number;
  const keys = generateSigningKeyPair();
  const procs: AgentProcess[] = [];

  beforeAll(async () => {
    if (stale) throw new Error(stale);
    dir = mkdtempSync(path.join(os.tmpdir(), 'e911-chaos-kill-'));
    broker = await startMosquitto({ persistence: true });
    smtp = await startSmtpSink();
    server = await chaosServerApp({
      dataDir: path.join(dir, 'server'),
      brokerUrl: broker.url,
      httpPort: await freePort(),
      keyPair: keys,
      smtpPort: smtp.port,
      deviceId: DEVICE,
      setup: true,
    });
    await server.start();
    psapPort = await freePort();
    // One PSAP for the whole run: it answers every call; a caller killed mid-call just never sends BYE.
    sipp = await startSipp({ scenario: PSAP_ANY, port: psapPort, calls: 100_000, timeoutSec: 600 });
  }, 30_000);

  afterAll(async () => {
    for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGKILL');
    await sipp?.close();
    await server?.stop();
    await smtp?.close();
    await broker?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it(
    'every call that reached the PSAP is at the server once, notified once; no orphans',
    async () => {
      const seed = chaosSeed();
      const random = seededRandom(seed);
      const agentDir = path.join(dir, 'agent');
      const config = async () =>
        agentConfig(
          agentDir,
          { deviceId: DEVICE, brokerUrl: broker.url, serverPublicKey: keys.publicKey },
          {
            // A new SIP port each life: the PSAP's retransmissions to a dead agent do not reach the next one.
            sip: { bindAddress: '127.0.0.1', publicAddress: '127.0.0.1', port: await freePort(), rtpPort: await freePort(), sound: 'null' },
            emergency: { routes: { primary: `sip:127.0.0.1:${psapPort}`, fallback: `sip:127.0.0.1:${psapPort}` } },
            logLevel: 'warn',
            // An ack lost with a killed connection is made up for by the resend, within the test's wait.
            outbox: { serverAckTimeoutMs: 2000 },
          },
        );
      /** Each life: its SIP port (in the INVITE's Contact) and when it dialed and died. */
      const lives: { sipPort: number; from: number; to: number; digits: string }[] = [];
      let orphans = 0;
      for (let i = 0; i < ROUNDS; i++) {
        const setup = await config();
        const proc = await spawnAgent(setup);
        procs.push(proc);
        const children = childrenOf(proc.child.pid!);
        const digits = random() < 0.5 ? '911' : '933';
        // Kill around the INVITE: a third while the dial is on its way (0-30 ms after the request),
        // the rest 0-20 ms after the agent answered that the INVITE is out (the event being completed,
        // synced, published, confirmed).
        const beforeAnswer = random() < 1 / 3;
        const delay = Math.floor(random() * (beforeAnswer ? 30 : 20));
        const from = Date.now();
        const dial = controlRequest(setup.socketPath, 'dial', { digits }).catch(() => null);
        if (!beforeAnswer) await dial;
        await new Promise((r) => setTimeout(r, delay));
        proc.child.kill('SIGKILL');
        await proc.exited;
        const to = Date.now();
        lives.push({ sipPort: (setup.raw.sip as { port: number }).port, from, to, digits });
        orphans += children.filter(alive).length;
      }

      // A last life, left alone: it sends whatever the killed ones committed.
      const setup = await config();
      const last = await spawnAgent(setup);
      procs.push(last);
      const outbox = async () => ((await e911ctl(setup.socketPath, 'status')).json.result as { outbox: { backlog: number } }).outbox;
      await until(
        async () => (await outbox()).backlog === 0,
        30_000,
        async () =>
          `outbox ${JSON.stringify(await outbox())} link ${JSON.stringify((await e911ctl(setup.socketPath, 'status')).json.result.link)}\n${last.output()}`,
      );

      const invites = receivedInvites(sipp.messages());
      const inviteLives = new Set(invites.map((m) => Number(/:(\d+)/.exec(/<sip:[^>]*>/.exec(hdr(m, 'Contact') ?? '')?.[0] ?? '')?.[1])));
      const callIds = invites.map((m) => hdr(m, 'Call-ID'));
      expect(new Set(callIds).size).toBe(callIds.length); // one INVITE per call, no retry as a new call
      const { events } = serverRows(path.join(dir, 'server', SERVER_DB_FILE), DEVICE);
      const callEvents = events.filter((e) => e.type === 'emergency-call' || e.type === 'test-call');
      // Each life dialed once: its event (if any) was stamped between its dial and its death.
      const eventsOf = (l: (typeof lives)[number]) =>
        callEvents.filter((e) => Date.parse(e.ts) >= l.from - 1 && Date.parse(e.ts) <= l.to + 1);
      let lost = 0;
      let duplicates = 0;
      for (const l of lives) {
        const n = eventsOf(l).length;
        if (inviteLives.has(l.sipPort) && n === 0) lost++;
        if (n > 1) duplicates++;
      }
      // Every event is for the number that life dialed.
      for (const l of lives) for (const e of eventsOf(l)) expect(JSON.parse(e.data).numberDialed).toBe(l.digits);

      // Notifications: each notified event planned once per recipient, each mail sent once.
      await waitFor(
        () => serverRows(path.join(dir, 'server', SERVER_DB_FILE), DEVICE).notifications.every((n) => n.status === 'sent'),
        20_000,
      );
      const { notifications } = serverRows(path.join(dir, 'server', SERVER_DB_FILE), DEVICE);
      const notified = new Set(notifications.map((n) => n.event_id));
      for (const e of callEvents) expect(notified.has(e.id), `event ${e.id} (${e.type}) has notifications`).toBe(true);
      const mailKeys = smtp.mails.map((m) => `${m.headers['x-e911-event-id']} ${m.to.join(',')}`);
      const mailDuplicates = mailKeys.length - new Set(mailKeys).size;

      printFigures({
        scenario: 'agent SIGKILL around 911/933',
        seed,
        rounds: ROUNDS,
        callsAtPsap: inviteLives.size,
        eventsAtServer: callEvents.length,
        notificationsSent: smtp.mails.length,
        lost,
        duplicates: duplicates + mailDuplicates,
        orphans,
      });
      expect({ lost, duplicates, mailDuplicates, orphans }).toEqual({ lost: 0, duplicates: 0, mailDuplicates: 0, orphans: 0 });
      expect(callEvents.length).toBeGreaterThanOrEqual(inviteLives.size);
      expect(smtp.mails.length).toBe(notifications.length);
    },
    60_000 + ROUNDS * 3000,
  );
});
