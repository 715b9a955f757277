// A HELD endpoint (RFC 5985) for the reference server: a phone (or anything on
// the network) POSTs a locationRequest and gets its civic address back as a
// PIDF-LO, by value. Self-contained: the server's owner mounts it with
//   app.register(heldRoutes, { locate, providerName })
// and supplies `locate`, which maps the requester (by source IP, as a LIS does)
// to the address the server holds for that phone.
import { PUBLIC_ROUTE } from './http/public.js';
import type { FastifyInstance } from 'fastify';
import type { CivicAddress } from '../protocol/address.js';
import { buildPidf } from '../pidf/pidf.js';
import { parseXml, child, XmlError, type XmlElement } from '../pidf/xml.js';

export const HELD_NS = 'urn:ietf:params:xml:ns:geopriv:held';
export const HELD_CONTENT_TYPE = 'application/held+xml';

export interface HeldAnswer {
  civic: CivicAddress;
  /** dm:deviceID URI, e.g. mac:001122334455 or urn:uuid:... */
  deviceUri: string;
  /** presence entity: the phone's AOR or tel: callback URI. */
  entity: string;
  /** PIDF-LO method; 'Manual' for an administrator-entered address. */
  method?: string;
}

export interface HeldRequester {
  ip: string;
}

export interface HeldOptions {
  locate: (who: HeldRequester) => HeldAnswer | null | Promise<HeldAnswer | null>;
  /** provided-by name in the PIDF-LO. */
  providerName: string;
  providerContact?: string;
  /** Route path; default /held. */
  path?: string;
  now?: () => Date;
}

export interface HeldReply {
  status: number;
  body: string;
}

function escapeText(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function heldError(code: string, message: string): string {
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n` +
    `<error xmlns="${HELD_NS}" code="${code}"><message xml:lang="en">${escapeText(message)}</message></error>\n`
  );
}

/** The protocol without the web framework: one request body in, one reply out. */
export async function answerHeld(body: string, who: HeldRequester, opts: HeldOptions): Promise<HeldReply> {
  let root: XmlElement;
  try {
    root = parseXml(body, 16 * 1024);
  } catch (err) {
    return { status: 200, body: heldError('xmlError', err instanceof XmlError ? err.message : 'unreadable request') };
  }
  if (root.ns !== HELD_NS || root.name !== 'locationRequest') {
    return { status: 200, body: heldError('unsupportedMessage', `expected a locationRequest, got <${root.name}>`) };
  }
  const lt = child(root, HELD_NS, 'locationType');
  const types = (lt?.text.trim() || 'any').split(/\s+/);
  const exact = lt?.attrs.exact === 'true';
  // We hold civic addresses only, by value.
  if (exact && !types.includes('civic') && !types.includes('any')) {
    return { status: 200, body: heldError('cannotProvideLiType', 'this LIS provides civic locations by value only') };
  }
  let found: HeldAnswer | null;
  try {
    found = await opts.locate(who);
  } catch {
    return { status: 200, body: heldError('generalLisError', 'location lookup failed') };
  }
  if (!found) return { status: 200, body: heldError('notLocatable', `no location for ${who.ip}`) };
  const pidf = buildPidf(
    { civic: found.civic, method: found.method ?? 'Manual' },
    {
      entity: found.entity,
      deviceId: found.deviceUri,
      providedBy: { name: opts.providerName, ...(opts.providerContact ? { contactUri: opts.providerContact } : {}) },
      retransmissionAllowed: true,
    },
    (opts.now ?? (() => new Date()))(),
  ).replace(/^<\?xml[^>]*\?>\s*/, '');
  return {
    status: 200,
    body: `<?xml version="1.0" encoding="UTF-8"?>\n<locationResponse xmlns="${HELD_NS}">\n${pidf}</locationResponse>\n`,
  };
}

/** Fastify plugin: POST <path> with application/held+xml. */
export async function heldRoutes(app: FastifyInstance, opts: HeldOptions): Promise<void> {
  app.addContentTypeParser(HELD_CONTENT_TYPE, { parseAs: 'string', bodyLimit: 16 * 1024 }, (_req, body, done) => done(null, body));
  // Phones ask without an admin token; the answer depends only on the asking address.
  app.post(opts.path ?? '/held', PUBLIC_ROUTE, async (req, reply) => {
    const ct = String(req.headers['content-type'] ?? '');
    if (!ct.startsWith(HELD_CONTENT_TYPE) || typeof req.body !== 'string') {
      return reply
        .code(415)
        .type(HELD_CONTENT_TYPE)
        .send(heldError('requestError', `content type must be ${HELD_CONTENT_TYPE}`));
    }
    const r = await answerHeld(req.body, { ip: req.ip }, opts);
    return reply.code(r.status).type(HELD_CONTENT_TYPE).send(r.body);
  });
}
