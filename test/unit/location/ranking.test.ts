import { describe, expect, it } from 'vitest';
import { rank, type Location } from '../../../agent/location/ranking.js';
import { sampleAddress } from '../../helpers/address.js';

const civic = sampleAddress().civic;
const at = 1_000_000;
const loc = (over: Partial<Location>): Location => ({
  source: 'provisioned',
  method: 'Manual',
  civic,
  geo: null,
  observedAt: at,
  origin: {},
  ...over,
});
const geo = { latitude: 37.3, longitude: -121.9, altitude: null, radius: null, datum: 'WGS84' };

describe('ranking', () => {
  it('follows the documented order', () => {
    const all = [
      loc({ source: 'held', method: 'Wiremap', geo }),
      loc({ source: 'dhcp', method: 'DHCP', what: 2 }),
      loc({ source: 'lldp-med', method: 'LLDP-MED', geo, origin: { iface: 'eth0' } }),
      loc({ source: 'provisioned' }),
      loc({ source: 'user' }),
    ];
    const r = rank(all, at + 5000, false);
    expect(r.map((x) => `${x.source}:${x.kind}:${x.rank}`)).toEqual([
      'user:civic:1',
      'provisioned:civic:2',
      'lldp-med:civic:3',
      'dhcp:civic:4',
      'held:civic:5',
      'lldp-med:geodetic:8',
      'held:geodetic:8',
    ]);
    expect(r[0]!.ageMs).toBe(5000);
  });

  it('puts a contradicted provisioned address after the network civic sources', () => {
    const r = rank([loc({ source: 'provisioned' }), loc({ source: 'held' })], at, true);
    expect(r.map((x) => `${x.source}:${x.rank}`)).toEqual(['held:5', 'provisioned:6']);
  });

  it('ranks a civic without a street number below every dispatchable civic', () => {
    const partial = { country: 'US', A1: 'CA', A3: 'San Jose', RD: 'Main', BLD: 'B' };
    const r = rank([loc({ source: 'lldp-med', civic: partial }), loc({ source: 'provisioned' })], at, true);
    expect(r.map((x) => `${x.source}:${x.rank}:${x.dispatchable}`)).toEqual(['provisioned:6:true', 'lldp-med:7:false']);
  });

  it('breaks ties by DHCP what, then newest, then interface name', () => {
    const r = rank(
      [
        loc({ source: 'dhcp', what: 0, origin: { iface: 'eth0' } }),
        loc({ source: 'dhcp', what: 2, origin: { iface: 'eth2' }, observedAt: at - 10 }),
        loc({ source: 'dhcp', what: 2, origin: { iface: 'eth1' }, observedAt: at - 10 }),
        loc({ source: 'dhcp', what: 2, origin: { iface: 'eth3' }, observedAt: at }),
      ],
      at,
      false,
    );
    expect(r.map((x) => x.origin.iface)).toEqual(['eth3', 'eth1', 'eth2', 'eth0']);
  });
});
