// Who may talk to whom on the broker. Each phone logs in with its device id as
// user name and a password the server issued, and its client id is bound to
// that user name (Mosquitto: use_username_as_clientid on every listener; aedes:
// a connect whose client id differs is refused), so a phone's credentials can
// never take over another phone's or the server's session. A phone may publish
// only its own phone-to-server topics and read only its own server-to-phone
// topics. Each server instance has its own user (e911-server-<instance>), which
// may do everything under e911/v1; device ids in that name space are reserved.
// The same rules are rendered for Mosquitto (password file + ACL with %u
// patterns) and enforced in the embedded aedes broker.
import { pbkdf2, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import bcrypt from 'bcryptjs';
import { PHONE_PUBLISHES, SERVER_PUBLISHES, TOPIC_ROOT, isValidDeviceId, topicFilter } from '../protocol/topics.js';
import type { TopicKind } from '../protocol/messages.js';

const pbkdf2Async = promisify(pbkdf2);

/** Every server instance's broker user starts with this; no phone may be called so. */
export const SERVER_USER_PREFIX = 'e911-server';
const INSTANCE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,40}$/;

/** The broker user name (and client id) of one server instance. */
export function serverMqttUser(instance: string): string {
  if (!INSTANCE.test(instance))
    throw new TypeError(`invalid server instance name ${JSON.stringify(instance)}: 1-41 of letters, digits, dot, dash, underscore`);
  return `${SERVER_USER_PREFIX}-${instance}`;
}

/**
 * Device ids a phone may not have: the server users' name space (any case, since a
 * deployment's broker or tooling may fold it), so a phone's login never collides with
 * a server's in the password file or the ACL.
 */
export function isReservedDeviceId(id: string): boolean {
  return id.toLowerCase().startsWith(SERVER_USER_PREFIX);
}

/** A device id the server accepts for a phone: the contract's syntax and not reserved. */
export function isPhoneDeviceId(id: string): boolean {
  return isValidDeviceId(id) && !isReservedDeviceId(id);
}
// Mosquitto's default. The passwords are 192 random bits, not human ones, so
// iterations add nothing to their strength and only slow every connect.
const ITERATIONS = 101;

/** A new random password for a phone or the server. */
export function newPassword(): string {
  return randomBytes(24).toString('base64url');
}

/** Mosquitto's sha512-pbkdf2 format: $7$<iterations>$<salt b64>$<hash b64>. */
export function hashPassword(password: string, iterations = ITERATIONS): string {
  const salt = randomBytes(12);
  const hash = pbkdf2Sync(password, salt, iterations, 64, 'sha512');
  return `$7$${iterations}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const m = /^\$7\$(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/.exec(stored);
  if (!m) return false;
  const expected = Buffer.from(m[3]!, 'base64');
  const got = await pbkdf2Async(password, Buffer.from(m[2]!, 'base64'), Number(m[1]), expected.length, 'sha512');
  return got.length === expected.length && timingSafeEqual(got, expected);
}

/** The topic names under a phone's own subtree, with the wildcard the contract uses. */
function phoneTopics(kinds: readonly TopicKind[], deviceId: string): string[] {
  return kinds.map((k) => topicFilter(k, deviceId));
}

/** MQTT topic-filter match (+ one level, # the rest). */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

export function phoneMayPublish(deviceId: string, topic: string): boolean {
  return isPhoneDeviceId(deviceId) && phoneTopics(PHONE_PUBLISHES, deviceId).some((f) => topicMatches(f, topic));
}

/**
 * A phone may subscribe to a filter only if every topic it can match is one of
 * its own server-to-phone topics: no wildcards across phones, no '#'.
 */
export function phoneMaySubscribe(deviceId: string, filter: string): boolean {
  if (!isPhoneDeviceId(deviceId) || filter.startsWith('$')) return false;
  const allowed = phoneTopics(SERVER_PUBLISHES, deviceId);
  if (allowed.includes(filter)) return true;
  // A concrete topic (no wildcard) inside an allowed filter, e.g. cmd/ping.
  return !/[+#]/.test(filter) && allowed.some((f) => topicMatches(f, filter));
}

export function serverMayUse(topicOrFilter: string): boolean {
  const t = topicOrFilter.replace(/^\$share\/[^/]+\//, '');
  return t === `${TOPIC_ROOT}/#` || t.startsWith(`${TOPIC_ROOT}/`);
}

// NATS checks passwords against bcrypt only. Cost 4 (the least) for the same reason as the
// PBKDF2 iterations above: 192 random bits need no stretching, and NATS checks on every connect.
const BCRYPT_COST = 4;

/** The bcrypt hash NATS's configuration takes for a password. */
export function hashPasswordBcrypt(password: string): string {
  return bcrypt.hashSync(password, BCRYPT_COST);
}

/**
 * NATS maps an MQTT topic to a subject by turning '/' into '.': a '.' inside a device id
 * would split it into two subject tokens (newer NATS escape it, 2.9 does not say), so the
 * per-phone permissions and the server's queue subscriptions could not name that phone.
 * Such ids are refused for NATS deployments.
 */
export function isNatsDeviceId(id: string): boolean {
  return isPhoneDeviceId(id) && !id.includes('.');
}

/** The NATS subject of an MQTT topic of the contract (e911/v1/p1/address/set -> e911.v1.p1.address.set). */
export function natsSubject(topicOrFilter: string): string {
  return topicOrFilter
    .split('/')
    .map((level) => (level === '+' ? '*' : level === '#' ? '>' : level))
    .join('.');
}

