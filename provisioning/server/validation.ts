// Input rules for everything an administrator can change: one zod schema per
// input, and the small validators they share (email, CIDR, time zone, E.164).
import net from 'node:net';
import { z } from 'zod';
import { isValidCallback, isValidDisplayName, LANGUAGE_TAG, LOCATION_POLICIES } from '../protocol/address.js';
import { isValidDeviceId } from '../protocol/topics.js';
import { validatePostalAddress } from '../protocol/locations.js';
import { SERVER_USER_PREFIX, isReservedDeviceId } from './broker-auth.js';

export const MAX_NOTIFICATION_EMAILS = 10;

// WHATWG's "valid email address" plus a dotted domain: list addresses (team@, oncall@) pass too.
const EMAIL =
  /^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$/;

/** The reason an email address is refused, or null when it is fine. */
export function emailProblem(raw: string): string | null {
  const e = raw.trim();
  if (e === '') return 'is empty';
  if (e.length > 254) return 'is longer than 254 characters';
  if (!EMAIL.test(e)) return 'is not a valid email address';
  return null;
}

/** Trimmed, domain lower-cased: two spellings of one mailbox compare equal. */
export function normalizeEmail(raw: string): string {
  const e = raw.trim();
  const at = e.lastIndexOf('@');
  return `${e.slice(0, at)}@${e.slice(at + 1).toLowerCase()}`;
}

export const emailSchema = z
  .string()
  .superRefine((s, ctx) => {
    const p = emailProblem(s);
    if (p) ctx.addIssue({ code: 'custom', message: `${JSON.stringify(s)} ${p}` });
  })
  .transform(normalizeEmail);

/** Up to max distinct addresses (case-insensitive), order kept. */
export function emailListSchema(max = MAX_NOTIFICATION_EMAILS) {
  return z
    .array(emailSchema)
    .max(max, `at most ${max} email addresses`)
    .superRefine((list, ctx) => {
      const seen = new Set<string>();
      list.forEach((e, i) => {
        const k = e.toLowerCase();
        if (seen.has(k)) ctx.addIssue({ code: 'custom', message: `${e} is listed twice`, path: [i] });
        seen.add(k);
      });
    });
}

/** The reason a CIDR is refused, or null. Host bits must be zero: 10.0.0.1/24 is a typo. */
export function cidrProblem(raw: string): string | null {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(raw.trim());
  if (!m) return 'must be an address and a prefix length, like 10.1.0.0/16 or 2001:db8::/48';
  const [, addr, lenText] = m as unknown as [string, string, string];
  const found = net.isIP(addr);
  if (found === 0) return `${addr} is not an IPv4 or IPv6 address`;
  const family = found as 4 | 6;
  const bits = family === 4 ? 32 : 128;
  const len = Number(lenText);
  if (len > bits) return `prefix length must be 0-${bits} for IPv${family}`;
  const value = ipToBigInt(addr, family);
  const hostMask = (1n << BigInt(bits - len)) - 1n;
  if ((value & hostMask) !== 0n) return `host bits are set: did you mean ${bigIntToIp(value & ~hostMask, family)}/${len}?`;
  return null;
}

