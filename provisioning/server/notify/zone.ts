// The floor or zone of the phone's address at call time: the IP group (a location's
// named CIDR ranges) that holds it, the most specific range winning, compared with
// the address the call sent. A group whose name says a floor ("Floor 3", "3rd
// floor", "L3") is compared with the sent floor too; any other name is a zone and
// only its location is compared.
import net from 'node:net';
import type { CivicAddress } from '../../protocol/address.js';
import type { Repo } from '../db/repo.js';
import type { LocationIpGroups } from '../db/locations.js';

export interface ZoneMatch {
  locationId: number;
  locationCode: string;
  locationName: string;
  /** The IP group's name: the floor or zone. */
  group: string;
  cidr: string;
  /** The floor the group's name gives, normalised ("3"), or null when it names none. */
  floor: string | null;
}

export interface SiteZone {
  ip: string;
  zone: ZoneMatch | null;
  /** yes: the zone is at the address sent; no: it is elsewhere; unknown: no range holds the address, or nothing was sent. */
  agrees: 'yes' | 'no' | 'unknown';
  /** What differs when agrees is 'no': another location, or another floor (the notice words it in its language). */
  differs: { location: string; code: string } | { ipFloor: string; sentFloor: string } | null;
}

const FLOOR_WORDS = /\b(?:floor|flr|fl|level|lvl)\b\.?/gi;

/** "Floor 3", "3rd", "3" and "Level 3" are all "3". */
export function normalFloor(s: string): string {
  return s
    .replace(FLOOR_WORDS, ' ')
    .toLowerCase()
    .replace(/\b(\d+)(?:st|nd|rd|th)\b/g, '$1')
    .replace(/[^a-z0-9]+/g, ' ')
    .trim();
}

/** The floor a group's name gives ("Floor 3 west", "3rd floor", "L3"), or null. */
export function floorOfGroup(name: string): string | null {
  const m =
    /\b(\d+)(?:st|nd|rd|th)?\s+(?:floor|fl|flr)\b/i.exec(name) ??
    /\b(?:floor|flr|fl|level|lvl)\.?\s*([a-z0-9-]+)/i.exec(name) ??
    /^l(\d+)\b/i.exec(name.trim());
  return m ? normalFloor(m[1]!) : null;
}

/** An address as 16 bytes (IPv4 mapped into the last 4, flagged), or null when it is none. */
function bytesOf(ip: string): { v4: boolean; b: Uint8Array } | null {
  const v = net.isIP(ip);
  if (v === 4) return { v4: true, b: Uint8Array.from([...new Array(12).fill(0), ...ip.split('.').map(Number)]) };
  if (v !== 6) return null;
  // An embedded dotted IPv4 tail (::ffff:10.1.2.3) becomes two groups first.
  const text = ip.replace(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/, (_m, a, b, c, d) =>
    [((+a << 8) | +b).toString(16), ((+c << 8) | +d).toString(16)].join(':'),
  );
  const [head, tail] = text.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...new Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const b = new Uint8Array(16);
  groups.forEach((g, i) => {
    const n = Number.parseInt(g, 16);
    b[i * 2] = n >> 8;
    b[i * 2 + 1] = n & 255;
  });
  return { v4: false, b };
}

/** Whether the first `prefix` bits of the two agree. */
function samePrefix(a: Uint8Array, b: Uint8Array, from: number, prefix: number): boolean {
  let bits = prefix;
  for (let i = from; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 255 : (0xff << (8 - bits)) & 255;
    if ((a[i]! & mask) !== (b[i]! & mask)) return false;
  }
  return true;
}

const V4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** An IPv4 address as an unsigned 32-bit number, or null. */
function v4(ip: string): number | null {
  const m = V4.exec(ip);
  return m ? ((+m[1]! << 24) | (+m[2]! << 16) | (+m[3]! << 8) | +m[4]!) >>> 0 : null;
}

