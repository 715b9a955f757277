// Reads the locations out of a PIDF-LO (RFC 4119, RFC 5491): civic addresses
// (RFC 5139 elements), GML points and circles (RFC 5491 shapes), and the method.
import { CIVIC_ELEMENTS, type CivicAddress, type CivicElement } from '../../provisioning/protocol/address.js';
import { findAll, child, type XmlElement } from '../../provisioning/pidf/xml.js';

export const PIDF_NS = {
  pidf: 'urn:ietf:params:xml:ns:pidf',
  dm: 'urn:ietf:params:xml:ns:pidf:data-model',
  gp: 'urn:ietf:params:xml:ns:pidf:geopriv10',
  ca: 'urn:ietf:params:xml:ns:pidf:geopriv10:civicAddr',
  gml: 'http://www.opengis.net/gml',
  gs: 'http://www.opengis.net/pidflo/1.0',
} as const;

export interface GeoPoint {
  latitude: number;
  longitude: number;
  altitude: number | null;
  /** Circle radius in meters, null for a point. */
  radius: number | null;
}

export interface PidfLocationFound {
  civic: CivicAddress | null;
  geo: GeoPoint | null;
  method: string | null;
}

function civicOf(el: XmlElement): CivicAddress {
  const c: CivicAddress = {};
  for (const e of el.children) {
    if (e.ns !== PIDF_NS.ca) continue;
    if ((CIVIC_ELEMENTS as readonly string[]).includes(e.name) && e.text.trim() !== '') c[e.name as CivicElement] = e.text.trim();
  }
  return c;
}

function pos(el: XmlElement | undefined): [number, number, number | null] | null {
  if (!el) return null;
  const parts = el.text.trim().split(/\s+/).map(Number);
  if (parts.length < 2 || parts.some((n) => !Number.isFinite(n))) return null;
  return [parts[0]!, parts[1]!, parts[2] ?? null];
}

function geoOf(info: XmlElement): GeoPoint | null {
  for (const point of findAll(info, PIDF_NS.gml, 'Point')) {
    const p = pos(child(point, PIDF_NS.gml, 'pos'));
    if (p) return { latitude: p[0], longitude: p[1], altitude: p[2], radius: null };
  }
  for (const circle of findAll(info, PIDF_NS.gs, 'Circle')) {
    const p = pos(child(circle, PIDF_NS.gml, 'pos'));
    const r = child(circle, PIDF_NS.gs, 'radius');
    const radius = r ? Number(r.text.trim()) : NaN;
    // uom urn:ogc:def:uom:EPSG::9001 is meters, the only unit RFC 5491 uses for radius.
    if (p && Number.isFinite(radius)) return { latitude: p[0], longitude: p[1], altitude: p[2], radius };
  }
  return null;
}

/** Every gp:geopriv in the document, each as one location. */
export function locationsInPidf(presence: XmlElement): PidfLocationFound[] {
  return findAll(presence, PIDF_NS.gp, 'geopriv').map((gp) => {
    const info = child(gp, PIDF_NS.gp, 'location-info');
    const civicEl = info ? findAll(info, PIDF_NS.ca, 'civicAddress')[0] : undefined;
    return {
      civic: civicEl ? civicOf(civicEl) : null,
      geo: info ? geoOf(info) : null,
      method: child(gp, PIDF_NS.gp, 'method')?.text.trim() || null,
    };
  });
}
