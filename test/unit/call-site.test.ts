// Where the phone is at call time, from the network service's snapshot and LLDP table.
import { describe, expect, it } from 'vitest';
import { extensionOf, networkSite } from '../../agent/emergency/call-site.js';
import type { LldpNeighbor } from '../../hal/net/lldp-json.js';
import type { NetworkSnapshot } from '../../hal/net/types.js';

const snap: NetworkSnapshot = {
  interfaces: [
    {
      name: 'eth0',
      mac: '02:00:00:00:00:01',
      up: true,
      addresses: [
        { family: 'IPv6', address: '2001:db8::5', prefix: 64 },
        { family: 'IPv4', address: '10.1.2.30', prefix: 24 },
      ],
    },
    { name: 'eth1', mac: '02:00:00:00:00:02', up: true, addresses: [{ family: 'IPv4', address: '192.168.9.4', prefix: 24 }] },
  ],
  gateway4: { address: '192.168.9.1', iface: 'eth1', mac: null },
  gateway6: null,
  dns: [],
};
const neighbor = (iface: string, portId: string): LldpNeighbor => ({
  iface,
  rid: '1',
  chassisId: 'aa:bb:cc:00:00:01',
  chassisIdType: 'mac',
  portId,
  portIdType: 'ifname',
  portDescr: `port ${portId}`,
  sysName: 'sw1',
  ttl: 120,
  med: null,
});

describe('networkSite', () => {
  it('names the interface carrying the SIP bind address, its address, and the switch port on it', () => {
    expect(networkSite(snap, [neighbor('eth1', 'ge-0/0/2'), neighbor('eth0', 'ge-0/0/7')], '10.1.2.30')).toEqual({
      ip: '10.1.2.30',
      interface: 'eth0',
      switch: { chassisId: 'aa:bb:cc:00:00:01', portId: 'ge-0/0/7', portDescr: 'port ge-0/0/7', sysName: 'sw1' },
    });
  });

  it('without a bind address: the default route interface, its IPv4 address; no neighbour there and several elsewhere is no switch', () => {
    expect(networkSite(snap, [neighbor('eth0', 'a'), neighbor('eth2', 'b')], '0.0.0.0')).toEqual({
      ip: '192.168.9.4',
      interface: 'eth1',
      switch: null,
    });
    expect(networkSite(snap, [neighbor('eth0', 'a')]).switch?.portId).toBe('a'); // the only neighbour seen
  });

  it('no snapshot yet, or every interface down: nothing known', () => {
    expect(networkSite(null, [])).toEqual({ ip: null, interface: null, switch: null });
    const down = { ...snap, interfaces: snap.interfaces.map((i) => ({ ...i, up: false })) };
    expect(networkSite(down, []).ip).toBeNull();
  });
});

describe('extensionOf', () => {
  it('is the user part of the address of record', () => {
    expect(extensionOf('sip:2101@pbx.example')).toBe('2101');
    expect(extensionOf('sips:front%20desk@pbx.example;transport=tls')).toBe('front desk');
    expect(extensionOf('sip:pbx.example')).toBeNull();
    expect(extensionOf(undefined)).toBeNull();
  });
});
