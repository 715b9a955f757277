// The network watcher and location reports in real network namespaces: a "phone"
// namespace joined to a "lan" namespace by a veth pair, the agent's location parts
// running inside the phone namespace. Addresses added and removed, link down and
// up, the gateway changed: each gives one network change, one location report and
// one location-changed event; nothing else gives any.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetNs, vethPair } from '../helpers/netns.js';
import { LocationHarness, type HarnessLine } from '../helpers/location-harness.js';
import { requires } from '../helpers/require.js';

const gate = requires('network-netns', ['netns']);

type Snapshot = {
  interfaces: { name: string; up: boolean; mac: string; addresses: { address: string; prefix: number }[] }[];
  gateway4: { address: string; mac: string | null } | null;
};
type Report = {
  payload: {
    source: string;
    data: {
      network: {
        interfaces: { name: string; up: boolean; addresses: string[] }[];
        gateway4: { address: string; mac: string | null } | null;
      };
    };
  };
};
type EventLine = { event: { type: string; data: Record<string, unknown> } };

describe.skipIf(gate.skip)('network watcher in namespaces', () => {
  let phone: NetNs;
  let lan: NetNs;
  let h: LocationHarness;

  beforeAll(async () => {
    phone = new NetNs('ph');
    lan = new NetNs('lan');
    vethPair(phone, 'eth0', lan, 'sw0', '02:00:00:00:10:01');
    lan.ip('addr', 'add', '10.77.0.1/24', 'dev', 'sw0');
    lan.ip('addr', 'add', '10.77.0.254/24', 'dev', 'sw0');
    phone.ip('addr', 'add', '10.77.0.10/24', 'dev', 'eth0');
    phone.ip('route', 'add', 'default', 'via', '10.77.0.1');
    // The gateway's MAC as the phone's neighbour table has it (no traffic needed).
    phone.ip('neigh', 'replace', '10.77.0.1', 'lladdr', '02:00:00:00:20:01', 'dev', 'eth0', 'nud', 'permanent');
    h = await LocationHarness.start(phone, {
      interfaces: ['eth0'],
      debounceMs: 20,
      lldp: { enabled: false },
      dhcp: { enabled: false },
      recommendations: { firstCheckMs: 3_600_000, checkEveryMs: 3_600_000 },
    });
  }, 30_000);

  afterAll(async () => {
    await h?.stop();
    phone?.remove();
    lan?.remove();
  });

  /** Runs a change and returns the change, report and events it caused, waiting for all three. */
  async function change(
    fn: () => void,
    until: (s: Snapshot) => boolean,
  ): Promise<{ snapshot: Snapshot; report: Report; events: EventLine[] }> {
    const from = h.mark();
    fn();
    const c = await h.waitFor((l) => l.t === 'change' && until(l.snapshot as Snapshot), 10_000, from);
    const r = await h.waitFor((l) => l.t === 'report', 10_000, from);
    await h.waitFor((l) => l.t === 'event' && (l as unknown as EventLine).event.type === 'location-changed', 10_000, from);
    // Anything else this change caused has had its debounce window by now.
    await new Promise((res) => setTimeout(res, 150));
    return { snapshot: c.snapshot as Snapshot, report: r as unknown as Report, events: h.since(from, 'event') as unknown as EventLine[] };
  }

  const eth0 = (s: Snapshot) => s.interfaces.find((i) => i.name === 'eth0')!;
  const addrs = (s: Snapshot) => eth0(s).addresses.map((a) => `${a.address}/${a.prefix}`);

  it('reports the starting network once', () => {
    const start = h.lines.find((l) => l.t === 'change') as HarnessLine & { snapshot: Snapshot; reasons: string[] };
    expect(start.reasons).toEqual(['start']);
    expect(eth0(start.snapshot)).toMatchObject({ up: true, mac: '02:00:00:00:10:01' });
    expect(addrs(start.snapshot)).toContain('10.77.0.10/24');
    expect(start.snapshot.gateway4).toEqual({ address: '10.77.0.1', iface: 'eth0', mac: '02:00:00:00:20:01' });
    expect(h.lines.filter((l) => l.t === 'report')).toHaveLength(1);
    expect(h.lines.filter((l) => l.t === 'event')).toHaveLength(1);
  });

  it('an address added and removed (IPv4 and IPv6)', async () => {
    const added = await change(
      () => phone.ip('addr', 'add', '10.77.0.11/24', 'dev', 'eth0'),
      (s) => addrs(s).includes('10.77.0.11/24'),
    );
    expect(added.report.payload.data.network.interfaces[0]!.addresses).toContain('10.77.0.11/24');
    expect(added.events.map((e) => e.event.type)).toEqual(['location-changed']);
    expect(added.events[0]!.event.data).toMatchObject({
      reason: 'network',
      network: { addresses: expect.arrayContaining(['10.77.0.11/24']) },
    });

    const v6 = await change(
      () => phone.ip('addr', 'add', '2001:db8:77::10/64', 'dev', 'eth0', 'nodad'),
      (s) => addrs(s).includes('2001:db8:77::10/64'),
    );
    expect(v6.report.payload.data.network.interfaces[0]!.addresses).toContain('2001:db8:77::10/64');

    const removed = await change(
      () => phone.ip('addr', 'del', '10.77.0.11/24', 'dev', 'eth0'),
      (s) => !addrs(s).includes('10.77.0.11/24'),
    );
    expect(removed.report.payload.data.network.interfaces[0]!.addresses).not.toContain('10.77.0.11/24');
    expect(removed.events.map((e) => e.event.type)).toEqual(['location-changed']);
  });

  it('link down and up', async () => {
    const down = await change(
      () => phone.ip('link', 'set', 'eth0', 'down'),
      (s) => !eth0(s).up,
    );
    expect(down.report.payload.data.network.interfaces[0]!.up).toBe(false);
    // The kernel drops the routes of a downed link without telling: the snapshot still sees it.
    expect(down.snapshot.gateway4).toBeNull();
    const up = await change(
      () => phone.ip('link', 'set', 'eth0', 'up'),
      (s) => eth0(s).up,
    );
    expect(up.report.payload.data.network.interfaces[0]!.up).toBe(true);
    // Restore the default route the link-down removed.
    await change(
      () => phone.ip('route', 'replace', 'default', 'via', '10.77.0.1'),
      (s) => s.gateway4?.address === '10.77.0.1',
    );
  });

  it('the gateway changed, with its MAC', async () => {
    phone.ip('neigh', 'replace', '10.77.0.254', 'lladdr', '02:00:00:00:20:fe', 'dev', 'eth0', 'nud', 'permanent');
    const gw = await change(
      () => phone.ip('route', 'replace', 'default', 'via', '10.77.0.254'),
      (s) => s.gateway4?.address === '10.77.0.254',
    );
    expect(gw.snapshot.gateway4).toEqual({ address: '10.77.0.254', iface: 'eth0', mac: '02:00:00:00:20:fe' });
    expect(gw.report.payload.data.network.gateway4).toEqual({ address: '10.77.0.254', iface: 'eth0', mac: '02:00:00:00:20:fe' });
    expect(gw.events[0]!.event.data).toMatchObject({ network: { gateway4: { address: '10.77.0.254' } } });
  });

  it('a change on an interface it does not watch, or none at all, reports nothing and writes nothing', async () => {
    vethPair(phone, 'eth9', lan, 'sw9');
    const from = h.mark();
    phone.ip('addr', 'add', '10.99.0.1/24', 'dev', 'eth9');
    h.send({ cmd: 'refresh' });
    h.send({ cmd: 'list' });
    const first = (await h.waitFor((l) => l.t === 'list', 5000, from)) as HarnessLine & { writes: number };
    await new Promise((res) => setTimeout(res, 300));
    const mark = h.mark();
    h.send({ cmd: 'list' });
    const second = (await h.waitFor((l) => l.t === 'list', 5000, mark)) as HarnessLine & { writes: number };
    expect(h.since(from).filter((l) => ['change', 'report', 'event'].includes(l.t))).toEqual([]);
    expect(second.writes).toBe(first.writes);
  });
});
