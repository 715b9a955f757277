// The one CAtype table: RFC 4776 / RFC 5139 civic address types as the DHCP civic
// option (99), the LLDP-MED civic LCI (the same bytes) and lldpd's names use them.
// Numbers checked against the IANA Civic Address Types registry (RFC 4776,
// RFC 5139, RFC 6848); lldpd names from lldpd 1.0.16's civic_address_type_map,
// as `lldpcli -f json0` prints them (lower case, dashes for spaces).
import type { CivicAddress, CivicElement } from '../../provisioning/protocol/address.js';

export interface CaType {
  catype: number;
  /** RFC 5139 element, or null for language (0) and script (128), which are not elements. */
  element: CivicElement | null;
  /** lldpd's key in json0 output; null where lldpd has no name (it prints "unknown"). */
  lldpd: string | null;
}

export const CATYPES: readonly CaType[] = [
  { catype: 0, element: null, lldpd: 'language' },
  { catype: 1, element: 'A1', lldpd: 'country-subdivision' },
  { catype: 2, element: 'A2', lldpd: 'county' },
  { catype: 3, element: 'A3', lldpd: 'city' },
  { catype: 4, element: 'A4', lldpd: 'city-division' },
  { catype: 5, element: 'A5', lldpd: 'block' },
  { catype: 6, element: 'A6', lldpd: 'street' },
  { catype: 16, element: 'PRD', lldpd: 'direction' },
  { catype: 17, element: 'POD', lldpd: 'trailing-street-suffix' },
  { catype: 18, element: 'STS', lldpd: 'street-suffix' },
  { catype: 19, element: 'HNO', lldpd: 'number' },
  { catype: 20, element: 'HNS', lldpd: 'number-suffix' },
  { catype: 21, element: 'LMK', lldpd: 'landmark' },
  { catype: 22, element: 'LOC', lldpd: 'additional' },
  { catype: 23, element: 'NAM', lldpd: 'name' },
  { catype: 24, element: 'PC', lldpd: 'zip' },
  { catype: 25, element: 'BLD', lldpd: 'building' },
  { catype: 26, element: 'UNIT', lldpd: 'unit' },
  { catype: 27, element: 'FLR', lldpd: 'floor' },
  { catype: 28, element: 'ROOM', lldpd: 'room' },
  { catype: 29, element: 'PLC', lldpd: 'place-type' },
  { catype: 30, element: 'PCN', lldpd: null },
  { catype: 31, element: 'POBOX', lldpd: null },
  { catype: 32, element: 'ADDCODE', lldpd: null },
  { catype: 33, element: 'SEAT', lldpd: null },
  { catype: 34, element: 'RD', lldpd: null },
  { catype: 35, element: 'RDSEC', lldpd: null },
  { catype: 36, element: 'RDBR', lldpd: null },
  { catype: 37, element: 'RDSUBBR', lldpd: null },
  { catype: 38, element: 'PRM', lldpd: null },
  { catype: 39, element: 'POM', lldpd: null },
  { catype: 128, element: null, lldpd: 'script' },
];

export const BY_CATYPE: ReadonlyMap<number, CaType> = new Map(CATYPES.map((c) => [c.catype, c]));
export const BY_LLDPD_NAME: ReadonlyMap<string, CaType> = new Map(CATYPES.filter((c) => c.lldpd !== null).map((c) => [c.lldpd!, c]));
export const BY_ELEMENT: ReadonlyMap<CivicElement, CaType> = new Map(CATYPES.filter((c) => c.element !== null).map((c) => [c.element!, c]));

/** A civic address as decoded from CAtype elements, before RFC 5139 normalisation. */
export interface CivicDecoded {
  civic: CivicAddress;
  language: string | null;
  script: string | null;
  /** CAtypes the table does not know (e.g. lldpd's "unknown"), kept for diagnostics. */
  unknown: { catype: number | string; value: string }[];
}

/**
 * RFC 4776 defines CAtype 6 (A6) and, in North American practice, LLDP-MED
 * switches and DHCP servers put the street name there; RFC 5139 moved the
 * street name to RD (34). When no RD was sent we take A6 as the road name, which
 * is what the dispatchable address (and our validator) needs.
 */
export function normalizeCivic(d: CivicAddress): CivicAddress {
  const c: CivicAddress = { ...d };
  if (c.A6 !== undefined && c.RD === undefined) {
    c.RD = c.A6;
    delete c.A6;
  }
  return c;
}

/** Civic elements from (catype, value) pairs, country given separately (RFC 4776 header). */
export function civicFromCatypes(country: string | null, pairs: readonly [number, string][]): CivicDecoded {
  const out: CivicDecoded = { civic: {}, language: null, script: null, unknown: [] };
  if (country) out.civic.country = country.toUpperCase();
  for (const [catype, value] of pairs) {
    if (catype === 0) out.language = value;
    else if (catype === 128) out.script = value;
    else {
      const el = BY_CATYPE.get(catype)?.element;
      if (el) out.civic[el] = value;
      else out.unknown.push({ catype, value });
    }
  }
  out.civic = normalizeCivic(out.civic);
  return out;
}

/** Civic elements from lldpd's json0 names (country is its own key there). */
export function civicFromLldpd(pairs: readonly [string, string][]): CivicDecoded {
  const out: CivicDecoded = { civic: {}, language: null, script: null, unknown: [] };
  for (const [name, value] of pairs) {
    if (name === 'country') {
      out.civic.country = value.toUpperCase();
      continue;
    }
    const t = BY_LLDPD_NAME.get(name);
    if (!t) out.unknown.push({ catype: name, value });
    else if (t.catype === 0) out.language = value;
    else if (t.catype === 128) out.script = value;
    else out.civic[t.element!] = value;
  }
  out.civic = normalizeCivic(out.civic);
  return out;
}
