// Locations as an administrator types them (a postal address plus building,
// floor and room), their mapping to RFC 5139 civic elements, and the signed
// 'locations' push the phone uses to recommend a location when it moves.
import { z } from 'zod';
import {
  addressDocumentSchema,
  LOCATION_POLICIES,
  validateAddress,
  type CivicAddress,
  type CivicElement,
  type ValidationIssue,
} from './address.js';

export interface PostalAddress {
  country: string;
  houseNumber: string;
  /** e.g. "A" in 100A, or "1/2" */
  houseNumberSuffix?: string;
  street: string;
  /** Suite, unit or other second address line. */
  street2?: string;
  city: string;
  /** State (US) or province/territory (CA), two-letter code. */
  state: string;
  /** ZIP (5 digits) or Canadian postal code. */
  postalCode: string;
  /** ZIP+4 extension, US only. */
  plus4?: string;
}

export interface PlaceDetails {
  /** Name of the place (company or site), RFC 5139 NAM. */
  name?: string;
  building?: string;
  floor?: string;
  room?: string;
}

/** Which civic element each postal field becomes; validation reports use the postal names. */
export const POSTAL_TO_CIVIC: Record<keyof PostalAddress | keyof PlaceDetails, CivicElement> = {
  country: 'country',
  state: 'A1',
  city: 'A3',
  street: 'RD',
  houseNumber: 'HNO',
  houseNumberSuffix: 'HNS',
  street2: 'LOC',
  postalCode: 'PC',
  plus4: 'PC',
  name: 'NAM',
  building: 'BLD',
  floor: 'FLR',
  room: 'ROOM',
};

const trimmed = (s: string | undefined) => (s === undefined || s.trim() === '' ? undefined : s.trim());

/** The civic address a phone sends for this place. ZIP+4 goes into PC as 12345-6789. */
export function postalToCivic(p: PostalAddress, place: PlaceDetails = {}): CivicAddress {
  const civic: CivicAddress = {};
  const set = (k: CivicElement, v: string | undefined) => {
    const t = trimmed(v);
    if (t !== undefined) civic[k] = t;
  };
  set('country', p.country?.toUpperCase());
  set('A1', p.state?.toUpperCase());
  set('A3', p.city);
  set('RD', p.street);
  set('HNO', p.houseNumber);
  set('HNS', p.houseNumberSuffix);
  set('LOC', p.street2);
  const pc = trimmed(p.postalCode)?.toUpperCase();
  const plus4 = trimmed(p.plus4);
  set('PC', pc && plus4 ? `${pc}-${plus4}` : pc);
  set('NAM', place.name);
  set('BLD', place.building);
  set('FLR', place.floor);
  set('ROOM', place.room);
  return civic;
}

const CIVIC_TO_POSTAL: Partial<Record<CivicElement, string>> = Object.fromEntries(
  Object.entries(POSTAL_TO_CIVIC)
    .filter(([k]) => k !== 'plus4')
    .map(([k, v]) => [v, k]),
);

/**
 * The phone's own rules (validateAddress) applied to a postal address, with the
 * issues named by postal field, plus the ZIP+4 rules a civic PC cannot express.
 */
export function validatePostalAddress(p: PostalAddress, place: PlaceDetails = {}): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  const country = trimmed(p.country)?.toUpperCase();
  const plus4 = trimmed(p.plus4);
  if (plus4 !== undefined) {
    if (country !== 'US') issues.push({ field: 'plus4', reason: 'ZIP+4 exists only for US addresses' });
    else if (!/^\d{4}$/.test(plus4)) issues.push({ field: 'plus4', reason: 'must be 4 digits' });
    if (country === 'US' && trimmed(p.postalCode) && !/^\d{5}$/.test(p.postalCode.trim())) {
      issues.push({ field: 'postalCode', reason: 'must be the 5-digit ZIP when plus-4 is given separately' });
    }
  }
  const civic = postalToCivic(p, place);
  const probe = validateAddress({
    v: 1,
    deviceId: 'probe',
    version: 1,
    issuedAt: new Date(0).toISOString(),
    civic,
    callback: '+12025550100',
    displayName: 'probe',
  });
  for (const issue of probe) {
    const el = issue.field.startsWith('civic.') ? (issue.field.slice(6) as CivicElement) : null;
    if (!el) continue;
    // A bad plus-4 is already reported above; do not blame the ZIP for it.
    if (el === 'PC' && issues.some((i) => i.field === 'plus4' || i.field === 'postalCode')) continue;
    issues.push({ field: CIVIC_TO_POSTAL[el] ?? issue.field, reason: issue.reason });
  }
  return issues;
}

