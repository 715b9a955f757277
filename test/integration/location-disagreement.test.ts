// A phone provisioned at 100 Main St, Bldg A, Floor 2 is plugged into a switch
// port in another building (lldpd in its own namespace: 170 Tasman Drive, Bldg
// B4, Floor 3, with an ELIN), or gets another address from DHCP option 99
// (dnsmasq). Recommendations are off. For each account policy the real
// provisioning server issues the signed address with the policy in it; the
// agent's location parts run in the phone's namespace with that address and
// report the disagreement (event, display alert); the event, published to the
// server as the phone, marks the phone with both addresses on /api/phones.
// With the PJSIP addon built, the real emergency path places a 911 call to a
// strict SIPp PSAP in the phone's namespace: which address comes first in the
// PIDF-LO, and the notice email's text. Then the whole agent (dist/agent/main.js)
// runs in the phone's namespace with a simulated handset (MCU simulator on a
// socat pty pair), provisioned over MQTT: each policy's alert on its display,
// the pick on its keypad, 911 from its keypad.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetNs, vethPair } from '../helpers/netns.js';
import { LocationHarness, type HarnessLine } from '../helpers/location-harness.js';
import { stopProcess } from '../helpers/process.js';
import { HQ, startTestServer, type TestServer } from '../helpers/server-app.js';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.js';
import { startSipp } from '../helpers/sip.js';
import { VOICE_ADDON, agentConfig, spawnAgent, waitFor, type AgentProcess } from '../helpers/agent.js';
import { startPtyPair, type PtyPair } from '../../hal/sim/pty-pair.js';
import { McuSimulator } from '../../hal/sim/mcu-simulator.js';
import { nativePortFactory, SerialTransport } from '../../hal/mcu/transport/serial.js';
import { E911CTL, staleBuild } from '../helpers/emergency.js';
import { silentLog } from '../helpers/log.js';
import { TASMAN_LLDPCLI } from '../helpers/address.js';
import type { StoredEvent } from '../../provisioning/server/db/repo.js';
import { REPO_ROOT } from '../helpers/bundle.js';
import { multipartParts, receivedInvites } from '../helpers/emergency.js';
import { checkPidfTexts, el, xpath } from '../helpers/pidf-check.js';
import { requires } from '../helpers/require.js';
import { NS } from '../../provisioning/pidf/pidf.js';
import { encodeCivicOption } from '../../agent/location/dhcp-codec.js';
import { documentHash, publicKeyFromText, verifyDocument } from '../../provisioning/protocol/signing.js';
import { topicFor } from '../../provisioning/protocol/topics.js';
import type { SignedAddress } from '../../provisioning/protocol/messages.js';
import type { LocationPolicy } from '../../provisioning/protocol/address.js';
import type { StoredAddress } from '../../agent/store/store.js';

const gate = requires('location-disagreement tests', ['netns', 'lldpd', 'dhcp']);
const sipGate = requires('the 911 calls of the location-disagreement tests (PSAP, notice)', ['voice', 'sipp', 'xmllint']);
const agentGate = requires('the whole agent with a simulated handset in the phone namespace (display alert, keypad pick, 911)', [
  'socat',
  'voice',
  'sipp',
  'xmllint',
]);
const stale = staleBuild([
  'agent/main.ts',
  'agent/root.ts',
  'agent/location/service.ts',
  'agent/handset/handset-ui.ts',
  'agent/cli/e911ctl.ts',
  'agent/cli/location-text.ts',
]);
const SOCAT = ['/usr/bin/socat', '/usr/local/bin/socat'].find((p) => existsSync(p));

const PSAP = path.join(REPO_ROOT, 'test/fixtures/emergency/psap.xml');
const HOOK = path.join(REPO_ROOT, 'scripts/dhcp/udhcpc-e911.sh');
// biome-ignore lint/suspicious/noExplicitAny: JSON read back from the agent or the server; the assertions check its shape
type Json = any;
type Ev = { id: string; type: string; data: Record<string, Json> };

/** The INVITE's PIDF-LO, checked against the schemas: RD and method of its first and second location. */
function pidfOrder(invite: ReturnType<typeof receivedInvites>[number]) {
  const pidf = multipartParts(invite).find((p) => p.headers.some((x) => /application\/pidf\+xml/i.test(x.value)))!.body;
  expect(checkPidfTexts([pidf])[0]).toMatchObject({ ok: true });
  const rd = (i: number) => xpath(pidf, `string(//${el('device', NS.dm)}[${i}]//${el('RD', NS.ca)})`).trim();
  const method = (i: number) => xpath(pidf, `string(//${el('device', NS.dm)}[${i}]//${el('method', NS.gp)})`).trim();
  return { first: rd(1), firstMethod: method(1), second: rd(2), secondMethod: method(2), entity: xpath(pidf, 'string(/*/@entity)').trim() };
}
const isEvent =
  (type: string, pred: (d: Record<string, Json>) => boolean = () => true) =>
  (l: HarnessLine) =>
    l.t === 'event' && (l.event as Ev).type === type && pred((l.event as Ev).data);

