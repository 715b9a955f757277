// PIDF-LO (RFC 4119) with RFC 5139 civic elements, shaped per RFC 5491: one
// dm:device carrying gp:geopriv (location-info, usage-rules in the basicPolicy
// namespace, method, provided-by), dm:deviceID and dm:timestamp. Every document
// validates against test/fixtures/pidf-schemas/pidf.xsd.
//
// Built when the location changes, not at dial time: a PidfTemplate keeps the
// document in pieces and render() only stamps the time (nothing slow between the digit and the INVITE).
import { createHash } from 'node:crypto';
import { CIVIC_ELEMENTS, type CivicAddress } from '../protocol/address.js';

export const NS = {
  pidf: 'urn:ietf:params:xml:ns:pidf',
  dm: 'urn:ietf:params:xml:ns:pidf:data-model',
  gp: 'urn:ietf:params:xml:ns:pidf:geopriv10',
  gbp: 'urn:ietf:params:xml:ns:pidf:geopriv10:basicPolicy',
  ca: 'urn:ietf:params:xml:ns:pidf:geopriv10:civicAddr',
  /** RFC 7852 data-provider information, carried by value inside gp:provided-by (RFC 6881 ED-41). */
  pi: 'urn:ietf:params:xml:ns:EmergencyCallData:ProviderInfo',
} as const;

export const PIDF_CONTENT_TYPE = 'application/pidf+xml';

/** IANA location method tokens (RFC 4119 registry) the agent's sources map to. */
export type LocationMethod = 'Manual' | 'DHCP' | 'LLDP-MED' | 'Wiremap' | 'GPS' | 'A-GPS' | 'Cell' | '802.11' | string;

export interface PidfLocation {
  civic: CivicAddress;
  /** How the location was determined: 'Manual' for the provisioned address. */
  method: LocationMethod;
  /** Language of the civic text (xml:lang); default 'en'. */
  lang?: string;
}

export interface ProvidedBy {
  /** Who supplied the location, e.g. the provisioning service's name. */
  name: string;
  /** A contact for the data provider (sip:, tel:, mailto: or https: URI). */
  contactUri?: string;
  /** TypeOfProvider (RFC 7852); default 'Other'. */
  type?: string;
}

export interface PidfOptions {
  /** presence entity: the caller's AOR or tel: callback URI. */
  entity: string;
  /** dm:deviceID: a URI naming the device, e.g. mac:00d01e123456 or urn:uuid:... */
  deviceId: string;
  providedBy: ProvidedBy;
  /** basicPolicy retransmission-allowed; a PSAP must pass location on to responders. */
  retransmissionAllowed: boolean;
  /** When set, retention-expiry = timestamp + this many hours. */
  retentionHours?: number;
}

/** Why a value did not go into the document as given (empty when everything did). */
export interface PidfAdjustment {
  field: string;
  reason: string;
}

