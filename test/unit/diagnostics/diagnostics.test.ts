// 933 diagnostics with one part broken at a time: each failure names what failed
// and what to do. The emergency path is the real EmergencyService on the in-memory
// voice stack; probes are fakes (the real OPTIONS ping is tested against SIPp in
// test/integration/handset-sim.test.ts).
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Diagnostics, type DiagnosticsDeps } from '../../../agent/diagnostics/diagnostics.js';
import { reportDisplayLines, reportTable } from '../../../agent/diagnostics/format.js';
import { clockSync, lldpSighting, serviceNetworkProbe } from '../../../agent/diagnostics/probes.js';
import type { NetworkMonitor } from '../../../hal/net/types.js';
import type { LldpAgent } from '../../../hal/net/lldpd.js';
import { parseNeighbors } from '../../../hal/net/lldp-json.js';
import { parseSipTarget } from '../../../agent/diagnostics/sip-options.js';
import type { CheckId, DiagnosticsReport, NetworkProbe } from '../../../agent/diagnostics/types.js';
import { EmergencyService } from '../../../agent/emergency/service.js';
import { dialPlanSchema, emergencySchema, sipSchema } from '../../../agent/emergency/config.js';
import { MemoryVoiceStack } from '../../../hal/voice/memory.js';
import { hostPaths } from '../../../hal/host.js';
import type { StoredAddress } from '../../../agent/store/store.js';
import { documentHash, signDocument } from '../../../provisioning/protocol/signing.js';
import { sampleAddress, testKeys } from '../../helpers/address.js';
import { silentLog } from '../../helpers/log.js';

const keys = testKeys();
const NOW = new Date('2026-11-22T08:00:00Z');

function signed(over: Parameters<typeof sampleAddress>[0] = {}, appliedAt = '2026-11-20T08:00:00Z'): StoredAddress {
  const doc = sampleAddress(over);
  return {
    doc,
    version: doc.version,
    hash: documentHash(doc),
    signature: signDocument(doc, keys.privateKey),
    receivedAt: appliedAt,
    appliedAt,
  };
}

const goodNetwork: NetworkProbe = {
  interfaces: () => [
    { name: 'eth0', up: true, mac: '00:d0:1e:12:34:56', addresses: [{ family: 'IPv4', address: '10.0.0.50', prefix: 24 }] },
  ],
  gateway: () => '10.0.0.1',
  lldp: async () => ({ seen: true, detail: 'eth0: sw1 port Gi0/1 (LLDP-MED location received)', location: true }),
};

const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const s of stops.splice(0)) await s();
});

async function emergencyService(o: { voice?: MemoryVoiceStack | null; routes?: Record<string, string>; registrar?: boolean } = {}) {
  const voice = o.voice === undefined ? new MemoryVoiceStack() : o.voice;
  const svc = new EmergencyService({
    voice,
    voiceUnavailableReason: 'PJSIP addon not available: not built',
    emergency: emergencySchema.parse({ routes: o.routes ?? { primary: 'sip:10.0.0.1:5060', secondary: 'sip:10.0.0.2:5060' } }),
    dialPlan: dialPlanSchema.parse({}),
    sip: sipSchema.parse({
      port: 5062,
      bindAddress: '10.0.0.50',
      ...(o.registrar ? { account: { uri: 'sip:1001@pbx.test', registrar: 'sip:10.0.0.9' } } : {}),
    }),
    deviceId: 'phone-1',
    agentVersion: 'test',
    log: silentLog(),
    emitEvent: () => {},
    network: () => ({ interface: 'eth0', ip: '10.0.0.50', mac: '00:d0:1e:12:34:56' }),
  });
  await svc.start(signed());
  stops.push(() => svc.stop());
  // null only when a test asks for no voice stack, and then it does not touch it.
  return { svc, voice: voice as MemoryVoiceStack };
}

function deps(over: Partial<DiagnosticsDeps> = {}): DiagnosticsDeps & { published: DiagnosticsReport[] } {
  const published: DiagnosticsReport[] = [];
  return {
    deviceId: 'phone-1',
    serverKey: keys.publicKey,
    log: silentLog(),
    now: () => NOW,
    address: () => signed(),
    network: goodNetwork,
    clock: async () => ({ synchronized: true, source: 'timedatectl', detail: 'NTPSynchronized=yes' }),
    link: () => ({ state: 'online', lastError: null, backlog: 0, inFlight: 0 }),
    emergency: () => null,
    handset: () => ({
      backend: 'serial:/dev/ttyS1',
      connected: true,
      responsive: true,
      offHook: false,
      firmware: 'mcu 2.1',
      rows: 4,
      cols: 24,
      framingErrors: 0,
      retransmits: 0,
      reopens: 0,
      queued: 0,
    }),
    optionsPing: async () => ({ answered: true, code: 200, reason: 'OK' }),
    publish: (r) => published.push(r),
    testCallTimeoutMs: 2000,
    published,
    ...over,
  };
}

