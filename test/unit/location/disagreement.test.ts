// Location disagreement: the comparison (what counts as another place), and the
// LocationService over a real SQLite store with a fake LLDP source: detection
// with recommendations off, each account policy's ranking, the second location
// for the INVITE, the event, the display alert, the user's pick, resolution.
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { disagreeingFields, responderKey } from '../../../agent/location/disagreement.js';
import { elinE164 } from '../../../agent/location/elin.js';
import { Store, type StoredAddress } from '../../../agent/store/store.js';
import { eventFactory } from '../../../agent/events/events.js';
import { DISAGREEMENT_ALERT_ID, LocationService } from '../../../agent/location/service.js';
import { SimNetwork } from '../../../hal/net/sim.js';
import type { LldpNeighbor } from '../../../hal/net/lldp-json.js';
import type { FunctionKey } from '../../../hal/handset.js';
import type { AddressDocument, CivicAddress, LocationPolicy } from '../../../provisioning/protocol/address.js';
import { locationDisagreementDataSchema } from '../../../provisioning/protocol/locations.js';
import { locationListText } from '../../../agent/cli/location-text.js';
import { addressDocumentSchema } from '../../../provisioning/protocol/address.js';
import { accountAddressSettings, contentHash } from '../../../provisioning/server/pusher.js';
import { silentLog } from '../../helpers/log.js';
import { LOCATIONS_FORMS } from '../../helpers/locations-view.js';

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

describe('disagreeingFields', () => {
  it('the same place written another way is no disagreement', () => {
    const same: CivicAddress = {
      country: 'us',
      A1: 'CA',
      A3: ' san  jose ',
      RD: 'MAIN STREET',
      HNO: '100',
      BLD: 'Bldg. A',
      FLR: '2nd Floor',
      PC: '95110',
    };
    expect(disagreeingFields(same, PROVISIONED)).toEqual([]);
    expect(disagreeingFields({ ...PROVISIONED, RD: 'Main', STS: undefined }, PROVISIONED)).toEqual([]); // no suffix given at all
    expect(
      disagreeingFields(
        { ...PROVISIONED, PRD: 'North', RD: 'First', STS: 'Avenue' },
        { ...PROVISIONED, PRD: 'N', RD: 'First', STS: 'Ave' },
      ),
    ).toEqual([]);
    expect(responderKey({ HNO: '100', HNS: 'A' }).number).toBe(responderKey({ HNO: '100A' }).number);
  });

  it('a different street, number, city, building or floor is a disagreement, field by field', () => {
    expect(disagreeingFields({ ...PROVISIONED, RD: 'Tasman', STS: 'Dr', HNO: '170', BLD: 'B4', FLR: '3' }, PROVISIONED)).toEqual([
      'street',
      'number',
      'building',
      'floor',
    ]);
    expect(disagreeingFields({ ...PROVISIONED, A3: 'Santa Clara' }, PROVISIONED)).toEqual(['city']);
    expect(disagreeingFields({ ...PROVISIONED, STS: 'Ave' }, PROVISIONED)).toEqual(['street']);
    expect(disagreeingFields({ ...PROVISIONED, FLR: '3' }, PROVISIONED)).toEqual(['floor']);
  });

  it('what one side leaves out is not compared; a network address without street and number contradicts nothing', () => {
    const { BLD: _b, FLR: _f, ...noFloor } = PROVISIONED;
    expect(disagreeingFields(noFloor, PROVISIONED)).toEqual([]);
    expect(disagreeingFields({ country: 'US', A3: 'Fresno' }, PROVISIONED)).toEqual([]);
  });
});

