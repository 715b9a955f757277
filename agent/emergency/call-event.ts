// The emergency-call / test-call event, built from plain values with no I/O: the
// row committed before the INVITE (JSON text, from parts prepared when the address
// last changed, so per call only the call's own values are written) and the whole
// event recorded after it. Both have the same fields; the row before has
// placed: null and no PIDF-LO document.
import type { StoredAddress } from '../store/store.js';
import type { CallId, CallMediaStats } from '../../hal/voice/types.js';
import type { CivicAddress } from '../../provisioning/protocol/address.js';
import type { CallSite } from '../../provisioning/protocol/call-site.js';
import type { DeviceNetwork } from './device.js';
import { localTimeWithOffset } from './device.js';
import type { InviteContent, PreparedInvite } from './invite.js';
import type { RouteName, RouteTarget } from './sip-uri.js';

export interface Attempt {
  route: RouteName;
  routeUri: string;
  target: string;
  callId: CallId | null;
  startedAt: string;
  /** Set when this attempt is over: the reason. */
  result?: string;
  provisional: boolean;
}

export interface EmergencyCallRecord {
  callRef: string;
  kind: 'emergency' | 'test';
  dialed: string;
  number: string;
  startedAt: string;
  addressMissing: boolean;
  state: 'trying' | 'answered' | 'ended' | 'failed';
  attempts: Attempt[];
  /** Routes still to try, in order. */
  plan: RouteName[];
  otherCalls: { held: CallId[]; ended: CallId[] };
  /** RTP figures of the answered attempt, once it has ended. */
  media?: CallMediaStats;
  /** The INVITE with both locations could not be sent: it went with the first alone. */
  alternateDropped?: boolean;
}

/** A location to send: civic elements, the RFC 4119 method token, and which source gave it. */
export interface CurrentLocation {
  civic: CivicAddress;
  method: string;
  source: string;
}

/** What was prepared when the address last changed, as far as the event tells it. */
export interface PreparedFacts {
  invite: PreparedInvite;
  address: StoredAddress | null;
  where: CurrentLocation | null;
  /** The disagreeing other address, sent second in the PIDF-LO. */
  alternate: CurrentLocation | null;
  alternateSent: Record<string, string> | null;
  /** The switch's ELIN, and whether it went out as the callback number. */
  elin: string | null;
  callbackSource: 'provisioned' | 'elin' | null;
  /** Route order for this address state. */
  plan: RouteTarget[];
  civicSent: Record<string, string> | null;
  callback: string | null;
  displayName: string | null;
  locationCode: string | null;
  /** The caller's language as the SDP told the PSAP (RFC 8373), or null when it said none. */
  language: string | null;
}

/** The phone itself, as the event names it. */
export interface EventDevice {
  deviceId: string;
  network: DeviceNetwork | null;
}

/** JSON text of the before-INVITE row's fixed parts. */
export interface BeginRowParts {
  /** The fixed top-level members, without braces. */
  fixed: string;
  /** The location object without its closing brace (contentId is appended per call), or null. */
  location: string | null;
  device: string;
  timeZone: string;
}

/** The parts of the before-INVITE row that do not change per call, for this address state and zone. */
export function beginRowParts(prepared: PreparedFacts, device: EventDevice, timeZone: string): BeginRowParts {
  const q = JSON.stringify;
  const fixed = q({
    routePlan: prepared.plan.map((r) => r.name),
    callback: prepared.callback,
    callbackSource: prepared.callbackSource,
    elin: prepared.elin,
    displayName: prepared.displayName,
    locationCode: prepared.locationCode,
    language: prepared.language,
    addressMissing: prepared.address === null,
  }).slice(1, -1);
  const location = prepared.invite.pidf
    ? q({
        source: prepared.where?.source ?? null,
        method: prepared.where?.method ?? null,
        addressVersion: prepared.address?.version ?? null,
        civic: prepared.civicSent,
        ...(prepared.alternate
          ? { alternate: { source: prepared.alternate.source, method: prepared.alternate.method, civic: prepared.alternateSent } }
          : {}),
      }).slice(0, -1)
    : null;
  const net = device.network;
  const dev = q({ deviceId: device.deviceId, ip: net?.ip ?? null, mac: net?.mac ?? null, interface: net?.interface ?? null });
  return { fixed, location, device: dev, timeZone: q(timeZone) };
}

