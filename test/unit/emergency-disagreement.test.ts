// What a 911 call carries when the network and the provisioned address disagree:
// the chosen location first and the other second in one PIDF-LO (checked with
// xmllint against the PIDF schemas), the ELIN as the callback when the account
// says so, and the notice the server builds from the call's event.
import { describe, expect, it } from 'vitest';
import { MemoryVoiceStack } from '../../hal/voice/memory.js';
import { EmergencyService } from '../../agent/emergency/service.js';
import { dialPlanSchema, emergencySchema, sipSchema } from '../../agent/emergency/config.js';
import type { StoredAddress } from '../../agent/store/store.js';
import type { AddressDocument, CivicAddress } from '../../provisioning/protocol/address.js';
import { NS } from '../../provisioning/pidf/pidf.js';
import { buildNotice } from '../../provisioning/server/notify/message.js';
import type { StoredEvent } from '../../provisioning/server/db/repo.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { silentLog } from '../helpers/log.js';
import { checkPidfTexts, el, xpath } from '../helpers/pidf-check.js';
import { requires } from '../helpers/require.js';

const PROVISIONED: CivicAddress = {
  country: 'US',
  A1: 'CA',
  A3: 'San Jose',
  RD: 'Main',
  STS: 'St',
  HNO: '100',
  BLD: 'A',
  FLR: '2',
  PC: '95110',
};
const SWITCH: CivicAddress = {
  country: 'US',
  A1: 'CA',
  A3: 'San Jose',
  RD: 'Tasman',
  STS: 'Drive',
  HNO: '170',
  BLD: 'B4',
  FLR: '3',
  ROOM: '3-101',
  PC: '95134',
};

function address(over: Partial<AddressDocument> = {}): StoredAddress {
  const doc: AddressDocument = {
    v: 1,
    deviceId: 'phone-1',
    version: 4,
    issuedAt: '2026-11-22T07:00:00.000Z',
    civic: PROVISIONED,
    callback: '+14085550100',
    displayName: 'Front Desk',
    locationCode: 'SJ-A',
    ...over,
  };
  return { doc, version: 4, hash: 'h', signature: 's', receivedAt: doc.issuedAt, appliedAt: doc.issuedAt };
}

async function call(
  addr: StoredAddress,
  first: 'network' | 'provisioned',
  failFirstSend?: Error,
  routes: Record<string, string> = { primary: 'sip:10.0.0.1:5060' },
) {
  const voice = new MemoryVoiceStack();
  const clock = new FakeClock();
  const events: { type: string; data: Record<string, unknown> }[] = [];
  const deferred: (() => void)[] = [];
  const svc = new EmergencyService({
    voice,
    emergency: emergencySchema.parse({ routes }),
    dialPlan: dialPlanSchema.parse({}),
    sip: sipSchema.parse({ port: 5062, bindAddress: '10.0.0.50' }),
    deviceId: 'phone-1',
    agentVersion: 'test',
    log: silentLog(),
    timers: clock,
    now: clock.date,
    emitEvent: (type, data) => events.push({ type, data }),
    defer: (fn) => deferred.push(fn),
    network: () => ({ interface: 'eth0', ip: '10.0.0.50', mac: '00:d0:1e:12:34:56' }),
  });
  await svc.start(addr);
  const net = { civic: SWITCH, method: 'LLDP-MED', source: 'lldp-med' };
  const prov = { civic: PROVISIONED, method: 'Manual', source: 'provisioned' };
  svc.setLocation(first === 'network' ? net : prov, { alternate: first === 'network' ? prov : net, elin: '4085550123' });
  if (failFirstSend) voice.failNextCall = failFirstSend;
  const out = svc.dial('911');
  // The display shows what went first, not the provisioned address.
  expect(out).toMatchObject({ kind: 'emergency', placed: true, locationSent: { RD: first === 'network' ? 'Tasman' : 'Main' } });
  while (deferred.length) deferred.shift()!();
  const c = voice.calls[voice.calls.length - 1]!;
  return {
    pidf: c.options.parts![0]!.body,
    headers: c.options.headers!,
    from: c.options.from,
    event: events.find((e) => e.type === 'emergency-call')!,
  };
}

const notice = (data: Record<string, unknown>) => {
  const event: StoredEvent = {
    id: 'e-1',
    deviceId: 'phone-1',
    type: 'emergency-call',
    ts: '2026-11-22T08:00:00.000Z',
    receivedAt: '2026-11-22T08:00:01.000Z',
    userId: null,
    locationId: null,
    data,
  };
  return buildNotice({ event, user: null, location: null, provisionedCivic: PROVISIONED });
};

const x = (doc: string, expr: string) => xpath(doc, expr).trim();
const dev = el('device', NS.dm);
const civicOf = (i: number, name: string) =>
  `string(/${el('presence', NS.pidf)}/${dev}[${i}]//${el('civicAddress', NS.ca)}/${el(name, NS.ca)})`;
const methodOf = (i: number) => `string(/${el('presence', NS.pidf)}/${dev}[${i}]//${el('method', NS.gp)})`;

