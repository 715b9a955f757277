// The dispatchable address document: RFC 5139 civic element names, plus the
// callback number and display name sent with every 911 call. Validation is
// shared by the phone and the server so both refuse the same documents.
import { z } from 'zod';

/** RFC 5139 civicAddress elements, in the order civicAddr.xsd fixes. */
export const CIVIC_ELEMENTS = [
  'country',
  'A1',
  'A2',
  'A3',
  'A4',
  'A5',
  'A6',
  'PRM',
  'PRD',
  'RD',
  'STS',
  'POD',
  'POM',
  'RDSEC',
  'RDBR',
  'RDSUBBR',
  'HNO',
  'HNS',
  'LMK',
  'LOC',
  'FLR',
  'NAM',
  'PC',
  'BLD',
  'UNIT',
  'ROOM',
  'SEAT',
  'PLC',
  'PCN',
  'POBOX',
  'ADDCODE',
] as const;
export type CivicElement = (typeof CIVIC_ELEMENTS)[number];
export type CivicAddress = Partial<Record<CivicElement, string>>;

export { US_STATES, CA_PROVINCES } from './regions.js';
import { US_STATES, CA_PROVINCES } from './regions.js';

const US_ZIP = /^\d{5}(-\d{4})?$/;
// Canada Post: no D, F, I, O, Q, U anywhere; no W or Z as the first letter.
const CA_POSTAL = /^[ABCEGHJ-NPRSTVXY]\d[ABCEGHJ-NPRSTV-Z] ?\d[ABCEGHJ-NPRSTV-Z]\d$/;
const E164 = /^\+[1-9]\d{1,14}$/;
// NANP: NPA and NXX start with 2-9; N11 codes are service codes, not numbers.
const NANP = /^\+1([2-9]\d{2})([2-9]\d{2})\d{4}$/;
const DISPLAY_NAME = /^[\p{L}\p{N}]+( [\p{L}\p{N}]+)*$/u;
// Printable text only: control characters would corrupt the PIDF-LO and the display.
const CIVIC_TEXT = /^[^\p{Cc}\p{Cs}]{1,128}$/u;
const DEVICE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/**
 * What a 911 call sends first when the network's civic address (LLDP-MED, DHCP)
 * disagrees with the provisioned one: the network's (the default), the
 * provisioned one, or the one the user picks on the phone (network until then).
 */
export const LOCATION_POLICIES = ['network-first', 'provisioned-first', 'ask-user'] as const;
export type LocationPolicy = (typeof LOCATION_POLICIES)[number];
export const DEFAULT_LOCATION_POLICY: LocationPolicy = 'network-first';

export const REQUIRED_CIVIC: readonly CivicElement[] = ['country', 'A1', 'A3', 'RD', 'HNO', 'PC'];

export interface AddressDocument {
  /** Schema version of this document. */
  v: 1;
  deviceId: string;
  /** Monotonically increasing per device; a lower one is a replay. */
  version: number;
  /** When the server issued it (RFC 3339, UTC). */
  issuedAt: string;
  civic: CivicAddress;
  /** Callback number, E.164. */
  callback: string;
  displayName: string;
  /** The server's location code, for notifications and diagnostics. */
  locationCode?: string;
  /** The account's policy when the network disagrees; absent means network-first. */
  locationPolicy?: LocationPolicy;
  /** Send the switch's ELIN (LLDP-MED) as the callback number of an emergency call when there is one. */
  elinCallback?: boolean;
  /**
   * The user's preferred language (a tag: es, fr-CA), told to the PSAP in the call's SDP
   * (RFC 8373). Absent means English, so documents for English speakers are what they were.
   */
  language?: string;
}

/** What an absent `language` means. */
export const DEFAULT_LANGUAGE = 'en';
/** A language tag as the address document carries it: en, es, fr-CA (RFC 5646, the common forms). */
export const LANGUAGE_TAG = /^[a-z]{2,3}(-[A-Z]{2})?$/;

export interface ValidationIssue {
  field: string;
  reason: string;
}

const civicShape = Object.fromEntries(CIVIC_ELEMENTS.map((k) => [k, z.string().optional()])) as Record<
  CivicElement,
  z.ZodOptional<z.ZodString>
