// Does the network's civic address (LLDP-MED, DHCP option 99) describe another
// place than the provisioned one? Only what a responder uses counts: street,
// house number, city, building, floor. Values are compared after normalising
// case, spaces, punctuation and the usual abbreviations ("Drive" = "Dr",
// "North" = "N", "Bldg A" = "A", "Floor 3" = "3rd" = "3"), so the same place
// written two ways is not a disagreement. A field one side leaves out is not
// compared: a switch that names no floor does not contradict the floor.
import type { CivicAddress } from '../../provisioning/protocol/address.js';
export { DEFAULT_LOCATION_POLICY, type LocationPolicy } from '../../provisioning/protocol/address.js';

export type ResponderField = 'street' | 'number' | 'city' | 'building' | 'floor';
export const RESPONDER_FIELDS: readonly ResponderField[] = ['street', 'number', 'city', 'building', 'floor'];

// USPS Publication 28 suffixes and directionals the field meets most, both ways to one form.
const WORDS: Record<string, string> = {
  street: 'st',
  str: 'st',
  avenue: 'ave',
  av: 'ave',
  avn: 'ave',
  drive: 'dr',
  drv: 'dr',
  road: 'rd',
  boulevard: 'blvd',
  boul: 'blvd',
  lane: 'ln',
  court: 'ct',
  place: 'pl',
  parkway: 'pkwy',
  pky: 'pkwy',
  highway: 'hwy',
  circle: 'cir',
  terrace: 'ter',
  square: 'sq',
  expressway: 'expy',
  freeway: 'fwy',
  trail: 'trl',
  way: 'way',
  plaza: 'plz',
  center: 'ctr',
  centre: 'ctr',
  crescent: 'cres',
  alley: 'aly',
  north: 'n',
  south: 's',
  east: 'e',
  west: 'w',
  northeast: 'ne',
  northwest: 'nw',
  southeast: 'se',
  southwest: 'sw',
  saint: 'st',
  mount: 'mt',
  fort: 'ft',
  '&': 'and',
};
const BUILDING_WORDS = new Set(['building', 'bldg', 'bld', 'bdg']);
const FLOOR_WORDS = new Set(['floor', 'flr', 'fl', 'level', 'lvl']);

function tokens(s: string): string[] {
  return s
    .toLowerCase()
    .normalize('NFKC')
    .replace(/&/g, ' & ')
    .replace(/[.,;:#'"()]/g, ' ')
    .split(/\s+/)
    .filter(Boolean);
}

const joined = (...parts: (string | undefined)[]) => parts.filter((p) => p?.trim()).join(' ');

/** Each responder field of an address in one comparable form; absent fields are missing. */
export function responderKey(c: CivicAddress): Partial<Record<ResponderField, string>> {
  const out: Partial<Record<ResponderField, string>> = {};
  // A6 is the street in RFC 4776 when RD is absent (normalizeCivic does the same).
  const street = joined(c.PRD, c.RD ?? c.A6, c.STS, c.POD);
  if (street)
    out.street = tokens(street)
      .map((t) => WORDS[t] ?? t)
      .join(' ');
  const number = joined(c.HNO, c.HNS);
  if (number) out.number = tokens(number).join('');
  if (c.A3?.trim())
    out.city = tokens(c.A3)
      .map((t) => WORDS[t] ?? t)
      .join(' ');
  if (c.BLD?.trim())
    out.building = tokens(c.BLD)
      .filter((t) => !BUILDING_WORDS.has(t))
      .join(' ');
  if (c.FLR?.trim()) {
    out.floor = tokens(c.FLR)
      .filter((t) => !FLOOR_WORDS.has(t))
      .map((t) => t.replace(/^(\d+)(st|nd|rd|th)$/, '$1'))
      .join(' ');
  }
  return out;
}

/**
 * The responder fields on which the two addresses differ, in a fixed order; empty
 * when they agree. A network address without a street and a number is too thin
 * to contradict anything: also empty.
 */
export function disagreeingFields(network: CivicAddress, provisioned: CivicAddress): ResponderField[] {
  const n = responderKey(network);
  const p = responderKey(provisioned);
  if (!n.street || !n.number) return [];
  return RESPONDER_FIELDS.filter(
    (f) => n[f] !== undefined && p[f] !== undefined && !(f === 'street' ? sameStreet(n[f]!, p[f]!) : n[f] === p[f]),
  );
}

const SUFFIXES = new Set([
  'st',
  'ave',
  'dr',
  'rd',
  'blvd',
  'ln',
  'ct',
  'pl',
  'pkwy',
  'hwy',
  'cir',
  'ter',
  'sq',
  'expy',
  'fwy',
  'trl',
  'way',
  'plz',
  'cres',
  'aly',
]);

/** "main" is "main st" when one side gives no suffix at all; "main st" is not "main ave". */
function sameStreet(a: string, b: string): boolean {
  if (a === b) return true;
  const ta = a.split(' ');
  const tb = b.split(' ');
  const hasA = ta.length > 1 && SUFFIXES.has(ta[ta.length - 1]!);
  const hasB = tb.length > 1 && SUFFIXES.has(tb[tb.length - 1]!);
  if (hasA === hasB) return false;
  return (hasA ? ta.slice(0, -1) : ta).join(' ') === (hasB ? tb.slice(0, -1) : tb).join(' ');
}
