import { describe, expect, it } from 'vitest';
import { decodePayload, type LocationPayload } from '../../provisioning/protocol/messages.js';

const best = {
  source: 'lldp-med',
  method: 'LLDP-MED',
  kind: 'civic',
  civic: { country: 'US', A1: 'CA', A3: 'San Jose', RD: 'Main', STS: 'St', HNO: '100' },
  dispatchable: true,
  origin: { iface: 'eth0', chassisId: 'aa:bb' },
} as const;

const report: LocationPayload = {
  v: 1,
  ts: '2026-11-22T07:00:00.000Z',
  source: 'lldp-med',
  data: {
    best,
    candidates: [
      best,
      {
        source: 'held',
        method: 'GPS',
        kind: 'geodetic',
        geo: { latitude: 37.3, longitude: -121.9, altitude: null, radius: 30, datum: 'WGS84' },
        dispatchable: false,
        origin: {},
      },
    ],
    elin: '4085550100',
    network: {
      interfaces: [{ name: 'eth0', mac: '02:00:00:00:00:01', up: true, addresses: ['192.0.2.10/24'] }],
      gateway4: { address: '192.0.2.1', iface: 'eth0', mac: null },
      gateway6: null,
      dns: ['192.0.2.53'],
    },
    lldp: [
      { iface: 'eth0', chassisId: 'aa:bb', portId: 'gi1/0/1', portDescr: null, sysName: 'sw1', voiceVlan: { vlan: 20, pcp: 5, dscp: 46 } },
    ],
    recommendation: { status: 'match', assignedLocationId: 'loc-1', matchingLocationIds: ['loc-1'] },
    disagreement: { fields: ['street'], policy: 'network-first', chosen: 'network', network: 'lldp-med' },
  },
};

describe('location report contract', () => {
  it('accepts what the agent builds, exactly as sent', () => {
    expect(decodePayload('location', JSON.stringify(report))).toEqual({ ok: true, value: report });
  });

  it('accepts a key a newer phone adds inside a location, and drops it', () => {
    const newer = structuredClone(report) as unknown as { data: { best: Record<string, unknown> } };
    newer.data.best.floorLabel = 'L2';
    expect(decodePayload('location', JSON.stringify(newer))).toEqual({ ok: true, value: report });
  });

  it("refuses an old phone's free-form report with a reason naming the field", () => {
    const old = { v: 1, ts: report.ts, source: 'lldp-med', data: { best: { civic: { A1: 'CA' } }, elin: null } };
    const d = decodePayload('location', JSON.stringify(old));
    expect(d.ok).toBe(false);
    expect(!d.ok && d.code).toBe('invalid');
    expect(!d.ok && d.reason).toMatch(/^invalid location payload: data\.best\.\w+/);
  });

  it('names the bad member deep inside the report', () => {
    const bad = structuredClone(report) as unknown as { data: { candidates: { geo?: { latitude: number } }[] } };
    bad.data.candidates[1]!.geo!.latitude = 123;
    const d = decodePayload('location', JSON.stringify(bad));
    expect(!d.ok && d.reason).toMatch(/data\.candidates\.1\.geo\.latitude/);
    const unknownTop = { ...report, data: { ...report.data, surprise: 1 } };
    expect(decodePayload('location', JSON.stringify(unknownTop))).toMatchObject({ ok: false, code: 'invalid' });
  });
});