function ipToBigInt(addr: string, family: 4 | 6): bigint {
  if (family === 4) return addr.split('.').reduce((acc, o) => (acc << 8n) + BigInt(Number(o)), 0n);
  // Expand "::" and an embedded IPv4 tail into eight 16-bit groups.
  let text = addr;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const n = ipToBigInt(v4[1]!, 4);
    text = `${text.slice(0, -v4[1]!.length)}${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const h = head ? head.split(':') : [];
  const t = tail === undefined ? [] : tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return groups.reduce((acc, g) => (acc << 16n) + BigInt(parseInt(g, 16)), 0n);
}

function bigIntToIp(v: bigint, family: 4 | 6): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((s) => String((v >> s) & 0xffn)).join('.');
  const groups: string[] = [];
  for (let s = 112n; s >= 0n; s -= 16n) groups.push(((v >> s) & 0xffffn).toString(16));
  return groups.join(':').replace(/(^|:)0(:0)+(:|$)/, '::');
}

export function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

const text = (max: number) => z.string().trim().max(max);
const optionalText = (max: number) =>
  z
    .string()
    .trim()
    .max(max)
    .optional()
    .nullable()
    .transform((s) => (s ? s : undefined));

export const e164Schema = z.string().trim().refine(isValidCallback, 'must be an E.164 number (+1NPANXXXXXX in North America)');

export const languageSchema = z.string().regex(LANGUAGE_TAG, 'must be a language tag like en or fr-CA');

export const postalAddressSchema = z.strictObject({
  country: text(2).toUpperCase(),
  houseNumber: text(16),
  houseNumberSuffix: optionalText(16),
  street: text(128),
  street2: optionalText(128),
  city: text(64),
  state: text(2).toUpperCase(),
  postalCode: text(10).toUpperCase(),
  plus4: optionalText(4),
});

export const cidrSchema = z
  .string()
  .trim()
  .superRefine((s, ctx) => {
    const p = cidrProblem(s);
    if (p) ctx.addIssue({ code: 'custom', message: `${s}: ${p}` });
  });

/** A SIP URI the server can call: sip: or sips:, one line, no spaces. */
export const sipUriSchema = z
  .string()
  .trim()
  .max(256)
  .regex(/^sips?:[^\s<>"]+$/i, 'must be a SIP URI such as sip:desk@pbx.example or sip:10.0.0.5:5060');

/** An on-site number a 911 report rings: a SIP URI, or an E.164 number (through the SIP gateway). */
export const callNumberSchema = z.union([e164Schema, sipUriSchema], {
  message: 'must be an E.164 number (+15555550100) or a SIP URI (sip:desk@pbx.example)',
});

/** The fields of a location; locationInputSchema adds the address rules across them. */
export const locationFieldsSchema = z.strictObject({
  code: text(32).regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'must be letters, digits, dot, dash, underscore'),
  name: text(128).min(1, 'is required'),
  address: postalAddressSchema,
  building: optionalText(64),
  floor: optionalText(32),
  room: optionalText(32),
  timeZone: z.string().refine(isTimeZone, 'must be an IANA time zone such as America/New_York'),
  ipGroups: z
    .array(z.strictObject({ name: text(64).min(1, 'is required'), cidrs: z.array(cidrSchema).min(1).max(64) }))
    .max(64)
    .default([]),
  switchPorts: z
    .array(z.strictObject({ chassisId: text(64).min(1), portId: optionalText(64) }))
    .max(256)
    .default([]),
  adminEmails: emailListSchema().default([]),
  smsNumbers: z.array(e164Schema).max(10).default([]),
  /** On-site numbers called (spoken message, press 1) when a 911 is reported. */
  callNumbers: z.array(callNumberSchema).max(10).optional(),
  /** The language of the site's notices (English where there is no translation). */
  language: languageSchema.default('en'),
});

export const locationInputSchema = locationFieldsSchema.superRefine((loc, ctx) => {
  for (const issue of validatePostalAddress(loc.address, { name: loc.name, building: loc.building, floor: loc.floor, room: loc.room })) {
    const top = ['name', 'building', 'floor', 'room'].includes(issue.field);
    ctx.addIssue({ code: 'custom', message: issue.reason, path: top ? [issue.field] : ['address', issue.field] });
  }
});
export type LocationInput = z.infer<typeof locationInputSchema>;

/**
 * An address that is not a location record: the company's default address, or a user's
 * own (home) address. The same postal rules as a location's (validatePostalAddress, the
 * phone's own rules), and a time zone for the notices' local time.
 */
export const placeAddressSchema = z
  .strictObject({
    address: postalAddressSchema,
    building: optionalText(64),
    floor: optionalText(32),
    room: optionalText(32),
    timeZone: z.string().refine(isTimeZone, 'must be an IANA time zone such as America/New_York'),
  })
  .superRefine((a, ctx) => {
    for (const issue of validatePostalAddress(a.address, { building: a.building, floor: a.floor, room: a.room })) {
      const top = ['building', 'floor', 'room'].includes(issue.field);
      ctx.addIssue({ code: 'custom', message: issue.reason, path: top ? [issue.field] : ['address', issue.field] });
    }
  });
export type PlaceAddress = z.infer<typeof placeAddressSchema>;
export type PlaceAddressRaw = z.input<typeof placeAddressSchema>;

/** The company's callback: the number and the name sent for a user who has no callback of their own. */
export const companyCallbackSchema = z.strictObject({
  number: e164Schema,
  displayName: z.string().refine(isValidDisplayName, 'must be 1-64 letters and digits, single spaces between words'),
  /** The language of users created without one. */
  language: languageSchema.default('en'),
});
export type CompanyCallback = z.infer<typeof companyCallbackSchema>;
/** What a client sends (before defaults and trimming). */
export type LocationInputRaw = z.input<typeof locationInputSchema>;

export const userInputSchema = z.strictObject({
  username: text(64)
    .min(1, 'is required')
    .regex(/^[A-Za-z0-9._@+-]+$/, 'must be letters, digits and . _ @ + -'),
  displayName: z.string().refine(isValidDisplayName, 'must be 1-64 letters and digits, single spaces between words'),
  extension: optionalText(16).refine((s) => s === undefined || /^[0-9*#]+$/.test(s), 'must be digits, * or #'),
  locationId: z.number().int().positive().nullable().default(null),
  /** The user's own address (works from home): instead of a location, never with one. */
  ownAddress: placeAddressSchema.nullable().default(null),
  callback: e164Schema.nullable().default(null),
  /** Omitted: the company callback's language, else en (filled in by the service). */
  language: languageSchema.optional(),
  /** The person's mobile: texted their location's alerts when the policy includes SMS. */
  mobile: e164Schema.nullable().default(null),
  recommendations: z.boolean().default(false),
  emails: emailListSchema().default([]),
  deviceIds: z
    .array(
      z
        .string()
        .refine(isValidDeviceId, 'must be 1-64 of letters, digits, dot, dash, underscore')
        .refine((id) => !isReservedDeviceId(id), `is reserved: ids starting with ${SERVER_USER_PREFIX} are the server's broker users`),
    )
    .max(16)
    .default([]),
});
export type UserInput = z.infer<typeof userInputSchema>;
/** What the store writes: a user input whose own address may be left out (none). */
export type UserRecordInput = Omit<UserInput, 'ownAddress'> & { ownAddress?: PlaceAddress | null };
export type UserInputRaw = z.input<typeof userInputSchema>;

