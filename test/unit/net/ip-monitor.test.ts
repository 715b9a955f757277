import { describe, expect, it } from 'vitest';
import { isRelevant, parseMonitorLine } from '../../../hal/net/ip-monitor.js';

// Lines exactly as `ip -o monitor link address route` (iproute2 6.1) printed them in a netns.
const LINES = {
  linkDown:
    '2: eth0@if2: <BROADCAST,MULTICAST> mtu 1500 qdisc noqueue state DOWN group default \\    link/ether 2a:3c:94:3e:b8:c4 brd ff:ff:ff:ff:ff:ff link-netns x2',
  addr4: '2: eth0    inet 10.20.0.5/24 scope global eth0\\       valid_lft forever preferred_lft forever',
  addr6Del: 'Deleted 2: eth0    inet6 fe80::283c:94ff:fe3e:b8c4/64 scope link \\       valid_lft forever preferred_lft forever',
  addr6Tentative: '2: eth0    inet6 2001:db8::7/64 scope global tentative \\       valid_lft forever preferred_lft forever',
  localRoute: 'local 10.20.0.5 dev eth0 table local proto kernel scope host src 10.20.0.5 ',
  netRoute: '10.20.0.0/24 dev eth0 proto kernel scope link src 10.20.0.5 ',
  defaultRoute: 'default via 10.20.0.1 dev eth0 ',
  default6Del: 'Deleted default via 2001:db8::1 dev eth0 metric 1024 pref medium',
  timestamped: '[2026-11-22T07:37:59.598174] 2: eth0    inet 10.20.0.5/24 scope global eth0',
};

describe('ip monitor lines', () => {
  it('recognises links, addresses and routes', () => {
    expect(parseMonitorLine(LINES.linkDown)).toEqual({ kind: 'link', deleted: false, iface: 'eth0' });
    expect(parseMonitorLine(LINES.addr4)).toEqual({
      kind: 'address',
      deleted: false,
      iface: 'eth0',
      family: 'IPv4',
      address: '10.20.0.5',
      scope: 'global',
    });
    expect(parseMonitorLine(LINES.addr6Del)).toMatchObject({
      kind: 'address',
      deleted: true,
      family: 'IPv6',
      address: 'fe80::283c:94ff:fe3e:b8c4',
      scope: 'link',
    });
    expect(parseMonitorLine(LINES.addr6Tentative)).toMatchObject({ kind: 'address', address: '2001:db8::7' });
    expect(parseMonitorLine(LINES.defaultRoute)).toEqual({ kind: 'route', deleted: false, isDefault: true, iface: 'eth0' });
    expect(parseMonitorLine(LINES.default6Del)).toEqual({ kind: 'route', deleted: true, isDefault: true, iface: 'eth0' });
    expect(parseMonitorLine(LINES.timestamped)).toMatchObject({ kind: 'address', address: '10.20.0.5' });
    expect(parseMonitorLine('')).toBeNull();
    expect(parseMonitorLine('garbage here')).toBeNull();
  });

  it('keeps only what can change the snapshot of watched interfaces', () => {
    const eth0 = (i: string) => i === 'eth0';
    const relevant = (l: string) => isRelevant(parseMonitorLine(l)!, eth0);
    expect(relevant(LINES.linkDown)).toBe(true);
    expect(relevant(LINES.addr4)).toBe(true);
    expect(relevant(LINES.defaultRoute)).toBe(true);
    expect(relevant(LINES.localRoute)).toBe(false);
    expect(relevant(LINES.netRoute)).toBe(false);
    expect(relevant(LINES.addr4.replace(/eth0/g, 'wlan0'))).toBe(false);
  });
});
