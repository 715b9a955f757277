// Chaos: the wall clock jumps a day forward and a day back, on the phone and on
// the server, around 911 and 933 dials and while the outbox drains after a
// broker outage. The real agent (PJSIP) and the reference server each run in
// their own process under libfaketime: the test writes "+1d", "-1d" or "+0" into
// a file each process reads on every clock_gettime(CLOCK_REALTIME)
// (FAKETIME_NO_CACHE), so a running process jumps; the monotonic clock is left
// alone (FAKETIME_DONT_FAKE_MONOTONIC), as when NTP steps a phone's clock. The
// host's clock is never touched.
//
// Counted at the far end: INVITEs at SIPp (the PSAP), emergency/test-call events
// in the server's database (by the call's callRef), notification rows, mails at
// the SMTP sink; duplicates; the 30-minute window after a 911 (still on after
// every jump); MQTT reconnects (only the broker outages may cause them).
// E911_CHAOS_ROUNDS sets the rounds (bounded 6; npm run chaos: 30).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import os from 'node:os';
import path from 'node:path';
import { agentConfig, spawnAgent, waitFor, type AgentProcess } from '../helpers/agent.js';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { startSipp, type Sipp } from '../helpers/sip.js';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.js';
import { freePort } from '../helpers/ports.js';
import { fakeTimeLibrary, requires } from '../helpers/require.js';
import { REPO, e911ctl, hdr, receivedInvites, staleBuild } from '../helpers/emergency.js';
import { chaosRounds, chaosSeed, printFigures, seededRandom, serverRows } from '../helpers/chaos.js';
import type { ChaosServerArgs } from '../helpers/chaos-server.js';
import { SERVER_DB_FILE } from '../../provisioning/server/db/repo.js';
import { generateSigningKeyPair } from '../../provisioning/protocol/signing.js';
import { encodeCivicOption } from '../../agent/location/dhcp-codec.js';

const PSAP_ANY = path.resolve(import.meta.dirname, '..', 'fixtures', 'emergency', 'psap-any.xml');
const SERVER_SCRIPT = path.join(REPO, 'dist/test/helpers/chaos-server.js');
const gate = requires('chaos: clock jumps of a day', ['voice', 'sipp', 'broker', 'faketime']);
const stale = staleBuild([
  'agent/main.ts',
  'agent/root.ts',
  'agent/emergency/service.ts',
  'agent/link/link.ts',
  'test/helpers/chaos-server.ts',
]);
const ROUNDS = chaosRounds(6, 30);
const DEVICE = 'phone-clock';
const OFFSETS = ['+0', '+1d', '-1d'] as const;
type Offset = (typeof OFFSETS)[number];
type Kind = 'jump-then-dial' | 'dial-then-jump' | 'jump-during-outage';

/** The environment that puts a process under libfaketime, its clock read from `file` on every call. */
function fakeTimeEnv(file: string): NodeJS.ProcessEnv {
  return {
    LD_PRELOAD: fakeTimeLibrary() ?? '',
    FAKETIME_TIMESTAMP_FILE: file,
    FAKETIME_NO_CACHE: '1',
    FAKETIME_DONT_FAKE_MONOTONIC: '1',
  };
}

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

