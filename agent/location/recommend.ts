// Does the phone's network fit its assigned location? The server's locations
// push lists the account's locations with their IP groups (CIDR, v4 and v6) and
// switch/port matches; we match them against where the phone is now.
import { BlockList, isIP } from 'node:net';
import type { LocationsDocument, RecommendedLocation } from '../../provisioning/protocol/locations.js';

export interface NetworkFacts {
  /** The phone's current addresses (global and link-local alike). */
  addresses: string[];
  /** LLDP neighbours: switch chassis id and port id. */
  switches: { chassisId: string; portId: string }[];
}

export type RecommendationStatus = 'off' | 'match' | 'mismatch' | 'unknown' | 'confirmed';

export interface Assessment {
  status: RecommendationStatus;
  assigned: RecommendedLocation | null;
  /** Locations whose rules match the network now. */
  matches: RecommendedLocation[];
  /** What to offer the user: the matches, or every location when none match. */
  choices: RecommendedLocation[];
  reason: string;
}

const lists = new WeakMap<RecommendedLocation, BlockList>();

function blockList(loc: RecommendedLocation): BlockList {
  let bl = lists.get(loc);
  if (bl) return bl;
  bl = new BlockList();
  for (const cidr of loc.cidrs) {
    const [net, bits] = cidr.trim().split('/');
    const family = isIP(net ?? '');
    if (!family) continue; // the server validates; a bad entry just matches nothing
    const prefix = bits === undefined ? (family === 4 ? 32 : 128) : Number(bits);
    if (!Number.isInteger(prefix) || prefix < 0 || prefix > (family === 4 ? 32 : 128)) continue;
    bl.addSubnet(net!, prefix, family === 4 ? 'ipv4' : 'ipv6');
  }
  lists.set(loc, bl);
  return bl;
}

const norm = (s: string) => s.trim().toLowerCase();

export function matchesNetwork(loc: RecommendedLocation, facts: NetworkFacts): boolean {
  const bl = blockList(loc);
  for (const a of facts.addresses) {
    const family = isIP(a);
    if (family && bl.check(a, family === 4 ? 'ipv4' : 'ipv6')) return true;
  }
  for (const sp of loc.switchPorts ?? []) {
    for (const s of facts.switches) {
      if (norm(sp.chassisId) === norm(s.chassisId) && (sp.portId === undefined || norm(sp.portId) === norm(s.portId))) return true;
    }
  }
  return false;
}

function hasRules(loc: RecommendedLocation): boolean {
  return loc.cidrs.length > 0 || (loc.switchPorts?.length ?? 0) > 0;
}

/**
 * The assigned location is the push's assignedLocationId, else the one whose code
 * is the provisioned address's locationCode.
 */
export function assess(doc: LocationsDocument | null, facts: NetworkFacts, addressLocationCode: string | null): Assessment {
  const none = { assigned: null, matches: [], choices: [] };
  if (!doc) return { status: 'off', ...none, reason: 'no locations pushed' };
  if (!doc.recommendations) return { status: 'off', ...none, reason: 'recommendations are off for this user' };
  const assigned =
    doc.locations.find((l) => l.id === doc.assignedLocationId) ??
    (addressLocationCode ? doc.locations.find((l) => l.code === addressLocationCode) : undefined) ??
    null;
  const matches = doc.locations.filter((l) => matchesNetwork(l, facts));
  if (assigned && matches.some((m) => m.id === assigned.id)) {
    return { status: 'match', assigned, matches, choices: matches, reason: 'the network matches the assigned location' };
  }
  if (matches.length > 0) {
    return { status: 'mismatch', assigned, matches, choices: matches, reason: 'the network matches other locations' };
  }
  if (!assigned) {
    if (doc.locations.length === 0) return { status: 'unknown', assigned, matches, choices: [], reason: 'the account has no locations' };
    return { status: 'mismatch', assigned, matches, choices: doc.locations, reason: 'no location is assigned' };
  }
  if (hasRules(assigned)) {
    return { status: 'mismatch', assigned, matches, choices: doc.locations, reason: 'the network does not match the assigned location' };
  }
  return { status: 'unknown', assigned, matches, choices: doc.locations, reason: 'the assigned location has no IP groups or switches to compare' };
}
