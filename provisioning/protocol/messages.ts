// Every payload of the MQTT contract, one zod schema each, and the one decoder
// both ends use. Decoding never throws: it returns a value or a reason.
import { z } from 'zod';
import { addressDocumentSchema } from './address.js';
import { signedLocationsSchema } from './locations.js';
import { locationReportDataSchema } from './location-report.js';

export const PROTOCOL_VERSION = 1;
/** Largest payload either end accepts; an address document is about 1 KiB. */
export const MAX_PAYLOAD_BYTES = 64 * 1024;
/** The locations push carries every location of the account: it may be larger. */
export const MAX_LOCATIONS_PAYLOAD_BYTES = 2 * 1024 * 1024;

const ts = z.string().max(40);
const id = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9._:-]+$/);

export const statusSchema = z.strictObject({
  v: z.literal(1),
  state: z.enum(['online', 'offline']),
  deviceId: z.string().max(64),
  ts: ts.optional(),
  agentVersion: z.string().max(32).optional(),
});

export const signedAddressSchema = z.strictObject({
  v: z.literal(1),
  doc: addressDocumentSchema,
  /** base64url Ed25519 signature over canonicalJson(doc) */
  sig: z.string().max(200),
});

export const addressStateSchema = z.strictObject({
  v: z.literal(1),
  version: z.number().int().nonnegative(),
  hash: z.string().max(64),
  appliedAt: ts.nullable(),
  /**
   * The phone's replay floors: it refuses a push below them, even after its store was reset.
   * A server that issued less (its database restored from a backup) issues above them.
   */
  floor: z.strictObject({ address: z.number().int().nonnegative(), locations: z.number().int().nonnegative() }).optional(),
});

export const EVENT_TYPES = [
  'emergency-call',
  'test-call',
  'location-changed',
  'diagnostics',
  'address-applied',
  'address-rejected',
  'store-incident',
  'payload-rejected',
  /** The phone's network says it is not at its assigned location. */
  'location-mismatch',
  /** The user picked (or confirmed) a location on the phone: data is LocationSelectedData. */
  'location-selected',
  /** What became of an emergency or test call after its emergency-call/test-call event (same callRef):
   * phase failover, answered, ended or failed. Notifications go out on emergency-call alone. */
  'emergency-call-progress',
  /** The network's civic address (LLDP-MED, DHCP) and the provisioned one name different places
   * (state open), or no longer do (state resolved): data is LocationDisagreementData. */
  'location-disagreement',
  /** The user acknowledged the emergency-services notice for an address: data is the notice state. */
  'notice-acknowledged',
  /** The configured sound device was missing or busy (at start, or when a call needed it): calls went on with the null device. */
  'audio-device-failed',
  /** A part not needed to place 911 (control socket, location) failed to start: data {part, reason, attempt, retryInMs}. Tried again. */
  'part-failed',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];
/** Event types the outbox never evicts, whatever its bound. */
export const PROTECTED_EVENT_TYPES: ReadonlySet<EventType> = new Set(['emergency-call', 'test-call']);

export const eventSchema = z.strictObject({
  v: z.literal(1),
  id,
  type: z.enum(EVENT_TYPES),
  deviceId: z.string().max(64),
  ts,
  data: z.record(z.string(), z.unknown()),
});

/**
 * In the data of events whose order keeps a phone's state (location-disagreement): the
 * kernel's boot id and its monotonic clock in ms. Within one boot it orders events whatever
 * the phone's wall clock did; across boots the server falls back to ts.
 */
export const phoneClockSchema = z.object({ boot: z.string().min(1).max(64), mono: z.number().nonnegative() });
export type PhoneClock = z.infer<typeof phoneClockSchema>;

/** The phone clock in an event's data, or null when absent or malformed. */
export function phoneClockOf(data: unknown): PhoneClock | null {
  const r = phoneClockSchema.safeParse((data as { phoneClock?: unknown } | null)?.phoneClock);
  return r.success ? r.data : null;
}

export const locationSchema = z.strictObject({
  v: z.literal(1),
  ts,
  source: z.string().max(32),
  /** What the agent's location service builds; a report that does not fit (an older phone's) is rejected like any bad payload. */
  data: locationReportDataSchema,
});

export const configSetSchema = z.strictObject({
  v: z.literal(1),
  settings: z.record(z.string().max(64), z.union([z.string().max(1024), z.number(), z.boolean()])),
});

export const commandSchema = z.strictObject({
  v: z.literal(1),
  correlationId: id,
  args: z.record(z.string(), z.unknown()).optional(),
});

/**
 * The server stored these events (and planned their notifications): the phone may
 * drop them from its outbox. Sent after the commit, for redeliveries too. The
 * broker's PUBACK only says the broker has it; an emergency event stays on the
 * phone until this arrives, and is sent again otherwise.
 */