describe.skipIf(gate.skip)(`chaos: the wall clock jumps a day forward and back (${ROUNDS} rounds)`, () => {
  let dir: string;
  let broker: Mosquitto;
  let smtp: SmtpSink;
  let sipp: Sipp;
  let server: ChildProcess | null = null;
  let agent: AgentProcess | null = null;
  let socketPath: string;
  let agentClock: string;
  /** The DHCP hand-over folder the agent reads (what the udhcpc hook writes): a civic address there disagrees with the provisioned one. */
  let dhcpDir: string;
  let serverClock: string;
  const keys = generateSigningKeyPair();

  beforeAll(async () => {
    if (stale) throw new Error(stale);
    if (!existsSync(SERVER_SCRIPT)) throw new Error(`${SERVER_SCRIPT} is missing: run \`npm run build\``);
    dir = mkdtempSync(path.join(os.tmpdir(), 'e911-chaos-clock-'));
    agentClock = path.join(dir, 'agent.faketime');
    serverClock = path.join(dir, 'server.faketime');
    writeFileSync(agentClock, '+0\n');
    writeFileSync(serverClock, '+0\n');
    dhcpDir = path.join(dir, 'dhcp');
    mkdirSync(dhcpDir);
    broker = await startMosquitto({ persistence: true });
    smtp = await startSmtpSink();
    const args: ChaosServerArgs = {
      dataDir: path.join(dir, 'server'),
      brokerUrl: broker.url,
      httpPort: await freePort(),
      keyPair: keys,
      smtpPort: smtp.port,
      deviceId: DEVICE,
      setup: true,
      killAfterStore: false,
    };
    const child = spawn(process.execPath, [SERVER_SCRIPT, JSON.stringify(args)], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH, ...fakeTimeEnv(serverClock) },
    });
    server = child;
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise((r) => child.once('exit', r));
    await waitFor(
      () => out.includes('READY'),
      15_000,
      () => out,
      exited,
    );
    const psapPort = await freePort();
    sipp = await startSipp({ scenario: PSAP_ANY, port: psapPort, calls: 100_000, timeoutSec: 600 });
    const setup = agentConfig(
      path.join(dir, 'agent'),
      { deviceId: DEVICE, brokerUrl: broker.url, serverPublicKey: keys.publicKey },
      {
        sip: { bindAddress: '127.0.0.1', publicAddress: '127.0.0.1', port: await freePort(), rtpPort: await freePort(), sound: 'null' },
        emergency: { routes: { primary: `sip:127.0.0.1:${psapPort}`, fallback: `sip:127.0.0.1:${psapPort}` } },
        logLevel: 'warn',
        outbox: { serverAckTimeoutMs: 2000 },
        recovery: { minMs: 200, maxMs: 2000 },
        network: { backend: 'sim', lldp: { enabled: false }, dhcp: { enabled: true } },
      },
    );
    socketPath = setup.socketPath;
    agent = await spawnAgent(setup, { ...fakeTimeEnv(agentClock), E911_DHCP_LOCATION_DIR: dhcpDir });
  }, 40_000);

  afterAll(async () => {
    if (agent && agent.child.exitCode === null) agent.child.kill('SIGKILL');
    if (server && server.exitCode === null) server.kill('SIGKILL');
    await sipp?.close();
    await smtp?.close();
    await broker?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it(
    'every call reaches the PSAP and the server once, notified once; the 911 window and the MQTT session survive the jumps',
    async () => {
      const seed = chaosSeed();
      const random = seededRandom(seed);
      const status = async () =>
        (await e911ctl(socketPath, 'status')).json.result as {
          outbox: { backlog: number; awaitingServer: number };
          link: { state: string; connects: number };
          emergency: { suppressedUntil: string | null };
        };
      const db = path.join(dir, 'server', SERVER_DB_FILE);
      const eventOf = (callRef: string) =>
        serverRows(db, DEVICE).events.filter(
          (e) =>
            (e.type === 'emergency-call' || e.type === 'test-call') && (JSON.parse(e.data) as { callRef?: string }).callRef === callRef,
        );
      let agentAt: Offset = '+0';
      let serverAt: Offset = '+0';
      const other = (o: Offset) => {
        const choices = OFFSETS.filter((x) => x !== o);
        return choices[Math.floor(random() * choices.length)]!;
      };
      const jumpAgent = () => {
        agentAt = other(agentAt);
        writeFileSync(agentClock, `${agentAt}\n`);
      };
      const jumpServer = () => {
        serverAt = other(serverAt);
        writeFileSync(serverClock, `${serverAt}\n`);
      };

      const calls: {
        callRef: string;
        digits: string;
        kind: Kind;
        agentAt: Offset;
        serverAt: Offset;
        dialedAt: { real: number; offset: Offset };
      }[] = [];
      let outages = 0;
      let windowLost = 0;
      let emergencyDialed = false;
      for (let i = 0; i < ROUNDS; i++) {
        const kinds: Kind[] = ['jump-then-dial', 'dial-then-jump', 'jump-during-outage'];
        // Each kind at least once in the bounded run; the first a 911 (it opens the 30-minute window).
        const kind = i < kinds.length ? kinds[i]! : kinds[Math.floor(random() * kinds.length)]!;
        const digits = i === 0 ? '911' : random() < 0.5 ? '911' : '933';
        const invitesBefore = receivedInvites(sipp.messages()).length;
        if (kind === 'jump-then-dial') {
          jumpAgent();
          if (random() < 0.5) jumpServer();
        }
        if (kind === 'jump-during-outage') {
          await broker.stop();
          outages++;
        }
        const dialedAt = { real: Date.now(), offset: agentAt };
        const dial = await e911ctl(socketPath, 'dial', digits);
        expect(dial.json.ok, JSON.stringify(dial.json)).toBe(true);
        const callRef = (dial.json.result as { callRef: string }).callRef;
        if (kind === 'dial-then-jump') jumpAgent(); // while the event is completed, synced and drained
        await until(
          () => receivedInvites(sipp.messages()).length > invitesBefore,
          10_000,
          () => `no INVITE for round ${i}\n${agent!.output()}`,
        );
        if (kind === 'jump-during-outage') {
          // The event waits in the outbox; both clocks jump; then the broker returns and the outbox drains.
          jumpAgent();
          jumpServer();
          await broker.restart();
        }
        calls.push({ callRef, digits, kind, agentAt, serverAt, dialedAt });
        if (digits === '911') emergencyDialed = true;
        await until(
          () => eventOf(callRef).length > 0,
          20_000,
          async () => `no event at the server for round ${i} (${kind}): ${JSON.stringify(await status())}\n${agent!.output()}`,
        );
        await e911ctl(socketPath, 'hangup');
        // The 30-minute window after a 911 holds whatever the wall clock did.
        if (emergencyDialed && (await status()).emergency.suppressedUntil === null) windowLost++;
      }
      // Back to true time on both ends, then everything drained and notified.
      writeFileSync(agentClock, '+0\n');
      writeFileSync(serverClock, '+0\n');
      await until(
        async () => {
          const s = await status();
          return s.outbox.backlog === 0 && s.outbox.awaitingServer === 0;
        },
        30_000,
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
      const eventCallIds = new Set(callEvents.map((e) => (JSON.parse(e.data) as { sipCallId: string }).sipCallId));
      const lost = [...callIds].filter((c) => !eventCallIds.has(c!)).length;
      let duplicates = 0;
      for (const c of calls) {
        const n = eventOf(c.callRef).length;
        if (n > 1) duplicates += n - 1;
        const e = eventOf(c.callRef)[0]!;
        expect((JSON.parse(e.data) as { numberDialed: string }).numberDialed).toBe(c.digits);
        // The event carries the phone's jumped clock: libfaketime really moved it.
        const offsetMs = { '+0': 0, '+1d': 86_400_000, '-1d': -86_400_000 }[c.dialedAt.offset];
        expect(
          Math.abs(Date.parse(e.ts) - c.dialedAt.real - offsetMs),
          `event ts ${e.ts} for a phone clock ${c.dialedAt.offset}`,
        ).toBeLessThan(600_000);
      }
      const notified = new Set(notifications.map((n) => n.event_id));
      const unnotified = callEvents.filter((e) => !notified.has(e.id)).length;
      const mailKeys = smtp.mails.map((m) => `${m.headers['x-e911-event-id']} ${m.to.join(',')}`);
      const mailDuplicates = mailKeys.length - new Set(mailKeys).size;
      const s = await status();
      // One connection at start and one after each outage: a jump alone must not drop the session (keepalive runs on monotonic timers).
      const unexpectedReconnects = s.link.connects - 1 - outages;

      printFigures({
        scenario: `clock jumps ±1 day, agent and server (${calls.map((c) => `${c.digits}:${c.kind}:${c.agentAt}/${c.serverAt}`).join(' ')}; 911 window lost ${windowLost}; reconnects beyond outages ${unexpectedReconnects})`,
        seed,
        rounds: ROUNDS,
        callsAtPsap: callIds.size,
        eventsAtServer: callEvents.length,
        notificationsSent: smtp.mails.length,
        lost: lost + unnotified,
        duplicates: duplicates + mailDuplicates,
      });
      expect({ lost, unnotified, duplicates, mailDuplicates, windowLost, unexpectedReconnects }).toEqual({
        lost: 0,
        unnotified: 0,
        duplicates: 0,
        mailDuplicates: 0,
        windowLost: 0,
        unexpectedReconnects: 0,
      });
      expect(callIds.size).toBe(ROUNDS);
      expect(callEvents.length).toBe(ROUNDS);
      expect(smtp.mails.length).toBe(notifications.length);
    },
    90_000 + ROUNDS * 10_000,
  );

  it('a location disagreement opened after the phone clock went back a day still marks the phone at the server', async () => {
    const db = path.join(dir, 'server', SERVER_DB_FILE);
    // In the order the server stored them (rowid), not by the phone's ts (which the jump reorders).
    const disagreementEvents = () => {
      const d = new Database(db, { readonly: true });
      try {
        return d
          .prepare("SELECT data, ts FROM events WHERE device_id = ? AND type = 'location-disagreement' ORDER BY rowid")
          .all(DEVICE) as { data: string; ts: string }[];
      } finally {
        d.close();
      }
    };
    const marked = () => {
      const d = new Database(db, { readonly: true });
      try {
        return (
          (d.prepare('SELECT disagreement FROM devices WHERE device_id = ?').get(DEVICE) as { disagreement: string | null })
            .disagreement !== null
        );
      } finally {
        d.close();
      }
    };
    // Another building's address from DHCP option 99 (what the udhcpc hook writes on "bound"), on the sim network's eth0.
    const civic = encodeCivicOption(2, 'US', [
      [1, 'CA'],
      [3, 'Santa Clara'],
      [34, 'Mission College'],
      [18, 'Blvd'],
      [19, '2200'],
      [24, '95054'],
    ]);
    const lease = () => writeFileSync(path.join(dhcpDir, 'eth0'), `option99=${civic.toString('hex')}\noption123=\n`);
    const noLease = () => rmSync(path.join(dhcpDir, 'eth0'), { force: true });
    const before = disagreementEvents().length;
    const state = async () => (await e911ctl(socketPath, 'status')).json.result as unknown;
    lease();
    await until(
      () => disagreementEvents().length >= before + 1 && marked(),
      20_000,
      async () => `open: ${JSON.stringify(disagreementEvents().map((e) => e.data))} ${JSON.stringify(await state())}`,
    );
    noLease();
    await until(
      () => disagreementEvents().length >= before + 2 && !marked(),
      20_000,
      () => `resolved: ${JSON.stringify(disagreementEvents().map((e) => e.data))}`,
    );
    // The clock is stepped back a day; the phone lands in the other building again.
    writeFileSync(agentClock, '-1d\n');
    lease();
    await until(
      () => disagreementEvents().length >= before + 3,
      20_000,
      () => `open again: ${JSON.stringify(disagreementEvents().map((e) => e.data))}`,
    );
    const evs = disagreementEvents().slice(before);
    const [open1, resolved, open2] = evs.map((e) => ({ state: (JSON.parse(e.data) as { state: string }).state, ts: e.ts }));
    expect([open1!.state, resolved!.state, open2!.state]).toEqual(['open', 'resolved', 'open']);
    expect(Date.parse(open2!.ts)).toBeLessThan(Date.parse(resolved!.ts)); // the jumped clock: the new event looks a day old
    const markedNow = marked();
    // Same-run baseline: ordered by the phone's ts (the rule before), the new "open" would have been dropped as late.
    const baselineDropped = Date.parse(open2!.ts) < Date.parse(resolved!.ts);
    writeFileSync(agentClock, '+0\n');
    noLease();
    printFigures({
      scenario: `location disagreement after a -1 day jump: open, resolved, open again (phone marked: ${markedNow ? 'yes' : 'NO'}; baseline ordering by ts: ${baselineDropped ? 'dropped' : 'applied'})`,
      seed: 0,
      rounds: 1,
      eventsAtServer: evs.length,
      notificationsSent: 0,
      lost: markedNow ? 0 : 1,
      duplicates: 0,
    });
    expect(markedNow).toBe(true);
  }, 90_000);
});
