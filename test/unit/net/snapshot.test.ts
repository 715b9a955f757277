import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { hostPaths } from '../../../hal/host.js';
import { arpLookup, defaultRoute4, defaultRoute6, hostSnapshotReader, parseResolvConf } from '../../../hal/net/snapshot.js';
import { interfaceFilter } from '../../../hal/net/watcher.js';

const all = () => true;
const le = os.endianness() === 'LE';
// 10.20.0.1 as the kernel prints it in host byte order.
const GW_HEX = le ? '0100140A' : '0A140001';

const ROUTE = [
  'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT',
  `eth0\t00000000\t${le ? '0200140A' : '0A140002'}\t0003\t0\t0\t200\t00000000\t0\t0\t0`,
  `eth0\t00000000\t${GW_HEX}\t0003\t0\t0\t100\t00000000\t0\t0\t0`,
  `eth0\t0000140A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0`,
].join('\n');

const IPV6_ROUTE = [
  '20010db8000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0',
  '00000000000000000000000000000000 00 00000000000000000000000000000000 00 20010db8000000000000000000000001 00000400 00000001 00000000 00000003     eth0',
  '00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo',
].join('\n');

const ARP = [
  'IP address       HW type     Flags       HW address            Mask     Device',
  '10.20.0.1        0x1         0x2         8E:5B:0C:59:5F:79     *        eth0',
  '10.20.0.9        0x1         0x0         00:00:00:00:00:00     *        eth0',
].join('\n');

describe('proc parsers', () => {
  it('picks the lowest-metric IPv4 default route', () => {
    expect(defaultRoute4(ROUTE, all)).toEqual({ address: '10.20.0.1', iface: 'eth0' });
    expect(defaultRoute4(ROUTE, (i) => i === 'wlan0')).toBeNull();
  });
  it('reads the IPv6 default route and compresses the address', () => {
    expect(defaultRoute6(IPV6_ROUTE, all)).toEqual({ address: '2001:db8::1', iface: 'eth0' });
  });
  it('finds complete ARP entries only', () => {
    expect(arpLookup(ARP, '10.20.0.1', 'eth0')).toBe('8e:5b:0c:59:5f:79');
    expect(arpLookup(ARP, '10.20.0.9', 'eth0')).toBeNull();
    expect(arpLookup(ARP, '10.20.0.1', 'eth1')).toBeNull();
  });
  it('reads nameservers once each', () => {
    expect(parseResolvConf('# x\nnameserver 10.0.0.53\nsearch example.com\nnameserver 2001:db8::53\nnameserver 10.0.0.53\n')).toEqual([
      '10.0.0.53',
      '2001:db8::53',
    ]);
  });
  it('filters interfaces by name and prefix', () => {
    expect(interfaceFilter([])('lo')).toBe(false);
    expect(interfaceFilter([])('eth0')).toBe(true);
    expect(interfaceFilter(['eth*'])('eth1')).toBe(true);
    expect(interfaceFilter(['eth0'])('eth1')).toBe(false);
  });
});

describe('host snapshot reader', () => {
  let root = '';
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('joins os.networkInterfaces, /sys, /proc and resolv.conf through HostPaths', async () => {
    root = mkdtempSync(path.join(os.tmpdir(), 'e911-snap-'));
    for (const [name, state, mac] of [
      ['eth0', 'up', '02:00:00:00:00:01'],
      ['eth1', 'down', '02:00:00:00:00:02'],
      ['lo', 'unknown', '00:00:00:00:00:00'],
    ]) {
      mkdirSync(path.join(root, 'sys/class/net', name!), { recursive: true });
      writeFileSync(path.join(root, 'sys/class/net', name!, 'operstate'), `${state}\n`);
      writeFileSync(path.join(root, 'sys/class/net', name!, 'address'), `${mac}\n`);
    }
    mkdirSync(path.join(root, 'proc/net'), { recursive: true });
    mkdirSync(path.join(root, 'etc'), { recursive: true });
    writeFileSync(path.join(root, 'proc/net/route'), ROUTE);
    writeFileSync(path.join(root, 'proc/net/ipv6_route'), IPV6_ROUTE);
    writeFileSync(path.join(root, 'proc/net/arp'), ARP);
    writeFileSync(path.join(root, 'etc/resolv.conf'), 'nameserver 10.20.0.53\n');
    const host = { ...hostPaths({ E911_HOST_ROOT: root }), commands: { ip: '/bin/false', lldpcli: 'x', lldpd: 'x' } };
    const read = hostSnapshotReader({
      host,
      watches: interfaceFilter([]),
      networkInterfaces: () => ({
        lo: [{ address: '127.0.0.1', netmask: '255.0.0.0', family: 'IPv4', mac: '00:00:00:00:00:00', internal: true, cidr: '127.0.0.1/8' }],
        eth0: [
          {
            address: '2001:DB8::5',
            netmask: 'ffff:ffff:ffff:ffff::',
            family: 'IPv6',
            mac: '02:00:00:00:00:01',
            internal: false,
            cidr: '2001:db8::5/64',
            scopeid: 0,
          },
          {
            address: '10.20.0.5',
            netmask: '255.255.255.0',
            family: 'IPv4',
            mac: '02:00:00:00:00:01',
            internal: false,
            cidr: '10.20.0.5/24',
          },
        ],
      }),
    });
    const snap = await read();
    expect(snap).toEqual({
      interfaces: [
        {
          name: 'eth0',
          mac: '02:00:00:00:00:01',
          up: true,
          addresses: [
            { family: 'IPv4', address: '10.20.0.5', prefix: 24 },
            { family: 'IPv6', address: '2001:db8::5', prefix: 64 },
          ],
        },
        { name: 'eth1', mac: '02:00:00:00:00:02', up: false, addresses: [] },
      ],
      gateway4: { address: '10.20.0.1', iface: 'eth0', mac: '8e:5b:0c:59:5f:79' },
      // `ip -6 neigh` is /bin/false here: the MAC stays unknown, the gateway is still reported.
      gateway6: { address: '2001:db8::1', iface: 'eth0', mac: null },
      dns: ['10.20.0.53'],
    });
  });
});
