// The two DHCP location options, byte for byte:
// - option 99, GeoConf civic (RFC 4776 section 3.1): what(1) country(2) then
//   CAtype(1) length(1) value... The LLDP-MED civic LCI carries the same bytes.
// - option 123, GeoConf coordinates (RFC 6225 section 2.2): 16 bytes of fixed-point
//   latitude, longitude and altitude with uncertainties and a datum.
// Decoders never throw on bad input: they return null with a reason.
import { civicFromCatypes, type CivicDecoded } from './catypes.js';

/** RFC 4776 'what': whose location this is. 2, the client's own, is the most useful. */
export const CIVIC_WHAT = { dhcpServer: 0, networkElement: 1, client: 2 } as const;

export type CivicOption = CivicDecoded & { what: number };
export type Decoded<T> = { ok: true; value: T } | { ok: false; reason: string };

export function decodeCivicOption(bytes: Uint8Array): Decoded<CivicOption> {
  if (bytes.length < 3) return { ok: false, reason: `civic option of ${bytes.length} bytes is shorter than its 3-byte header` };
  const what = bytes[0]!;
  const country = String.fromCharCode(bytes[1]!, bytes[2]!);
  if (!/^[A-Za-z]{2}$/.test(country)) return { ok: false, reason: `country code ${JSON.stringify(country)} is not two letters` };
  const pairs: [number, string][] = [];
  const text = new TextDecoder('utf-8', { fatal: false });
  let i = 3;
  while (i < bytes.length) {
    if (i + 2 > bytes.length) return { ok: false, reason: `CAtype at byte ${i} has no length byte` };
    const catype = bytes[i]!;
    const len = bytes[i + 1]!;
    if (i + 2 + len > bytes.length) return { ok: false, reason: `CAtype ${catype} at byte ${i} runs past the end (${len} bytes)` };
    pairs.push([catype, text.decode(bytes.subarray(i + 2, i + 2 + len))]);
    i += 2 + len;
  }
  return { ok: true, value: { what, ...civicFromCatypes(country, pairs) } };
}

export function encodeCivicOption(what: number, country: string, pairs: readonly [number, string][]): Buffer {
  const parts: Buffer[] = [Buffer.from([what]), Buffer.from(country.toUpperCase(), 'ascii')];
  for (const [catype, value] of pairs) {
    const v = Buffer.from(value, 'utf8');
    if (v.length > 255) throw new RangeError(`CAtype ${catype} value longer than 255 bytes`);
    parts.push(Buffer.from([catype, v.length]), v);
  }
  return Buffer.concat(parts);
}

export interface GeoOption {
  latitude: number;
  longitude: number;
  /** Uncertainty in degrees (RFC 6225 version 1), null when unknown or version 0. */
  latitudeUncertainty: number | null;
  longitudeUncertainty: number | null;
  altitude: number | null;
  /** 'm' (meters) or 'floor' */
  altitudeType: 'm' | 'floor' | null;
  altitudeUncertainty: number | null;
  /** 1 WGS84, 2 NAD83+NAVD88, 3 NAD83+MLLW */
  datum: 'WGS84' | 'NAD83/NAVD88' | 'NAD83/MLLW';
  version: number;
}

const DATUMS = { 1: 'WGS84', 2: 'NAD83/NAVD88', 3: 'NAD83/MLLW' } as const;

function signed(v: bigint, bits: number): bigint {
  return v & (1n << BigInt(bits - 1)) ? v - (1n << BigInt(bits)) : v;
}

export function decodeGeoOption(bytes: Uint8Array): Decoded<GeoOption> {
  if (bytes.length !== 16) return { ok: false, reason: `geo option must be 16 bytes, got ${bytes.length}` };
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  const field = (offset: number, bits: number) => (n >> BigInt(128 - offset - bits)) & ((1n << BigInt(bits)) - 1n);
  const latUnc = Number(field(0, 6));
  const lat = Number(signed(field(6, 34), 34)) / 2 ** 25;
  const lonUnc = Number(field(40, 6));
  const lon = Number(signed(field(46, 34), 34)) / 2 ** 25;
  const aType = Number(field(80, 4));
  const altUnc = Number(field(84, 6));
  const alt = Number(signed(field(90, 30), 30)) / 2 ** 8;
  const version = Number(field(120, 2));
  const datumCode = Number(field(125, 3));
  const datum = DATUMS[datumCode as 1 | 2 | 3];
  if (!datum) return { ok: false, reason: `unknown datum ${datumCode}` };
  if (Math.abs(lat) > 90 || Math.abs(lon) > 180) return { ok: false, reason: `coordinates out of range (${lat}, ${lon})` };
  // Version 1 (RFC 6225) carries uncertainties: 2^(8-x) degrees, 2^(21-x) meters; 0 = unknown.
  const degUnc = (x: number) => (version === 1 && x > 0 ? 2 ** (8 - x) : null);
  return {
    ok: true,
    value: {
      latitude: lat,
      longitude: lon,
      latitudeUncertainty: degUnc(latUnc),
      longitudeUncertainty: degUnc(lonUnc),
      altitude: aType === 0 ? null : alt,
      altitudeType: aType === 1 ? 'm' : aType === 2 ? 'floor' : null,
      altitudeUncertainty: version === 1 && aType !== 0 && altUnc > 0 ? 2 ** (21 - altUnc) : null,
      datum,
      version,
    },
  };
}

/** For tests and the DHCP server config: RFC 6225 version 1 bytes. */
export function encodeGeoOption(g: {
  latitude: number;
  longitude: number;
  altitude?: number;
  latUncCode?: number;
  lonUncCode?: number;
  altUncCode?: number;
  datum?: 1 | 2 | 3;
}): Buffer {
  const fixed = (v: number, frac: number, bits: number) => BigInt.asUintN(bits, BigInt(Math.round(v * 2 ** frac)));
  let n = 0n;
  const put = (v: bigint, bits: number) => (n = (n << BigInt(bits)) | (v & ((1n << BigInt(bits)) - 1n)));
  put(BigInt(g.latUncCode ?? 18), 6);
  put(fixed(g.latitude, 25, 34), 34);
  put(BigInt(g.lonUncCode ?? 18), 6);
  put(fixed(g.longitude, 25, 34), 34);
  put(g.altitude === undefined ? 0n : 1n, 4);
  put(BigInt(g.altitude === undefined ? 0 : (g.altUncCode ?? 15)), 6);
  put(g.altitude === undefined ? 0n : fixed(g.altitude, 8, 30), 30);
  put(1n, 2); // version 1
  put(0n, 3);
  put(BigInt(g.datum ?? 1), 3);
  const out = Buffer.alloc(16);
  for (let i = 15; i >= 0; i--) {
    out[i] = Number(n & 255n);
    n >>= 8n;
  }
  return out;
}

/** "0a:1b:..." or "0a1b..." (how DHCP clients print options) to bytes; null if not hex. */
export function hexBytes(text: string): Buffer | null {
  const clean = text.trim().replace(/[:\s-]/g, '');
  if (clean.length === 0 || clean.length % 2 !== 0 || !/^[0-9a-fA-F]+$/.test(clean)) return null;
  return Buffer.from(clean, 'hex');
}
