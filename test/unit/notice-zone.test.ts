// The floor or zone of the phone's address at call time (provisioning/server/notify/zone.ts)
// and how the notice shows it beside the address that was sent.
import { describe, expect, it } from 'vitest';
import { floorOfGroup, siteZone, zoneLookup, zoneOfIp } from '../../provisioning/server/notify/zone.js';
import { buildNotice } from '../../provisioning/server/notify/message.js';
import type { Location, StoredEvent } from '../../provisioning/server/db/repo.js';

const HQ_CIVIC = {
  country: 'US',
  A1: 'CA',
  A3: 'San Jose',
  RD: 'Main St',
  HNO: '100',
  PC: '95110',
  NAM: 'Example Corp',
  BLD: 'A',
  FLR: '2',
};
const location = (id: number, code: string, name: string, civic: Record<string, string>, ipGroups: Location['ipGroups']) =>
  ({ id, code, name, civic, ipGroups, switchPorts: [], adminEmails: [], smsNumbers: [] }) as unknown as Location;
const LOCATIONS = [
  location(1, 'SJC-A', 'Example Corp', HQ_CIVIC, [
    { name: 'voice', cidrs: ['10.1.0.0/16', '2001:db8:1::/48'] },
    { name: 'Floor 2', cidrs: ['10.1.2.0/24'] },
    { name: '3rd floor east', cidrs: ['10.1.3.0/24'] },
  ]),
  location(2, 'YYZ-1', 'Example Corp Toronto', { country: 'CA', A1: 'ON', A3: 'Toronto', RD: 'King St W', HNO: '200', FLR: '5' }, [
    { name: 'lan', cidrs: ['10.2.0.0/16'] },
  ]),
];

const civicOf = (id: number) => LOCATIONS.find((l) => l.id === id)?.civic ?? null;
/** The repo as zoneLookup reads it. */
const zoneOf = await zoneLookup({
  ipGroupsOfLocations: async () => LOCATIONS,
  location: async (id) => LOCATIONS.find((l) => l.id === id) ?? null,
});

describe('zone of an address', () => {
  it('is the most specific IP group over every location, v4 and v6', () => {
    expect(zoneOfIp('10.1.2.30', LOCATIONS)).toMatchObject({ locationCode: 'SJC-A', group: 'Floor 2', cidr: '10.1.2.0/24', floor: '2' });
    expect(zoneOfIp('10.1.9.9', LOCATIONS)).toMatchObject({ group: 'voice', floor: null });
    expect(zoneOfIp('2001:db8:1::42', LOCATIONS)).toMatchObject({ group: 'voice' });
    expect(zoneOfIp('10.2.0.7', LOCATIONS)).toMatchObject({ locationCode: 'YYZ-1', group: 'lan' });
    expect(zoneOfIp('192.0.2.1', LOCATIONS)).toBeNull();
    expect(zoneOfIp('not an ip', LOCATIONS)).toBeNull();
    // IPv6 written short, and an IPv4 address never in an IPv6 range.
    expect(zoneOfIp('2001:db8:1:ffff::1', LOCATIONS)).toMatchObject({ group: 'voice' });
    expect(zoneOfIp('2001:db8:2::1', LOCATIONS)).toBeNull();
    expect(zoneOfIp('::ffff:10.1.2.30', LOCATIONS)).toBeNull();
  });

  it('reads a floor from a group name', () => {
    expect(['Floor 3', '3rd floor east', 'Level 3', 'L3', 'FLR 3'].map(floorOfGroup)).toEqual(['3', '3', '3', '3', '3']);
    expect(floorOfGroup('voice')).toBeNull();
  });

  it('agrees with the address sent, or says what differs: another location, another floor', () => {
    expect(siteZone('10.1.2.30', HQ_CIVIC, LOCATIONS, civicOf)).toMatchObject({ agrees: 'yes' });
    expect(siteZone('10.1.9.9', { ...HQ_CIVIC, RD: 'MAIN ST.' }, LOCATIONS, civicOf)).toMatchObject({ agrees: 'yes' });
    expect(siteZone('10.1.3.4', HQ_CIVIC, LOCATIONS, civicOf)).toMatchObject({
      agrees: 'no',
      differs: { ipFloor: '3', sentFloor: '2' },
    });
    expect(siteZone('10.2.0.7', HQ_CIVIC, LOCATIONS, civicOf)).toMatchObject({
      agrees: 'no',
      differs: { location: 'Example Corp Toronto', code: 'YYZ-1' },
    });
    expect(siteZone('192.0.2.1', HQ_CIVIC, LOCATIONS, civicOf)).toMatchObject({ agrees: 'unknown', zone: null });
  });
});