export const eventsAckSchema = z.strictObject({
  v: z.literal(1),
  ids: z.array(id).min(1).max(1000),
});

export const responseSchema = z.strictObject({
  v: z.literal(1),
  correlationId: id,
  ok: z.boolean(),
  result: z.unknown().optional(),
  error: z.string().max(1024).optional(),
});

export type StatusPayload = z.infer<typeof statusSchema>;
export type SignedAddress = z.infer<typeof signedAddressSchema>;
export type AddressStatePayload = z.infer<typeof addressStateSchema>;
export type EventPayload = z.infer<typeof eventSchema>;
export type LocationPayload = z.infer<typeof locationSchema>;
export type ConfigSetPayload = z.infer<typeof configSetSchema>;
export type CommandPayload = z.infer<typeof commandSchema>;
export type ResponsePayload = z.infer<typeof responseSchema>;
export type EventsAckPayload = z.infer<typeof eventsAckSchema>;

/** The schema of each topic kind: one typed map shared by both ends. */
export const PAYLOADS = {
  status: statusSchema,
  location: locationSchema,
  'address/state': addressStateSchema,
  events: eventSchema,
  'events/ack': eventsAckSchema,
  'address/set': signedAddressSchema,
  'locations/set': signedLocationsSchema,
  'config/set': configSetSchema,
  cmd: commandSchema,
  response: responseSchema,
} as const;
/**
 * Who publishes each kind. A Record over the kinds: a kind added to PAYLOADS without a
 * publisher here fails to compile, and topics.ts derives its lists from this table.
 */
export const PUBLISHER = {
  status: 'phone',
  location: 'phone',
  'address/state': 'phone',
  events: 'phone',
  'events/ack': 'server',
  'address/set': 'server',
  'locations/set': 'server',
  'config/set': 'server',
  cmd: 'server',
  response: 'phone',
} as const satisfies Record<keyof typeof PAYLOADS, 'phone' | 'server'>;
export type TopicKind = keyof typeof PAYLOADS;
export type PayloadOf<K extends TopicKind> = z.infer<(typeof PAYLOADS)[K]>;

export type RejectCode = 'too-large' | 'invalid-json' | 'not-an-object' | 'unknown-version' | 'invalid';
export type Decoded<T> = { ok: true; value: T } | { ok: false; code: RejectCode; reason: string };

/**
 * Whether any object in the JSON has a member named `__proto__`. JSON.parse keeps it as an
 * own member, but copying the object (as zod's records do) assigns it, which sets the
 * copy's prototype instead: the member vanishes and its contents answer property reads
 * (`data.numberDialed`) though no schema checked them. So the protocol forbids the name.
 * Only text that spells it, or has a \u escape that could, is parsed a second time.
 */
function hasProtoMember(text: string): boolean {
  if (!text.includes('__proto__') && !text.includes('\\u')) return false;
  let found = false;
  JSON.parse(text, (key, value: unknown) => {
    if (key === '__proto__') found = true;
    return value;
  });
  return found;
}

export function decodePayload<K extends TopicKind>(kind: K, payload: Buffer | string): Decoded<PayloadOf<K>> {
  const size = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
  const max = kind === 'locations/set' ? MAX_LOCATIONS_PAYLOAD_BYTES : MAX_PAYLOAD_BYTES;
  if (size > max) {
    return { ok: false, code: 'too-large', reason: `payload of ${size} bytes exceeds ${max}` };
  }
  const text = typeof payload === 'string' ? payload : payload.toString('utf8');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    return { ok: false, code: 'invalid-json', reason: `invalid JSON: ${(err as Error).message}` };
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    return { ok: false, code: 'not-an-object', reason: 'payload must be a JSON object' };
  }
  if (hasProtoMember(text)) {
    return { ok: false, code: 'invalid', reason: `invalid ${kind} payload: a member named __proto__ is not allowed` };
  }
  const v = (parsed as { v?: unknown }).v;
  if (v !== PROTOCOL_VERSION) {
    return {
      ok: false,
      code: 'unknown-version',
      reason: `unsupported payload version ${JSON.stringify(v) ?? 'undefined'} (expected ${PROTOCOL_VERSION})`,
    };
  }
  const result = PAYLOADS[kind].safeParse(parsed);
  if (!result.success) {
    const first = result.error.issues.slice(0, 3).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    return { ok: false, code: 'invalid', reason: `invalid ${kind} payload: ${first.join('; ')}` };
  }
  return { ok: true, value: result.data as PayloadOf<K> };
}

export function encodePayload<K extends TopicKind>(_kind: K, value: PayloadOf<K>): string {
  return JSON.stringify(value);
}
