// lldpcli -f json0 output captured from lldpd 1.0.16: a switch-side lldpd (-M 4)
// configured with a civic address, ELIN, coordinates and a tagged voice policy,
// seen by a phone-side lldpd (-M 3) across a veth pair in two namespaces.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { JsonObjectSplitter, parseNeighbors, parseWatchEvent } from '../../../hal/net/lldp-json.js';

const dir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../fixtures/lldp');
const show = readFileSync(path.join(dir, 'show-neighbors-details.json'), 'utf8');
const watchDeleted = readFileSync(path.join(dir, 'watch-deleted.json'), 'utf8');

describe('lldpd json0', () => {
  it('reads chassis, port, civic, ELIN, coordinates and the voice policy', () => {
    const [n, ...rest] = parseNeighbors(JSON.parse(show));
    expect(rest).toEqual([]);
    expect(n).toMatchObject({ iface: 'eth0', rid: '1', chassisIdType: 'mac', portIdType: 'mac', portDescr: 'sw0', ttl: 120 });
    expect(n!.chassisId).toMatch(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
    expect(n!.med).toEqual({
      deviceType: 'Network Connectivity Device',
      civic: [
        ['country', 'US'],
        ['language', 'en'],
        ['country-subdivision', 'IL'],
        ['city', 'Springfield'],
        ['street', 'Main'],
        ['number', '123'],
        ['zip', '62701'],
        ['building', 'B2'],
        ['floor', '3'],
        ['room', '301'],
      ],
      elin: '4085550123',
      // lldpd prints two decimals of the 25-bit fraction it received.
      coordinates: { latitude: 39.77, longitude: -89.64, altitude: 12, altitudeUnit: 'm', datum: 'WGS84' },
      policies: [{ app: 'Voice', vlan: 100, defined: true, priority: 'Voice', pcp: 5, dscp: 46 }],
    });
  });

  it('reads watch events, however the stream is cut', () => {
    const stream = `${show.replace('"lldp"', '"lldp-added"')}\n${watchDeleted}`;
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: stream.length - 1 }), { maxLength: 8 }), (cuts) => {
        const points = [0, ...[...new Set(cuts)].sort((a, b) => a - b), stream.length];
        const s = new JsonObjectSplitter();
        const docs = points.slice(1).flatMap((end, i) => s.feed(stream.slice(points[i], end)));
        expect(docs.map((d) => parseWatchEvent(d)?.kind)).toEqual(['added', 'deleted']);
        expect(parseWatchEvent(docs[1])!.neighbors[0]!.iface).toBe('eth0');
      }),
      { numRuns: 50 },
    );
  });

  it('ignores what it does not know', () => {
    expect(parseNeighbors({})).toEqual([]);
    expect(parseNeighbors({ lldp: [{ interface: [{ nope: 1 }] }] })).toEqual([]);
    expect(parseWatchEvent({ other: [] })).toBeNull();
  });
});
