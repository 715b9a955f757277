// What an emergency call sends, prepared when the address, the location or the
// routes change, never at dial time: the PIDF-LO template (the best current
// location, and a disagreeing other one second), the INVITE's fixed headers,
// the callback number (the provisioned one, or the switch's ELIN), and the route
// order. Pure: the caller logs and keeps the result.
import type { SipHeader } from '../../hal/voice/types.js';
import { DEFAULT_LANGUAGE } from '../../provisioning/protocol/address.js';
import { PidfTemplate } from '../../provisioning/pidf/pidf.js';
import type { StoredAddress } from '../store/store.js';
import { elinE164 } from '../location/elin.js';
import { prepareInvite, type PreparedInvite } from './invite.js';
import { routeOrder } from './priority.js';
import { macDeviceId, uuidFromName } from './device.js';
import type { BeginRowParts, CurrentLocation, PreparedFacts } from './call-event.js';
import type { RouteTarget } from './sip-uri.js';
import type { EmergencyConfig } from './config.js';

/** What was prepared when the address last changed: the INVITE, and what the event tells. */
export interface PreparedCall extends PreparedFacts {
  /** The same INVITE with the first location alone (only when there is an alternate). */
  oneLocation: PreparedInvite | null;
  /** JSON text of the before-INVITE row's fixed parts, made before the first call needs it. */
  beginRow?: BeginRowParts | null;
}

export interface PrepareInput {
  address: StoredAddress | null;
  /** The best current location from the location service, or null to use the provisioned address. */
  best: CurrentLocation | null;
  alternate: CurrentLocation | null;
  elin: string | null;
  routes: readonly RouteTarget[];
  emergency: Pick<EmergencyConfig, 'location' | 'extraHeaders'>;
  /** Host for the sip: forms of the callback (the account's domain or our public address). */
  domain: string;
  /** The configured device id, and the MAC of the SIP interface (the PIDF-LO deviceID prefers it). */
  deviceId: string;
  mac: string | undefined;
}

export function prepareCall(i: PrepareInput): { prepared: PreparedCall; adjustments: readonly unknown[] } {
  const doc = i.address?.doc ?? null;
  const loc = i.emergency.location;
  const deviceId = macDeviceId(i.mac) ?? `urn:uuid:${uuidFromName(i.deviceId)}`;
  // The best current location when one was given, else the provisioned address.
  const where: CurrentLocation | null = i.best ?? (doc ? { civic: doc.civic, method: 'Manual', source: 'provisioned' } : null);
  const alternate = where && i.alternate && i.alternate.source !== where.source ? i.alternate : null;
  // The account may send the switch's ELIN as the callback number (ELIN-based PSAP lookup).
  const elinCallback = doc?.elinCallback ? elinE164(i.elin) : null;
  const callback = elinCallback ?? doc?.callback ?? null;
  const pidf = where
    ? new PidfTemplate(
        [
          { civic: where.civic, method: where.method, lang: loc.lang },
          ...(alternate ? [{ civic: alternate.civic, method: alternate.method, lang: loc.lang }] : []),
        ],
        {
          entity: callback ? `tel:${callback}` : `urn:uuid:${uuidFromName(i.deviceId)}`,
          deviceId,
          providedBy: { name: loc.providerName, ...(loc.providerContact ? { contactUri: loc.providerContact } : {}) },
          retransmissionAllowed: loc.retransmissionAllowed,
          ...(loc.retentionHours !== undefined ? { retentionHours: loc.retentionHours } : {}),
        },
      )
    : null;
  // The user's language for the PSAP: a document without one means English.
  const language = doc ? (doc.language ?? DEFAULT_LANGUAGE) : null;
  const invite = (p: PidfTemplate | null) =>
    prepareInvite({
      identity: { callback, displayName: doc?.displayName ?? null, domain: i.domain },
      pidf: p,
      extraHeaders: i.emergency.extraHeaders as SipHeader[],
      language,
    });
  const prepared: PreparedCall = {
    invite: invite(pidf),
    oneLocation:
      alternate && pidf && where
        ? invite(new PidfTemplate({ civic: where.civic, method: where.method, lang: loc.lang }, pidf.options))
        : null,
    address: i.address,
    where,
    alternate,
    alternateSent: alternate && pidf ? (pidf.civicSentAll[1] as Record<string, string>) : null,
    elin: i.elin,
    callbackSource: elinCallback ? 'elin' : doc ? 'provisioned' : null,
    // Nothing to tell the PSAP where we are: the fallback route first.
    plan: routeOrder(i.routes, pidf === null),
    civicSent: pidf ? (pidf.civicSent as Record<string, string>) : null,
    callback,
    displayName: doc?.displayName ?? null,
    locationCode: doc?.locationCode ?? null,
    language,
  };
  return { prepared, adjustments: pidf?.adjustments ?? [] };
}
