// What a Kari's Law notification says, built from the phone's emergency-call or
// test-call event (the emergency path's shape, agent/emergency/call-event.ts
// callEventData(), with flat alternatives accepted) and the server's own records for
// whatever the event leaves out. Missing facts are said to be missing.
import { formatAddressLines, CIVIC_ELEMENTS, type CivicAddress } from '../../protocol/address.js';
import type { Location, StoredEvent, User } from '../db/repo.js';
import type { NoticeFallbacks } from '../defaults.js';

export interface NoticeContext {
  event: StoredEvent;
  user: User | null;
  location: Location | null;
  /** The civic address the server last issued to the phone: used only if the event has none. */
  provisionedCivic: CivicAddress | null;
  /** The user's own or the company's place and callback, for what the user and location leave out. */
  fallbacks?: NoticeFallbacks;
}

export interface EmergencyFacts {
  test: boolean;
  callRef: string | null;
  /** The INVITE's Call-ID, as the PSAP saw it. */
  sipCallId: string | null;
  dialed: string | null;
  callerName: string | null;
  user: string | null;
  callback: string | null;
  callerId: string | null;
  deviceId: string;
  deviceIp: string | null;
  deviceMac: string | null;
  locationCode: string | null;
  locationName: string | null;
  /** The address lines exactly as the phone sent them to the PSAP (or as provisioned). */
  addressLines: string[];
  addressSource: 'sent' | 'provisioned' | 'none';
  addressMissing: boolean;
  civic: CivicAddress | null;
  timeUtc: string;
  timeZone: string;
  timeLocal: string;
  placed: boolean | null;
  route: string | null;
  /** Where the first address came from (provisioned, lldp-med, dhcp, ...) and how (PIDF-LO method). */
  sentSource: string | null;
  sentMethod: string | null;
  /** The other address the PIDF-LO carried second, when the network and the provisioned one disagreed. */
  /** The other location of a disagreement; sent: false when the call could not carry it (too large). */
  alternate: { source: string | null; method: string | null; lines: string[]; sent: boolean } | null;
  /** The switch's ELIN (LLDP-MED), and whether it went out as the callback number. */
  elin: string | null;
  callbackIsElin: boolean;
}

export interface Notice {
  subject: string;
  text: string;
  html: string;
  sms: string;
  facts: EmergencyFacts;
}

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj | null => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : null);
const s = (v: unknown): string | null => (typeof v === 'string' && v.trim() !== '' ? v : typeof v === 'number' ? String(v) : null);
const first = (...vals: unknown[]) => {
  for (const v of vals) {
    const x = s(v);
    if (x !== null) return x;
  }
  return null;
};

function civicOf(v: unknown): CivicAddress | null {
  const o = obj(v);
  if (!o) return null;
  const c: CivicAddress = {};
  for (const k of CIVIC_ELEMENTS) {
    const x = s(o[k]);
    if (x !== null) c[k] = x;
  }
  return Object.keys(c).length > 0 ? c : null;
}

/** The civic elements of a PIDF-LO body, for events that carry only the XML. */
export function civicFromPidf(xml: string): CivicAddress | null {
  const c: CivicAddress = {};
  for (const k of CIVIC_ELEMENTS) {
    const m = new RegExp(`<(?:[A-Za-z0-9]+:)?${k}>([^<]*)</(?:[A-Za-z0-9]+:)?${k}>`).exec(xml);
    if (m)
      c[k] = m[1]!
        .replace(/&lt;/g, '<')
        .replace(/&gt;/g, '>')
        .replace(/&quot;/g, '"')
        .replace(/&apos;/g, "'")
        .replace(/&amp;/g, '&');
  }
  return Object.keys(c).length > 0 ? c : null;
}