const check = (r: DiagnosticsReport, id: CheckId) => r.checks.find((c) => c.id === id)!;

describe('933 diagnostics', () => {
  it('passes everything on a healthy phone, places the test call, hangs up when answered, and publishes once', async () => {
    const { svc, voice } = await emergencyService({ registrar: true });
    const mainAccount = [...voice.accounts.entries()].find(([, a]) => a.config.registrar)![0];
    voice.registration(mainAccount, 200);
    await new Promise((r) => setTimeout(r, 0));
    const d = deps({ emergency: () => svc });
    const run = new Diagnostics(d).run({ trigger: 'cli', testCall: { place: true, hangUpWhenAnswered: true } });
    // The network answers the 933 INVITE.
    await vi.waitFor(() => expect(voice.calls).toHaveLength(1));
    expect(voice.calls[0]!.target).toBe('sip:933@10.0.0.1:5060');
    voice.respond(voice.calls[0]!.callId, 200);
    const r = await run;
    expect(r.checks.map((c) => [c.id, c.status])).toEqual([
      ['address', 'pass'],
      ['network', 'pass'],
      ['lldp', 'pass'],
      ['handset', 'pass'],
      ['emergency-path', 'pass'],
      ['sip-registration', 'pass'],
      ['emergency-routes', 'pass'],
      ['provisioning-link', 'pass'],
      ['outbox', 'pass'],
      ['clock', 'pass'],
      ['test-call', 'pass'],
    ]);
    expect(r.overall).toBe('pass');
    expect(voice.calls[0]!.hangupCode).toBeDefined();
    expect(d.published).toEqual([r]);
    expect(r.address?.lines).toContain('100 Main St');
    expect(reportDisplayLines(r).slice(0, 4)).toEqual([
      '933 TEST: ALL OK',
      'Address sent to 911:',
      '100 Main St',
      'Bldg A Floor 2 Room 210',
    ]);
  });

  it('no address on file: fails, saying 911 goes without a location and what to do', async () => {
    const r = await new Diagnostics(deps({ address: () => null })).run({ trigger: 'cli', testCall: { none: true } });
    expect(check(r, 'address')).toMatchObject({
      status: 'fail',
      detail: expect.stringContaining('without a location'),
      remedy: expect.stringContaining('provisioning server'),
    });
    expect(r.overall).toBe('fail');
    expect(r.address).toBeNull();
  });

  it('a stored address whose signature no longer verifies fails (verified again, not trusted from arrival)', async () => {
    const a = signed();
    const tampered = { ...a, doc: { ...a.doc, civic: { ...a.doc.civic, ROOM: '999' } } };
    const r = await new Diagnostics(deps({ address: () => tampered })).run({ trigger: 'cli', testCall: { none: true } });
    expect(check(r, 'address')).toMatchObject({ status: 'fail', detail: expect.stringContaining('signature does not verify') });
  });

  it("an invalid address, another phone's address, and an old one are each called out", async () => {
    const bad = signed({ civic: { country: 'US', A1: 'ZZ', A3: 'X', RD: 'Main', HNO: '1', PC: '9' } });
    const r1 = await new Diagnostics(deps({ address: () => bad })).run({ trigger: 'cli', testCall: { none: true } });
    expect(check(r1, 'address')).toMatchObject({
      status: 'fail',
      detail: expect.stringMatching(/civic\.A1.*civic\.PC|civic\.PC.*civic\.A1/),
    });
    const other = signed({ deviceId: 'phone-2' });
    const r2 = await new Diagnostics(deps({ address: () => other })).run({ trigger: 'cli', testCall: { none: true } });
    expect(check(r2, 'address').detail).toContain('phone-2');
    const old = signed({}, '2024-01-01T00:00:00Z');
    const r3 = await new Diagnostics(deps({ address: () => old })).run({ trigger: 'cli', testCall: { none: true } });
    expect(check(r3, 'address')).toMatchObject({ status: 'warn', remedy: expect.stringContaining('still') });
  });

  it('network down, no LLDP, MCU silent, link down with a backlog, clock unsynchronised: each named with a remedy', async () => {
    const r = await new Diagnostics(
      deps({
        network: { interfaces: () => [], lldp: async () => ({ seen: false, detail: 'no LLDP neighbour on any port' }) },
        handset: () => ({
          backend: 'serial:/dev/ttyS1',
          connected: true,
          responsive: false,
          offHook: false,
          firmware: null,
          rows: 4,
          cols: 24,
          framingErrors: 0,
          retransmits: 12,
          reopens: 0,
          queued: 3,
        }),
        link: () => ({ state: 'offline', lastError: 'connect ECONNREFUSED 127.0.0.1:1883', backlog: 42, inFlight: 0 }),
        clock: async () => ({ synchronized: false, source: 'timedatectl', detail: 'NTPSynchronized=no' }),
      }),
    ).run({ trigger: 'cli', testCall: { none: true } });
    expect(check(r, 'network')).toMatchObject({ status: 'fail', remedy: expect.stringContaining('cable') });
    expect(check(r, 'lldp')).toMatchObject({ status: 'warn', remedy: expect.stringContaining('LLDP') });
    expect(check(r, 'handset')).toMatchObject({
      status: 'fail',
      detail: expect.stringContaining('does not answer'),
      remedy: expect.stringContaining('911 cannot be dialed'),
    });
    expect(check(r, 'provisioning-link')).toMatchObject({
      status: 'fail',
      detail: expect.stringContaining('ECONNREFUSED'),
      remedy: expect.stringContaining('broker'),
    });
    expect(check(r, 'outbox')).toMatchObject({ status: 'warn', detail: '42 events waiting for the server (link down)' });
    expect(check(r, 'clock')).toMatchObject({ status: 'fail', remedy: expect.stringContaining('NTP') });
    for (const c of r.checks.filter((x) => x.status === 'fail' || x.status === 'warn')) expect(c.remedy, c.id).toBeTruthy();
    expect(reportTable(r)).toContain('What to do:');
  });

  it('no voice stack: the emergency path fails with its reason, and the test call is not placed', async () => {
    const { svc } = await emergencyService({ voice: null });
    const r = await new Diagnostics(deps({ emergency: () => svc })).run({
      trigger: 'cli',
      testCall: { place: true, hangUpWhenAnswered: true },
    });
    expect(check(r, 'emergency-path')).toMatchObject({ status: 'fail', detail: expect.stringContaining('PJSIP addon not available') });
    expect(check(r, 'test-call')).toMatchObject({ status: 'fail', detail: expect.stringContaining('not placed') });
  });

  it('registration failed, a silent secondary route, and a test call rejected on every route', async () => {
    const { svc, voice } = await emergencyService({ registrar: true });
    const mainAccount = [...voice.accounts.entries()].find(([, a]) => a.config.registrar)![0];
    voice.registration(mainAccount, 403);
    await new Promise((r) => setTimeout(r, 0));
    const d = deps({
      emergency: () => svc,
      optionsPing: async (uri) =>
        uri.includes('10.0.0.2')
          ? { answered: false, error: 'no answer within 2000 ms (UDP)' }
          : { answered: true, code: 200, reason: 'OK' },
    });
    const run = new Diagnostics(d).run({ trigger: 'cli', testCall: { place: true, hangUpWhenAnswered: true } });
    await vi.waitFor(() => expect(voice.calls).toHaveLength(1));
    voice.respond(voice.calls[0]!.callId, 503); // primary: fail over
    await vi.waitFor(() => expect(voice.calls).toHaveLength(2));
    voice.respond(voice.calls[1]!.callId, 503); // secondary too
    const r = await run;
    expect(check(r, 'sip-registration')).toMatchObject({
      status: 'fail',
      detail: expect.stringContaining('403'),
      remedy: expect.stringContaining('password'),
    });
    expect(check(r, 'emergency-routes')).toMatchObject({
      status: 'warn',
      detail: expect.stringContaining('secondary sip:10.0.0.2:5060: no answer'),
      remedy: expect.stringContaining('secondary'),
    });
    expect(check(r, 'test-call')).toMatchObject({ status: 'fail', detail: expect.stringContaining('every route') });
  });

  it('a test call nobody answers fails after the timeout and is hung up', async () => {
    const { svc, voice } = await emergencyService({ routes: { primary: 'sip:10.0.0.1:5060' } });
    const r = await new Diagnostics(deps({ emergency: () => svc, testCallTimeoutMs: 300 })).run({
      trigger: 'cli',
      testCall: { place: true, hangUpWhenAnswered: true },
    });
    expect(check(r, 'test-call')).toMatchObject({ status: 'fail', detail: expect.stringContaining('not answered within 0.3 s') });
    expect(voice.calls[0]!.hangupCode).toBeDefined();
  });

  it('follows a test call the keypad placed instead of placing another', async () => {
    const { svc, voice } = await emergencyService();
    const out = svc.dial('933');
    expect(out.kind === 'test' && out.placed).toBe(true);
    const run = new Diagnostics(deps({ emergency: () => svc })).run({
      trigger: 'keypad',
      testCall: { follow: (out as { callRef: string }).callRef },
    });
    voice.respond(voice.calls[0]!.callId, 200);
    const r = await run;
    expect(voice.calls).toHaveLength(1);
    expect(check(r, 'test-call').status).toBe('pass');
    expect(voice.calls[0]!.hangupCode).toBeUndefined(); // the technician is on the line
  });

  it('runs once at a time: a second request gets the running report', async () => {
    const d = new Diagnostics(deps());
    const [a, b] = await Promise.all([
      d.run({ trigger: 'cli', testCall: { none: true } }),
      d.run({ trigger: 'server', testCall: { none: true } }),
    ]);
    expect(a).toBe(b);
  });
});