/** The MQTT topic of a subject the server's queue subscriptions receive (the reverse of natsSubject). */
export function topicOfSubject(subject: string): string {
  return subject.split('.').join('/');
}

// What NATS's MQTT layer needs on a user that has permissions: QoS 1 subscriptions are
// delivered through JetStream consumers on $MQTT.sub.<id> subjects (measured on 2.9.10:
// without it a QoS 1 SUBSCRIBE is refused).
const MQTT_INTERNAL = ['$MQTT.sub.>'];

export interface NatsUser {
  user: string;
  /** bcrypt hash ($2a$/$2b$). */
  bcrypt: string;
}

/** A NATS quoted string: the config grammar takes JSON-like escapes. */
const q = (s: string) => JSON.stringify(s);

/**
 * NATS `authorization { users = [...] }`: each server instance may publish and subscribe
 * under e911.v1 (and its native client's inboxes); each phone only its own subjects, as the
 * Mosquitto ACL allows. NATS 2.9 has no %u pattern, so there is one entry per phone.
 * Phones whose id cannot be a NATS subject token are left out and returned in `skipped`.
 */
export function natsAuthorization(
  servers: readonly NatsUser[],
  phones: readonly { deviceId: string; bcrypt: string }[],
): {
  conf: string;
  skipped: string[];
} {
  const skipped: string[] = [];
  const perms = (pub: readonly string[], sub: readonly string[]) =>
    `permissions: { publish: { allow: [${pub.map(q).join(', ')}] }, subscribe: { allow: [${sub.map(q).join(', ')}] } }`;
  const serverSubjects = [`${natsSubject(TOPIC_ROOT)}.>`, '_INBOX.>', ...MQTT_INTERNAL];
  const lines = [
    '# e911 provisioning: generated by e911-server broker-config --nats-auth. Phones log in with their device id as user name.',
    'authorization {',
    '  users = [',
    ...servers.map((s) => `    { user: ${q(s.user)}, password: ${q(s.bcrypt)}, ${perms(serverSubjects, serverSubjects)} }`),
  ];
  for (const p of phones) {
    if (!isNatsDeviceId(p.deviceId)) {
      skipped.push(p.deviceId);
      continue;
    }
    const pub = phoneTopics(PHONE_PUBLISHES, p.deviceId).map(natsSubject);
    const sub = [...phoneTopics(SERVER_PUBLISHES, p.deviceId).map(natsSubject), ...MQTT_INTERNAL];
    lines.push(`    { user: ${q(p.deviceId)}, password: ${q(p.bcrypt)}, ${perms(pub, sub)} }`);
  }
  lines.push('  ]', '}', '');
  return { conf: lines.join('\n'), skipped };
}

/** Mosquitto password_file lines. */
export function mosquittoPasswordFile(entries: readonly { user: string; hash: string }[]): string {
  return entries.map((e) => `${e.user}:${e.hash}\n`).join('');
}

/** Mosquitto acl_file: each server instance's user, then one pattern per topic kind for every phone (%u = user name). */
export function mosquittoAcl(serverUsers: readonly string[]): string {
  const lines = [
    '# e911 provisioning: generated by e911-server broker-config. Phones log in with their device id as user name.',
    ...serverUsers.flatMap((u) => [`user ${u}`, `topic readwrite ${TOPIC_ROOT}/#`]),
    '',
    '# Every other user is a phone: its own topics only.',
    ...phoneTopics(PHONE_PUBLISHES, '%u').map((t) => `pattern write ${t}`),
    ...phoneTopics(SERVER_PUBLISHES, '%u').map((t) => `pattern read ${t}`),
  ];
  return `${lines.join('\n')}\n`;
}

export interface MosquittoListener {
  port: number;
  /** Address to bind; all addresses when omitted. */
  host?: string;
  /** MQTT over TLS on this listener: files as the broker reads them (PEM). */
  tls?: MosquittoTls;
}

export interface MosquittoTls {
  /** The broker's certificate and key. */
  certfile: string;
  keyfile: string;
  /** The CA that signs phones' client certificates (and, for the record, the broker's). */
  cafile: string;
  /** Refuse clients without a certificate signed by cafile (the password login still applies). */
  requireCertificate?: boolean;
}

/**
 * The mosquitto.conf lines that load the two files and open the listeners. Authentication
 * applies to all listeners (per_listener_settings false), but use_username_as_clientid is a
 * listener's own setting in Mosquitto 2.0: it is written under every listener, and a listener
 * added by hand elsewhere must carry it too, or a phone can take over another's client id.
 */
export function mosquittoConfSnippet(dir: string, listeners: readonly MosquittoListener[] = [{ port: 1883 }]): string {
  return [
    'per_listener_settings false',
    'allow_anonymous false',
    `password_file ${dir}/passwd`,
    `acl_file ${dir}/acl`,
    ...listeners.flatMap((l) => [
      `listener ${l.port}${l.host ? ` ${l.host}` : ''}`,
      "# A login is its client id: no client can take over another client's session.",
      'use_username_as_clientid true',
      ...(l.tls
        ? [
            `certfile ${l.tls.certfile}`,
            `keyfile ${l.tls.keyfile}`,
            `cafile ${l.tls.cafile}`,
            'tls_version tlsv1.2',
            // A client certificate, when required, is checked in addition to the password: the
            // user name (and so the client id) still comes from the login, not the certificate.
            `require_certificate ${l.tls.requireCertificate ? 'true' : 'false'}`,
          ]
        : []),
    ]),
    '',
  ].join('\n');
}