describe.skipIf(gate.skip)('the network says the phone is somewhere else', () => {
  let phone: NetNs;
  let sw: NetNs;
  let dir = '';
  let swSock = '';
  let switchDaemon: ChildProcess;
  let srv: TestServer;
  let smtp: SmtpSink;
  let phoneMqtt: mqtt.MqttClient;
  let hqId = 0;
  const swCli = (...args: string[]) =>
    execFileSync('ip', ['netns', 'exec', sw.name, 'lldpcli', '-u', swSock, ...args], { encoding: 'utf8' });

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'e911-dis-'));
    chmodSync(dir, 0o755); // lldpcli drops to _lldpd before it connects
    swSock = path.join(dir, 'switch.sock');
    phone = new NetNs('ph');
    sw = new NetNs('sw');
    vethPair(phone, 'eth0', sw, 'ge1');
    sw.ip('addr', 'add', '10.77.0.1/24', 'dev', 'ge1');
    switchDaemon = spawn(
      'ip',
      ['netns', 'exec', sw.name, 'lldpd', '-d', '-M', '4', '-u', swSock, '-I', 'ge1', '-S', 'building B4 switch'],
      { stdio: 'ignore' },
    );
    for (let i = 0; i < 100 && !existsSync(swSock); i++) await new Promise((r) => setTimeout(r, 20));
    swCli('configure', 'ports', 'ge1', 'med', 'location', 'address', ...TASMAN_LLDPCLI, 'language', 'en', 'room', '3-101');
    swCli('configure', 'ports', 'ge1', 'med', 'location', 'elin', '4085550123');
    swCli('configure', 'med', 'fast-start', 'enable');
    // One switch serves a new phone lldpd per test: when an earlier one's neighbour entry has not
    // aged out, fast start may not fire, and the next advertisement would be 30 s away.
    swCli('configure', 'lldp', 'tx-interval', '1');

    smtp = await startSmtpSink();
    srv = await startTestServer();
    const { api } = srv;
    await api.patch('/api/account', { name: 'Example Corp', contactEmail: 'it@example.com' });
    await api.put('/api/account/notifications', {
      smtp: { host: '127.0.0.1', port: smtp.port, security: 'none', from: 'e911@example.com' },
    });
    hqId = (await api.post<{ id: number }>('/api/locations', HQ)).id;
    await api.post('/api/users', {
      username: 'alice',
      displayName: 'Alice Smith',
      locationId: hqId,
      callback: '+14085550100',
      emails: ['alice@example.com'],
      deviceIds: ['phone-1'],
    });
    const creds = await api.post<{ username: string; password: string }>('/api/phones/phone-1/credentials');
    await api.post('/api/account/e911', { enabled: true });
    phoneMqtt = await mqtt.connectAsync(srv.app.brokerUrl, {
      clientId: 'phone-1',
      protocolVersion: 4,
      username: creds.username,
      password: creds.password,
    });
  }, 30_000);

  afterAll(async () => {
    await phoneMqtt?.endAsync();
    await srv?.stop();
    await smtp?.close();
    await stopProcess(switchDaemon);
    phone?.remove();
    sw?.remove();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Sets the account's policy and returns the signed address the server issued with it. */
  async function issuedWith(policy: LocationPolicy, elinCallback = false): Promise<StoredAddress> {
    await srv.api.patch('/api/account', { locationPolicy: policy, elinCallback });
    let signed: SignedAddress | null = null;
    for (let i = 0; i < 200; i++) {
      const s = await srv.app.repo.issuedAddress('phone-1');
      if (s?.signed) {
        const doc = (JSON.parse(s.signed) as SignedAddress).doc;
        if ((doc.locationPolicy ?? 'network-first') === policy && Boolean(doc.elinCallback) === elinCallback) {
          signed = JSON.parse(s.signed) as SignedAddress;
          break;
        }
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    expect(signed, `no address issued with policy ${policy}`).not.toBeNull();
    expect(verifyDocument(signed!.doc, signed!.sig, publicKeyFromText(srv.keys.publicKey))).toBe(true);
    return {
      doc: signed!.doc,
      version: signed!.doc.version,
      hash: documentHash(signed!.doc),
      signature: signed!.sig,
      receivedAt: signed!.doc.issuedAt,
      appliedAt: signed!.doc.issuedAt,
    };
  }

  async function harness(
    address: StoredAddress,
    o: { lldp?: boolean; dhcpDir?: string; psapPort?: number } = {},
  ): Promise<LocationHarness> {
    const network = {
      interfaces: ['eth0', 'eth1'],
      debounceMs: 20,
      lldp:
        o.lldp === false ? { enabled: false } : { enabled: true, runDaemon: true, socketPath: path.join(dir, `phone-${Date.now()}.sock`) },
      dhcp: { enabled: o.dhcpDir !== undefined },
      recommendations: { firstCheckMs: 3_600_000, checkEveryMs: 3_600_000 },
    };
    const extra: Record<string, unknown> = { address };
    if (o.psapPort) {
      extra.emergency = {
        addonPath: VOICE_ADDON,
        sip: { bindAddress: '127.0.0.1', publicAddress: '127.0.0.1', port: 5062, rtpPort: 40000 },
        emergency: { routes: { primary: `sip:127.0.0.1:${o.psapPort}` } },
      };
    }
    return LocationHarness.start(phone, network, o.dhcpDir ? { E911_DHCP_LOCATION_DIR: o.dhcpDir } : {}, undefined, extra);
  }

  /** Publishes an event the harness queued to the server, as the phone's outbox would. */
  const toServer = (e: Ev) => phoneMqtt.publishAsync(topicFor('phone-1', 'events'), JSON.stringify(e), { qos: 1 });

  async function phoneRow(pred: (d: Json) => boolean, deviceId = 'phone-1') {
    for (let i = 0; i < 200; i++) {
      const p = (await srv.api.get<{ deviceId: string; disagreement: Json }[]>('/api/phones')).find((x) => x.deviceId === deviceId);
      if (p && pred(p.disagreement)) return p;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error('the phone was not marked as expected on /api/phones');
  }

  /** With the addon: 911 to a strict SIPp PSAP; returns the first and second civic RD and the notice's text. */
  async function call911(h: LocationHarness, psapPort: number) {
    const sipp = await startSipp({ scenario: PSAP, port: psapPort, timeoutSec: 20, netns: phone.name });
    try {
      const from = h.mark();
      h.send({ cmd: 'dial', id: '911' });
      const d = await h.waitFor((l) => l.t === 'dialed', 5000, from);
      expect(d.result, JSON.stringify(d.result)).toMatchObject({ kind: 'emergency', placed: true });
      const ev = (await h.waitFor(isEvent('emergency-call'), 5000, from)).event as Ev;
      await h.waitFor(
        isEvent('emergency-call-progress', (x) => x.phase === 'answered'),
        10_000,
        from,
      );
      h.send({ cmd: 'hangup' });
      expect((await sipp.exited).code, sipp.errors()).toBe(0);
      const invite = receivedInvites(sipp.messages())[0]!;
      const order = pidfOrder(invite);
      await toServer(ev);
      // This call's own notice (by event id): not whichever mail came last.
      const mine = () => smtp.mails.find((m) => m.headers['x-e911-event-id'] === ev.id);
      for (let i = 0; i < 400 && !mine(); i++) await new Promise((r) => setTimeout(r, 25));
      const mail = mine();
      expect(mail, `no notice for event ${ev.id} at the SMTP sink`).toBeDefined();
      return { ...order, invite, notice: mail!.text };
    } finally {
      await sipp.close();
    }
  }

  const sip = !sipGate.skip;

  it('network-first (the default): detected with recommendations off; the switch address goes first; event, alert, portal mark, PSAP, notice', async () => {
    const address = await issuedWith('network-first');
    expect(address.doc.locationPolicy).toBeUndefined(); // the default travels as no field at all
    const h = await harness(address, sip ? { psapPort: 5070 } : {});
    try {
      const ev = (await h.waitFor(isEvent('location-disagreement'), 15_000, 0)).event as Ev;
      expect(ev.data).toMatchObject({
        state: 'open',
        policy: 'network-first',
        chosen: 'network',
        fields: ['street', 'number', 'building', 'floor'],
        elin: '4085550123',
        network: { source: 'lldp-med', method: 'LLDP-MED', civic: { RD: 'Tasman', STS: 'Drive', HNO: '170', BLD: 'B4', FLR: '3' } },
        provisioned: { civic: { RD: 'Main St', HNO: '100', BLD: 'A', FLR: '2' }, locationCode: 'SJC-A' },
      });
      const alert = await h.waitFor((l) => l.t === 'alert' && l.id === 'location-disagreement', 5000, 0);
      expect(alert.lines).toEqual([
        'LOCATION DIFFERS',
        'Switch: 170 Tasman Drive, Bldg B4 Floor 3 Room 3-101',
        'Set: 100 Main St, Bldg A Floor 2 Room 210',
        '911 sends: switch',
        'OK: dismiss',
      ]);
      h.send({ cmd: 'list' });
      const list = (await h.waitFor((l) => l.t === 'list')).result as {
        candidates: { source: string }[];
        elin: string;
        disagreement: { chosen: string };
      };
      expect(list.candidates.map((c) => c.source).slice(0, 2)).toEqual(['lldp-med', 'provisioned']);
      expect(list.elin).toBe('4085550123');
      await toServer(ev);
      const row = await phoneRow((d) => d?.state === 'open');
      expect(row.disagreement).toMatchObject({
        chosen: 'network',
        network: { civic: { RD: 'Tasman' } },
        provisioned: { civic: { RD: 'Main St' } },
        eventId: ev.id,
      });
      if (sip) {
        const c = await call911(h, 5070);
        expect([c.first, c.firstMethod, c.second, c.secondMethod]).toEqual(['Tasman', 'LLDP-MED', 'Main St', 'Manual']);
        expect(c.notice).toMatch(/Dispatchable address:\s+170 Tasman Drive, Bldg B4 Floor 3 Room 3-101/);
        expect(c.notice).toMatch(/Sent first: the switch's address \(LLDP-MED\)\. Also sent, second: the provisioned address\./);
        expect(c.notice).toMatch(/Second address sent:\s+Example Corp, 100 Main St, Bldg A Floor 2 Room 210, San Jose, CA 95110-1234/);
        expect(c.notice).toMatch(/ELIN:\s+4085550123/);
      }
    } finally {
      await h.stop();
    }
  }, 60_000);

  it('provisioned-first: the provisioned address goes first, the switch second', async () => {
    const h = await harness(await issuedWith('provisioned-first'), sip ? { psapPort: 5072 } : {});
    try {
      const ev = (await h.waitFor(isEvent('location-disagreement'), 15_000, 0)).event as Ev;
      expect(ev.data).toMatchObject({ state: 'open', policy: 'provisioned-first', chosen: 'provisioned' });
      expect((await h.waitFor((l) => l.t === 'alert' && l.id === 'location-disagreement', 5000, 0)).lines).toContain(
        '911 sends: set address',
      );
      await toServer(ev);
      await phoneRow((d) => d?.chosen === 'provisioned' && d?.policy === 'provisioned-first');
      if (sip) {
        const c = await call911(h, 5072);
        expect([c.first, c.second]).toEqual(['Main St', 'Tasman']);
        expect(c.notice).toMatch(/Sent first: the provisioned address\. Also sent, second: the switch's address \(LLDP-MED\)\./);
      }
    } finally {
      await h.stop();
    }
  }, 60_000);

  it('ask-user: network first until the user presses Soft2 on the handset, then the provisioned one; the ELIN is the callback where the account says so', async () => {
    const h = await harness(await issuedWith('ask-user', true), sip ? { psapPort: 5074 } : {});
    try {
      const ev = (await h.waitFor(isEvent('location-disagreement'), 15_000, 0)).event as Ev;
      expect(ev.data).toMatchObject({ policy: 'ask-user', chosen: 'network' });
      const alert = await h.waitFor((l) => l.t === 'alert' && l.id === 'location-disagreement', 5000, 0);
      expect((alert.lines as string[]).slice(3)).toEqual(['911 sends: switch', 'Soft1: use switch', 'Soft2: use set address']);
      const from = h.mark();
      h.send({ cmd: 'key', id: 'soft2' });
      expect((await h.waitFor((l) => l.t === 'key', 5000, from)).consumed).toBe(true);
      const picked = (
        await h.waitFor(
          isEvent('location-disagreement', (d) => d.chosen === 'provisioned'),
          5000,
          from,
        )
      ).event as Ev;
      await h.waitFor((l) => l.t === 'alert-clear' && l.id === 'location-disagreement', 5000, from);
      await toServer(ev);
      await toServer(picked);
      await phoneRow((d) => d?.chosen === 'provisioned' && d?.policy === 'ask-user');
      if (sip) {
        const c = await call911(h, 5074);
        expect([c.first, c.second]).toEqual(['Main St', 'Tasman']);
        expect(c.invite.headers.find((x) => x.name === 'P-Asserted-Identity')!.value).toContain('tel:+14085550123');
        expect(c.invite.headers.find((x) => x.name === 'From')!.value).toContain('+14085550123');
        expect(c.entity).toContain('+14085550123');
        expect(c.notice).toMatch(/Callback number:\s+\+14085550123 \(the switch's ELIN\)/);
      }
    } finally {
      await h.stop();
    }
  }, 60_000);

  // The harness above runs the location parts with a stand-in alerts sink. Here the whole
  // agent (dist/agent/main.js) runs in the phone's namespace with its own lldpd, provisioned
  // over MQTT by the real server, its handset a simulated MCU on a socat pty pair: what the
  // user sees is what the display shows, and the pick is a key on the keypad.
  it.skipIf(agentGate.skip)(
    'the whole agent with a simulated handset: the alert of each policy on the display names both addresses, the event reaches the server over MQTT; ask-user is picked on the keypad and the next 911 follows the pick',
    async () => {
      if (stale) throw new Error(stale);
      await issuedWith('network-first');
      // A second phone: phone-1's client id belongs to this file's own MQTT client.
      await srv.api.post('/api/users', {
        username: 'bob',
        displayName: 'Bob Jones',
        locationId: hqId,
        callback: '+14085550111',
        emails: ['bob@example.com'],
        deviceIds: ['phone-2'],
      });
      const creds = await srv.api.post<{ username: string; password: string }>('/api/phones/phone-2/credentials');
      const serverEvents: StoredEvent[] = [];
      const onEvent = (e: StoredEvent) => e.deviceId === 'phone-2' && serverEvents.push(e);
      srv.app.bus.on('event', onEvent);
      // The server's broker is on the host's loopback, the agent in the phone's namespace: a
      // Unix socket crosses namespaces, so socat there listens on 127.0.0.1:1883 and forwards
      // to a relay here that connects to the broker.
      const brokerPort = Number(new URL(srv.app.brokerUrl).port);
      const relaySock = path.join(dir, 'broker.sock');
      const relayed = new Set<net.Socket>();
      const relay = net.createServer((c) => {
        const b = net.connect(brokerPort, '127.0.0.1');
        for (const x of [c, b]) {
          relayed.add(x);
          x.once('close', () => relayed.delete(x));
        }
        c.pipe(b).pipe(c);
        // One side failing ends the other: the agent sees a dropped link and reconnects, as it would.
        c.on('error', () => b.destroy());
        b.on('error', () => c.destroy());
      });
      await new Promise<void>((r) => relay.listen(relaySock, r));
      const bridge = spawn(
        'ip',
        ['netns', 'exec', phone.name, SOCAT!, 'TCP-LISTEN:1883,bind=127.0.0.1,reuseaddr,fork', `UNIX-CONNECT:${relaySock}`],
        { stdio: 'ignore' },
      );
      let pair: PtyPair | null = null;
      let sim: McuSimulator | null = null;
      let agent: AgentProcess | null = null;
      const screen = () => (sim ? sim.screen.lines.map((l) => l.trimEnd()) : []);
      const why = () =>
        `screen:\n${screen().join('\n')}\nserver events: ${serverEvents.map((e) => `${e.type}${e.type === 'location-disagreement' ? ` ${e.data.policy}/${e.data.chosen}` : ''}`).join(', ')}\nagent output:\n${agent?.output().slice(-3000)}`;
      /** The first event of this type at the server, from index `from` on, that matches. */
      const serverEvent = async (type: string, pred: (d: Record<string, Json>) => boolean, from = 0) => {
        const match = () => serverEvents.slice(from).find((e) => e.type === type && pred(e.data));
        await waitFor(
          () => match() !== undefined,
          15_000,
          () => `no ${type} at the server as expected\n${why()}`,
        );
        return match()!;
      };
      /** A new address (the policy travels in it) brings the notice back: OK acknowledges it. */
      const acknowledgeNotice = async () => {
        // Not the first start's "no address on file" notice: the one with the pushed address.
        await waitFor(() => screen()[0] === 'EMERGENCY 911 NOTICE' && screen().includes('100 Main St'), 15_000, why);
        sim!.press('ok');
        await waitFor(() => screen()[0] !== 'EMERGENCY 911 NOTICE', 5000, why);
      };
      /** The display shows exactly these rows on top (frames arrive row by row: wait for the last one too). */
      const shows = (rows: string[]) =>
        waitFor(
          () => JSON.stringify(screen().slice(0, rows.length)) === JSON.stringify(rows),
          10_000,
          () => `expected on top:\n${rows.join('\n')}\n${why()}`,
        );
      const SWITCH = 'Switch: 170 Tasman Drive, Bldg B4 Floor 3 Room 3-101';
      const SET = 'Set: 100 Main St, Bldg A Floor 2 Room 210';
      /** Off-hook, 911 on the keypad, to a strict PSAP in the phone's namespace; the PIDF-LO's order and the call's notice. */
      const keypad911 = async () => {
        const sipp = await startSipp({ scenario: PSAP, port: 5076, timeoutSec: 20, netns: phone.name });
        try {
          const before = serverEvents.length;
          sim!.setHook(true);
          sim!.type('911');
          await waitFor(
            () => /ACK /.test(sipp.messages()),
            10_000,
            () => `no ACK at the PSAP\n${sipp.messages()}\n${why()}`,
          );
          sim!.setHook(false); // BYE
          expect((await sipp.exited).code, sipp.errors()).toBe(0);
          const order = pidfOrder(receivedInvites(sipp.messages())[0]!);
          await waitFor(() => serverEvents.slice(before).some((e) => e.type === 'emergency-call'), 15_000, why);
          const ev = serverEvents.slice(before).find((e) => e.type === 'emergency-call')!;
          const mine = () => smtp.mails.find((m) => m.headers['x-e911-event-id'] === ev.id);
          await waitFor(
            () => mine() !== undefined,
            15_000,
            () => `no notice for ${ev.id}\n${why()}`,
          );
          return { ...order, notice: mine()!.text };
        } finally {
          await sipp.close();
        }
      };
      try {
        pair = await startPtyPair(path.join(dir, 'pty'), SOCAT);
        const log = silentLog();
        // Wide enough that each alert line is one row: the rows can be compared as they are.
        sim = new McuSimulator({
          transport: new SerialTransport({
            path: pair.mcu,
            openPort: await nativePortFactory(pair.mcu, 115200),
            log,
            backoffMinMs: 20,
            backoffMaxMs: 200,
          }),
          log,
          rows: 8,
          cols: 64,
        });
        sim.start();
        const setup = agentConfig(
          path.join(dir, 'agent'),
          { deviceId: 'phone-2', brokerUrl: 'mqtt://127.0.0.1:1883', serverPublicKey: srv.keys.publicKey },
          {
            broker: {
              urls: ['mqtt://127.0.0.1:1883'],
              protocolVersion: 4,
              username: creds.username,
              password: creds.password,
              reconnectMinMs: 100,
              reconnectMaxMs: 1000,
            },
            network: {
              backend: 'netlink',
              interfaces: ['eth0'],
              debounceMs: 20,
              lldp: { enabled: true, runDaemon: true, socketPath: path.join(dir, 'agent-lldpd.sock') },
              dhcp: { enabled: false },
              recommendations: { firstCheckMs: 3_600_000, checkEveryMs: 3_600_000 },
            },
            handset: { backend: 'serial', path: pair.agent },
            sip: { bindAddress: '127.0.0.1', publicAddress: '127.0.0.1', port: 5064, rtpPort: 40100 },
            emergency: { routes: { primary: 'sip:127.0.0.1:5076' } },
          },
        );
        agent = await spawnAgent(setup, {}, undefined, { netns: phone.name });

        // network-first (the default)
        await acknowledgeNotice();
        await shows(['LOCATION DIFFERS', SWITCH, SET, '911 sends: switch', 'OK: dismiss']);
        await waitFor(() => sim!.screen.leds.alert?.mode === 'blink-slow', 5000, why);
        const nf = await serverEvent('location-disagreement', (d) => d.state === 'open' && d.policy === 'network-first');
        expect(nf.data).toMatchObject({
          chosen: 'network',
          elin: '4085550123',
          network: { source: 'lldp-med', civic: { RD: 'Tasman', HNO: '170' } },
          provisioned: { civic: { RD: 'Main St', HNO: '100' } },
        });
        await phoneRow(
          (d) => d?.chosen === 'network' && d?.network?.civic?.RD === 'Tasman' && d?.provisioned?.civic?.RD === 'Main St',
          'phone-2',
        );
        // e911ctl location list, as text: every candidate with source, method, age, and the ELIN.
        const list = await new Promise<string>((resolve, reject) =>
          execFile(process.execPath, [E911CTL, '--socket', setup.socketPath, 'location', 'list'], { timeout: 10_000 }, (err, out) =>
            err ? reject(err) : resolve(out),
          ),
        );
        expect(list).toMatch(/ELIN from the switch: 4085550123/);
        expect(list).toMatch(/policy when the network disagrees: network-first/);
        expect(list).toMatch(/a 911 call sends the lldp-med address first, the other second/);
        expect(list).toMatch(/^\s+1\. lldp-med\s+LLDP-MED\s+civic\s+age \d[\d.]* (ms|s|min)\b.*ELIN 4085550123$/m);
        expect(list).toMatch(/^\s+2\. provisioned\s+Manual\s+civic\s+age \d/m);
        expect(list).toMatch(/^candidates \(2, best first\):$/m); // this switch sends no coordinates
        sim.press('ok'); // dismissed
        await waitFor(() => screen()[0] !== 'LOCATION DIFFERS', 5000, why);
        await waitFor(() => sim!.screen.leds.alert?.mode === 'off', 5000, why); // the LED frame follows the rows

        // provisioned-first
        await issuedWith('provisioned-first');
        await acknowledgeNotice();
        await shows(['LOCATION DIFFERS', SWITCH, SET, '911 sends: set address', 'OK: dismiss']);
        await serverEvent(
          'location-disagreement',
          (d) => d.state === 'open' && d.policy === 'provisioned-first' && d.chosen === 'provisioned',
        );
        await phoneRow((d) => d?.chosen === 'provisioned' && d?.policy === 'provisioned-first', 'phone-2');
        sim.press('ok');
        await waitFor(() => screen()[0] !== 'LOCATION DIFFERS', 5000, why);

        // ask-user: the switch's address first until the user picks on the keypad. The calls are
        // made here only: network-first and provisioned-first calls are the harness tests' above,
        // and the two picks below send each order through the agent's own wiring (agent/root.ts).
        await issuedWith('ask-user');
        await acknowledgeNotice();
        await shows(['LOCATION DIFFERS', SWITCH, SET, '911 sends: switch', 'Soft1: use switch', 'Soft2: use set address']);
        await serverEvent('location-disagreement', (d) => d.policy === 'ask-user' && d.chosen === 'network');
        sim.press('ok'); // not an answer: the alert stays
        await waitFor(() => sim!.unacked === 0, 5000, why); // the agent has the key
        expect(screen()[0]).toBe('LOCATION DIFFERS');
        sim.press('soft2');
        await waitFor(() => screen()[0] !== 'LOCATION DIFFERS', 5000, why);
        await serverEvent('location-disagreement', (d) => d.policy === 'ask-user' && d.chosen === 'provisioned');
        await phoneRow((d) => d?.chosen === 'provisioned' && d?.policy === 'ask-user', 'phone-2');
        const picked = await keypad911();
        expect([picked.first, picked.firstMethod, picked.second, picked.secondMethod]).toEqual(['Main St', 'Manual', 'Tasman', 'LLDP-MED']);
        expect(picked.notice).toMatch(/Sent first: the provisioned address\. Also sent, second: the switch's address \(LLDP-MED\)\./);
        expect(picked.notice).toMatch(/Dispatchable address:\s+Example Corp, 100 Main St, Bldg A Floor 2 Room 210/);
        expect(picked.notice).toMatch(/Second address sent:\s+170 Tasman Drive, Bldg B4 Floor 3 Room 3-101/);
        // The pick changed back (e911ctl, as a technician would): the next INVITE follows it again.
        const beforeUse = serverEvents.length;
        const use = await new Promise<string>((resolve, reject) =>
          execFile(
            process.execPath,
            [E911CTL, '--socket', setup.socketPath, 'location', 'use', 'network'],
            { timeout: 10_000 },
            (err, out) => (err ? reject(err) : resolve(out)),
          ),
        );
        expect(use.trim()).toBe('picked the network address: a 911 call sends network first');
        await serverEvent('location-disagreement', (d) => d.policy === 'ask-user' && d.chosen === 'network', beforeUse);
        const back = await keypad911();
        expect([back.first, back.second]).toEqual(['Tasman', 'Main St']);
        expect(back.notice).toMatch(/Sent first: the switch's address \(LLDP-MED\)\. Also sent, second: the provisioned address\./);
      } finally {
        srv.app.bus.off('event', onEvent);
        if (agent && agent.child.exitCode === null) {
          agent.child.kill('SIGTERM');
          await agent.exited;
        }
        await sim?.stop();
        await pair?.stop();
        await stopProcess(bridge);
        for (const x of relayed) x.destroy();
        await new Promise((r) => relay.close(r));
      }
    },
    120_000,
  );

  it('DHCP option 99 from dnsmasq naming another address is a disagreement too: network-first and provisioned-first (event, alert, which address the strict PSAP receives first, the notice); when the lease is gone, it is resolved', async () => {
    // Only DHCP here: the phone's LLDP is off, a second port is on a DHCP network.
    const lan = new NetNs('lan');
    vethPair(phone, 'eth1', lan, 'lan0');
    const handOver = path.join(dir, 'handover');
    let dnsmasq: ChildProcess | null = null;
    const NETWORK = '2200 Mission College Blvd, Bldg SC1 Floor 1, Santa Clara, CA 95054';
    const PROVISIONED = 'Example Corp, 100 Main St, Bldg A Floor 2 Room 210, San Jose, CA 95110-1234';
    let h = await harness(await issuedWith('network-first'), { lldp: false, dhcpDir: handOver, ...(sip ? { psapPort: 5078 } : {}) });
    try {
      lan.ip('addr', 'add', '10.88.0.1/24', 'dev', 'lan0');
      const civic = encodeCivicOption(2, 'US', [
        [1, 'CA'],
        [3, 'Santa Clara'],
        [34, 'Mission College'],
        [18, 'Blvd'],
        [19, '2200'],
        [24, '95054'],
        [25, 'SC1'],
        [27, '1'],
      ]);
      dnsmasq = spawn(
        'ip',
        [
          'netns',
          'exec',
          lan.name,
          'dnsmasq',
          '--no-daemon',
          '--conf-file=/dev/null',
          '--port=0',
          '--interface=lan0',
          '--bind-interfaces',
          '--dhcp-range=10.88.0.100,10.88.0.150,255.255.255.0,1h',
          '--dhcp-broadcast',
          `--dhcp-option-force=99,${[...civic].map((x) => x.toString(16).padStart(2, '0')).join(':')}`,
          `--dhcp-leasefile=${path.join(dir, 'leases')}`,
          '--user=root',
          '--group=root',
        ],
        { stdio: 'ignore' },
      );
      execFileSync(
        'ip',
        ['netns', 'exec', phone.name, 'udhcpc', '-i', 'eth1', '-f', '-q', '-n', '-t', '5', '-T', '1', '-O', '99', '-s', HOOK],
        { env: { ...process.env, E911_DHCP_LOCATION_DIR: handOver }, stdio: 'ignore', timeout: 20_000 },
      );

      // network-first: the network's address goes first.
      const ev = (
        await h.waitFor(
          isEvent('location-disagreement', (d) => d.network?.source === 'dhcp'),
          10_000,
          0,
        )
      ).event as Ev;
      expect(ev.data).toMatchObject({
        state: 'open',
        policy: 'network-first',
        chosen: 'network',
        fields: ['street', 'number', 'city', 'building', 'floor'],
        network: { source: 'dhcp', method: 'DHCP', civic: { A3: 'Santa Clara', HNO: '2200' } },
        provisioned: { civic: { RD: 'Main St' } },
        elin: null,
      });
      expect((await h.waitFor((l) => l.t === 'alert' && l.id === 'location-disagreement', 5000, 0)).lines).toEqual([
        'LOCATION DIFFERS',
        'Network: 2200 Mission College Blvd, Bldg SC1 Floor 1',
        'Set: 100 Main St, Bldg A Floor 2 Room 210',
        '911 sends: network',
        'OK: dismiss',
      ]);
      await toServer(ev);
      await phoneRow((d) => d?.network?.source === 'dhcp' && d?.chosen === 'network' && d?.provisioned?.civic?.RD === 'Main St');
      if (sip) {
        const c = await call911(h, 5078);
        expect([c.first, c.firstMethod, c.second, c.secondMethod]).toEqual(['Mission College', 'DHCP', 'Main St', 'Manual']);
        expect(c.notice).toMatch(new RegExp(`Dispatchable address:\\s+${NETWORK}`));
        expect(c.notice).toMatch(/Sent first: the network's address \(DHCP\)\. Also sent, second: the provisioned address\./);
        expect(c.notice).toMatch(new RegExp(`Second address sent:\\s+${PROVISIONED}`));
      }
      await h.stop();

      // provisioned-first: the lease (and its hand-over file) stays; the phone restarts with the new signed address.
      h = await harness(await issuedWith('provisioned-first'), { lldp: false, dhcpDir: handOver, ...(sip ? { psapPort: 5080 } : {}) });
      const pf = (
        await h.waitFor(
          isEvent('location-disagreement', (d) => d.network?.source === 'dhcp'),
          10_000,
          0,
        )
      ).event as Ev;
      expect(pf.data).toMatchObject({
        state: 'open',
        policy: 'provisioned-first',
        chosen: 'provisioned',
        network: { source: 'dhcp', method: 'DHCP', civic: { A3: 'Santa Clara' } },
      });
      expect((await h.waitFor((l) => l.t === 'alert' && l.id === 'location-disagreement', 5000, 0)).lines).toContain(
        '911 sends: set address',
      );
      await toServer(pf);
      await phoneRow((d) => d?.network?.source === 'dhcp' && d?.chosen === 'provisioned' && d?.policy === 'provisioned-first');
      if (sip) {
        const c = await call911(h, 5080);
        expect([c.first, c.firstMethod, c.second, c.secondMethod]).toEqual(['Main St', 'Manual', 'Mission College', 'DHCP']);
        expect(c.notice).toMatch(new RegExp(`Dispatchable address:\\s+${PROVISIONED}`));
        expect(c.notice).toMatch(/Sent first: the provisioned address\. Also sent, second: the network's address \(DHCP\)\./);
        expect(c.notice).toMatch(new RegExp(`Second address sent:\\s+${NETWORK}`));
      }

      const from = h.mark();
      execFileSync(HOOK, ['deconfig'], { env: { ...process.env, E911_DHCP_LOCATION_DIR: handOver, interface: 'eth1' } });
      const resolved = (
        await h.waitFor(
          isEvent('location-disagreement', (d) => d.state === 'resolved'),
          10_000,
          from,
        )
      ).event as Ev;
      await h.waitFor((l) => l.t === 'alert-clear' && l.id === 'location-disagreement', 5000, from);
      await toServer(resolved);
      await phoneRow((d) => d === null);
    } finally {
      await h.stop();
      if (dnsmasq) await stopProcess(dnsmasq);
      lan.remove();
    }
  }, 90_000);
});