describe('the policy in the signed address document', () => {
  const doc = {
    v: 1,
    deviceId: 'phone-1',
    version: 1,
    issuedAt: '2026-11-22T07:00:00Z',
    civic: PROVISIONED,
    callback: '+14085550100',
    displayName: 'Front Desk',
  };
  it('accepts the three policies and the ELIN switch, and nothing else', () => {
    for (const p of ['network-first', 'provisioned-first', 'ask-user'])
      expect(addressDocumentSchema.safeParse({ ...doc, locationPolicy: p, elinCallback: true }).success).toBe(true);
    expect(addressDocumentSchema.safeParse({ ...doc, locationPolicy: 'switch-first' }).success).toBe(false);
    expect(addressDocumentSchema.safeParse({ ...doc, elinCallback: 'yes' }).success).toBe(false);
  });
  it('the server leaves the defaults out, so a document from before them hashes as it did; a policy changes the hash', () => {
    expect(accountAddressSettings({ locationPolicy: 'network-first', elinCallback: false })).toEqual({});
    expect(accountAddressSettings({ locationPolicy: 'ask-user', elinCallback: true })).toEqual({
      locationPolicy: 'ask-user',
      elinCallback: true,
    });
    const base = { deviceId: 'phone-1', civic: PROVISIONED, callback: '+14085550100', displayName: 'Front Desk', locationCode: 'SJ-A' };
    expect(contentHash({ ...base, ...accountAddressSettings({ locationPolicy: 'network-first', elinCallback: false }) })).toBe(
      contentHash(base),
    );
    expect(contentHash({ ...base, locationPolicy: 'provisioned-first' })).not.toBe(contentHash(base));
    expect(contentHash({ ...base, elinCallback: true })).not.toBe(contentHash(base));
  });
});

describe('elinE164', () => {
  it('10 and 11 digit NANP ELINs become E.164; service codes and junk do not', () => {
    expect(elinE164('4085550123')).toBe('+14085550123');
    expect(elinE164('1-408-555-0123')).toBe('+14085550123');
    expect(elinE164('+14085550123')).toBe('+14085550123');
    expect(elinE164('9115550123')).toBeNull();
    expect(elinE164('12345')).toBeNull();
    expect(elinE164(null)).toBeNull();
  });
});

class FakeLldp extends EventEmitter<{ neighbors: [LldpNeighbor[]] }> {
  list: LldpNeighbor[] = [];
  neighbors() {
    return this.list;
  }
  set(list: LldpNeighbor[]) {
    this.list = list;
    this.emit('neighbors', list);
  }
}

const TASMAN: [string, string][] = [
  ['country', 'US'],
  ['country-subdivision', 'CA'],
  ['city', 'San Jose'],
  ['street', 'Tasman'],
  ['street-suffix', 'Drive'],
  ['number', '170'],
  ['zip', '95134'],
  ['building', 'B4'],
  ['floor', '3'],
  ['room', '3-101'],
];
function neighbor(civic: [string, string][], elin: string | null = '4085550123'): LldpNeighbor {
  return {
    iface: 'eth0',
    rid: '1',
    chassisId: 'aa:bb:cc:00:00:01',
    chassisIdType: 'mac',
    portId: 'ge1',
    portIdType: 'ifname',
    portDescr: null,
    sysName: 'sw',
    ttl: 120,
    med: { deviceType: 'Network Connectivity Device', civic, elin, coordinates: null, policies: [] },
  };
}

