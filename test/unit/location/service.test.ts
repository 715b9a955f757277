// LocationService with a real SQLite store, a simulated network and fake timers:
// the recommendation schedule (10 min, then every 5, and at once on a network
// change), alerts, the user's choice, and reports only on change.
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Store, type StoredAddress } from '../../../agent/store/store.js';
import { eventFactory } from '../../../agent/events/events.js';
import { LocationService, MISMATCH_ALERT_ID } from '../../../agent/location/service.js';
import { CHOSEN_ALERT_ID } from '../../../agent/location/location-menu.js';
import type { FunctionKey } from '../../../hal/handset.js';
import { SimNetwork } from '../../../hal/net/sim.js';
import type { NetworkSnapshot } from '../../../hal/net/types.js';
import type { LldpNeighbor } from '../../../hal/net/lldp-json.js';
import type { LocationsDocument } from '../../../provisioning/protocol/locations.js';
import type { LocationPayload } from '../../../provisioning/protocol/messages.js';
import { sampleAddress } from '../../helpers/address.js';
import { silentLog } from '../../helpers/log.js';
import { LOCATIONS_FORMS } from '../../helpers/locations-view.js';

const MIN = 60_000;

function snapshot(ip: string, gw: string): NetworkSnapshot {
  return {
    interfaces: [{ name: 'eth0', mac: '02:00:00:00:00:01', up: true, addresses: [{ family: 'IPv4', address: ip, prefix: 24 }] }],
    gateway4: { address: gw, iface: 'eth0', mac: '02:00:00:00:00:fe' },
    gateway6: null,
    dns: ['10.0.0.53'],
  };
}

const HQ = { id: 'loc-hq', code: 'HQ', name: 'Headquarters', civic: sampleAddress().civic, cidrs: ['10.1.0.0/16'], switchPorts: [] };
const BRANCH = {
  id: 'loc-br',
  code: 'BR',
  name: 'Branch',
  civic: { ...sampleAddress().civic, A3: 'Fresno', RD: 'Elm', HNO: '7', PC: '93701' },
  cidrs: ['10.2.0.0/16', '2001:db8:2::/48'],
  switchPorts: [{ chassisId: 'aa:bb:cc:00:00:01' }],
};

function locationsDoc(over: Partial<LocationsDocument> = {}): LocationsDocument {
  return {
    v: 1,
    deviceId: 'phone-1',
    version: 1,
    issuedAt: '2026-11-22T07:00:00Z',
    recommendations: true,
    assignedLocationId: 'loc-hq',
    locations: [HQ, BRANCH],
    ...over,
  };
}

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

const realImmediate = () => new Promise<void>((r) => setImmediate(r));

