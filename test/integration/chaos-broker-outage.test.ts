// Chaos: a long broker outage. The real agent (PJSIP), SIPp as the PSAP, the
// reference server and Mosquitto; the broker is stopped, 911 and 933 are dialed
// while it is away (the calls must reach the PSAP: 911 needs no broker), the
// outbox grows, then the broker returns. Counted at the far end: each call at
// the PSAP, its event in the server's database once, its notifications sent once.
//
// The full run (npm run chaos, E911_CHAOS_FULL=1) keeps the broker away 10 real
// minutes with the default reconnect settings (backoff capped at 30 s: about 20
// attempts at the cap). The bounded run keeps what those 10 minutes do to the
// phone and compresses the rest: reconnect backoff 100 ms..1 s, so the cap is
// reached within 2 s and ~6 more attempts fail at it; a 5 s MQTT keepalive, so
// the session is past its keepalive expiry; the outbox growing by every call's
// events; the server's own client also disconnected throughout.
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
import { chaosSeed, printFigures, seededRandom, serverRows } from '../helpers/chaos.js';
import type { ServerApp } from '../../provisioning/server/app.js';
import { SERVER_DB_FILE } from '../../provisioning/server/db/repo.js';
import { generateSigningKeyPair } from '../../provisioning/protocol/signing.js';

const PSAP_ANY = path.resolve(import.meta.dirname, '..', 'fixtures', 'emergency', 'psap-any.xml');
const gate = requires('chaos: a long broker outage', ['voice', 'sipp', 'broker']);
const stale = staleBuild(['agent/main.ts', 'agent/root.ts', 'agent/link/link.ts', 'agent/link/outbox-drainer.ts']);
const FULL = process.env.E911_CHAOS_FULL === '1';
const OUTAGE_MS = Number(process.env.E911_CHAOS_OUTAGE_MS) || (FULL ? 600_000 : 8_000);
const CALLS = FULL ? 20 : 4;
const DEVICE = 'phone-outage';

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

