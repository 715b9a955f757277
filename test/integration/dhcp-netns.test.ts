// DHCP location options end to end: dnsmasq in the LAN namespace hands out
// option 99 (civic, RFC 4776) and option 123 (geo, RFC 6225); busybox udhcpc in
// the phone namespace asks for them and its hook (scripts/dhcp/udhcpc-e911.sh)
// hands them over; the agent's location parts, also in the phone namespace,
// read the hand-over folder and report the DHCP civic address.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetNs, vethPair } from '../helpers/netns.js';
import { LocationHarness, type HarnessLine } from '../helpers/location-harness.js';
import { REPO_ROOT } from '../helpers/bundle.js';
import { encodeCivicOption, encodeGeoOption } from '../../agent/location/dhcp-codec.js';
import { stopProcess } from '../helpers/process.js';
import { requires } from '../helpers/require.js';

const gate = requires('dhcp-netns', ['netns', 'dhcp']);

type ReportLine = HarnessLine & {
  payload: {
    source: string;
    data: {
      best: { source: string; method: string; civic?: Record<string, string>; origin: Record<string, string> } | null;
      candidates: { source: string; kind: string; geo?: Record<string, number | string | null> }[];
    };
  };
};
const HOOK = path.join(REPO_ROOT, 'scripts/dhcp/udhcpc-e911.sh');
const colonHex = (b: Buffer) => [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');

describe.skipIf(gate.skip)('DHCP options 99 and 123 from dnsmasq', () => {
  let phone: NetNs;
  let lan: NetNs;
  let dir = '';
  let handOver = '';
  let dnsmasq: ChildProcess;
  let h: LocationHarness;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'e911-dhcp-'));
    handOver = path.join(dir, 'handover');
    phone = new NetNs('ph');
    lan = new NetNs('lan');
    vethPair(phone, 'eth0', lan, 'sw0');
    lan.ip('addr', 'add', '10.88.0.1/24', 'dev', 'sw0');
    const civic = encodeCivicOption(2, 'US', [
      [1, 'CA'],
      [3, 'San Jose'],
      [34, 'Main'],
      [18, 'St'],
      [19, '100'],
      [24, '95110'],
      [27, '2'],
    ]);
    const geo = encodeGeoOption({ latitude: 37.3382, longitude: -121.8863, altitude: 30 });
    dnsmasq = spawn(
      'ip',
      [
        'netns',
        'exec',
        lan.name,
        'dnsmasq',
        '--no-daemon',
        '--conf-file=/dev/null',
        '--port=0',
        '--interface=sw0',
        '--bind-interfaces',
        '--dhcp-range=10.88.0.100,10.88.0.150,255.255.255.0,1h',
        // Offers to a client without an address yet go out as broadcasts: busybox udhcpc in a netns misses unicast ones.
        '--dhcp-broadcast',
        `--dhcp-option-force=99,${colonHex(civic)}`,
        `--dhcp-option-force=123,${colonHex(geo)}`,
        `--dhcp-leasefile=${path.join(dir, 'leases')}`,
        '--user=root',
        '--group=root',
      ],
      { stdio: 'ignore' },
    );
    h = await LocationHarness.start(
      phone,
      {
        interfaces: ['eth0'],
        debounceMs: 20,
        lldp: { enabled: false },
        dhcp: { enabled: true },
        recommendations: { firstCheckMs: 3_600_000, checkEveryMs: 3_600_000 },
      },
      { E911_DHCP_LOCATION_DIR: handOver },
    );
  }, 30_000);

  afterAll(async () => {
    await h?.stop();
    await stopProcess(dnsmasq);
    phone?.remove();
    lan?.remove();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a lease with option 99 makes the DHCP civic address the best location', async () => {
    const from = h.mark();
    // Only our hook runs: the stock one would rewrite resolv.conf outside the namespace.
    execFileSync(
      'ip',
      ['netns', 'exec', phone.name, 'udhcpc', '-i', 'eth0', '-f', '-q', '-n', '-t', '5', '-T', '1', '-O', '99', '-O', '123', '-s', HOOK],
      {
        env: { ...process.env, E911_DHCP_LOCATION_DIR: handOver },
        stdio: 'ignore',
        timeout: 20_000,
      },
    );
    const r = (await h.waitFor((l) => l.t === 'report' && (l as ReportLine).payload.source === 'dhcp', 10_000, from)) as ReportLine;
    expect(r.payload.data.best).toMatchObject({
      source: 'dhcp',
      method: 'DHCP',
      civic: { country: 'US', A1: 'CA', A3: 'San Jose', RD: 'Main', STS: 'St', HNO: '100', PC: '95110', FLR: '2' },
      origin: { iface: 'eth0' },
    });
    const geo = r.payload.data.candidates.find((c) => c.kind === 'geodetic')!;
    expect(geo.source).toBe('dhcp');
    expect(geo.geo!.latitude as number).toBeCloseTo(37.3382, 6);
    expect(geo.geo!.longitude as number).toBeCloseTo(-121.8863, 6);
    expect(geo.geo).toMatchObject({ altitude: 30, datum: 'WGS84' });
  }, 30_000);

  it('losing the lease withdraws it', async () => {
    const from = h.mark();
    execFileSync(HOOK, ['deconfig'], { env: { ...process.env, E911_DHCP_LOCATION_DIR: handOver, interface: 'eth0' } });
    const r = (await h.waitFor((l) => l.t === 'report', 10_000, from)) as ReportLine;
    expect(r.payload.data.best).toBeNull();
  });
});
