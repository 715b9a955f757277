// Choosing the location on the phone itself, and where a 911 came from: the whole agent
// (dist/agent/main.js) with a simulated phone on a socat pty pair, provisioned over MQTT
// by the real server (its embedded broker), an SMTP sink for the notices and a SIPp PSAP.
// Keys -> display -> event at the server -> the user's location and the phone's address
// follow -> the next 911 carries it (PIDF-LO) -> the notice shows the floor or zone of
// the phone's address at call time beside the address sent, and says when they differ.
// The account's recommendation switch overrides the user's own setting.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { startPtyPair, type PtyPair } from '../../hal/sim/pty-pair.js';
import { McuSimulator } from '../../hal/sim/mcu-simulator.js';
import { nativePortFactory, SerialTransport } from '../../hal/mcu/transport/serial.js';
import { controlRequest } from '../../agent/control/control-client.js';
import { agentConfig, spawnAgent, waitFor, type AgentProcess } from '../helpers/agent.js';
import { startSipp } from '../helpers/sip.js';
import { multipartParts, receivedInvites, staleBuild } from '../helpers/emergency.js';
import { freePort } from '../helpers/ports.js';
import { silentLog } from '../helpers/log.js';
import { requires } from '../helpers/require.js';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.js';
import { startTestServer, HQ, BRANCH, type TestServer } from '../helpers/server-app.js';
import { topicFor } from '../../provisioning/protocol/topics.js';

const ROUTE = path.resolve(import.meta.dirname, '..', 'fixtures', 'diagnostics', 'route-psap.xml');
const SOCAT = ['/usr/bin/socat', '/usr/local/bin/socat'].find((p) => existsSync(p));
const gate = requires('choosing the location on the simulated phone', ['socat']);
const calls = requires('the 911 calls of the location-choice test (PIDF-LO at the PSAP)', ['voice', 'sipp']);
const stale = staleBuild([
  'agent/main.ts',
  'agent/root.ts',
  'agent/location/service.ts',
  'agent/location/location-menu.ts',
  'agent/emergency/service.ts',
  'agent/emergency/call-event.ts',
]);

/** The address the simulated network shows the phone (the host's, as the sim backend reads it). */
function hostIpv4(): string | null {
  for (const addrs of Object.values(os.networkInterfaces()))
    for (const a of addrs ?? []) if (!a.internal && a.family === 'IPv4') return a.address;
  return null;
}

interface ServerEvent {
  id: string;
  type: string;
  data: Record<string, unknown>;
}