/**
 * The before-INVITE row as JSON text: what is known then; placed is not known yet (null).
 * Per call only the call's own values are written (building and serialising the whole
 * object cost about 60 us of the digit-to-INVITE path). Same fields as callEventData().
 */
export function beginRowJson(
  b: BeginRowParts,
  callRef: string,
  dialed: string,
  number: string,
  contentId: string | null,
  at: Date,
  registered: boolean,
  site?: CallSite,
): string {
  const q = JSON.stringify;
  return (
    `{"callRef":${q(callRef)},"sipCallId":null,"numberDialed":${q(dialed)},"emergencyNumber":${q(number)},"placed":null,"route":null,` +
    `${b.fixed},"location":${b.location === null ? 'null' : `${b.location},"contentId":${q(contentId)}}`},"device":${b.device},` +
    (site ? `"site":${q(site)},` : '') +
    `"time":{"utc":${q(at.toISOString())},"local":${q(localTimeWithOffset(at))},"timeZone":${b.timeZone}},"registered":${registered},` +
    `"otherCalls":{"held":[],"ended":[]},"recorded":"before-invite"}`
  );
}

export interface CallEventInput {
  record: EmergencyCallRecord;
  dialed: string;
  number: string;
  /** What the INVITE carried, or null when none was sent. */
  content: InviteContent | null;
  prepared: PreparedFacts;
  at: Date;
  /** Why the call could not be placed, or null when it was. */
  error: string | null;
  /** The SIP Call-ID of the first INVITE that left, when the stack still knows it. */
  sipCallId: string | null;
  device: EventDevice;
  /** Extension, address and switch port when the call was placed (read just before the INVITE). */
  site?: CallSite;
  timeZone: string;
  registered: boolean;
}

/** The whole event, recorded after the INVITE. */
export function callEventData(i: CallEventInput): Record<string, unknown> {
  const { record, prepared, content, error, at } = i;
  const attempt = firstSent(record);
  const net = i.device.network;
  return {
    callRef: record.callRef,
    sipCallId: i.sipCallId,
    numberDialed: i.dialed,
    emergencyNumber: i.number,
    placed: error === null,
    ...(error ? { error } : {}),
    route: attempt ? { name: attempt.route, uri: attempt.routeUri, target: attempt.target } : null,
    routePlan: record.plan,
    callback: prepared.callback,
    callbackSource: prepared.callbackSource,
    elin: prepared.elin,
    displayName: prepared.displayName,
    locationCode: prepared.locationCode,
    language: prepared.language,
    addressMissing: record.addressMissing,
    location: content?.pidf
      ? {
          source: prepared.where?.source ?? null,
          method: prepared.where?.method ?? null,
          addressVersion: prepared.address?.version ?? null,
          civic: prepared.civicSent,
          // The other location is reported even when the call could not carry it: the notice must still name it.
          ...(prepared.alternate
            ? { alternate: { source: prepared.alternate.source, method: prepared.alternate.method, civic: prepared.alternateSent } }
            : {}),
          ...(record.alternateDropped ? { alternateDropped: true } : {}),
          pidf: content.pidf,
          contentId: content.contentId,
        }
      : null,
    device: { deviceId: i.device.deviceId, ip: net?.ip ?? null, mac: net?.mac ?? null, interface: net?.interface ?? null },
    ...(i.site ? { site: i.site } : {}),
    time: { utc: at.toISOString(), local: localTimeWithOffset(at), timeZone: i.timeZone },
    registered: i.registered,
    otherCalls: record.otherCalls,
  };
}

/** The attempt the event names: the first INVITE that left (a route that threw sent nothing), else the first tried. */
export function firstSent(record: EmergencyCallRecord): Attempt | undefined {
  return record.attempts.find((a) => a.callId !== null) ?? record.attempts[0];
}
