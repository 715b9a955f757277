// What an emergency INVITE carries (RFC 6442, RFC 6881 ED-50..ED-52, SP-26):
// Geolocation: <cid:...> pointing at the PIDF-LO part's Content-ID,
// Geolocation-Routing: yes, P-Asserted-Identity with the callback number,
// Priority: emergency, the configured extra headers, and a multipart/mixed body
// (the PIDF-LO part here; the voice stack appends its SDP).
//
// Everything that does not change per call is prepared when the address or
// the config changes; per call only the Content-ID and the PIDF-LO timestamp.
import { randomUUID } from 'node:crypto';
import type { BodyPart, SdpAttribute, SipHeader } from '../../hal/voice/types.js';
import { PIDF_CONTENT_TYPE, type PidfTemplate } from '../../provisioning/pidf/pidf.js';

function quoted(s: string): string {
  return `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

export interface CallerIdentity {
  /** E.164 callback number, when the address document gives one. */
  callback: string | null;
  displayName: string | null;
  /** Host for the sip: forms of the callback (the account's domain or our public address). */
  domain: string;
}

/** From for the call: the callback number with the display name, or null to keep the account's. */
export function fromHeader(id: CallerIdentity): string | null {
  if (!id.callback) return null;
  const name = id.displayName ? `${quoted(id.displayName)} ` : '';
  return `${name}<sip:${id.callback}@${id.domain};user=phone>`;
}

/** P-Asserted-Identity: the callback number as a sip: and a tel: URI (RFC 3325 allows one of each). */
export function paiHeader(id: CallerIdentity): SipHeader | null {
  if (!id.callback) return null;
  const name = id.displayName ? `${quoted(id.displayName)} ` : '';
  return { name: 'P-Asserted-Identity', value: `${name}<sip:${id.callback}@${id.domain};user=phone>, <tel:${id.callback}>` };
}

export interface PreparedInvite {
  /** Headers that are the same for every call until the address or config changes. */
  staticHeaders: SipHeader[];
  from: string | null;
  pidf: PidfTemplate | null;
  /** Host part of Content-IDs. */
  cidDomain: string;
  /** The audio m-line's extra SDP attributes: the caller's language (RFC 8373). */
  audioAttributes: SdpAttribute[];
}

/**
 * RFC 8373: the language the caller speaks and wants to hear, on the audio stream, so the
 * PSAP can bring in an interpreter before anyone says a word.
 */
export function languageAttributes(language: string | null): SdpAttribute[] {
  return language
    ? [
        { name: 'hlang-send', value: language },
        { name: 'hlang-recv', value: language },
      ]
    : [];
}

export function prepareInvite(o: {
  identity: CallerIdentity;
  pidf: PidfTemplate | null;
  extraHeaders: readonly SipHeader[];
  /** The caller's language tag, or null to say none. */
  language?: string | null;
}): PreparedInvite {
  const pai = paiHeader(o.identity);
  return {
    staticHeaders: [{ name: 'Priority', value: 'emergency' }, ...(pai ? [pai] : []), ...o.extraHeaders],
    from: fromHeader(o.identity),
    pidf: o.pidf,
    cidDomain: o.identity.domain.replace(/^\[|\]$/g, '') || 'localhost',
    audioAttributes: languageAttributes(o.language ?? null),
  };
}

export interface InviteContent {
  headers: SipHeader[];
  parts: BodyPart[];
  /** The PIDF-LO exactly as sent, or null when there was no location to send. */
  pidf: string | null;
  contentId: string | null;
  audioAttributes: SdpAttribute[];
}

/** Per call: stamp the PIDF-LO, give it a fresh Content-ID, point Geolocation at it. */
export function inviteContent(p: PreparedInvite, now: Date, uuid: string = randomUUID()): InviteContent {
  if (!p.pidf) return { headers: p.staticHeaders, parts: [], pidf: null, contentId: null, audioAttributes: p.audioAttributes };
  const pidf = p.pidf.render(now);
  const contentId = `loc-${uuid}@${p.cidDomain}`;
  return {
    headers: [{ name: 'Geolocation', value: `<cid:${contentId}>` }, { name: 'Geolocation-Routing', value: 'yes' }, ...p.staticHeaders],
    parts: [{ contentType: PIDF_CONTENT_TYPE, body: pidf, headers: [{ name: 'Content-ID', value: `<${contentId}>` }] }],
    pidf,
    contentId,
    audioAttributes: p.audioAttributes,
  };
}