describe.skipIf(requires('emergency-disagreement (PIDF-LO checked by xmllint)', ['xmllint']).skip)(
  'a 911 call when the network and the provisioned address disagree',
  () => {
    it('network first: the switch address is the first location, the provisioned one the second, each with its method; schema-valid', async () => {
      const { pidf, headers, event } = await call(address(), 'network');
      expect(checkPidfTexts([pidf])[0]).toMatchObject({ ok: true });
      expect(x(pidf, `count(//${dev})`)).toBe('2');
      expect(x(pidf, civicOf(1, 'RD'))).toBe('Tasman');
      expect(x(pidf, methodOf(1))).toBe('LLDP-MED');
      expect(x(pidf, civicOf(2, 'RD'))).toBe('Main');
      expect(x(pidf, methodOf(2))).toBe('Manual');
      // Without the account's ELIN setting the callback stays the provisioned number.
      expect(headers.find((h) => h.name === 'P-Asserted-Identity')!.value).toContain('+14085550100');
      expect(event.data).toMatchObject({
        callback: '+14085550100',
        callbackSource: 'provisioned',
        elin: '4085550123',
        location: {
          source: 'lldp-med',
          civic: { RD: 'Tasman' },
          alternate: { source: 'provisioned', method: 'Manual', civic: { RD: 'Main' } },
        },
      });

      const n = notice(event.data);
      expect(n.text).toMatch(/Dispatchable address:\s+170 Tasman Drive, Bldg B4 Floor 3 Room 3-101, San Jose, CA 95134, US/);
      expect(n.text).toMatch(
        /Location disagreement:\s+YES: .*Sent first: the switch's address \(LLDP-MED\)\. Also sent, second: the provisioned address\./,
      );
      expect(n.text).toMatch(/Second address sent:\s+100 Main St, Bldg A Floor 2, San Jose, CA 95110, US/);
      expect(n.text).toMatch(/ELIN:\s+4085550123/);
      expect(n.sms).toContain('ALSO SENT: 100 Main St');
    });

    it('provisioned first: the order is the other way round', async () => {
      const { pidf, event } = await call(address({ locationPolicy: 'provisioned-first' }), 'provisioned');
      expect(checkPidfTexts([pidf])[0]).toMatchObject({ ok: true });
      expect(x(pidf, civicOf(1, 'RD'))).toBe('Main');
      expect(x(pidf, methodOf(2))).toBe('LLDP-MED');
      expect(notice(event.data).text).toMatch(
        /Sent first: the provisioned address\. Also sent, second: the switch's address \(LLDP-MED\)\./,
      );
    });

    it('an INVITE too large for the stack with both locations goes out at once on the same route with the chosen one alone; the event says so', async () => {
      const { pidf, event } = await call(
        address(),
        'network',
        new Error('pjsua_call_make_call failed: Message too long (PJSIP_EMSGTOOLONG)'),
      );
      expect(x(pidf, `count(//${dev})`)).toBe('1');
      expect(x(pidf, civicOf(1, 'RD'))).toBe('Tasman');
      expect(event.data).toMatchObject({
        placed: true,
        route: { name: 'primary' },
        location: { source: 'lldp-med', alternateDropped: true },
      });
      // The notice still names the other address, as not sent.
      expect((event.data.location as Record<string, unknown>).alternate).toMatchObject({ source: 'provisioned' });
      const n = notice(event.data);
      expect(n.text).not.toMatch(/Second address sent/);
      expect(n.text).toMatch(/Sent: the switch's address \(LLDP-MED\) only; the provisioned address could not be carried in the call/);
      expect(n.text).toMatch(/Other address, NOT sent:\s+100 Main St, Bldg A Floor 2, San Jose, CA 95110, US/);
      expect(n.sms).toContain('OTHER ADDRESS, NOT SENT: 100 Main St');
    });

    it('a refused connect (an OS error: a two-location INVITE too big for UDP goes by TCP) also retries at once with the chosen location alone; the event names the route whose INVITE left', async () => {
      const refused = Object.assign(new Error('pjsua_call_make_call failed: Connection refused (pj status 120111)'), { pjStatus: 120111 });
      const { pidf, event } = await call(address(), 'network', refused, { primary: 'sip:10.0.0.1:5060', fallback: 'sip:10.0.0.3:5060' });
      expect(x(pidf, `count(//${dev})`)).toBe('1');
      expect(event.data).toMatchObject({ placed: true, route: { name: 'primary' }, location: { alternateDropped: true } });
    });

    it('with elinCallback the ELIN is the callback number (P-Asserted-Identity, From, PIDF entity) and the notice says so', async () => {
      const { pidf, headers, from, event } = await call(address({ elinCallback: true }), 'network');
      expect(from).toBe('"Front Desk" <sip:+14085550123@10.0.0.50;user=phone>');
      expect(headers.find((h) => h.name === 'P-Asserted-Identity')!.value).toBe(
        '"Front Desk" <sip:+14085550123@10.0.0.50;user=phone>, <tel:+14085550123>',
      );
      expect(x(pidf, `string(/${el('presence', NS.pidf)}/@entity)`)).toBe('tel:+14085550123');
      expect(event.data).toMatchObject({ callback: '+14085550123', callbackSource: 'elin' });
      expect(notice(event.data).text).toMatch(/Callback number:\s+\+14085550123 \(the switch's ELIN\)/);
    });
  },
);
