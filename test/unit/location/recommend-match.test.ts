// The recommendation matcher's own CIDR code against node:net's BlockList (what it replaced).
import { BlockList, isIP } from 'node:net';
import { describe, expect, it } from 'vitest';
import { matchesNetwork, parseAddress } from '../../../agent/location/recommend.js';
import type { RecommendedLocation } from '../../../provisioning/protocol/locations.js';

const loc = (cidrs: string[], switchPorts?: RecommendedLocation['switchPorts']): RecommendedLocation => ({
  id: 'x',
  code: 'X',
  name: 'X',
  civic: { country: 'US' },
  cidrs,
  ...(switchPorts ? { switchPorts } : {}),
});

function viaBlockList(cidrs: string[], address: string): boolean {
  const bl = new BlockList();
  for (const c of cidrs) {
    const [net, bits] = c.split('/');
    const fam = isIP(net!);
    bl.addSubnet(net!, bits === undefined ? (fam === 4 ? 32 : 128) : Number(bits), fam === 4 ? 'ipv4' : 'ipv6');
  }
  return bl.check(address, isIP(address) === 4 ? 'ipv4' : 'ipv6');
}

describe('recommendation matcher', () => {
  it('parses IPv4 and IPv6 forms (compressed, embedded IPv4, zone id)', () => {
    expect(parseAddress('10.1.2.3')).toEqual({ v6: false, words: [0, 0, 0, 0x0a010203] });
    expect(parseAddress('2001:db8::1')).toEqual({ v6: true, words: [0x20010db8, 0, 0, 1] });
    expect(parseAddress('::ffff:192.0.2.1')).toEqual({ v6: true, words: [0, 0, 0xffff, 0xc0000201] });
    expect(parseAddress('fe80::1%eth0')).toEqual({ v6: true, words: [0xfe800000, 0, 0, 1] });
    expect(parseAddress('::')).toEqual({ v6: true, words: [0, 0, 0, 0] });
    expect(parseAddress('not an address')).toBeNull();
  });

  it('agrees with BlockList on random addresses and prefixes of every length', () => {
    let seed = 7;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const v4 = () => [rnd(256), rnd(256), rnd(256), rnd(256)].join('.');
    const v6 = () => Array.from({ length: 8 }, () => rnd(0x10000).toString(16)).join(':');
    for (let i = 0; i < 3000; i++) {
      const six = i % 2 === 1;
      const net = six ? v6() : v4();
      const cidr = `${net}/${rnd(six ? 129 : 33)}`;
      // Near the network often, so both outcomes are tested.
      const addr = rnd(2) ? net.replace(/[0-9a-f]+$/, () => (six ? rnd(0x10000).toString(16) : String(rnd(256)))) : six ? v6() : v4();
      expect(matchesNetwork(loc([cidr]), { addresses: [addr], switches: [] }), `${addr} in ${cidr}`).toBe(viaBlockList([cidr], addr));
    }
  });

  it('matches switch ports by chassis (and port when given), case and space insensitive; bad CIDRs match nothing', () => {
    const l = loc(['nonsense', '10.0.0.0/33', '10.0.0.0/x'], [{ chassisId: 'AA:BB ', portId: 'Ge-0/0/1' }, { chassisId: 'cc' }]);
    expect(matchesNetwork(l, { addresses: ['10.0.0.1'], switches: [] })).toBe(false);
    expect(matchesNetwork(l, { addresses: [], switches: [{ chassisId: 'aa:bb', portId: 'ge-0/0/1' }] })).toBe(true);
    expect(matchesNetwork(l, { addresses: [], switches: [{ chassisId: 'aa:bb', portId: 'ge-0/0/2' }] })).toBe(false);
    expect(matchesNetwork(l, { addresses: [], switches: [{ chassisId: 'CC', portId: 'any' }] })).toBe(true);
  });
});
