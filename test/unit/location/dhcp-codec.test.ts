import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeCivicOption, decodeGeoOption, encodeCivicOption, encodeGeoOption, hexBytes } from '../../../agent/location/dhcp-codec.js';
import { parseHandOver } from '../../../agent/location/dhcp.js';
import { civicFromLldpd, CATYPES } from '../../../agent/location/catypes.js';

describe('CAtype table', () => {
  it('has each number, element and lldpd name once', () => {
    const nums = CATYPES.map((c) => c.catype);
    expect(new Set(nums).size).toBe(nums.length);
    const els = CATYPES.map((c) => c.element).filter(Boolean);
    expect(new Set(els).size).toBe(els.length);
    expect(CATYPES.find((c) => c.catype === 19)?.element).toBe('HNO');
    expect(CATYPES.find((c) => c.catype === 34)?.element).toBe('RD');
  });

  it('maps lldpd json0 names to RFC 5139, street to RD when no RD came', () => {
    const d = civicFromLldpd([
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
      ['unknown', 'x'],
    ]);
    expect(d.civic).toEqual({
      country: 'US',
      A1: 'IL',
      A3: 'Springfield',
      RD: 'Main',
      HNO: '123',
      PC: '62701',
      BLD: 'B2',
      FLR: '3',
      ROOM: '301',
    });
    expect(d.language).toBe('en');
    expect(d.unknown).toEqual([{ catype: 'unknown', value: 'x' }]);
  });
});

describe('DHCP option 99 (RFC 4776)', () => {
  // Hand-assembled: what=2 (client), "US", A1 "CA", A3 "San Jose", RD(34) "Main", HNO "100", PC "95110", FLR "2".
  const BYTES = '02 55 53 01 02 43 41 03 08 53 61 6e 20 4a 6f 73 65 22 04 4d 61 69 6e 13 03 31 30 30 18 05 39 35 31 31 30 1b 01 32';

  it('decodes real bytes', () => {
    const d = decodeCivicOption(hexBytes(BYTES)!);
    expect(d).toEqual({
      ok: true,
      value: {
        what: 2,
        civic: { country: 'US', A1: 'CA', A3: 'San Jose', RD: 'Main', HNO: '100', PC: '95110', FLR: '2' },
        language: null,
        script: null,
        unknown: [],
      },
    });
    expect(
      encodeCivicOption(2, 'US', [
        [1, 'CA'],
        [3, 'San Jose'],
        [34, 'Main'],
        [19, '100'],
        [24, '95110'],
        [27, '2'],
      ]).toString('hex'),
    ).toBe(BYTES.replace(/ /g, ''));
  });

  it('refuses truncated elements with a reason', () => {
    const bad = hexBytes(BYTES)!.subarray(0, 12);
    expect(decodeCivicOption(bad)).toMatchObject({ ok: false, reason: expect.stringMatching(/runs past the end/) });
    expect(decodeCivicOption(Buffer.from([2, 0x55]))).toMatchObject({ ok: false });
  });

  it('never throws on arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
        const r = decodeCivicOption(b);
        expect(typeof r.ok).toBe('boolean');
      }),
    );
  });
});

describe('DHCP option 123 (RFC 6225)', () => {
  it('decodes hand-computed bits: 0.5 N, -1 W, 16 m, WGS84', () => {
    // LatUnc=18, lat=0.5 (2^24), LongUnc=18, lon=-1 (two's complement of 2^25 in 34 bits), AType=1, AltUnc=15, alt=16 m (16*2^8), ver=1, datum=1
    let n = 0n;
    const put = (v: bigint, bits: number) => (n = (n << BigInt(bits)) | BigInt.asUintN(bits, v));
    put(18n, 6);
    put(1n << 24n, 34);
    put(18n, 6);
    put(-(1n << 25n), 34);
    put(1n, 4);
    put(15n, 6);
    put(16n << 8n, 30);
    put(1n, 2);
    put(0n, 3);
    put(1n, 3);
    const bytes = Buffer.from(n.toString(16).padStart(32, '0'), 'hex');
    expect(decodeGeoOption(bytes)).toEqual({
      ok: true,
      value: {
        latitude: 0.5,
        longitude: -1,
        latitudeUncertainty: 2 ** -10,
        longitudeUncertainty: 2 ** -10,
        altitude: 16,
        altitudeType: 'm',
        altitudeUncertainty: 64,
        datum: 'WGS84',
        version: 1,
      },
    });
    expect(encodeGeoOption({ latitude: 0.5, longitude: -1, altitude: 16 }).equals(bytes)).toBe(true);
  });

  it('round-trips coordinates within the 2^-25 degree resolution', () => {
    fc.assert(
      fc.property(fc.double({ min: -90, max: 90, noNaN: true }), fc.double({ min: -180, max: 180, noNaN: true }), (lat, lon) => {
        const d = decodeGeoOption(encodeGeoOption({ latitude: lat, longitude: lon }));
        if (!d.ok) throw new Error(d.reason);
        expect(Math.abs(d.value.latitude - lat)).toBeLessThanOrEqual(2 ** -25);
        expect(Math.abs(d.value.longitude - lon)).toBeLessThanOrEqual(2 ** -25);
        expect(d.value.altitude).toBeNull();
      }),
    );
  });

  it('refuses a wrong length or datum', () => {
    expect(decodeGeoOption(Buffer.alloc(15))).toMatchObject({ ok: false });
    expect(decodeGeoOption(Buffer.alloc(16))).toMatchObject({ ok: false, reason: 'unknown datum 0' });
  });
});

describe('hand-over file', () => {
  it('reads hex with or without colons and decimal bytes', () => {
    const civic = encodeCivicOption(2, 'US', [
      [1, 'CA'],
      [3, 'San Jose'],
    ]);
    const geo = encodeGeoOption({ latitude: 37.5, longitude: -122 });
    const colon = [...civic].map((b) => b.toString(16).padStart(2, '0')).join(':');
    const dec = [...geo].join(',');
    const loc = parseHandOver('eth0', `option99=${colon}\noption123=${dec}\n`);
    expect(loc.civic?.civic).toEqual({ country: 'US', A1: 'CA', A3: 'San Jose' });
    expect(loc.geo?.latitude).toBe(37.5);
    expect(loc.problems).toEqual([]);
    expect(parseHandOver('eth0', 'option99=zz\noption123=\n').problems).toEqual(['option99: not hex or decimal bytes']);
  });
});
