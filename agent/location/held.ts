// HELD client (RFC 5985): asks a configured LIS where the phone is. One
// locationRequest with a responseTime and locationType "civic geodetic"
// (exact="false": whatever the LIS has); the answer's PIDF-LO is parsed for a
// civic address and a point or circle. An <error> is returned as such.
import { parseXml, findAll, child, XmlError } from '../../provisioning/pidf/xml.js';
import { locationsInPidf, PIDF_NS, type GeoPoint } from './pidf-parse.js';
import type { CivicAddress } from '../../provisioning/protocol/address.js';

export const HELD_NS = 'urn:ietf:params:xml:ns:geopriv:held';
export const HELD_CONTENT_TYPE = 'application/held+xml';

export type HeldResult =
  | { ok: true; civic: CivicAddress | null; geo: GeoPoint | null; method: string | null; locationUris: string[] }
  | { ok: false; code: string; message: string };

/** responseTime: milliseconds, or RFC 5985's 'emergencyRouting' / 'emergencyDispatch'. */
export function locationRequestXml(responseTime: number | 'emergencyRouting' | 'emergencyDispatch'): string {
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n` +
    `<locationRequest xmlns="${HELD_NS}" responseTime="${responseTime}">` +
    `<locationType exact="false">civic geodetic</locationType>` +
    `</locationRequest>\n`
  );
}

/** Parses a HELD response body; never throws. */
export function parseHeldResponse(body: string): HeldResult {
  let root: ReturnType<typeof parseXml>;
  try {
    root = parseXml(body);
  } catch (err) {
    return { ok: false, code: 'badResponse', message: err instanceof XmlError ? err.message : String(err) };
  }
  if (root.ns !== HELD_NS) return { ok: false, code: 'badResponse', message: `root is {${root.ns}}${root.name}, not a HELD message` };
  if (root.name === 'error') {
    return { ok: false, code: root.attrs.code ?? 'generalLisError', message: child(root, HELD_NS, 'message')?.text.trim() ?? '' };
  }
  if (root.name !== 'locationResponse') return { ok: false, code: 'badResponse', message: `unexpected <${root.name}>` };
  const uris = findAll(root, HELD_NS, 'locationURI')
    .map((u) => u.text.trim())
    .filter(Boolean);
  let civic: CivicAddress | null = null;
  let geo: GeoPoint | null = null;
  let method: string | null = null;
  for (const presence of root.children.filter((c) => c.ns === PIDF_NS.pidf && c.name === 'presence')) {
    for (const loc of locationsInPidf(presence)) {
      civic ??= loc.civic && Object.keys(loc.civic).length > 0 ? loc.civic : null;
      geo ??= loc.geo;
      method ??= loc.method;
    }
  }
  if (!civic && !geo && uris.length === 0) return { ok: false, code: 'locationUnknown', message: 'response carries no location' };
  return { ok: true, civic, geo, method, locationUris: uris };
}

export interface HeldClientOptions {
  url: string;
  /** responseTime sent to the LIS; the HTTP request is given this plus a margin. */
  responseTimeMs: number;
  fetch?: typeof fetch;
}

export async function heldRequest(opts: HeldClientOptions): Promise<HeldResult> {
  const doFetch = opts.fetch ?? fetch;
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), opts.responseTimeMs + 2000);
  try {
    const res = await doFetch(opts.url, {
      method: 'POST',
      headers: { 'content-type': `${HELD_CONTENT_TYPE}; charset=utf-8`, accept: HELD_CONTENT_TYPE },
      body: locationRequestXml(opts.responseTimeMs),
      signal: abort.signal,
    });
    const body = await res.text();
    // A HELD error comes with 200 (RFC 5985 section 7.2 uses the HTTP body); others are transport errors.
    if (!res.ok && !body.includes(HELD_NS)) return { ok: false, code: 'http', message: `HTTP ${res.status}` };
    return parseHeldResponse(body);
  } catch (err) {
    return { ok: false, code: abort.signal.aborted ? 'timeout' : 'network', message: (err as Error).message };
  } finally {
    clearTimeout(timer);
  }
}