describe.skipIf(gate.skip)('the location chosen on the phone, and where a 911 came from', () => {
  const ip = hostIpv4();
  let dir: string;
  let srv: TestServer;
  let smtp: SmtpSink;
  let pair: PtyPair;
  let sim: McuSimulator;
  let agent: AgentProcess;
  let socketPath: string;
  let routePort: number;
  let hqId: number;
  let branchId: number;
  let userId: number;
  /** A second phone of hers, driven by hand (a login's client id is its own). */
  let creds2: { username: string; password: string };

  const screen = () => sim.screen.lines.join('\n');
  const why = () => `screen:\n${screen()}\nagent output:\n${agent?.output().slice(-3000)}`;
  const shows = (text: string, ms = 10_000) =>
    waitFor(
      () => screen().includes(text),
      ms,
      () => `"${text}" never shown\n${why()}`,
    );
  const until = async (cond: () => Promise<boolean>, ms: number, what: string) => {
    const deadline = Date.now() + ms;
    while (!(await cond())) {
      if (Date.now() > deadline) throw new Error(`timed out: ${what}\n${why()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const serverEvents = (type: string) => srv.api.get<ServerEvent[]>(`/api/events?type=${type}`);
  const agentAddressCode = async () => {
    const r = await controlRequest(socketPath, 'address');
    return r.ok ? ((r.result as { doc: { locationCode: string } } | null)?.doc.locationCode ?? null) : null;
  };
  const userLocation = async () => (await srv.api.get<{ locationId: number }>(`/api/users/${userId}`)).locationId;
  /** The notice comes back with every new address: OK acknowledges it. */
  const acknowledgeNotice = async (line: string) => {
    await shows('EMERGENCY 911 NOTICE');
    await shows(line);
    sim.press('ok');
    await waitFor(() => !screen().includes('EMERGENCY 911 NOTICE'), 5000, why);
  };
  /** 911 from the keypad; with the voice stack, the INVITE the PSAP received. Returns the server's event. */
  const dial911 = async (): Promise<{ event: ServerEvent; invite: string | null }> => {
    const before = (await serverEvents('emergency-call')).length;
    let invite: string | null = null;
    if (!calls.skip) {
      const psap = await startSipp({ scenario: ROUTE, port: routePort, calls: 1, timeoutSec: 20 });
      try {
        sim.setHook(true);
        sim.type('911');
        await waitFor(
          () => /ACK /.test(psap.messages()),
          10_000,
          () => `no ACK at the PSAP\n${psap.messages()}\n${why()}`,
        );
        const inv = receivedInvites(psap.messages())[0]!;
        invite = multipartParts(inv).find((p) => p.headers.some((h) => /pidf\+xml/i.test(h.value)))?.body ?? null;
        sim.setHook(false);
        await psap.exited;
      } finally {
        await psap.close();
      }
    } else {
      // No voice stack: the call is not placed, and the event (with the notice) still goes out.
      sim.setHook(true);
      sim.type('911');
      sim.setHook(false);
    }
    let event: ServerEvent | undefined;
    await until(
      async () => {
        const list = await serverEvents('emergency-call');
        event = list.length > before ? list[0] : undefined;
        return event !== undefined;
      },
      15_000,
      'the emergency-call event never reached the server',
    );
    return { event: event!, invite };
  };
  const noticeFor = async (eventId: string, to: string) => {
    await waitFor(
      () => smtp.mails.some((m) => m.headers['x-e911-event-id'] === eventId && m.to.includes(to)),
      15_000,
      () => `no notice to ${to} for ${eventId}; mails: ${smtp.mails.length}`,
    );
    return smtp.mails.find((m) => m.headers['x-e911-event-id'] === eventId && m.to.includes(to))!;
  };

  beforeAll(async () => {
    if (stale) throw new Error(stale);
    if (!ip) throw new Error('this test needs a non-loopback IPv4 address on the host: the simulated network shows the host interfaces');
    dir = mkdtempSync(path.join(os.tmpdir(), 'e911-handloc-'));
    smtp = await startSmtpSink();
    srv = await startTestServer();
    const { api } = srv;
    await api.patch('/api/account', { name: 'Example Corp', contactEmail: 'it@example.com' });
    await api.put('/api/account/notifications', {
      smtp: { host: '127.0.0.1', port: smtp.port, security: 'none', from: 'e911@example.com' },
    });
    hqId = (await api.post<{ id: number }>('/api/locations', { ...HQ, smsNumbers: [] })).id;
    // The phone's network is at the branch (fifth floor); it is assigned to HQ.
    branchId = (await api.post<{ id: number }>('/api/locations', { ...BRANCH, ipGroups: [{ name: 'Floor 5', cidrs: [`${ip}/32`] }] })).id;
    userId = (
      await api.post<{ id: number }>('/api/users', {
        username: 'alice',
        displayName: 'Alice Smith',
        extension: '2101',
        locationId: hqId,
        callback: '+14085550100',
        emails: ['alice@example.com'],
        deviceIds: ['phone-1', 'phone-1b'],
        // The account switch is off: the user's own setting applies, and hers is on.
        recommendations: true,
      })
    ).id;
    const creds = await api.post<{ username: string; password: string }>('/api/phones/phone-1/credentials');
    creds2 = await api.post('/api/phones/phone-1b/credentials');
    await api.post('/api/account/e911', { enabled: true });

    pair = await startPtyPair(path.join(dir, 'pty'), SOCAT);
    routePort = await freePort();
    const setup = agentConfig(
      path.join(dir, 'agent'),
      { deviceId: 'phone-1', brokerUrl: srv.app.brokerUrl, serverPublicKey: srv.keys.publicKey },
      {
        broker: {
          urls: [srv.app.brokerUrl],
          protocolVersion: 4,
          username: creds.username,
          password: creds.password,
          reconnectMinMs: 100,
          reconnectMaxMs: 1000,
        },
        handset: { backend: 'serial', path: pair.agent },
        network: {
          backend: 'sim',
          lldp: { enabled: false },
          dhcp: { enabled: false },
          recommendations: { firstCheckMs: 300, checkEveryMs: 60_000 },
        },
        sip: {
          bindAddress: '127.0.0.1',
          publicAddress: '127.0.0.1',
          port: await freePort(),
          rtpPort: await freePort(),
          sound: 'null',
          account: { uri: 'sip:2101@127.0.0.1' },
        },
        emergency: { routes: { primary: `sip:127.0.0.1:${routePort}` } },
      },
    );
    socketPath = setup.socketPath;
    const log = silentLog();
    sim = new McuSimulator({
      transport: new SerialTransport({
        path: pair.mcu,
        openPort: await nativePortFactory(pair.mcu, 115200),
        log,
        backoffMinMs: 20,
        backoffMaxMs: 200,
      }),
      log,
      // A display wide enough for a prompt without scrolling.
      rows: 8,
      cols: 48,
    });
    sim.start();
    agent = await spawnAgent(setup);
  }, 60_000);

  afterAll(async () => {
    if (agent) {
      agent.child.kill('SIGTERM');
      await agent.exited;
    }
    await sim?.stop();
    await pair?.stop();
    await srv?.stop();
    await smtp?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the network suggests the branch; the user lists, moves and picks it on the keypad; the server makes it hers', async () => {
    await acknowledgeNotice('100 Main St');
    await shows('CHECK YOUR LOCATION');
    // The screen is drawn row by row: each row is waited for.
    await shows('Set: Example Corp');
    await shows('Network says: Example Corp Toronto');
    sim.press('ok');
    await shows('1/2 Example Corp Toronto (network)');
    sim.press('down');
    await shows('2/2 Example Corp (set now)');
    sim.press('up');
    await shows('1/2 Example Corp Toronto (network)');
    sim.press('ok');

    await until(async () => (await serverEvents('location-selected')).length === 1, 10_000, 'no location-selected event at the server');
    const [selected] = await serverEvents('location-selected');
    expect(selected!.data).toMatchObject({
      locationId: String(branchId),
      locationCode: 'YYZ-1',
      confirmed: false,
      previousLocationId: String(hqId),
    });
    await until(async () => (await userLocation()) === branchId, 10_000, 'the server never made the pick her location');
    const audit = await srv.api.get<{ action: string; actor: string }[]>(`/api/audit?entity=user&entityId=${userId}`);
    expect(audit[0]).toMatchObject({ action: 'user.location-selected', actor: 'phone:phone-1' });
    // The phone's assigned location follows: the new address is pushed, and its notice comes up.
    await until(async () => (await agentAddressCode()) === 'YYZ-1', 10_000, 'the new address never reached the phone');
    // The new address's notice comes above the result of the pick; under it, the result waits for OK.
    await acknowledgeNotice('200 King St W');
    await shows('LOCATION SET');
    sim.press('ok');
    await waitFor(() => !screen().includes('LOCATION SET'), 5000, why);
    expect(screen()).not.toContain('CHECK YOUR LOCATION');
  });

  it('the next 911 carries the chosen location; the notice gives the extension and the floor by IP, agreeing', async () => {
    const { event, invite } = await dial911();
    if (invite !== null) {
      expect(invite).toMatch(/<ca:RD>King St W<\/ca:RD>/);
      expect(invite).toMatch(/<ca:A3>Toronto<\/ca:A3>/);
    }
    expect(event.data).toMatchObject({ locationCode: 'YYZ-1', site: { extension: '2101', ip, switch: null } });
    const mail = await noticeFor(event.id, 'toronto-desk@example.com');
    expect(mail.text).toMatch(/^Dispatchable address: .*200 King St W/m);
    expect(mail.text).toMatch(/^Extension: +2101$/m);
    expect(mail.text).toContain(`Floor 5 (Example Corp Toronto, ${ip}/32) from ${ip}, at the address sent`);
  });

  it("the user's own setting off: no prompt; the account switch on overrides it; Soft1 accepts the suggestion", async () => {
    // The phone's network is now claimed by HQ's second floor: a mismatch with the branch.
    await srv.api.patch(`/api/locations/${branchId}`, { ipGroups: [{ name: 'lan', cidrs: ['10.2.0.0/16'] }] });
    await srv.api.patch(`/api/locations/${hqId}`, { ipGroups: [...HQ.ipGroups, { name: 'Floor 2', cidrs: [`${ip}/32`] }] });
    await shows('Network says: Example Corp');
    await srv.api.patch(`/api/users/${userId}`, { recommendations: false });
    await waitFor(() => !screen().includes('CHECK YOUR LOCATION'), 10_000, why);
    const off = await controlRequest(socketPath, 'location');
    expect(off).toMatchObject({ ok: true, result: { status: 'off' } });
    // Neither switch on: a choice from one of her phones (an old one, still holding a list) is refused.
    const other = await mqtt.connectAsync(srv.app.brokerUrl, { clientId: 'phone-1b', protocolVersion: 4, ...creds2 });
    try {
      const ev = {
        v: 1,
        id: 'pick-refused-1',
        type: 'location-selected',
        deviceId: 'phone-1b',
        ts: new Date().toISOString(),
        data: { locationId: String(hqId) },
      };
      await other.publishAsync(topicFor('phone-1b', 'events'), JSON.stringify(ev), { qos: 1 });
    } finally {
      await other.endAsync();
    }
    await until(
      async () =>
        (await srv.api.get<{ action: string }[]>('/api/audit?entity=event&entityId=pick-refused-1')).some(
          (a) => a.action === 'user.location-choice-refused',
        ),
      10_000,
      'the choice was not refused',
    );
    expect(await userLocation()).toBe(branchId);

    // A 911 meanwhile: the address sent is the branch's, the phone's IP is on HQ's second floor.
    const { event } = await dial911();
    const mail = await noticeFor(event.id, 'toronto-desk@example.com');
    expect(mail.text).toContain(
      `Floor 2 (Example Corp, ${ip}/32) from ${ip}. DOES NOT MATCH the address sent: the phone's IP is in Example Corp (SJC-A), not at the address sent`,
    );
    expect(mail.text).toMatch(/^Dispatchable address: .*200 King St W/m);

    await srv.api.patch('/api/account', { recommendations: true });
    await shows('Network says: Example Corp');
    sim.press('soft1');
    await until(async () => (await userLocation()) === hqId, 10_000, 'the account switch on: the pick should be accepted');
    await until(async () => (await agentAddressCode()) === 'SJC-A', 10_000, 'the HQ address never reached the phone');
    await acknowledgeNotice('100 Main St');
    await shows('LOCATION SET');
  });

  it('no IP group matches the network: the prompt offers every location; the user scrolls them and picks one', async () => {
    sim.press('ok'); // the last pick's result
    await waitFor(() => !screen().includes('LOCATION SET'), 5000, why);
    // HQ (assigned, with IP groups of its own) and the branch both leave the phone's IP out.
    await srv.api.patch(`/api/locations/${hqId}`, { ipGroups: HQ.ipGroups });
    await shows('No match: 2 to choose');
    expect(screen()).toContain('Set: Example Corp');
    expect(screen()).not.toContain('Soft1: accept'); // nothing to suggest
    sim.press('ok');
    await shows('1/2 ');
    const first = screen();
    sim.press('down');
    await shows('2/2 ');
    const second = screen();
    // Every location of the account is offered, the assigned one tagged.
    expect([first, second].join('\n')).toContain('Example Corp (set now)');
    expect([first, second].join('\n')).toContain('Example Corp Toronto');
    if (!second.includes('Example Corp Toronto')) {
      sim.press('up');
      await shows('1/2 Example Corp Toronto');
    }
    sim.press('ok');
    await until(async () => (await userLocation()) === branchId, 10_000, 'the pick from the whole list was not made hers');
    await until(async () => (await agentAddressCode()) === 'YYZ-1', 10_000, 'the branch address never reached the phone');
  });
});
