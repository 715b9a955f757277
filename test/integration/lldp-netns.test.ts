// LLDP-MED end to end: lldpd as a switch in one namespace (class 4, civic
// address, ELIN, coordinates, a tagged voice VLAN, fast start), the agent's own
// lldpd (-M 3, its own socket) and location parts in the phone's namespace.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetNs, vethPair } from '../helpers/netns.js';
import { LocationHarness, type HarnessLine } from '../helpers/location-harness.js';
import { stopProcess } from '../helpers/process.js';
import { requires } from '../helpers/require.js';

const gate = requires('lldp-netns', ['netns', 'lldpd']);

type Best = {
  source: string;
  method: string;
  kind: string;
  civic?: Record<string, string>;
  origin: Record<string, string>;
  dispatchable: boolean;
};
type ReportLine = HarnessLine & {
  payload: {
    source: string;
    data: {
      best: Best | null;
      candidates: Best[];
      elin: string | null;
      lldp: { chassisId: string; portId: string; voiceVlan?: { vlan: number; pcp: number; dscp: number } }[];
    };
  };
};

describe.skipIf(gate.skip)('LLDP-MED from a switch in another namespace', () => {
  let phone: NetNs;
  let sw: NetNs;
  let dir = '';
  let switchDaemon: ChildProcess;
  let h: LocationHarness;
  let swSock = '';
  const swCli = (...args: string[]) =>
    execFileSync('ip', ['netns', 'exec', sw.name, 'lldpcli', '-u', swSock, ...args], { encoding: 'utf8' });

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'e911-lldp-'));
    // lldpcli drops to the _lldpd user before it connects: it must be able to reach the socket.
    chmodSync(dir, 0o755);
    swSock = path.join(dir, 'switch.sock');
    phone = new NetNs('ph');
    sw = new NetNs('sw');
    vethPair(phone, 'eth0', sw, 'ge1');
    switchDaemon = spawn('ip', ['netns', 'exec', sw.name, 'lldpd', '-d', '-M', '4', '-u', swSock, '-I', 'ge1', '-S', 'test switch'], {
      stdio: 'ignore',
    });
    for (let i = 0; i < 100 && !existsSync(swSock); i++) await new Promise((r) => setTimeout(r, 20));
    swCli(
      'configure',
      'ports',
      'ge1',
      'med',
      'location',
      'address',
      'country',
      'US',
      'language',
      'en',
      'country-subdivision',
      'IL',
      'city',
      'Springfield',
      'street',
      'Main',
      'number',
      '123',
      'zip',
      '62701',
      'building',
      'B2',
      'floor',
      '3',
      'room',
      '301',
    );
    swCli('configure', 'ports', 'ge1', 'med', 'location', 'elin', '4085550123');
    swCli(
      'configure',
      'ports',
      'ge1',
      'med',
      'location',
      'coordinate',
      'latitude',
      '39.78N',
      'longitude',
      '89.65W',
      'altitude',
      '12',
      'm',
      'datum',
      'WGS84',
    );
    swCli('configure', 'ports', 'ge1', 'med', 'policy', 'application', 'voice', 'vlan', '100', 'priority', 'voice', 'dscp', '46', 'tagged');
    swCli('configure', 'med', 'fast-start', 'enable');
    h = await LocationHarness.start(phone, {
      interfaces: ['eth0'],
      debounceMs: 20,
      lldp: { enabled: true, runDaemon: true, socketPath: path.join(dir, 'phone.sock') },
      dhcp: { enabled: false },
      recommendations: { firstCheckMs: 3_600_000, checkEveryMs: 3_600_000 },
    });
  }, 30_000);

  afterAll(async () => {
    await h?.stop();
    await stopProcess(switchDaemon);
    phone?.remove();
    sw?.remove();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the switch civic address becomes the best location, mapped to RFC 5139, with the ELIN and voice VLAN', async () => {
    const r = (await h.waitFor((l) => l.t === 'report' && (l as ReportLine).payload.source === 'lldp-med', 10_000, 0)) as ReportLine;
    const d = r.payload.data;
    expect(d.best).toMatchObject({
      source: 'lldp-med',
      method: 'LLDP-MED',
      kind: 'civic',
      dispatchable: true,
      civic: { country: 'US', A1: 'IL', A3: 'Springfield', RD: 'Main', HNO: '123', PC: '62701', BLD: 'B2', FLR: '3', ROOM: '301' },
      origin: { iface: 'eth0' },
    });
    expect(d.elin).toBe('4085550123');
    expect(d.lldp[0]!.voiceVlan).toEqual({ vlan: 100, pcp: 5, dscp: 46 });
    expect(d.candidates.find((c) => c.kind === 'geodetic')).toMatchObject({
      source: 'lldp-med',
      geo: { latitude: 39.77, longitude: -89.64, altitude: 12, datum: 'WGS84' },
    });
    const ev = (await h.waitFor(
      (l) => l.t === 'event' && (l as unknown as { event: { data: { best: Best | null } } }).event.data.best?.source === 'lldp-med',
      5000,
      0,
    )) as unknown as {
      event: { type: string; data: { switch: { chassisId: string; portId: string } } };
    };
    expect(ev.event.type).toBe('location-changed');
    expect(ev.event.data.switch.chassisId).toBe(d.lldp[0]!.chassisId);
  });

  it('a new civic address on the switch port is reported again', async () => {
    const from = h.mark();
    swCli(
      'configure',
      'ports',
      'ge1',
      'med',
      'location',
      'address',
      'country',
      'US',
      'country-subdivision',
      'IL',
      'city',
      'Shelbyville',
      'street',
      'Oak',
      'number',
      '9',
      'zip',
      '62565',
    );
    const r = (await h.waitFor(
      (l) => l.t === 'report' && (l as ReportLine).payload.data.best?.civic?.A3 === 'Shelbyville',
      40_000,
      from,
    )) as ReportLine;
    expect(r.payload.data.best!.civic).toEqual({ country: 'US', A1: 'IL', A3: 'Shelbyville', RD: 'Oak', HNO: '9', PC: '62565' });
  }, 45_000);

  it('when the switch goes away, LLDP-MED drops out of the report', async () => {
    const from = h.mark();
    sw.ip('link', 'set', 'ge1', 'down');
    const r = (await h.waitFor((l) => l.t === 'report' && (l as ReportLine).payload.data.lldp.length === 0, 10_000, from)) as ReportLine;
    expect(r.payload.data.best).toBeNull();
    expect(r.payload.data.elin).toBeNull();
  });
});