describe.skipIf(gate.skip)(`chaos: the broker away ${Math.round(OUTAGE_MS / 1000)} s (${CALLS} calls during the outage)`, () => {
  let dir: string;
  let broker: Mosquitto;
  let smtp: SmtpSink;
  let server: ServerApp;
  let sipp: Sipp;
  let agent: AgentProcess | null = null;
  let socketPath: string;
  const keys = generateSigningKeyPair();

  beforeAll(async () => {
    if (stale) throw new Error(stale);
    dir = mkdtempSync(path.join(os.tmpdir(), 'e911-chaos-outage-'));
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
    const psapPort = await freePort();
    sipp = await startSipp({ scenario: PSAP_ANY, port: psapPort, calls: 100_000, timeoutSec: Math.ceil(OUTAGE_MS / 1000) + 120 });
    const setup = agentConfig(
      path.join(dir, 'agent'),
      { deviceId: DEVICE, brokerUrl: broker.url, serverPublicKey: keys.publicKey },
      {
        sip: { bindAddress: '127.0.0.1', publicAddress: '127.0.0.1', port: await freePort(), rtpPort: await freePort(), sound: 'null' },
        emergency: { routes: { primary: `sip:127.0.0.1:${psapPort}`, fallback: `sip:127.0.0.1:${psapPort}` } },
        logLevel: 'warn',
        // Bounded: the backoff's cap and the keepalive's expiry are reached within the short outage. Full: the defaults.
        broker: { urls: [broker.url], protocolVersion: 5, ...(FULL ? {} : { keepaliveSec: 5, reconnectMinMs: 100, reconnectMaxMs: 1000 }) },
        outbox: { serverAckTimeoutMs: 2000 },
      },
    );
    socketPath = setup.socketPath;
    agent = await spawnAgent(setup);
  }, 40_000);

  afterAll(async () => {
    if (agent && agent.child.exitCode === null) agent.child.kill('SIGKILL');
    await sipp?.close();
    await server?.stop();
    await smtp?.close();
    await broker?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it(
    'calls during the outage reach the PSAP; after it every event reaches the server once, notified once',
    async () => {
      const seed = chaosSeed();
      const random = seededRandom(seed);
      const status = async () =>
        (await e911ctl(socketPath, 'status')).json.result as {
          outbox: { backlog: number; awaitingServer: number };
          link: { state: string; connects: number };
        };
      await until(
        async () => (await status()).link.state === 'online',
        10_000,
        async () => JSON.stringify(await status()),
      );
      const db = path.join(dir, 'server', SERVER_DB_FILE);
      const eventsOf = (callRef: string) =>
        serverRows(db, DEVICE).events.filter(
          (e) =>
            (e.type === 'emergency-call' || e.type === 'test-call') && (JSON.parse(e.data) as { callRef?: string }).callRef === callRef,
        );
      const eventsBefore = serverRows(db, DEVICE).events.length;

      await broker.stop();
      const down = Date.now();
      const calls: { callRef: string; digits: string }[] = [];
      let peakBacklog = 0;
      for (let i = 0; i < CALLS; i++) {
        // Spread over the outage: the last call well before the broker returns.
        const at = down + Math.floor(((i + random() * 0.5) * OUTAGE_MS * 0.8) / CALLS);
        if (at > Date.now()) await new Promise((r) => setTimeout(r, at - Date.now()));
        const digits = i === 0 || random() < 0.5 ? '911' : '933';
        const invitesBefore = receivedInvites(sipp.messages()).length;
        const dial = await e911ctl(socketPath, 'dial', digits);
        expect(dial.json.ok, JSON.stringify(dial.json)).toBe(true);
        calls.push({ callRef: (dial.json.result as { callRef: string }).callRef, digits });
        await until(
          () => receivedInvites(sipp.messages()).length > invitesBefore,
          10_000,
          () => `call ${i} did not reach the PSAP during the outage\n${agent!.output()}`,
        );
        await e911ctl(socketPath, 'hangup');
        peakBacklog = Math.max(peakBacklog, (await status()).outbox.backlog);
      }
      const left = down + OUTAGE_MS - Date.now();
      if (left > 0) await new Promise((r) => setTimeout(r, left));
      const during = await status();
      peakBacklog = Math.max(peakBacklog, during.outbox.backlog);
      expect(during.link.state).not.toBe('online');
      // Nothing reached the server while the broker was away.
      expect(serverRows(db, DEVICE).events.length).toBe(eventsBefore);
      await broker.restart();

      await until(
        async () => {
          const s = await status();
          return s.link.state === 'online' && s.outbox.backlog === 0 && s.outbox.awaitingServer === 0;
        },
        60_000,
        async () => JSON.stringify(await status()),
      );
      await waitFor(
        () => serverRows(db, DEVICE).notifications.every((n) => n.status === 'sent'),
        30_000,
        () => JSON.stringify(serverRows(db, DEVICE).notifications),
      );

      const invites = receivedInvites(sipp.messages());
      const callIds = new Set(invites.map((m) => hdr(m, 'Call-ID')));
      const { events, notifications } = serverRows(db, DEVICE);
      const callEvents = events.filter((e) => e.type === 'emergency-call' || e.type === 'test-call');
      let lost = 0;
      let duplicates = 0;
      for (const c of calls) {
        const n = eventsOf(c.callRef).length;
        if (n === 0) lost++;
        if (n > 1) duplicates += n - 1;
      }
      const notified = new Set(notifications.map((n) => n.event_id));
      const unnotified = callEvents.filter((e) => !notified.has(e.id)).length;
      const mailKeys = smtp.mails.map((m) => `${m.headers['x-e911-event-id']} ${m.to.join(',')}`);
      const mailDuplicates = mailKeys.length - new Set(mailKeys).size;
      const eventsAfter = events.length - eventsBefore;

      printFigures({
        scenario: `broker away ${Math.round(OUTAGE_MS / 1000)} s (${FULL ? 'real, default backoff' : 'bounded: backoff cap 1 s, keepalive 5 s'}; outbox peak ${peakBacklog}; ${eventsAfter} events in all after the broker returned)`,
        seed,
        rounds: CALLS,
        callsAtPsap: callIds.size,
        eventsAtServer: callEvents.length,
        notificationsSent: smtp.mails.length,
        lost: lost + unnotified,
        duplicates: duplicates + mailDuplicates,
      });
      expect({ lost, unnotified, duplicates, mailDuplicates }).toEqual({ lost: 0, unnotified: 0, duplicates: 0, mailDuplicates: 0 });
      expect(callIds.size).toBe(CALLS);
      expect(callEvents.length).toBe(CALLS);
      // The outbox grew while the broker was away, by at least each call's event, and drained whole.
      expect(peakBacklog).toBeGreaterThanOrEqual(CALLS);
      expect(eventsAfter).toBeGreaterThanOrEqual(peakBacklog);
      expect(smtp.mails.length).toBe(notifications.length);
    },
    120_000 + OUTAGE_MS,
  );
});
