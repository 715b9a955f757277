// What a Kari's Law notification says, built from the phone's emergency-call or
// test-call event (the emergency path's shape, agent/emergency/call-event.ts
// callEventData(), with flat alternatives accepted) and the server's own records for
// whatever the event leaves out. Missing facts are said to be missing.
import { formatAddressLines, CIVIC_ELEMENTS, type CivicAddress } from '../../protocol/address.js';
import { callSiteOf } from '../../protocol/call-site.js';
import type { Location, StoredEvent, User } from '../db/repo.js';
import { spokenMessage, type SpokenMessage } from './spoken.js';
import { catalogue, languageName, noticeLanguage, type Catalogue, type NoticeLanguage, type RowKey } from './i18n.js';
import type { SiteZone } from './zone.js';
import type { NoticeFallbacks } from '../defaults.js';

export interface NoticeContext {
  event: StoredEvent;
  user: User | null;
  location: Location | null;
  /** The civic address the server last issued to the phone: used only if the event has none. */
  provisionedCivic: CivicAddress | null;
  /** The account (or PBX) name the notice names; omitted or empty: not shown as known. */
  accountName?: string | null;
  /** The floor or zone of the phone's address at call time (zone.ts zoneLookup), compared with the address sent. */
  zoneOf?: (ip: string, sent: CivicAddress | null) => SiteZone;
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
  /** The name the call carried beside the caller ID number (From / P-Asserted-Identity). */
  callerIdName: string | null;
  /** Set when the number the call carried is not the phone's own (the directory's callback). */
  callerIdSent: { sent: string; own: string } | null;
  /** The account or PBX name. */
  account: string | null;
  /** The user's name in the server's directory (the caller ID name may differ). */
  directoryName: string | null;
  /** The caller's preferred language; sent: the phone put it in the call's SDP (RFC 8373). */
  language: { tag: string; sent: boolean } | null;
  deviceId: string;
  /** The phone's extension at call time (its SIP address), else the user's. */
  extension: string | null;
  /** At call time when the phone said (site), else the address found when its agent started. */
  deviceIp: string | null;
  /** The switch port at call time (LLDP): "sysName port (description)". */
  switchPort: string | null;
  /** The floor or zone of deviceIp, compared with the address sent; null without the locations. */
  zone: SiteZone | null;
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
  /** The language it is written in (the site's, where translated). */
  language: NoticeLanguage;
  /** What a security-desk call says, in that language. */
  spoken: SpokenMessage;
  /** Extra email headers: a 911 is marked high importance, a 933 test is not. */
  headers: Record<string, string>;
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
  const site = callSiteOf(d);
  const sw = site?.switch;

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
  const own = user?.callback ?? null;
  const sentLanguage = first(d.language);
  const facts: EmergencyFacts = {
    test: event.type === 'test-call',
    callRef: first(d.callRef, d.callId, d.sipCallId),
    sipCallId: first(d.sipCallId),
    dialed: first(d.numberDialed, d.dialed, d.number, d.emergencyNumber),
    callerName: first(d.displayName, d.callerName, user?.displayName),
    user: user ? user.username : null,
    callback,
    callerId: first(d.callerId, d.from, d.pai, callback),
    callerIdName: first(d.callerIdName, d.displayName),
    callerIdSent: callback && own && callback !== own ? { sent: callback, own } : null,
    account: first(ctx.accountName),
    directoryName: user?.displayName ?? null,
    language: sentLanguage ? { tag: sentLanguage, sent: true } : user ? { tag: user.language, sent: false } : null,
    deviceId: event.deviceId,
    extension: first(site?.extension, d.extension, user?.extension),
    deviceIp: first(site?.ip, device?.ip, d.deviceIp, d.ip),
    switchPort: sw ? `${sw.sysName ?? sw.chassisId} port ${sw.portId}${sw.portDescr ? ` (${sw.portDescr})` : ''}` : null,
    zone: null,
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
  const ip = facts.deviceIp;
  if (ip && ctx.zoneOf) facts.zone = ctx.zoneOf(ip, addressSource === 'sent' ? civic : null);
  return facts;
}

/** The floor or zone beside the address: where the phone's address is, and whether that is where the address sent says. */
function zoneText(f: EmergencyFacts, t: Catalogue): string {
  const z = f.zone;
  if (!z) return f.deviceIp ? t.zone.notLookedUp : t.zone.noIp;
  if (!z.zone) return t.zone.inNoRange(z.ip);
  const where = t.zone.where(z.zone.group, z.zone.locationName, z.zone.cidr, z.ip);
  const d = z.differs;
  if (z.agrees === 'no' && d) {
    return 'location' in d ? t.zone.otherLocation(where, d.location, d.code) : t.zone.otherFloor(where, d.ipFloor, d.sentFloor);
  }
  return z.agrees === 'yes' ? t.zone.atSent(where) : where;
}

function alternateOf(v: unknown, dropped: boolean): EmergencyFacts['alternate'] {
  const o = obj(v);
  const civic = civicOf(o?.civic);
  return o && civic ? { source: first(o.source), method: first(o.method), lines: formatAddressLines(civic), sent: !dropped } : null;
}

const esc = (t: string) => t.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export function buildNotice(ctx: NoticeContext): Notice {
  const f = emergencyFacts(ctx);
  const lang = noticeLanguage(ctx.location?.language);
  const t = catalogue(lang);
  const who = f.callerName ?? f.user ?? f.deviceId;
  const where = f.locationCode ? t.at(f.locationCode) : '';
  const dialed = f.dialed ?? (f.test ? '933' : '911');
  const subject = f.test ? t.subjectTest(dialed, who, where) : t.subject911(who, where);
  const na = t.notReported;
  const sourceName = (x: string | null) => (x ? ((t.sources as Record<string, string>)[x] ?? x) : na);
  const addressNote = f.addressSource === 'sent' ? t.addressSent : f.addressSource === 'provisioned' ? t.addressProvisioned : t.none;
  const disagreement: [RowKey, string][] = !f.alternate
    ? []
    : f.alternate.sent
      ? [
          ['disagreement', t.disagreementSent(sourceName(f.sentSource), sourceName(f.alternate.source))],
          ['secondAddress', f.alternate.lines.join(', ')],
        ]
      : [
          ['disagreement', t.disagreementDropped(sourceName(f.sentSource), sourceName(f.alternate.source))],
          ['otherNotSent', f.alternate.lines.join(', ')],
        ];
  // Who dialed, by every name admins know them: the directory's, the extension, the caller ID.
  const callerId = f.callerId ? `${f.callerId}${f.callerIdName ? ` "${f.callerIdName}"` : ''}` : na;
  const rows: [RowKey, string][] = [
    ['account', f.account ?? na],
    ['caller', f.callerName ?? na],
    ['directoryName', f.directoryName ?? na],
    ['user', f.user ?? na],
    ['extension', f.extension ?? na],
    ['callerId', callerId],
    // Only when the call did not carry the phone's own number (an ELIN, another line's number).
    ...(f.callerIdSent
      ? [['callerIdSent', t.callerIdSent(f.callerIdSent.sent, f.callerIdSent.own, f.callbackIsElin)] as [RowKey, string]]
      : []),
    ['callback', `${f.callback ?? na}${f.callbackIsElin ? t.elinNote : ''}`],
    ['language', f.language ? t.language(languageName(f.language.tag, lang), f.language.tag, f.language.sent) : na],
    ['elin', f.elin ?? t.none],
    ['dialed', f.dialed ?? na],
    ['address', f.addressLines.length ? f.addressLines.join(', ') : t.addressNone],
    ['zone', zoneText(f, t)],
    ['building', f.civic?.BLD ?? '-'],
    ['floor', f.civic?.FLR ?? '-'],
    ['room', f.civic?.ROOM ?? '-'],
    [
      'addressSource',
      f.sentSource ? `${addressNote}: ${sourceName(f.sentSource)}${f.sentMethod ? t.method(f.sentMethod) : ''}` : addressNote,
    ],
    ...disagreement,
    ['addressMissing', f.addressMissing ? t.addressMissingYes : t.no],
    ['locationCode', f.locationCode ?? na],
    ['device', f.deviceId],
    ['deviceIp', f.deviceIp ?? na],
    ['switchPort', f.switchPort ?? na],
    ['deviceMac', f.deviceMac ?? na],
    ['timeLocal', f.timeLocal],
    ['timeUtc', f.timeUtc],
    ['placed', f.placed === null ? na : f.placed ? t.yes : t.placedNo],
    ['route', f.route ?? na],
    // The PSAP's own record of the call carries this: responders and the PSAP can match the two.
    ['sipCallId', f.sipCallId ?? na],
    ['eventId', ctx.event.id],
  ];
  const labelled = rows.map(([k, v]) => [t.rows[k], v] as const);
  const headline = f.test ? t.headlineTest(who, dialed, where) : t.headline911;
  const width = Math.max(...labelled.map(([k]) => k.length));
  const text = [
    headline,
    '',
    ...labelled.map(([k, v]) => `${`${k}:`.padEnd(width + 2)}${v}`),
    '',
    f.test ? t.footerTest : t.footer911,
    '',
  ].join('\n');
  const html = [
    `<p><strong>${esc(headline)}</strong></p>`,
    '<table>',
    ...labelled.map(([k, v]) => `<tr><th align="left">${esc(k)}</th><td>${esc(v)}</td></tr>`),
    '</table>',
  ].join('\n');
  const address = f.addressLines.join(', ');
  const alternate = f.alternate ? ` ${f.alternate.sent ? t.alsoSentSms : t.notSentSms}: ${f.alternate.lines.join(', ')}.` : '';
  const sms = f.test
    ? t.smsTest(dialed, who, where, address || t.noAddressSms, f.callback ?? na)
    : `${t.sms911(who, where, address || t.addressMissingSms, `${smsZone(f, t)}${alternate}`, f.callback ?? na)}${f.elin ? ` ELIN ${f.elin}.` : ''} ${f.timeLocal}`;
  return {
    subject,
    text,
    html,
    sms,
    facts: f,
    language: lang,
    // The site's own tag picks the voice (es-US: Latin American Spanish); untranslated sites hear English.
    spoken: { text: spokenMessage(f, lang), language: lang === 'en' ? 'en' : (ctx.location?.language ?? lang) },
    // Mail clients flag these; a 933 test must not look like the real thing.
    headers: f.test ? {} : { Importance: 'High', 'X-Priority': '1' },
  };
}

function smsZone(f: EmergencyFacts, t: Catalogue): string {
  const z = f.zone?.zone;
  if (!z) return '';
  return f.zone?.agrees === 'no' ? t.zone.smsDiffers(z.group, z.locationName) : t.zone.sms(z.group);
}