// ---- the 'locations/set' push: what a phone needs to recommend a location ----

const civicSchema = addressDocumentSchema.shape.civic;

export const recommendedLocationSchema = z.strictObject({
  id: z.string().min(1).max(64),
  code: z.string().max(64),
  name: z.string().max(128),
  civic: civicSchema,
  /** CIDR ranges (IPv4 and IPv6) whose addresses are at this location. */
  cidrs: z.array(z.string().max(49)).max(256),
  /** LLDP chassis (and optionally port) ids of the switches at this location. */
  switchPorts: z
    .array(z.strictObject({ chassisId: z.string().max(64), portId: z.string().max(64).optional() }))
    .max(256)
    .optional(),
});

export const locationsDocumentSchema = z.strictObject({
  v: z.literal(1),
  deviceId: z.string(),
  /** Monotonically increasing per device, like the address version. */
  version: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
  issuedAt: z.string(),
  /** Whether this phone's user gets recommendations (account setting OR the user's own). */
  recommendations: z.boolean(),
  /** The id of the location the user is assigned to now, if any. */
  assignedLocationId: z.string().max(64).nullable(),
  /** Empty when recommendations are off. */
  locations: z.array(recommendedLocationSchema).max(5000),
});

export const signedLocationsSchema = z.strictObject({
  v: z.literal(1),
  doc: locationsDocumentSchema,
  /** base64url Ed25519 signature over canonicalJson(doc), same key as address pushes. */
  sig: z.string().max(200),
});

export type RecommendedLocation = z.infer<typeof recommendedLocationSchema>;
export type LocationsDocument = z.infer<typeof locationsDocumentSchema>;
export type SignedLocations = z.infer<typeof signedLocationsSchema>;

/**
 * data of a 'location-selected' event: the user picked a location on the phone
 * (or confirmed the assigned one, confirmed=true) and the server makes it theirs.
 */
export const locationSelectedDataSchema = z.object({
  locationId: z.string().min(1).max(64),
  locationCode: z.string().max(64).optional(),
  confirmed: z.boolean().optional(),
});
export type LocationSelectedData = z.infer<typeof locationSelectedDataSchema>;

/**
 * data of a 'location-disagreement' event. open: the network's civic address and
 * the provisioned one differ in a field a responder uses; `chosen` is what a 911
 * call sends first now (the other goes second in the PIDF-LO). resolved: they
 * agree again, or the network address is gone.
 */
export const locationDisagreementDataSchema = z.object({
  state: z.enum(['open', 'resolved']),
  policy: z.enum(LOCATION_POLICIES),
  chosen: z.enum(['network', 'provisioned']).nullable(),
  fields: z.array(z.string().max(16)).max(8),
  provisioned: z
    .object({ civic: civicSchema, locationCode: z.string().max(64).optional(), version: z.number().int().optional() })
    .nullable(),
  network: z
    .object({
      source: z.enum(['lldp-med', 'dhcp']),
      method: z.string().max(32),
      civic: civicSchema,
      origin: z.record(z.string(), z.string()),
    })
    .nullable(),
  elin: z.string().max(32).nullable(),
});
export type LocationDisagreementData = z.infer<typeof locationDisagreementDataSchema>;