describe.each(LOCATIONS_FORMS)('LocationService, given $form', ({ of }) => {
  let dir = '';
  let store: Store;
  let net: SimNetwork;
  let lldp: FakeLldp;
  let doc: LocationsDocument | null;
  let address: StoredAddress | null;
  let alerts: { raised: string[][]; cleared: number; active: boolean };
  /** What each alert id shows now and hears: the display as the handset UI keeps it. */
  let shown: Map<string, { lines: string[]; onKey?: (k: FunctionKey) => boolean }>;
  /** A function key pressed with the mismatch prompt (or the menu) on top. */
  const press = (k: FunctionKey) => shown.get(MISMATCH_ALERT_ID)?.onKey?.(k) ?? false;
  const lines = (id = MISMATCH_ALERT_ID) => shown.get(id)?.lines ?? [];
  let reports: LocationPayload[];
  let svc: LocationService;

  const events = (type?: string) =>
    store
      .pendingEvents(0, 1000)
      .map((r) => JSON.parse(r.payload) as { type: string; data: Record<string, unknown> })
      .filter((e) => !type || e.type === type);

  beforeEach(async () => {
    // setImmediate stays real: the simulated network delivers its changes with it.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    vi.setSystemTime(new Date('2026-11-22T08:00:00Z'));
    dir = mkdtempSync(path.join(os.tmpdir(), 'e911-loc-'));
    store = new Store({ dataDir: dir, log: silentLog() });
    net = new SimNetwork(snapshot('10.2.0.5', '10.2.0.1')); // at the branch
    lldp = new FakeLldp();
    doc = locationsDoc();
    address = {
      doc: sampleAddress({ locationCode: 'HQ' }),
      version: 1,
      hash: 'h',
      signature: 's',
      receivedAt: '2026-11-22T07:00:00Z',
      appliedAt: '2026-11-22T07:00:00Z',
    };
    alerts = { raised: [], cleared: 0, active: false };
    shown = new Map();
    reports = [];
    svc = new LocationService({
      log: silentLog(),
      store,
      network: net,
      lldp,
      dhcp: null,
      held: null,
      address: () => address,
      locations: () => of(doc),
      alerts: {
        raise: (a) => {
          shown.set(a.id, { lines: [...a.lines], ...(a.onKey ? { onKey: a.onKey } : {}) });
          if (a.id !== MISMATCH_ALERT_ID) return;
          alerts.raised.push([...a.lines]);
          alerts.active = true;
        },
        clear: (id) => {
          shown.delete(id);
          if (id !== MISMATCH_ALERT_ID) return;
          alerts.cleared++;
          alerts.active = false;
        },
      },
      newEvent: eventFactory('phone-1'),
      wake: () => {},
      publishReport: (p) => reports.push(p),
      firstCheckMs: 10 * MIN,
      checkEveryMs: 5 * MIN,
    });
    await net.start();
    svc.start();
  });

  afterEach(() => {
    svc.stop();
    store.close();
    vi.useRealTimers();
    rmSync(dir, { recursive: true, force: true });
  });

  it('before start (the agent starts it after ready), an address or locations change reports nothing; start reads both', () => {
    const deps = (svc as unknown as { deps: ConstructorParameters<typeof LocationService>[0] }).deps;
    const before: unknown[] = [];
    const early = new LocationService({ ...deps, publishReport: (p) => before.push(p) });
    early.addressChanged();
    early.locationsChanged();
    expect(before).toHaveLength(0);
    early.start();
    expect(before).toHaveLength(1);
    expect(before[0]).toMatchObject({ source: 'provisioned' });
    early.stop();
  });

  it('compares 10 minutes after start, then every 5 minutes, reporting one mismatch once', () => {
    vi.advanceTimersByTime(10 * MIN - 1);
    expect(svc.counters.checks).toBe(0);
    expect(alerts.active).toBe(false);
    vi.advanceTimersByTime(1);
    expect(svc.counters.checks).toBe(1);
    expect(alerts.active).toBe(true);
    expect(alerts.raised[0]).toEqual(['CHECK YOUR LOCATION', 'Set: Headquarters', 'Network says: Branch', 'Soft1: accept  OK: list']);
    const mismatch = events('location-mismatch');
    expect(mismatch).toHaveLength(1);
    expect(mismatch[0]!.data).toMatchObject({ assignedLocationId: 'loc-hq', matchingLocationIds: ['loc-br'], trigger: 'timer' });
    vi.advanceTimersByTime(5 * MIN);
    expect(svc.counters.checks).toBe(2);
    vi.advanceTimersByTime(5 * MIN);
    expect(svc.counters.checks).toBe(3);
    expect(events('location-mismatch')).toHaveLength(1); // the same mismatch is not news
    // Contradicted by the network, the provisioned address ranks below nothing civic here (no other source).
    expect(svc.best()).toMatchObject({ source: 'provisioned', rank: 6 });
  });

  it('compares at once on a network change, before the first timer', async () => {
    net.set(snapshot('10.1.0.9', '10.1.0.1')); // moved back to HQ
    await realImmediate();
    expect(svc.counters.checks).toBe(1);
    expect(alerts.active).toBe(false);
    expect(svc.list()).toMatchObject({ status: 'match', assigned: { id: 'loc-hq' } });
    net.set(snapshot('10.9.0.9', '10.9.0.1')); // somewhere no location claims
    await realImmediate();
    expect(svc.counters.checks).toBe(2);
    expect(alerts.active).toBe(true);
    // Nothing matches: every location is offered.
    expect(svc.list().choices.map((c) => c.id)).toEqual(['loc-hq', 'loc-br']);
  });

  it('matches a switch chassis from LLDP, and IPv6 groups', async () => {
    net.set(snapshot('10.9.0.9', '10.9.0.1'));
    await realImmediate();
    expect(svc.list().status).toBe('mismatch');
    lldp.set([
      {
        iface: 'eth0',
        rid: '1',
        chassisId: 'AA:BB:CC:00:00:01',
        chassisIdType: 'mac',
        portId: 'ge-0/0/1',
        portIdType: 'ifname',
        portDescr: null,
        sysName: 'sw',
        ttl: 120,
        med: null,
      },
    ]);
    expect(svc.list()).toMatchObject({ status: 'mismatch', choices: [{ id: 'loc-br', matches: true }] });
    doc = locationsDoc({ version: 2, assignedLocationId: 'loc-br' });
    svc.locationsChanged();
    expect(svc.list().status).toBe('match');
    lldp.set([]);
    const s = snapshot('10.9.0.9', '10.9.0.1');
    s.interfaces[0]!.addresses.push({ family: 'IPv6', address: '2001:db8:2::42', prefix: 64 });
    net.set(s);
    await realImmediate();
    expect(svc.list().status).toBe('match');
  });

  it('takes the user pick, reports it, clears the alert, and ranks it first', () => {
    vi.advanceTimersByTime(10 * MIN);
    expect(alerts.active).toBe(true);
    expect(() => svc.select('nowhere')).toThrow(/unknown location/);
    expect(svc.select('loc-br')).toEqual({ locationId: 'loc-br', confirmed: false });
    expect(alerts.active).toBe(false);
    const sel = events('location-selected');
    expect(sel).toHaveLength(1);
    expect(sel[0]!.data).toMatchObject({ locationId: 'loc-br', locationCode: 'BR', confirmed: false, previousLocationId: 'loc-hq' });
    expect(svc.best()).toMatchObject({ source: 'user', method: 'Manual', rank: 1, locationCode: 'BR', civic: { A3: 'Fresno' } });
    // Later checks on the same network do not ask again.
    vi.advanceTimersByTime(5 * MIN);
    expect(alerts.active).toBe(false);
    expect(svc.list().status).toBe('selected');
    // The server makes it the user's address: the pick is no longer needed.
    doc = locationsDoc({ version: 2, assignedLocationId: 'loc-br' });
    address = { ...address!, doc: sampleAddress({ version: 2, locationCode: 'BR', civic: BRANCH.civic }), version: 2 };
    svc.locationsChanged();
    expect(svc.list().status).toBe('match');
    expect(svc.best()).toMatchObject({ source: 'provisioned', rank: 2 });
  });

  it('on the keypad: Soft1 accepts the network suggestion, reported as the user pick', () => {
    vi.advanceTimersByTime(10 * MIN);
    expect(press('soft1')).toBe(true);
    expect(alerts.active).toBe(false);
    expect(lines(CHOSEN_ALERT_ID)).toEqual(['LOCATION SET', 'Branch', '911 sends this address', 'OK: close']);
    expect(events('location-selected').map((e) => e.data)).toMatchObject([{ locationId: 'loc-br', confirmed: false }]);
    expect(svc.best()).toMatchObject({ source: 'user', civic: { A3: 'Fresno' } });
    expect(shown.get(CHOSEN_ALERT_ID)!.onKey!('ok')).toBe(true);
    expect(shown.has(CHOSEN_ALERT_ID)).toBe(false);
    // Digits are never the menu's: the handset UI gives them to the dialer.
    expect(press('cancel')).toBe(false);
  });

  it('on the keypad: OK lists the suggestion and the assigned one; up/down move, Cancel goes back, OK keeps the assigned', () => {
    vi.advanceTimersByTime(10 * MIN);
    expect(press('ok')).toBe(true);
    expect(lines()).toEqual(['1/2 Branch (network)', '7 Elm St', 'OK: use  Cancel: back']);
    press('down');
    expect(lines()[0]).toBe('2/2 Headquarters (set now)');
    press('down'); // wraps around
    expect(lines()[0]).toBe('1/2 Branch (network)');
    press('up');
    // A re-check meanwhile (the 5-minute timer) keeps the menu where the user is.
    vi.advanceTimersByTime(5 * MIN);
    expect(lines()[0]).toBe('2/2 Headquarters (set now)');
    press('cancel');
    expect(lines()[0]).toBe('CHECK YOUR LOCATION');
    press('ok');
    press('up');
    expect(press('ok')).toBe(true);
    expect(lines(CHOSEN_ALERT_ID)[0]).toBe('LOCATION CONFIRMED');
    expect(events('location-selected').map((e) => e.data)).toMatchObject([{ locationId: 'loc-hq', confirmed: true }]);
    vi.advanceTimersByTime(5 * MIN); // answered on this network: not asked again
    expect(alerts.active).toBe(false);
    expect(svc.list().status).toBe('confirmed');
  });

  it('on the keypad: where no IP group matches, every location is offered and no suggestion', async () => {
    net.set(snapshot('10.9.0.9', '10.9.0.1'));
    await realImmediate();
    expect(lines()).toEqual(['CHECK YOUR LOCATION', 'Set: Headquarters', 'No match: 2 to choose', 'OK: list']);
    expect(press('soft1')).toBe(false);
    press('ok');
    expect(lines()[0]).toBe('1/2 Headquarters (set now)');
    press('down');
    expect(lines()[0]).toBe('2/2 Branch');
    press('ok');
    expect(events('location-selected').map((e) => e.data)).toMatchObject([{ locationId: 'loc-br', confirmed: false }]);
  });

  it('on the keypad: a pick the phone cannot make is said on the display, and OK goes back', () => {
    vi.advanceTimersByTime(10 * MIN);
    press('ok');
    doc = null; // the locations vanished under the open menu (a corrupt store read back)
    press('ok');
    expect(lines()).toEqual(['LOCATION NOT SET', 'no locations have been pushed to this phone', 'OK: back']);
    expect(events('location-selected')).toHaveLength(0);
    press('ok');
    expect(lines()[0]).toBe('CHECK YOUR LOCATION');
  });

  it('tells listeners when the best location changes, and only then', () => {
    const seen: (string | null)[] = [];
    const off = svc.onBestChange((b) => seen.push(b ? `${b.source}:${b.civic?.A3 ?? ''}` : null));
    vi.advanceTimersByTime(10 * MIN); // mismatch: the provisioned address is still the best, same content
    expect(seen).toEqual([]);
    svc.select('loc-br');
    expect(seen).toEqual(['user:Fresno']);
    vi.advanceTimersByTime(5 * MIN);
    expect(seen).toEqual(['user:Fresno']);
    off();
    svc.select('current');
    expect(seen).toEqual(['user:Fresno']);
  });

  it('confirming the current location silences the check on this network', () => {
    vi.advanceTimersByTime(10 * MIN);
    expect(svc.select('current')).toEqual({ locationId: 'loc-hq', confirmed: true });
    expect(events('location-selected')[0]!.data).toMatchObject({ locationId: 'loc-hq', confirmed: true });
    vi.advanceTimersByTime(5 * MIN);
    expect(alerts.active).toBe(false);
    expect(svc.list().status).toBe('confirmed');
  });

  it('does nothing when recommendations are off for this user', () => {
    doc = locationsDoc({ recommendations: false });
    vi.advanceTimersByTime(10 * MIN);
    expect(svc.list().status).toBe('off');
    expect(alerts.raised).toHaveLength(0);
  });

  it('reports and writes only when something changed', async () => {
    const first = events('location-changed');
    expect(first).toHaveLength(1); // the first report of this store
    expect(reports).toHaveLength(1);
    expect(reports[0]).toMatchObject({ v: 1, source: 'provisioned', data: { best: { source: 'provisioned' } } });
    const writes = store.writes;
    net.refresh(); // the same network again
    await realImmediate();
    svc.addressChanged(); // nothing new
    expect(store.writes).toBe(writes);
    expect(reports).toHaveLength(1);
    net.set(snapshot('10.2.0.6', '10.2.0.1'));
    await realImmediate();
    expect(events('location-changed')).toHaveLength(2);
    expect(reports).toHaveLength(2);
    expect(reports[1]!.data).toMatchObject({ network: { interfaces: [{ addresses: ['10.2.0.6/24'] }] } });
  });

  it('after a restart on the same network, sends no location-changed event', async () => {
    expect(events('location-changed')).toHaveLength(1);
    store.ackEvents(store.pendingEvents(0, 100).map((r) => r.seq));
    svc.stop();
    const again = new LocationService({ ...(svc as unknown as { deps: ConstructorParameters<typeof LocationService>[0] }).deps });
    again.start();
    expect(events('location-changed')).toHaveLength(0);
    expect(reports).toHaveLength(2); // the retained report is published again, unchanged
    expect(reports[1]!.data).toEqual(reports[0]!.data);
    again.stop();
  });
});