describe.each(LOCATIONS_FORMS)('LocationService: disagreement between the network and the provisioned address, given $form', ({ of }) => {
  let dir = '';
  let store: Store;
  let lldp: FakeLldp;
  let address: StoredAddress;
  let svc: LocationService;
  let alert: { lines: readonly string[]; onKey?: (k: FunctionKey) => boolean } | null;

  const events = (type: string) =>
    store
      .pendingEvents(0, 1000)
      .map((r) => JSON.parse(r.payload) as { type: string; data: Record<string, unknown> })
      .filter((e) => e.type === type);

  async function start(policy: LocationPolicy | undefined, recommendationsDoc: boolean | 'on' = false) {
    dir = mkdtempSync(path.join(os.tmpdir(), 'e911-dis-'));
    store = new Store({ dataDir: dir, log: silentLog() });
    lldp = new FakeLldp();
    const doc: AddressDocument = {
      v: 1,
      deviceId: 'phone-1',
      version: 4,
      issuedAt: '2026-11-22T07:00:00Z',
      civic: PROVISIONED,
      callback: '+14085550100',
      displayName: 'Front Desk',
      locationCode: 'SJ-A',
      ...(policy ? { locationPolicy: policy } : {}),
    };
    address = { doc, version: 4, hash: 'h', signature: 's', receivedAt: doc.issuedAt, appliedAt: doc.issuedAt };
    alert = null;
    const net = new SimNetwork({
      interfaces: [{ name: 'eth0', mac: '02:00:00:00:00:01', up: true, addresses: [{ family: 'IPv4', address: '10.9.0.5', prefix: 24 }] }],
      gateway4: null,
      gateway6: null,
      dns: [],
    });
    svc = new LocationService({
      log: silentLog(),
      store,
      network: net,
      lldp,
      dhcp: null,
      held: null,
      address: () => address,
      // Recommendations off (as for most users), or no locations push at all.
      // 'on': recommendations on, and the phone's IP group matches the assigned location.
      locations: () =>
        of(
          recommendationsDoc === 'on'
            ? {
                v: 1,
                deviceId: 'phone-1',
                version: 1,
                issuedAt: doc.issuedAt,
                recommendations: true,
                assignedLocationId: 'hq',
                locations: [{ id: 'hq', code: 'SJ-A', name: 'HQ', civic: PROVISIONED, cidrs: ['10.9.0.0/24'] }],
              }
            : recommendationsDoc
              ? {
                  v: 1,
                  deviceId: 'phone-1',
                  version: 1,
                  issuedAt: doc.issuedAt,
                  recommendations: false,
                  assignedLocationId: null,
                  locations: [],
                }
              : null,
        ),
      alerts: {
        raise: (a) => {
          expect(a.id).toBe(DISAGREEMENT_ALERT_ID);
          alert = { lines: a.lines, ...(a.onKey ? { onKey: a.onKey } : {}) };
        },
        clear: (id) => {
          expect(id).toBe(DISAGREEMENT_ALERT_ID);
          alert = null;
        },
      },
      newEvent: eventFactory('phone-1'),
      wake: () => {},
      publishReport: () => {},
      firstCheckMs: 3_600_000,
      checkEveryMs: 3_600_000,
    });
    await net.start();
    svc.start();
  }

  afterEach(() => {
    svc.stop();
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('network-first (the default, no policy in the address): the switch address goes first, the provisioned one second; event, alert and list say so', async () => {
    await start(undefined, true);
    expect(svc.best()!.source).toBe('provisioned');
    lldp.set([neighbor(TASMAN)]);
    const c = svc.callLocations();
    expect(c.first).toMatchObject({ source: 'lldp-med', method: 'LLDP-MED', civic: { RD: 'Tasman', STS: 'Drive', HNO: '170', BLD: 'B4' } });
    expect(c.second).toMatchObject({ source: 'provisioned', method: 'Manual', civic: PROVISIONED });
    expect(c.elin).toBe('4085550123');
    const ev = events('location-disagreement');
    expect(ev).toHaveLength(1);
    expect(locationDisagreementDataSchema.parse(ev[0]!.data)).toMatchObject({
      state: 'open',
      policy: 'network-first',
      chosen: 'network',
      fields: ['street', 'number', 'building', 'floor'],
      elin: '4085550123',
      network: { source: 'lldp-med', method: 'LLDP-MED', civic: { RD: 'Tasman' } },
      provisioned: { civic: PROVISIONED, locationCode: 'SJ-A', version: 4 },
    });
    expect(alert!.lines).toEqual([
      'LOCATION DIFFERS',
      'Switch: 170 Tasman Drive, Bldg B4 Floor 3 Room 3-101',
      'Set: 100 Main St, Bldg A Floor 2',
      '911 sends: switch',
      'OK: dismiss',
    ]);
    const text = locationListText(svc.list());
    expect(text).toContain('ELIN from the switch: 4085550123');
    expect(text).toMatch(/LOCATION DISAGREEMENT \(street, number, building, floor differ\)/);
    expect(text).toMatch(/1\. lldp-med\s+LLDP-MED\s+civic\s+age [\d.]+ m?s\s+ELIN 4085550123/);
    expect(text).toMatch(/2\. provisioned Manual\s+civic\s+age \d+ d \d+ h/);
    // The same neighbour again is not news: no second event.
    lldp.set([neighbor(TASMAN)]);
    expect(events('location-disagreement')).toHaveLength(1);
    // OK dismisses the alert; the disagreement stays.
    expect(alert!.onKey!('ok')).toBe(true);
    expect(alert).toBeNull();
    expect(svc.disagreement()).not.toBeNull();
  });

  it('detected with recommendations on too, when the IP-group check says the phone is where it was assigned', async () => {
    await start(undefined, 'on');
    lldp.set([neighbor(TASMAN)]);
    expect(svc.list().status).toBe('match');
    expect(events('location-disagreement')[0]!.data).toMatchObject({ state: 'open', policy: 'network-first', chosen: 'network' });
    expect(svc.callLocations().first!.source).toBe('lldp-med');
    expect(alert!.lines[0]).toBe('LOCATION DIFFERS');
  });

  it('provisioned-first: the provisioned address first, the switch second', async () => {
    await start('provisioned-first');
    lldp.set([neighbor(TASMAN)]);
    const c = svc.callLocations();
    expect(c.first!.source).toBe('provisioned');
    expect(c.second!.source).toBe('lldp-med');
    expect(events('location-disagreement')[0]!.data).toMatchObject({ policy: 'provisioned-first', chosen: 'provisioned' });
    expect(alert!.lines[3]).toBe('911 sends: set address');
    expect(() => svc.pick('network')).toThrow(/does not ask/);
  });

  it('ask-user: network first until the user picks on the handset (soft2: the set address), then that, reported again', async () => {
    await start('ask-user');
    lldp.set([neighbor(TASMAN)]);
    expect(svc.callLocations().first!.source).toBe('lldp-med');
    expect(alert!.lines.slice(3)).toEqual(['911 sends: switch', 'Soft1: use switch', 'Soft2: use set address']);
    expect(alert!.onKey!('soft2')).toBe(true);
    expect(svc.callLocations().first!.source).toBe('provisioned');
    expect(svc.callLocations().second!.source).toBe('lldp-med');
    expect(alert).toBeNull();
    expect(events('location-disagreement').map((e) => e.data.chosen)).toEqual(['network', 'provisioned']);
    // The pick is kept across a restart of the service (same store).
    svc.stop();
    const again = new LocationService({ ...(svc as unknown as { deps: ConstructorParameters<typeof LocationService>[0] }).deps });
    again.start();
    expect(again.callLocations().first!.source).toBe('provisioned');
    expect(events('location-disagreement')).toHaveLength(2);
    again.stop();
  });

  it('when the switch agrees again, a resolved event; no second location', async () => {
    await start(undefined);
    lldp.set([neighbor(TASMAN)]);
    expect(alert).not.toBeNull();
    lldp.set([
      neighbor([
        ['country', 'US'],
        ['country-subdivision', 'CA'],
        ['city', 'San Jose'],
        ['street', 'Main Street'],
        ['number', '100'],
        ['zip', '95110'],
        ['floor', '2'],
      ]),
    ]);
    expect(svc.disagreement()).toBeNull();
    expect(svc.callLocations().second).toBeNull();
    expect(alert).toBeNull();
    expect(events('location-disagreement').map((e) => e.data.state)).toEqual(['open', 'resolved']);
  });
});