describe('the notice shows the zone beside the address sent', () => {
  const event = (site: Record<string, unknown> | undefined): StoredEvent => ({
    id: 'e-1',
    deviceId: 'desk-9',
    type: 'emergency-call',
    ts: '2026-07-04T18:00:00.000Z',
    receivedAt: '2026-07-04T18:00:01.000Z',
    userId: null,
    locationId: null,
    data: {
      displayName: 'Alice Smith',
      location: { source: 'provisioned', method: 'Manual', civic: HQ_CIVIC },
      device: { deviceId: 'desk-9', ip: '10.1.2.30', mac: null, interface: 'eth0' },
      ...(site ? { site } : {}),
    },
  });
  const at = (ip: string) => ({
    extension: '2101',
    ip,
    interface: 'eth0',
    switch: { chassisId: 'aa:bb:cc:00:00:01', portId: 'ge-0/0/7', portDescr: 'desk 7', sysName: 'sw1' },
  });

  it('at call time: extension, address and switch port; the zone agreeing', () => {
    const n = buildNotice({ event: event(at('10.1.2.30')), user: null, location: null, provisionedCivic: null, zoneOf });
    expect(n.text).toMatch(/^Extension: +2101$/m);
    expect(n.text).toMatch(/^Device IP: +10\.1\.2\.30$/m);
    expect(n.text).toMatch(/^Switch port: +sw1 port ge-0\/0\/7 \(desk 7\)$/m);
    expect(n.text).toMatch(/^Floor\/zone by IP: +Floor 2 \(Example Corp, 10\.1\.2\.0\/24\) from 10\.1\.2\.30, at the address sent$/m);
    // Beside the address: the row right after it.
    const lines = n.text.split('\n');
    expect(lines[lines.findIndex((l) => l.startsWith('Dispatchable address:')) + 1]).toMatch(/^Floor\/zone by IP:/);
    expect(n.sms).toContain('Zone by IP: Floor 2.');
  });

  it('says so when the zone and the address sent disagree; the address at call time wins over the one at start', () => {
    const n = buildNotice({ event: event(at('10.2.0.7')), user: null, location: null, provisionedCivic: null, zoneOf });
    expect(n.facts.deviceIp).toBe('10.2.0.7');
    expect(n.text).toMatch(
      /^Floor\/zone by IP: +lan \(Example Corp Toronto, 10\.2\.0\.0\/16\) from 10\.2\.0\.7\. DOES NOT MATCH the address sent: the phone's IP is in Example Corp Toronto \(YYZ-1\), not at the address sent$/m,
    );
    expect(n.html).toContain('DOES NOT MATCH the address sent');
    expect(n.sms).toContain('IP ZONE DIFFERS: lan, Example Corp Toronto.');
  });

  it("in the site's language: the zone row and the SMS in Spanish and French", () => {
    const site = (language: string): Location => ({
      id: 1,
      code: 'HQ',
      name: 'Example Corp',
      address: { country: 'US', houseNumber: '100', street: 'Main St', city: 'San Jose', state: 'CA', postalCode: '95110' },
      timeZone: 'America/Los_Angeles',
      ipGroups: [],
      switchPorts: [],
      adminEmails: [],
      smsNumbers: [],
      callNumbers: [],
      language,
      civic: HQ_CIVIC,
      createdAt: '2026-01-01T00:00:00.000Z',
      updatedAt: '2026-01-01T00:00:00.000Z',
    });
    const es = buildNotice({ event: event(at('10.2.0.7')), user: null, location: site('es-US'), provisionedCivic: null, zoneOf });
    expect(es.text).toMatch(/^Piso\/zona por IP: +lan \(Example Corp Toronto, 10\.2\.0\.0\/16\) desde 10\.2\.0\.7\. NO COINCIDE/m);
    expect(es.text).toMatch(/^Puerto del switch: +sw1 port ge-0\/0\/7/m);
    expect(es.sms).toContain('LA ZONA IP DIFIERE: lan, Example Corp Toronto.');
    const fr = buildNotice({ event: event(at('10.1.3.4')), user: null, location: site('fr-CA'), provisionedCivic: null, zoneOf });
    expect(fr.text).toContain("l'IP du téléphone est à l'étage 3; l'adresse envoyée indique l'étage 2");
  });

  it('an older phone without site: the start-time address is looked up; no range holds it is said', () => {
    const n = buildNotice({ event: event(undefined), user: null, location: null, provisionedCivic: null, zoneOf });
    expect(n.text).toMatch(/^Extension: +not reported$/m);
    expect(n.text).toMatch(/^Switch port: +not reported$/m);
    expect(n.facts.zone).toMatchObject({ agrees: 'yes', zone: { group: 'Floor 2' } });
    const none = buildNotice({ event: event(at('192.0.2.9')), user: null, location: null, provisionedCivic: null, zoneOf });
    expect(none.text).toMatch(/^Floor\/zone by IP: +unknown: 192\.0\.2\.9 is in no location's IP ranges$/m);
  });
});