/** Whether cidr holds the address (a number for IPv4, bytes for IPv6); false for the other family or a bad range. */
function holds(cidr: string, a4: number | null, a6: Uint8Array | null): number | null {
  const slash = cidr.indexOf('/');
  const prefix = Number(cidr.slice(slash + 1));
  if (slash < 0 || !Number.isInteger(prefix)) return null;
  const network = cidr.slice(0, slash);
  if (a4 !== null) {
    const n = v4(network);
    if (n === null || prefix > 32) return null;
    const mask = prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0;
    return ((a4 ^ n) & mask) >>> 0 === 0 ? prefix : null;
  }
  const n = network.includes(':') ? bytesOf(network) : null;
  return n && !n.v4 && prefix <= 128 && samePrefix(a6!, n.b, 0, prefix) ? prefix : null;
}

/**
 * The most specific IP group, over every location, that holds ip; null when none does.
 * Plain number and byte comparison: a BlockList per range cost 92 ms for 5000 locations
 * on the loaded dev machine.
 */
export function zoneOfIp(ip: string, locations: readonly LocationIpGroups[]): ZoneMatch | null {
  const a4 = v4(ip);
  const a6 = a4 === null ? bytesOf(ip) : null;
  if (a4 === null && (!a6 || a6.v4)) return null;
  let best: { l: LocationIpGroups; group: string; cidr: string; prefix: number } | null = null;
  for (const l of locations) {
    for (const g of l.ipGroups) {
      for (const cidr of g.cidrs) {
        const prefix = holds(cidr, a4, a6?.b ?? null);
        if (prefix !== null && (!best || prefix > best.prefix)) best = { l, group: g.name, cidr, prefix };
      }
    }
  }
  return best
    ? {
        locationId: best.l.id,
        locationCode: best.l.code,
        locationName: best.l.name,
        group: best.group,
        cidr: best.cidr,
        floor: floorOfGroup(best.group),
      }
    : null;
}

const norm = (s: string | undefined) =>
  (s ?? '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, ' ')
    .trim();

/** Street, number, city and building name the same place (compared loosely: case, punctuation). */
function samePlace(a: CivicAddress, b: CivicAddress): boolean {
  return (['RD', 'HNO', 'A3', 'BLD'] as const).every((k) => norm(a[k]) === norm(b[k]));
}

/**
 * The zone of the phone's address at call time, compared with the address the call sent.
 * civicOf gives a location's civic address (read for the matched location only).
 */
export function siteZone(
  ip: string,
  sent: CivicAddress | null,
  locations: readonly LocationIpGroups[],
  civicOf: (id: number) => CivicAddress | null,
): SiteZone {
  const zone = zoneOfIp(ip, locations);
  if (!zone || !sent) return { ip, zone, agrees: 'unknown', differs: null };
  const civic = civicOf(zone.locationId);
  if (civic && !samePlace(civic, sent)) {
    return { ip, zone, agrees: 'no', differs: { location: zone.locationName, code: zone.locationCode } };
  }
  if (zone.floor !== null && sent.FLR && normalFloor(sent.FLR) !== zone.floor) {
    return { ip, zone, agrees: 'no', differs: { ipFloor: zone.floor, sentFloor: sent.FLR } };
  }
  return { ip, zone, agrees: civic ? 'yes' : 'unknown', differs: null };
}

/**
 * The lookup a notice is built with: the locations' IP groups as they are now, and the
 * civic address of each of those locations (the only ones a zone can match), read before
 * the notice is built so that building it stays synchronous.
 */
export async function zoneLookup(
  repo: Pick<Repo, 'ipGroupsOfLocations' | 'location'>,
): Promise<(ip: string, sent: CivicAddress | null) => SiteZone> {
  const groups = await repo.ipGroupsOfLocations();
  const civics = new Map<number, CivicAddress | null>();
  for (const g of groups) civics.set(g.id, (await repo.location(g.id))?.civic ?? null);
  return (ip, sent) => siteZone(ip, sent, groups, (id) => civics.get(id) ?? null);
}
