// The floor or zone of the phone's address at call time: the IP group (a location's
// named CIDR ranges) that holds it, the most specific range winning, compared with
// the address the call sent. A group whose name says a floor ("Floor 3", "3rd
// floor", "L3") is compared with the sent floor too; any other name is a zone and
// only its location is compared.
import net from 'node:net';
import type { CivicAddress } from '../../protocol/address.js';
import type { Location } from '../db/repo.js';

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
  /** What differs, for the notice, when agrees is 'no'. */
  differs: string | null;
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

function prefixOf(cidr: string): { family: 'ipv4' | 'ipv6'; network: string; prefix: number } | null {
  const [network, bits] = cidr.split('/');
  const v = net.isIP(network ?? '');
  const prefix = Number(bits);
  if (!v || !Number.isInteger(prefix)) return null;
  return { family: v === 4 ? 'ipv4' : 'ipv6', network: network!, prefix };
}

/** The most specific IP group, over every location, that holds ip; null when none does. */
export function zoneOfIp(ip: string, locations: readonly Location[]): ZoneMatch | null {
  const v = net.isIP(ip);
  if (!v) return null;
  const family = v === 4 ? 'ipv4' : 'ipv6';
  let best: (ZoneMatch & { prefix: number }) | null = null;
  for (const l of locations) {
    for (const g of l.ipGroups) {
      for (const cidr of g.cidrs) {
        const p = prefixOf(cidr);
        if (!p || p.family !== family || (best && best.prefix >= p.prefix)) continue;
        const list = new net.BlockList();
        list.addSubnet(p.network, p.prefix, p.family);
        if (!list.check(ip, family)) continue;
        best = {
          locationId: l.id,
          locationCode: l.code,
          locationName: l.name,
          group: g.name,
          cidr,
          floor: floorOfGroup(g.name),
          prefix: p.prefix,
        };
      }
    }
  }
  if (!best) return null;
  const { prefix: _prefix, ...zone } = best;
  return zone;
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

/** The zone of the phone's address at call time, compared with the address the call sent. */
export function siteZone(ip: string, sent: CivicAddress | null, locations: readonly Location[]): SiteZone {
  const zone = zoneOfIp(ip, locations);
  if (!zone || !sent) return { ip, zone, agrees: 'unknown', differs: null };
  const location = locations.find((l) => l.id === zone.locationId)!;
  if (!samePlace(location.civic, sent)) {
    return { ip, zone, agrees: 'no', differs: `the phone's IP is in ${zone.locationName} (${zone.locationCode}), not at the address sent` };
  }
  if (zone.floor !== null && sent.FLR && normalFloor(sent.FLR) !== zone.floor) {
    return { ip, zone, agrees: 'no', differs: `the phone's IP is on floor ${zone.floor}; the address sent says floor ${sent.FLR}` };
  }
  return { ip, zone, agrees: 'yes', differs: null };
}