export const NOTIFICATION_POLICIES = ['app-only', 'app-then-email-sms', 'all'] as const;
export type NotificationPolicy = (typeof NOTIFICATION_POLICIES)[number];

export const accountPatchSchema = z.strictObject({
  name: text(128).optional(),
  contactEmail: emailSchema.optional(),
  recommendations: z.boolean().optional(),
  notificationPolicy: z.enum(NOTIFICATION_POLICIES).optional(),
  /** For 933 test calls; null: the same as notificationPolicy. */
  testNotificationPolicy: z.enum(NOTIFICATION_POLICIES).nullable().optional(),
  /** What a 911 call sends first when a phone's network address disagrees with the provisioned one. */
  locationPolicy: z.enum(LOCATION_POLICIES).optional(),
  /** Send the switch's ELIN as the emergency callback number when a phone has one. */
  elinCallback: z.boolean().optional(),
  /** Company defaults, each used wherever a user or location has none of its own (null removes one). */
  defaultAddress: placeAddressSchema.nullable().optional(),
  defaultCallback: companyCallbackSchema.nullable().optional(),
  emergencyContacts: emailListSchema().optional(),
});
export type AccountPatch = z.infer<typeof accountPatchSchema>;

const header = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9-]{1,64}$/, 'must be an HTTP header name'),
  /** Write-only (an API key, say): omitted on update keeps the stored one while the URL stays the same. */
  value: z
    .string()
    .max(1024)
    .refine((v) => !/[\r\n]/.test(v), 'must be one line')
    .optional(),
});
const httpUrl = z
  .string()
  .url()
  .refine((u) => /^https?:\/\//.test(u), 'must be an http or https URL');

export const smtpSettingsSchema = z.strictObject({
  host: text(253).min(1),
  port: z.number().int().min(1).max(65535),
  /** tls: TLS from the first byte (465); starttls: upgrade required (587); none: plain (tests, relays). */
  security: z.enum(['tls', 'starttls', 'none']),
  username: optionalText(256),
  /** Write-only: omitted on update keeps the stored one. */
  password: z.string().max(1024).optional(),
  from: emailSchema,
  /** Accept self-signed certificates (a relay on the LAN). */
  allowInvalidCertificates: z.boolean().default(false),
});
export type SmtpSettings = z.infer<typeof smtpSettingsSchema>;

export const smsSettingsSchema = z.strictObject({
  url: httpUrl,
  username: optionalText(256),
  password: z.string().max(1024).optional(),
  from: e164Schema,
  header: header.optional(),
});
export type SmsSettings = z.infer<typeof smsSettingsSchema>;

export const webhookSettingsSchema = z.strictObject({
  url: httpUrl,
  /** When set, each POST carries X-E911-Signature: sha256=<HMAC of the body>. */
  secret: z.string().max(256).optional(),
  header: header.optional(),
});
export type WebhookSettings = z.infer<typeof webhookSettingsSchema>;

/** The security-desk call channel: how the server places its calls (notify/call.ts). */
export const callSettingsSchema = z.strictObject({
  /** Where E.164 numbers go: sip:<number>@<gateway host[:port][;params]>. */
  gateway: sipUriSchema.optional(),
  /** The From of the calls, e.g. sip:e911@server.example (the desk's display shows it). */
  from: sipUriSchema,
  /** How many times the message plays in one call before it counts as unacknowledged. */
  repeats: z.number().int().min(1).max(20).default(4),
  /** How long a call may ring before it counts as not answered. */
  ringSeconds: z.number().int().min(5).max(120).default(30),
  /** Calls placed per number at most (not answered, busy, failed), with backoff between. */
  maxAttempts: z.number().int().min(1).max(10).default(5),
  /**
   * Digest credentials for a PBX or gateway that challenges (401/407): with them the calls go
   * through an account of the From's address of record that answers the challenges.
   */
  username: optionalText(256),
  /** Write-only: omitted on update keeps the stored one while the gateway, registrar and user name stay. */
  password: z.string().max(1024).optional(),
  /** Where that account registers before it calls, e.g. sip:pbx.example;transport=tcp (none: it never registers). */
  registrar: sipUriSchema.optional(),
  /** The realm the credentials answer (default: any the PBX names). */
  realm: optionalText(128),
});
export type CallSettings = z.infer<typeof callSettingsSchema>;

export const notificationSettingsSchema = z.strictObject({
  smtp: smtpSettingsSchema.nullable().optional(),
  sms: smsSettingsSchema.nullable().optional(),
  webhook: webhookSettingsSchema.nullable().optional(),
  call: callSettingsSchema.nullable().optional(),
});
export type NotificationSettingsInput = z.infer<typeof notificationSettingsSchema>;

export const bulkEmailsSchema = z.strictObject({
  emails: emailListSchema(),
  target: z.union([
    z.strictObject({ all: z.literal(true) }),
    z.strictObject({ locationId: z.number().int().positive() }),
    z.strictObject({ userIds: z.array(z.number().int().positive()).min(1).max(100_000) }),
  ]),
  /**
   * With target all: the list also becomes the company emergency contacts, which every user
   * without a list of their own gets, users created later included (the job itself changes
   * only the users there are when it runs).
   */
  alsoCompanyContacts: z.boolean().optional(),
});
export type BulkEmailsInput = z.infer<typeof bulkEmailsSchema>;

export interface Issue {
  field: string;
  reason: string;
}

/** zod issues as {field, reason}, field a dotted path. */
export function issuesOf(error: z.ZodError): Issue[] {
  return error.issues.map((i) => ({ field: i.path.map(String).join('.') || '(body)', reason: i.message }));
}
