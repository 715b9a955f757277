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
// PIDF-LO, and the notice email's text.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetNs, netnsAvailable, vethPair } from '../helpers/netns.js';
import { LocationHarness, type HarnessLine } from '../helpers/location-harness.js';
import { stopProcess } from '../helpers/process.js';
import { HQ, startTestServer, type TestServer } from '../helpers/server-app.js';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.js';
import { startSipp } from '../helpers/sip.js';
import { VOICE_ADDON } from '../helpers/agent.js';
import { REPO_ROOT } from '../helpers/bundle.js';
import { multipartParts, receivedInvites } from '../helpers/emergency.js';
import { checkPidfTexts, el, xpath } from '../helpers/pidf-check.js';
import { requires } from '../helpers/require.js';
import { NS } from '../../agent/location/pidf.js';
import { encodeCivicOption } from '../../agent/location/dhcp-codec.js';
import { documentHash, publicKeyFromText, verifyDocument } from '../../provisioning/protocol/signing.js';
import { topicFor } from '../../provisioning/protocol/topics.js';
import type { SignedAddress } from '../../provisioning/protocol/messages.js';
import type { LocationPolicy } from '../../provisioning/protocol/address.js';
import type { StoredAddress } from '../../agent/store/store.js';

const gate = requires('location-disagreement tests', ['netns', 'lldpd', 'dhcp']);
const sipGate = requires('the 911 calls of the location-disagreement tests (PSAP, notice)', ['voice', 'sipp', 'xmllint']);