>;

/** The civic elements of an address, each optional. */
export const civicAddressSchema = z.strictObject(civicShape);

/** Structural schema; the service-area rules are in validateAddress. */
export const addressDocumentSchema = z.strictObject({
  v: z.literal(1),
  deviceId: z.string(),
  version: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
  issuedAt: z.string(),
  civic: civicAddressSchema,
  callback: z.string(),
  displayName: z.string(),
  locationCode: z.string().max(64).optional(),
  locationPolicy: z.enum(LOCATION_POLICIES).optional(),
  elinCallback: z.boolean().optional(),
  language: z.string().regex(LANGUAGE_TAG).optional(),
});

export function isValidCallback(n: string): boolean {
  if (!E164.test(n)) return false;
  if (!n.startsWith('+1')) return true;
  const m = NANP.exec(n);
  if (!m) return false;
  const [, npa, nxx] = m as unknown as [string, string, string];
  return !/^[2-9]11$/.test(npa) && !/^[2-9]11$/.test(nxx);
}

/** Letters and digits, single spaces between words, at most 64 characters. */
export function isValidDisplayName(name: string): boolean {
  return name.length <= 64 && DISPLAY_NAME.test(name);
}

export function isValidPostalCode(country: string, pc: string): boolean {
  if (country === 'US') return US_ZIP.test(pc);
  if (country === 'CA') return CA_POSTAL.test(pc);
  return false;
}

/** Checks the service-area rules (US and Canada). An empty list means valid. */
export function validateAddress(doc: AddressDocument): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  const add = (field: string, reason: string) => issues.push({ field, reason });

  if (!DEVICE_ID.test(doc.deviceId)) add('deviceId', 'must be 1-64 of letters, digits, dot, dash, underscore');
  if (Number.isNaN(Date.parse(doc.issuedAt))) add('issuedAt', 'must be an RFC 3339 time');

  const c = doc.civic;
  for (const k of CIVIC_ELEMENTS) {
    const v = c[k];
    if (v !== undefined && !CIVIC_TEXT.test(v)) add(`civic.${k}`, 'must be 1-128 printable characters');
  }
  for (const k of REQUIRED_CIVIC) {
    if (!c[k] || c[k]!.trim() === '') add(`civic.${k}`, 'is required');
  }
  const country = c.country ?? '';
  if (country && country !== 'US' && country !== 'CA') add('civic.country', 'must be US or CA (the service area)');
  if (c.A1) {
    const ok = country === 'US' ? US_STATES.has(c.A1) : country === 'CA' ? CA_PROVINCES.has(c.A1) : false;
    if (!ok) add('civic.A1', `is not a ${country === 'CA' ? 'province or territory' : 'state'} code of ${country || 'the country'}`);
  }
  if (c.PC && (country === 'US' || country === 'CA') && !isValidPostalCode(country, c.PC)) {
    add('civic.PC', country === 'US' ? 'must be a ZIP (12345) or ZIP+4 (12345-6789)' : 'must be a postal code like K1A 0B1');
  }
  if (!isValidCallback(doc.callback)) add('callback', 'must be an E.164 number (+1NPANXXXXXX in North America)');
  if (!isValidDisplayName(doc.displayName)) {
    add('displayName', 'must be 1-64 letters and digits, single spaces between words');
  }
  return issues;
}

/** One line per civic address, the way a display or an email shows it. */
export function formatAddressLines(c: CivicAddress): string[] {
  const join = (...parts: (string | undefined)[]) => parts.filter((p) => p?.trim()).join(' ');
  const lines = [
    join(c.NAM),
    join(c.HNO, c.HNS, c.PRD, c.RD, c.STS, c.POD),
    join(c.BLD && `Bldg ${c.BLD}`, c.FLR && `Floor ${c.FLR}`, c.UNIT && `Unit ${c.UNIT}`, c.ROOM && `Room ${c.ROOM}`),
    join(c.LOC),
    join(c.A3 && `${c.A3},`, c.A1, c.PC),
    join(c.country),
  ];
  return lines.filter((l) => l !== '');
}