/** The time in a zone, e.g. "2026-11-22 08:15:03 PST (America/Los_Angeles)". */
export function zonedTime(iso: string, timeZone: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-US', {
      timeZone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
      hourCycle: 'h23',
      timeZoneName: 'short',
    })
      .formatToParts(d)
      .map((p) => [p.type, p.value]),
  );
  return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}:${parts.second} ${parts.timeZoneName} (${timeZone})`;
}

export function emergencyFacts(ctx: NoticeContext): EmergencyFacts {
  const { event, user, location } = ctx;
  const d = event.data;
  const loc = obj(d.location);
  const device = obj(d.device);
  const time = obj(d.time);
  const route = obj(d.route);

  let civic =
    civicOf(loc?.civic) ??
    civicOf(d.civic) ??
    (s(loc?.pidf) ? civicFromPidf(loc!.pidf as string) : null) ??
    (s(d.pidf) ? civicFromPidf(d.pidf as string) : null);
  let addressSource: EmergencyFacts['addressSource'] = civic ? 'sent' : 'none';
  if (!civic && ctx.provisionedCivic) {
    civic = ctx.provisionedCivic;
    addressSource = 'provisioned';
  }
  const reportedMissing = typeof d.addressMissing === 'boolean' ? d.addressMissing : null;
  const timeUtc = first(time?.utc, d.timeUtc, d.time, event.ts) ?? event.receivedAt;
  const fb = ctx.fallbacks;
  const timeZone = location?.timeZone ?? fb?.timeZone ?? first(time?.timeZone) ?? 'UTC';
  const callback = first(d.callback, d.callbackNumber, user?.callback, fb?.callback);
  return {
    test: event.type === 'test-call',
    callRef: first(d.callRef, d.callId, d.sipCallId),
    sipCallId: first(d.sipCallId),
    dialed: first(d.numberDialed, d.dialed, d.number, d.emergencyNumber),
    callerName: first(d.displayName, d.callerName, user?.displayName),
    user: user ? user.username : null,
    callback,
    callerId: first(d.callerId, d.from, d.pai, callback),
    deviceId: event.deviceId,
    deviceIp: first(device?.ip, d.deviceIp, d.ip),
    deviceMac: first(device?.mac, d.deviceMac, d.mac),
    locationCode: first(d.locationCode, loc?.locationCode, location?.code),
    locationName: location?.name ?? fb?.placeName ?? null,
    addressLines: civic ? formatAddressLines(civic) : [],
    addressSource,
    addressMissing: reportedMissing ?? addressSource !== 'sent',
    civic,
    timeUtc,
    timeZone,
    timeLocal: zonedTime(timeUtc, timeZone),
    placed: typeof d.placed === 'boolean' ? d.placed : null,
    route: first(route?.name, d.route),
    sentSource: addressSource === 'sent' ? first(loc?.source) : null,
    sentMethod: addressSource === 'sent' ? first(loc?.method) : null,
    alternate: alternateOf(loc?.alternate, loc?.alternateDropped === true),
    elin: first(d.elin),
    callbackIsElin: d.callbackSource === 'elin',
  };
}

function alternateOf(v: unknown, dropped: boolean): EmergencyFacts['alternate'] {
  const o = obj(v);
  const civic = civicOf(o?.civic);
  return o && civic ? { source: first(o.source), method: first(o.method), lines: formatAddressLines(civic), sent: !dropped } : null;
}

const SOURCE_NAMES: Record<string, string> = {
  provisioned: 'the provisioned address',
  'lldp-med': "the switch's address (LLDP-MED)",
  dhcp: "the network's address (DHCP)",
  user: "the user's pick",
  held: 'the location server (HELD)',
};
const sourceName = (s: string | null) => (s ? (SOURCE_NAMES[s] ?? s) : 'not reported');

const esc = (t: string) => t.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export function buildNotice(ctx: NoticeContext): Notice {
  const f = emergencyFacts(ctx);
  const who = f.callerName ?? f.user ?? f.deviceId;
  const where = f.locationCode ? ` at ${f.locationCode}` : '';
  const subject = f.test
    ? `Test Call Notification: ${f.dialed ?? '933'} test call from ${who}${where} (TEST, not an emergency)`
    : `EMERGENCY: 911 was called from ${who}${where}`;
  const na = 'not reported';
  const addressNote =
    f.addressSource === 'sent'
      ? 'as sent to the PSAP'
      : f.addressSource === 'provisioned'
        ? 'as provisioned to the phone; the phone did not report the address it sent'
        : 'none';
  const disagreement: [string, string][] = !f.alternate
    ? []
    : f.alternate.sent
      ? [
          [
            'Location disagreement',
            `YES: the phone's network and its provisioned address name different places. Sent first: ${sourceName(f.sentSource)}. Also sent, second: ${sourceName(f.alternate.source)}.`,
          ],
          ['Second address sent', f.alternate.lines.join(', ')],
        ]
      : [
          [
            'Location disagreement',
            `YES: the phone's network and its provisioned address name different places. Sent: ${sourceName(f.sentSource)} only; ${sourceName(f.alternate.source)} could not be carried in the call (too large for the SIP packet).`,
          ],
          ['Other address, NOT sent', f.alternate.lines.join(', ')],
        ];
  const rows: [string, string][] = [
    ['Caller', f.callerName ?? na],
    ['User', f.user ?? na],
    ['Callback number', `${f.callback ?? na}${f.callbackIsElin ? " (the switch's ELIN)" : ''}`],
    ['ELIN', f.elin ?? 'none'],
    ['Number dialed', f.dialed ?? na],
    ['Dispatchable address', f.addressLines.length ? f.addressLines.join(', ') : 'NONE'],
    ['Building', f.civic?.BLD ?? '-'],
    ['Floor', f.civic?.FLR ?? '-'],
    ['Room', f.civic?.ROOM ?? '-'],
    [
      'Address source',
      f.sentSource ? `${addressNote}: ${sourceName(f.sentSource)}${f.sentMethod ? `, method ${f.sentMethod}` : ''}` : addressNote,
    ],
    ...disagreement,
    ['Address missing', f.addressMissing ? 'YES: the call went out without a validated address' : 'no'],
    ['Location code', f.locationCode ?? na],
    ['Device caller ID', f.callerId ?? na],
    ['Device', f.deviceId],
    ['Device IP', f.deviceIp ?? na],
    ['Device MAC', f.deviceMac ?? na],
    ['Time (location)', f.timeLocal],
    ['Time (UTC)', f.timeUtc],
    ['Call placed', f.placed === null ? na : f.placed ? 'yes' : 'NO (the phone could not place the call)'],
    ['Route', f.route ?? na],
    // The PSAP's own record of the call carries this: responders and the PSAP can match the two.
    ['SIP Call-ID', f.sipCallId ?? na],
    ['Event id', ctx.event.id],
  ];
  const headline = f.test
    ? 'TEST CALL NOTIFICATION. This is a test: a technician dialed the 933 test number. No emergency.'
    : '911 WAS CALLED. Someone on site dialed 911. Emergency services have been called; go to the caller and help responders find them.';
  const width = Math.max(...rows.map(([k]) => k.length));
  const text = [
    headline,
    '',
    ...rows.map(([k, v]) => `${`${k}:`.padEnd(width + 2)}${v}`),
    '',
    f.test ? 'TEST ONLY: no action needed.' : "Sent under Kari's Law (47 CFR 9.16) by the E911 provisioning server.",
    '',
  ].join('\n');
  const html = [
    `<p><strong>${esc(headline)}</strong></p>`,
    '<table>',
    ...rows.map(([k, v]) => `<tr><th align="left">${esc(k)}</th><td>${esc(v)}</td></tr>`),
    '</table>',
  ].join('\n');
  const sms = f.test
    ? `TEST CALL (933) from ${who}${where}. ${f.addressLines.join(', ') || 'No address'}. Callback ${f.callback ?? na}. Test only.`
    : `911 CALLED by ${who}${where}. ${f.addressLines.join(', ') || 'ADDRESS MISSING'}.${f.alternate ? ` ${f.alternate.sent ? 'ALSO SENT' : 'OTHER ADDRESS, NOT SENT'}: ${f.alternate.lines.join(', ')}.` : ''} Callback ${f.callback ?? na}.${f.elin ? ` ELIN ${f.elin}.` : ''} ${f.timeLocal}`;
  return { subject, text, html, sms, facts: f };
}