// XML 1.0 Char production: anything else cannot appear in a document at all.
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what this strips
const NOT_XML_CHAR = /[^\u0009\u000A\u000D\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;
const LANG = /^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$/;
const COUNTRY = /^[A-Z]{2}$/;

function escapeText(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function escapeAttr(s: string): string {
  return escapeText(s).replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

/** Text safe for an XML 1.0 document: characters XML cannot carry become U+FFFD. */
function xmlSafe(s: string): string {
  return s.replace(NOT_XML_CHAR, '\uFFFD');
}

/** A URI attribute or element value: no whitespace, nothing XML cannot carry. */
function uriSafe(s: string): string {
  return xmlSafe(s).replace(/\s+/g, '');
}

/** An xs:ID for the device element: a name derived from the device id, never starting with a digit. */
export function deviceElementId(deviceId: string): string {
  return `dev-${createHash('sha256').update(deviceId).digest('hex').slice(0, 12)}`;
}

export function isoSeconds(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * A PIDF-LO built once for a location and re-stamped per call. The pieces are plain
 * strings: render() concatenates them around the timestamp and nothing else.
 */
export class PidfTemplate {
  readonly adjustments: PidfAdjustment[] = [];
  /** The first location's civic fields exactly as they appear in the document (after any adjustment). */
  readonly civicSent: CivicAddress = {};
  /** Every location's civic fields as sent, in document order (the first is civicSent). */
  readonly civicSentAll: CivicAddress[] = [];
  private readonly head: string;
  /** Per location: text before the optional retention-expiry, then up to the timestamp, then after it. */
  private readonly devices: { beforeExpiry: string; beforeTimestamp: string; tail: string }[] = [];
  private readonly retentionMs: number | null;

  /**
   * One location, or several in order of preference. Several go in separate
   * dm:device elements, each with one geopriv and its own method (RFC 5491
   * section 3.4: one location per element; a recipient that uses one takes the first).
   */
  constructor(
    location: PidfLocation | readonly PidfLocation[],
    readonly options: PidfOptions,
  ) {
    const opts = options;
    const locations = Array.isArray(location) ? (location as readonly PidfLocation[]) : [location as PidfLocation];
    if (locations.length === 0) throw new RangeError('a PIDF-LO needs at least one location');
    const pb = opts.providedBy;
    const providerInfo = [
      `<pi:EmergencyCallData.ProviderInfo>`,
      `<pi:DataProviderReference>${escapeText(deviceElementId(`${opts.deviceId}|provider`))}</pi:DataProviderReference>`,
      `<pi:DataProviderString>${escapeText(xmlSafe(pb.name))}</pi:DataProviderString>`,
      `<pi:TypeOfProvider>${escapeText(xmlSafe(pb.type ?? 'Other'))}</pi:TypeOfProvider>`,
      pb.contactUri ? `<pi:ContactURI>${escapeText(uriSafe(pb.contactUri))}</pi:ContactURI>` : '',
      `</pi:EmergencyCallData.ProviderInfo>`,
    ].join('');
    this.retentionMs = opts.retentionHours !== undefined ? opts.retentionHours * 3_600_000 : null;
    this.head = [
      `<?xml version="1.0" encoding="UTF-8"?>`,
      `<presence xmlns="${NS.pidf}" xmlns:dm="${NS.dm}" xmlns:gp="${NS.gp}" xmlns:gbp="${NS.gbp}" xmlns:ca="${NS.ca}" xmlns:pi="${NS.pi}" entity="${escapeAttr(uriSafe(opts.entity))}">`,
    ].join('\n');
    const baseId = deviceElementId(opts.deviceId);
    locations.forEach((loc, i) => {
      const field = (f: string) => (i === 0 ? f : `${f}#${i + 1}`);
      const lang = loc.lang && LANG.test(loc.lang) ? loc.lang : 'en';
      if (loc.lang && lang !== loc.lang) this.adjustments.push({ field: field('lang'), reason: `not a language tag: ${loc.lang}` });
      const sent: CivicAddress = {};
      const civicLines: string[] = [];
      for (const key of CIVIC_ELEMENTS) {
        const raw = loc.civic[key];
        if (raw === undefined) continue;
        let value = xmlSafe(raw);
        if (value !== raw) this.adjustments.push({ field: field(key), reason: 'characters XML cannot carry were replaced by U+FFFD' });
        if (key === 'country') {
          value = value.trim().toUpperCase();
          if (!COUNTRY.test(value)) {
            this.adjustments.push({ field: field(key), reason: `not an ISO 3166 alpha-2 code: ${raw}` });
            continue;
          }
        }
        sent[key] = value;
        civicLines.push(`<ca:${key}>${escapeText(value)}</ca:${key}>`);
      }
      if (i === 0) Object.assign(this.civicSent, sent);
      this.civicSentAll.push(sent);
      // Later locations are written compactly and without provided-by (the first's
      // provider is theirs): the INVITE must stay within a SIP stack's packet limit
      // (pjsip's PJSIP_MAX_PKT_LEN, 4000 bytes by default).
      const nl = i === 0 ? '\n' : '';
      const ind = (n: number) => (i === 0 ? ' '.repeat(n) : '');
      this.devices.push({
        beforeExpiry: [
          `${ind(1)}<dm:device id="${i === 0 ? baseId : `${baseId}-${i + 1}`}">`,
          `${ind(2)}<gp:geopriv>`,
          `${ind(3)}<gp:location-info>`,
          `${ind(4)}<ca:civicAddress xml:lang="${lang}">${civicLines.join('')}</ca:civicAddress>`,
          `${ind(3)}</gp:location-info>`,
          `${ind(3)}<gp:usage-rules>`,
          `${ind(4)}<gbp:retransmission-allowed>${opts.retransmissionAllowed ? 'true' : 'false'}</gbp:retransmission-allowed>`,
          '',
        ].join(nl),
        beforeTimestamp: [
          `${ind(3)}</gp:usage-rules>`,
          `${ind(3)}<gp:method>${escapeText(xmlSafe(loc.method))}</gp:method>`,
          ...(i === 0 ? [`   <gp:provided-by>${providerInfo}</gp:provided-by>`] : []),
          `${ind(2)}</gp:geopriv>`,
          `${ind(2)}<dm:deviceID>${escapeText(uriSafe(opts.deviceId))}</dm:deviceID>`,
          `${ind(2)}<dm:timestamp>`,
        ].join(nl),
        tail: `</dm:timestamp>${nl}${ind(1)}</dm:device>\n`,
      });
    });
  }

  /** The document stamped with this time: the only work done at dial time. */
  render(now: Date): string {
    const ts = isoSeconds(now);
    const expiry =
      this.retentionMs === null
        ? ''
        : `<gbp:retention-expiry>${isoSeconds(new Date(now.getTime() + this.retentionMs))}</gbp:retention-expiry>`;
    let out = `${this.head}\n`;
    this.devices.forEach((d, i) => {
      out += `${d.beforeExpiry}${expiry && (i === 0 ? `    ${expiry}\n` : expiry)}${d.beforeTimestamp}${ts}${d.tail}`;
    });
    return `${out}</presence>\n`;
  }
}

/** One-shot build, for callers that do not keep a template. */
export function buildPidf(location: PidfLocation | readonly PidfLocation[], opts: PidfOptions, now: Date): string {
  return new PidfTemplate(location, opts).render(now);
}