describe('probes', () => {
  it("reads lldpcli json0 neighbours (through hal/net's parser) and an empty table", () => {
    const doc = {
      lldp: [
        {
          interface: [
            {
              name: 'eth0',
              chassis: [{ id: [{ type: 'mac', value: '00:11:22:33:44:55' }], name: [{ value: 'sw1' }] }],
              port: [{ id: [{ type: 'ifname', value: 'Gi0/7' }] }],
              'lldp-med': [{ location: [{ type: 'ELIN', ecs: [{ value: '4085550123' }] }] }],
            },
          ],
        },
      ],
    };
    expect(lldpSighting(parseNeighbors(doc))).toEqual({
      seen: true,
      detail: 'eth0: sw1 port Gi0/7 (LLDP-MED location received)',
      location: true,
    });
    expect(lldpSighting(parseNeighbors({ lldp: [{}] })).seen).toBe(false);
  });

  it('clock: timedatectl yes/no, else timesyncd flag file, else unknown', async () => {
    const host = hostPaths({ E911_RUN: '/nonexistent-run' });
    expect(await clockSync(host, async () => ({ code: 0, stdout: 'no\n', stderr: '' }))).toMatchObject({
      synchronized: false,
      source: 'timedatectl',
    });
    expect(await clockSync(host, async () => ({ code: 0, stdout: 'yes\n', stderr: '' }))).toMatchObject({ synchronized: true });
    expect(await clockSync(host, async () => ({ code: 1, stdout: '', stderr: 'System has not been booted with systemd' }))).toMatchObject({
      synchronized: null,
      detail: expect.stringContaining('not been booted'),
    });
  });

  it('reads the network service when there is one, the host probe otherwise', async () => {
    const fallback: NetworkProbe = { interfaces: () => [], lldp: async () => ({ seen: null, detail: 'fallback' }) };
    const network = {
      current: () => ({
        interfaces: [
          { name: 'eth0', mac: '00:d0:1e:12:34:56', up: true, addresses: [{ family: 'IPv4' as const, address: '10.0.0.50', prefix: 24 }] },
        ],
        gateway4: { address: '10.0.0.1', iface: 'eth0', mac: null },
        gateway6: null,
        dns: [],
      }),
    } as unknown as NetworkMonitor;
    const lldp = {
      neighbors: () => [
        {
          iface: 'eth0',
          sysName: 'sw1',
          chassisId: 'x',
          portId: 'Gi0/7',
          med: { civic: [['country', 'US']], elin: null, coordinates: null },
        },
      ],
    } as unknown as LldpAgent;
    let parts: { network: NetworkMonitor; lldp: LldpAgent | null } | null = null;
    const probe = serviceNetworkProbe(() => parts, fallback);
    expect(probe.interfaces()).toEqual([]);
    expect((await probe.lldp()).detail).toBe('fallback');
    parts = { network, lldp };
    expect(probe.interfaces()[0]!.addresses[0]!.address).toBe('10.0.0.50');
    expect(probe.gateway!()).toBe('10.0.0.1');
    expect(await probe.lldp()).toEqual({ seen: true, detail: 'eth0: sw1 port Gi0/7 (LLDP-MED location received)', location: true });
    expect(
      await serviceNetworkProbe(() => ({ network, lldp: { neighbors: () => [] } as unknown as LldpAgent }), fallback).lldp(),
    ).toMatchObject({ seen: false });
  });

  it('parses route URIs for the OPTIONS ping', () => {
    expect(parseSipTarget('sip:10.0.0.1:5070;transport=tcp')).toEqual({ host: '10.0.0.1', port: 5070, transport: 'tcp' });
    expect(parseSipTarget('sip:psap.example')).toEqual({ host: 'psap.example', port: 5060, transport: 'udp' });
    expect(parseSipTarget('sips:[2001:db8::1]')).toEqual({ host: '2001:db8::1', port: 5061, transport: 'tls' });
    expect(parseSipTarget('mailto:x')).toBeNull();
  });
});