const PSAP = path.join(REPO_ROOT, 'test/fixtures/emergency/psap.xml');
const HOOK = path.join(REPO_ROOT, 'scripts/dhcp/udhcpc-e911.sh');
type Ev = { id: string; type: string; data: Record<string, any> };
const isEvent = (type: string, pred: (d: Record<string, any>) => boolean = () => true) => (l: HarnessLine) =>
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
  const swCli = (...args: string[]) => execFileSync('ip', ['netns', 'exec', sw.name, 'lldpcli', '-u', swSock, ...args], { encoding: 'utf8' });

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'e911-dis-'));
    chmodSync(dir, 0o755); // lldpcli drops to _lldpd before it connects
    swSock = path.join(dir, 'switch.sock');
    phone = new NetNs('ph');
    sw = new NetNs('sw');
    vethPair(phone, 'eth0', sw, 'ge1');
    sw.ip('addr', 'add', '10.77.0.1/24', 'dev', 'ge1');
    switchDaemon = spawn('ip', ['netns', 'exec', sw.name, 'lldpd', '-d', '-M', '4', '-u', swSock, '-I', 'ge1', '-S', 'building B4 switch'], { stdio: 'ignore' });
    for (let i = 0; i < 100 && !existsSync(swSock); i++) await new Promise((r) => setTimeout(r, 20));
    swCli('configure', 'ports', 'ge1', 'med', 'location', 'address', 'country', 'US', 'language', 'en', 'country-subdivision', 'CA', 'city', 'San Jose', 'street', 'Tasman', 'street-suffix', 'Drive', 'number', '170', 'zip', '95134', 'building', 'B4', 'floor', '3', 'room', '3-101');
    swCli('configure', 'ports', 'ge1', 'med', 'location', 'elin', '4085550123');
    swCli('configure', 'med', 'fast-start', 'enable');
    // One switch serves a new phone lldpd per test: when an earlier one's neighbour entry has not
    // aged out, fast start may not fire, and the next advertisement would be 30 s away.
    swCli('configure', 'lldp', 'tx-interval', '1');

    smtp = await startSmtpSink();
    srv = await startTestServer();
    const { api } = srv;
    await api.patch('/api/account', { name: 'Example Corp', contactEmail: 'it@example.com' });
    await api.put('/api/account/notifications', { smtp: { host: '127.0.0.1', port: smtp.port, security: 'none', from: 'e911@example.com' } });
    const hqId = (await api.post<{ id: number }>('/api/locations', HQ)).id;
    await api.post('/api/users', { username: 'alice', displayName: 'Alice Smith', locationId: hqId, callback: '+14085550100', emails: ['alice@example.com'], deviceIds: ['phone-1'] });
    const creds = await api.post<{ username: string; password: string }>('/api/phones/phone-1/credentials');
    await api.post('/api/account/e911', { enabled: true });
    phoneMqtt = await mqtt.connectAsync(srv.app.brokerUrl, { clientId: 'phone-1', protocolVersion: 4, username: creds.username, password: creds.password });
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
      const s = srv.app.repo.issuedAddress('phone-1');
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
    return { doc: signed!.doc, version: signed!.doc.version, hash: documentHash(signed!.doc), signature: signed!.sig, receivedAt: signed!.doc.issuedAt, appliedAt: signed!.doc.issuedAt };
  }

  async function harness(address: StoredAddress, o: { lldp?: boolean; dhcpDir?: string; psapPort?: number } = {}): Promise<LocationHarness> {
    const network = {
      interfaces: ['eth0', 'eth1'],
      debounceMs: 20,
      lldp: o.lldp === false ? { enabled: false } : { enabled: true, runDaemon: true, socketPath: path.join(dir, `phone-${Date.now()}.sock`) },
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

  async function phoneRow(pred: (d: any) => boolean) {
    for (let i = 0; i < 200; i++) {
      const p = (await srv.api.get<{ deviceId: string; disagreement: any }[]>('/api/phones')).find((x) => x.deviceId === 'phone-1');
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
      await h.waitFor(isEvent('emergency-call-progress', (x) => x.phase === 'answered'), 10_000, from);
      h.send({ cmd: 'hangup' });
      expect((await sipp.exited).code, sipp.errors()).toBe(0);
      const invite = receivedInvites(sipp.messages())[0]!;
      const pidf = multipartParts(invite).find((p) => p.headers.some((x) => /application\/pidf\+xml/i.test(x.value)))!.body;
      expect(checkPidfTexts([pidf])[0]).toMatchObject({ ok: true });
      const rd = (i: number) => xpath(pidf, `string(//${el('device', NS.dm)}[${i}]//${el('RD', NS.ca)})`).trim();
      const method = (i: number) => xpath(pidf, `string(//${el('device', NS.dm)}[${i}]//${el('method', NS.gp)})`).trim();
      await toServer(ev);
      // This call's own notice (by event id): not whichever mail came last.
      const mine = () => smtp.mails.find((m) => m.headers['x-e911-event-id'] === ev.id);
      for (let i = 0; i < 400 && !mine(); i++) await new Promise((r) => setTimeout(r, 25));
      const mail = mine();
      expect(mail, `no notice for event ${ev.id} at the SMTP sink`).toBeDefined();
      return { first: rd(1), firstMethod: method(1), second: rd(2), secondMethod: method(2), invite, notice: mail!.text };
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
        state: 'open', policy: 'network-first', chosen: 'network', fields: ['street', 'number', 'building', 'floor'], elin: '4085550123',
        network: { source: 'lldp-med', method: 'LLDP-MED', civic: { RD: 'Tasman', STS: 'Drive', HNO: '170', BLD: 'B4', FLR: '3' } },
        provisioned: { civic: { RD: 'Main St', HNO: '100', BLD: 'A', FLR: '2' }, locationCode: 'SJC-A' },
      });
      const alert = await h.waitFor((l) => l.t === 'alert' && l.id === 'location-disagreement', 5000, 0);
      expect(alert.lines).toEqual(['LOCATION DIFFERS', 'Switch: 170 Tasman Drive, Bldg B4 Floor 3 Room 3-101', 'Set: 100 Main St, Bldg A Floor 2 Room 210', '911 sends: switch', 'OK: dismiss']);
      h.send({ cmd: 'list' });
      const list = (await h.waitFor((l) => l.t === 'list')).result as { candidates: { source: string }[]; elin: string; disagreement: { chosen: string } };
      expect(list.candidates.map((c) => c.source).slice(0, 2)).toEqual(['lldp-med', 'provisioned']);
      expect(list.elin).toBe('4085550123');
      await toServer(ev);
      const row = await phoneRow((d) => d?.state === 'open');
      expect(row.disagreement).toMatchObject({ chosen: 'network', network: { civic: { RD: 'Tasman' } }, provisioned: { civic: { RD: 'Main St' } }, eventId: ev.id });
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
      expect((await h.waitFor((l) => l.t === 'alert' && l.id === 'location-disagreement', 5000, 0)).lines).toContain('911 sends: set address');
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
      const picked = (await h.waitFor(isEvent('location-disagreement', (d) => d.chosen === 'provisioned'), 5000, from)).event as Ev;
      await h.waitFor((l) => l.t === 'alert-clear' && l.id === 'location-disagreement', 5000, from);
      await toServer(ev);
      await toServer(picked);
      await phoneRow((d) => d?.chosen === 'provisioned' && d?.policy === 'ask-user');
      if (sip) {
        const c = await call911(h, 5074);
        expect([c.first, c.second]).toEqual(['Main St', 'Tasman']);
        expect(c.invite.headers.find((x) => x.name === 'P-Asserted-Identity')!.value).toContain('tel:+14085550123');
        expect(c.notice).toMatch(/Callback number:\s+\+14085550123 \(the switch's ELIN\)/);
      }
    } finally {
      await h.stop();
    }
  }, 60_000);

  it('DHCP option 99 from dnsmasq naming another address is a disagreement too; when the lease is gone, it is resolved', async () => {
    // Only DHCP here: the phone's LLDP is off, a second port is on a DHCP network.
    const lan = new NetNs('lan');
    vethPair(phone, 'eth1', lan, 'lan0');
    const handOver = path.join(dir, 'handover');
    let dnsmasq: ChildProcess | null = null;
    const h = await harness(await issuedWith('network-first'), { lldp: false, dhcpDir: handOver });
    try {
      lan.ip('addr', 'add', '10.88.0.1/24', 'dev', 'lan0');
      const civic = encodeCivicOption(2, 'US', [[1, 'CA'], [3, 'Santa Clara'], [34, 'Mission College'], [18, 'Blvd'], [19, '2200'], [24, '95054'], [25, 'SC1'], [27, '1']]);
      dnsmasq = spawn('ip', ['netns', 'exec', lan.name, 'dnsmasq', '--no-daemon', '--conf-file=/dev/null', '--port=0', '--interface=lan0', '--bind-interfaces', '--dhcp-range=10.88.0.100,10.88.0.150,255.255.255.0,1h', '--dhcp-broadcast', `--dhcp-option-force=99,${[...civic].map((x) => x.toString(16).padStart(2, '0')).join(':')}`, `--dhcp-leasefile=${path.join(dir, 'leases')}`, '--user=root', '--group=root'], { stdio: 'ignore' });
      execFileSync('ip', ['netns', 'exec', phone.name, 'udhcpc', '-i', 'eth1', '-f', '-q', '-n', '-t', '5', '-T', '1', '-O', '99', '-s', HOOK], { env: { ...process.env, E911_DHCP_LOCATION_DIR: handOver }, stdio: 'ignore', timeout: 20_000 });
      const ev = (await h.waitFor(isEvent('location-disagreement', (d) => d.network?.source === 'dhcp'), 10_000, 0)).event as Ev;
      expect(ev.data).toMatchObject({ state: 'open', chosen: 'network', fields: ['street', 'number', 'city', 'building', 'floor'], network: { source: 'dhcp', method: 'DHCP', civic: { A3: 'Santa Clara', HNO: '2200' } }, elin: null });
      expect((await h.waitFor((l) => l.t === 'alert' && l.id === 'location-disagreement', 5000, 0)).lines).toContain('911 sends: network');
      const from = h.mark();
      execFileSync(HOOK, ['deconfig'], { env: { ...process.env, E911_DHCP_LOCATION_DIR: handOver, interface: 'eth1' } });
      const resolved = (await h.waitFor(isEvent('location-disagreement', (d) => d.state === 'resolved'), 10_000, from)).event as Ev;
      await toServer(ev);
      await phoneRow((d) => d?.network?.source === 'dhcp');
      await toServer(resolved);
      await phoneRow((d) => d === null);
    } finally {
      await h.stop();
      if (dnsmasq) await stopProcess(dnsmasq);
      lan.remove();
    }
  }, 60_000);
});
