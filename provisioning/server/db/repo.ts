// All SQL of the server in one place: rows in, typed objects out. Synchronous
// (better-sqlite3); callers group writes with transaction().
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import Database from 'better-sqlite3';
import { migrate, statementCache } from '../../common/sqlite.js';
import { SERVER_MIGRATIONS } from './migrations.js';
import { postalToCivic, type PostalAddress } from '../../protocol/locations.js';
import { phoneClockOf, type PhoneClock } from '../../protocol/messages.js';
import type { CivicAddress, LocationPolicy } from '../../protocol/address.js';
import type { LocationInput, NotificationPolicy, SmsSettings, SmtpSettings, UserInput, WebhookSettings } from '../validation.js';

export const SERVER_DB_FILE = 'server.db';

export interface Account {
  name: string;
  contactEmail: string;
  e911Enabled: boolean;
  e911ChangedAt: string | null;
  recommendations: boolean;
  notificationPolicy: NotificationPolicy;
  locationPolicy: LocationPolicy;
  elinCallback: boolean;
  updatedAt: string;
}

export interface NotificationSettings {
  smtp: SmtpSettings | null;
  sms: SmsSettings | null;
  webhook: WebhookSettings | null;
}

export interface IpGroup {
  name: string;
  cidrs: string[];
}

export interface Location {
  id: number;
  code: string;
  name: string;
  address: PostalAddress;
  building?: string;
  floor?: string;
  room?: string;
  timeZone: string;
  ipGroups: IpGroup[];
  switchPorts: { chassisId: string; portId?: string }[];
  adminEmails: string[];
  smsNumbers: string[];
  /** The RFC 5139 form the phones receive. */
  civic: CivicAddress;
  createdAt: string;
  updatedAt: string;
}

export interface User {
  id: number;
  username: string;
  displayName: string;
  extension: string | null;
  locationId: number | null;
  callback: string | null;
  language: string;
  recommendations: boolean;
  emails: string[];
  deviceIds: string[];
  createdAt: string;
  updatedAt: string;
}

export interface Device {
  deviceId: string;
  userId: number | null;
  online: boolean;
  lastSeen: string | null;
  agentVersion: string | null;
  /** Version of the last address issued to it; 0 when none. */
  issuedVersion: number;
  issuedAt: string | null;
  appliedVersion: number | null;
  appliedHash: string | null;
  appliedAt: string | null;
  locationsVersion: number;
  lastLocation: unknown;
  lastLocationAt: string | null;
  mismatch: unknown;
  mismatchAt: string | null;
  /** The last open location-disagreement event's data (both addresses, what 911 sends), or null. */
  disagreement: unknown;
  disagreementAt: string | null;
  credentialsIssuedAt: string | null;
  createdAt: string;
}

export interface PushContext {
  deviceId: string;
  userId: number | null;
  displayName: string | null;
  callback: string | null;
  locationId: number | null;
  recommendations: boolean;
  issuedVersion: number;
  contentHash: string | null;
  appliedVersion: number | null;
  locationsVersion: number;
  locationsHash: string | null;
}

export interface StoredEvent {
  id: string;
  deviceId: string;
  type: string;
  ts: string;
  receivedAt: string;
  userId: number | null;
  locationId: number | null;
  data: Record<string, unknown>;
}

export type NotificationChannel = 'email' | 'sms' | 'webhook';
export type NotificationStatus = 'pending' | 'sending' | 'retry' | 'sent' | 'failed';

export interface Notification {
  id: number;
  eventId: string;
  channel: NotificationChannel;
  recipient: string;
  status: NotificationStatus;
  attempts: number;
  nextAttemptAt: string;
  lastError: string | null;
  providerId: string | null;
  createdAt: string;
  sentAt: string | null;
  updatedAt: string;
}

export interface AuditEntry {
  seq: number;
  at: string;
  actor: string;
  action: string;
  entity: string;
  entityId: string | null;
  details: unknown;
}

export type JobStatus = 'queued' | 'running' | 'done' | 'failed';

export interface Job {
  id: number;
  kind: string;
  status: JobStatus;
  actor: string;
  params: unknown;
  total: number;
  done: number;
  result: unknown;
  error: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

export interface ApiToken {
  id: number;
  name: string;
  createdAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

type Row = Record<string, unknown>;
const json = <T>(v: unknown, fallback: T): T => (typeof v === 'string' ? (JSON.parse(v) as T) : fallback);
const opt = (v: unknown) => (v === null || v === undefined ? undefined : (v as string));
const str = (v: unknown) => (v === null || v === undefined ? null : (v as string));

function toLocation(r: Row): Location {
  const address: PostalAddress = {
    country: r.country as string,
    houseNumber: r.house_number as string,
    street: r.street as string,
    city: r.city as string,
    state: r.state as string,
    postalCode: r.postal_code as string,
    ...(r.house_number_suffix ? { houseNumberSuffix: r.house_number_suffix as string } : {}),
    ...(r.street2 ? { street2: r.street2 as string } : {}),
    ...(r.plus4 ? { plus4: r.plus4 as string } : {}),
  };
  const place = { name: r.name as string, building: opt(r.building), floor: opt(r.floor), room: opt(r.room) };
  return {
    id: r.id as number,
    code: r.code as string,
    name: r.name as string,
    address,
    ...(place.building ? { building: place.building } : {}),
    ...(place.floor ? { floor: place.floor } : {}),
    ...(place.room ? { room: place.room } : {}),
    timeZone: r.time_zone as string,
    ipGroups: json(r.ip_groups, []),
    switchPorts: json(r.switch_ports, []),
    adminEmails: json(r.admin_emails, []),
    smsNumbers: json(r.sms_numbers, []),
    civic: postalToCivic(address, place),
    createdAt: r.created_at as string,
    updatedAt: r.updated_at as string,
  };
}

function toUser(r: Row): User {
  return {
    id: r.id as number,
    username: r.username as string,
    displayName: r.display_name as string,
    extension: str(r.extension),
    locationId: (r.location_id as number | null) ?? null,
    callback: str(r.callback),
    language: r.language as string,
    recommendations: r.recommendations === 1,
    emails: json(r.emails, []),
    deviceIds: typeof r.device_ids === 'string' && r.device_ids !== '' ? (r.device_ids as string).split(',').sort() : [],
    createdAt: r.created_at as string,
    updatedAt: r.updated_at as string,
  };
}

function toDevice(r: Row): Device {
  return {
    deviceId: r.device_id as string,
    userId: (r.user_id as number | null) ?? null,
    online: r.online === 1,
    lastSeen: str(r.last_seen),
    agentVersion: str(r.agent_version),
    issuedVersion: r.addr_version as number,
    issuedAt: str(r.addr_issued_at),
    appliedVersion: (r.applied_version as number | null) ?? null,
    appliedHash: str(r.applied_hash),
    appliedAt: str(r.applied_at),
    locationsVersion: r.loc_version as number,
    lastLocation: json(r.last_location, null),
    lastLocationAt: str(r.last_location_at),
    mismatch: json(r.mismatch, null),
    mismatchAt: str(r.mismatch_at),
    disagreement: json(r.disagreement, null),
    disagreementAt: str(r.disagreement_at),
    credentialsIssuedAt: str(r.mqtt_issued_at),
    createdAt: r.created_at as string,
  };
}

function toNotification(r: Row): Notification {
  return {
    id: r.id as number,
    eventId: r.event_id as string,
    channel: r.channel as NotificationChannel,
    recipient: r.recipient as string,
    status: r.status as NotificationStatus,
    attempts: r.attempts as number,
    nextAttemptAt: r.next_attempt_at as string,
    lastError: str(r.last_error),
    providerId: str(r.provider_id),
    createdAt: r.created_at as string,
    sentAt: str(r.sent_at),
    updatedAt: r.updated_at as string,
  };
}

function toJob(r: Row): Job {
  return {
    id: r.id as number,
    kind: r.kind as string,
    status: r.status as JobStatus,
    actor: r.actor as string,
    params: json(r.params, null),
    total: r.total as number,
    done: r.done as number,
    result: json(r.result, null),
    error: str(r.error),
    createdAt: r.created_at as string,
    startedAt: str(r.started_at),
    finishedAt: str(r.finished_at),
  };
}

function toEvent(r: Row): StoredEvent {
  return {
    id: r.id as string,
    deviceId: r.device_id as string,
    type: r.type as string,
    ts: r.ts as string,
    receivedAt: r.received_at as string,
    userId: (r.user_id as number | null) ?? null,
    locationId: (r.location_id as number | null) ?? null,
    data: json(r.data, {}),
  };
}

const USER_SELECT = `SELECT u.*, (SELECT group_concat(device_id) FROM devices d WHERE d.user_id = u.id) AS device_ids FROM users u`;

export function tokenHash(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export interface RepoOptions {
  dataDir: string;
  now?: () => Date;
  nativeBinding?: string;
}

export class Repo {
  readonly path: string;
  private readonly db: Database.Database;
  private readonly now: () => Date;
  /** A prepared statement, prepared once per SQL text (each text is used in one mode: plain, pluck or raw). */
  private readonly q: (sql: string) => Database.Statement;

  constructor(opts: RepoOptions) {
    this.now = opts.now ?? (() => new Date());
    mkdirSync(opts.dataDir, { recursive: true, mode: 0o750 });
    this.path = path.join(opts.dataDir, SERVER_DB_FILE);
    const db = new Database(this.path, opts.nativeBinding ? { nativeBinding: opts.nativeBinding } : {});
    try {
      db.pragma('journal_mode = WAL');
      // FULL: the server acknowledges an emergency event (to the broker and the phone,
      // which then deletes it) after this commit; a commit lost to a power cut after
      // that ack would lose the event. Measured cost: docs/reliability.md.
      db.pragma('synchronous = FULL');
      db.pragma('foreign_keys = ON');
      // Several server processes may share this file (one host): wait for a writer rather than fail.
      db.pragma('busy_timeout = 5000');
      migrate(db, SERVER_MIGRATIONS);
    } catch (err) {
      db.close();
      throw err;
    }
    this.db = db;
    this.q = statementCache(db);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  private iso(): string {
    return this.now().toISOString();
  }

  schemaVersion(): number {
    return this.db.pragma('user_version', { simple: true }) as number;
  }

  // ---- account ----

  account(): Account {
    const r = this.q('SELECT * FROM account WHERE id = 1').get() as Row;
    return {
      name: r.name as string,
      contactEmail: r.contact_email as string,
      e911Enabled: r.e911_enabled === 1,
      e911ChangedAt: str(r.e911_changed_at),
      recommendations: r.recommendations === 1,
      notificationPolicy: r.notification_policy as NotificationPolicy,
      locationPolicy: r.location_policy as LocationPolicy,
      elinCallback: r.elin_callback === 1,
      updatedAt: r.updated_at as string,
    };
  }

  updateAccount(a: Partial<Pick<Account, 'name' | 'contactEmail' | 'recommendations' | 'notificationPolicy' | 'locationPolicy' | 'elinCallback'>>): void {
    const cur = this.account();
    this.q('UPDATE account SET name = ?, contact_email = ?, recommendations = ?, notification_policy = ?, location_policy = ?, elin_callback = ?, updated_at = ? WHERE id = 1')
      .run(
        a.name ?? cur.name,
        a.contactEmail ?? cur.contactEmail,
        (a.recommendations ?? cur.recommendations) ? 1 : 0,
        a.notificationPolicy ?? cur.notificationPolicy,
        a.locationPolicy ?? cur.locationPolicy,
        (a.elinCallback ?? cur.elinCallback) ? 1 : 0,
        this.iso(),
      );
  }

  setE911(enabled: boolean): void {
    this.q('UPDATE account SET e911_enabled = ?, e911_changed_at = ?, updated_at = ? WHERE id = 1').run(enabled ? 1 : 0, this.iso(), this.iso());
  }

  notificationSettings(): NotificationSettings {
    const r = this.q('SELECT smtp, sms, webhook FROM account WHERE id = 1').get() as Row;
    return { smtp: json(r.smtp, null), sms: json(r.sms, null), webhook: json(r.webhook, null) };
  }

  setNotificationSettings(s: NotificationSettings): void {
    const enc = (v: unknown) => (v ? JSON.stringify(v) : null);
    this.q('UPDATE account SET smtp = ?, sms = ?, webhook = ?, updated_at = ? WHERE id = 1').run(enc(s.smtp), enc(s.sms), enc(s.webhook), this.iso());
  }

  // ---- locations ----

  locations(): Location[] {
    return (this.q('SELECT * FROM locations ORDER BY code').all() as Row[]).map(toLocation);
  }

  location(id: number): Location | null {
    const r = this.q('SELECT * FROM locations WHERE id = ?').get(id) as Row | undefined;
    return r ? toLocation(r) : null;
  }

  locationByCode(code: string): Location | null {
    const r = this.q('SELECT * FROM locations WHERE code = ? COLLATE NOCASE').get(code) as Row | undefined;
    return r ? toLocation(r) : null;
  }

  private locationParams(l: LocationInput) {
    const a = l.address;
    return {
      code: l.code,
      name: l.name,
      country: a.country,
      house_number: a.houseNumber,
      house_number_suffix: a.houseNumberSuffix ?? null,
      street: a.street,
      street2: a.street2 ?? null,
      city: a.city,
      state: a.state,
      postal_code: a.postalCode,
      plus4: a.plus4 ?? null,
      building: l.building ?? null,
      floor: l.floor ?? null,
      room: l.room ?? null,
      time_zone: l.timeZone,
      ip_groups: JSON.stringify(l.ipGroups),
      switch_ports: JSON.stringify(l.switchPorts),
      admin_emails: JSON.stringify(l.adminEmails),
      sms_numbers: JSON.stringify(l.smsNumbers),
      now: this.iso(),
    };
  }

  insertLocation(l: LocationInput): number {
    const r = this.q(
        `INSERT INTO locations (code, name, country, house_number, house_number_suffix, street, street2, city, state, postal_code, plus4,
           building, floor, room, time_zone, ip_groups, switch_ports, admin_emails, sms_numbers, created_at, updated_at)
         VALUES (@code, @name, @country, @house_number, @house_number_suffix, @street, @street2, @city, @state, @postal_code, @plus4,
           @building, @floor, @room, @time_zone, @ip_groups, @switch_ports, @admin_emails, @sms_numbers, @now, @now)`,
      )
      .run(this.locationParams(l));
    return Number(r.lastInsertRowid);
  }

  updateLocation(id: number, l: LocationInput): void {
    this.q(
        `UPDATE locations SET code = @code, name = @name, country = @country, house_number = @house_number,
           house_number_suffix = @house_number_suffix, street = @street, street2 = @street2, city = @city, state = @state,
           postal_code = @postal_code, plus4 = @plus4, building = @building, floor = @floor, room = @room, time_zone = @time_zone,
           ip_groups = @ip_groups, switch_ports = @switch_ports, admin_emails = @admin_emails, sms_numbers = @sms_numbers,
           updated_at = @now WHERE id = @id`,
      )
      .run({ ...this.locationParams(l), id });
  }

  deleteLocation(id: number): void {
    this.q('DELETE FROM locations WHERE id = ?').run(id);
  }

  // ---- users ----

  users(filter: { locationId?: number; limit?: number; offset?: number } = {}): User[] {
    const where = filter.locationId !== undefined ? 'WHERE u.location_id = @locationId' : '';
    return (
      this.q(`${USER_SELECT} ${where} ORDER BY u.id LIMIT @limit OFFSET @offset`)
        .all({ locationId: filter.locationId, limit: filter.limit ?? -1, offset: filter.offset ?? 0 }) as Row[]
    ).map(toUser);
  }

  userCount(filter: { locationId?: number } = {}): number {
    const r = filter.locationId !== undefined
      ? this.q('SELECT count(*) AS n FROM users WHERE location_id = ?').get(filter.locationId)
      : this.q('SELECT count(*) AS n FROM users').get();
    return (r as { n: number }).n;
  }

  user(id: number): User | null {
    const r = this.q(`${USER_SELECT} WHERE u.id = ?`).get(id) as Row | undefined;
    return r ? toUser(r) : null;
  }

  userByUsername(username: string): User | null {
    const r = this.q(`${USER_SELECT} WHERE u.username = ? COLLATE NOCASE`).get(username) as Row | undefined;
    return r ? toUser(r) : null;
  }

  userIds(filter: { locationId?: number } = {}): number[] {
    const rows = filter.locationId !== undefined
      ? this.q('SELECT id FROM users WHERE location_id = ? ORDER BY id').all(filter.locationId)
      : this.q('SELECT id FROM users ORDER BY id').all();
    return (rows as { id: number }[]).map((r) => r.id);
  }

  existingUserIds(ids: readonly number[]): Set<number> {
    const stmt = this.q('SELECT id FROM users WHERE id = ?').pluck();
    return new Set(ids.filter((id) => stmt.get(id) !== undefined));
  }

  private userParams(u: UserInput) {
    return {
      username: u.username,
      display_name: u.displayName,
      extension: u.extension ?? null,
      location_id: u.locationId,
      callback: u.callback,
      language: u.language,
      recommendations: u.recommendations ? 1 : 0,
      emails: JSON.stringify(u.emails),
      now: this.iso(),
    };
  }

  insertUser(u: UserInput): number {
    const r = this.q(
        `INSERT INTO users (username, display_name, extension, location_id, callback, language, recommendations, emails, created_at, updated_at)
         VALUES (@username, @display_name, @extension, @location_id, @callback, @language, @recommendations, @emails, @now, @now)`,
      )
      .run(this.userParams(u));
    return Number(r.lastInsertRowid);
  }

  updateUser(id: number, u: UserInput): void {
    this.q(
        `UPDATE users SET username = @username, display_name = @display_name, extension = @extension, location_id = @location_id,
           callback = @callback, language = @language, recommendations = @recommendations, emails = @emails, updated_at = @now
         WHERE id = @id`,
      )
      .run({ ...this.userParams(u), id });
  }

  setUserLocation(id: number, locationId: number): void {
    this.q('UPDATE users SET location_id = ?, updated_at = ? WHERE id = ?').run(locationId, this.iso(), id);
  }

  /** Replaces a user's email list; false when the list was already that (no write). */
  setUserEmails(id: number, emails: readonly string[]): boolean {
    return this.q('UPDATE users SET emails = ?, updated_at = ? WHERE id = ? AND emails IS NOT ?').run(JSON.stringify(emails), this.iso(), id, JSON.stringify(emails)).changes > 0;
  }

  userEmails(id: number): string[] | null {
    const v = this.q('SELECT emails FROM users WHERE id = ?').pluck().get(id);
    return v === undefined ? null : json(v, []);
  }

  /** Users with their location, for the CSV download. */
  csvUserRows(): { id: number; username: string; displayName: string; extension: string | null; locationCode: string | null; locationName: string | null; emails: string[] }[] {
    return (
      this.q(
          `SELECT u.id, u.username, u.display_name, u.extension, l.code AS location_code, l.name AS location_name, u.emails
           FROM users u LEFT JOIN locations l ON l.id = u.location_id ORDER BY u.id`,
        )
        .all() as Row[]
    ).map((r) => ({
      id: r.id as number,
      username: r.username as string,
      displayName: r.display_name as string,
      extension: str(r.extension),
      locationCode: str(r.location_code),
      locationName: str(r.location_name),
      emails: json(r.emails, []),
    }));
  }

  /** Every user's id, name and current email list (as stored JSON), for validating uploads in one read. */
  userEmailIndex(): { byId: Map<number, string>; byName: Map<string, number> } {
    const byId = new Map<number, string>();
    const byName = new Map<string, number>();
    for (const r of this.q('SELECT id, username, emails FROM users').raw().iterate() as Iterable<[number, string, string]>) {
      byId.set(r[0], r[2]);
      byName.set(r[1].toLowerCase(), r[0]);
    }
    return { byId, byName };
  }

  deleteUser(id: number): void {
    this.q('DELETE FROM users WHERE id = ?').run(id);
  }

  // ---- devices ----

  devices(filter: { userId?: number } = {}): Device[] {
    const rows = filter.userId !== undefined
      ? this.q('SELECT * FROM devices WHERE user_id = ? ORDER BY device_id').all(filter.userId)
      : this.q('SELECT * FROM devices ORDER BY device_id').all();
    return (rows as Row[]).map(toDevice);
  }

  device(deviceId: string): Device | null {
    const r = this.q('SELECT * FROM devices WHERE device_id = ?').get(deviceId) as Row | undefined;
    return r ? toDevice(r) : null;
  }

  private deviceExists(deviceId: string): boolean {
    return this.q('SELECT 1 FROM devices WHERE device_id = ?').pluck().get(deviceId) !== undefined;
  }

  /** Makes sure a row exists for a phone the broker reported; returns whether it was new. */
  ensureDevice(deviceId: string): boolean {
    return this.q('INSERT OR IGNORE INTO devices (device_id, created_at) VALUES (?, ?)').run(deviceId, this.iso()).changes > 0;
  }

  /** Assigns exactly these devices to the user; others of theirs are unassigned. */
  setUserDevices(userId: number, deviceIds: readonly string[]): void {
    this.q(`UPDATE devices SET user_id = NULL WHERE user_id = ? AND device_id NOT IN (SELECT value FROM json_each(?))`).run(userId, JSON.stringify(deviceIds));
    const upsert = this.q(
      'INSERT INTO devices (device_id, user_id, created_at) VALUES (?, ?, ?) ON CONFLICT (device_id) DO UPDATE SET user_id = excluded.user_id',
    );
    for (const id of deviceIds) upsert.run(id, userId, this.iso());
  }

  /** The owner of each device that belongs to another user than userId. */
  deviceOwners(deviceIds: readonly string[], exceptUserId: number | null): { deviceId: string; userId: number }[] {
    const stmt = this.q('SELECT device_id AS deviceId, user_id AS userId FROM devices WHERE device_id = ? AND user_id IS NOT NULL AND user_id IS NOT ?');
    return deviceIds.flatMap((id) => (stmt.all(id, exceptUserId) as { deviceId: string; userId: number }[]));
  }

  deviceIdsOfUsers(userIds: readonly number[]): string[] {
    const stmt = this.q('SELECT device_id FROM devices WHERE user_id = ?').pluck();
    return userIds.flatMap((id) => stmt.all(id) as string[]);
  }

  deviceIdsAtLocation(locationId: number): string[] {
    return this.q('SELECT d.device_id FROM devices d JOIN users u ON u.id = d.user_id WHERE u.location_id = ? ORDER BY d.device_id').pluck().all(locationId) as string[];
  }

  assignedDeviceIds(): string[] {
    return this.q('SELECT device_id FROM devices WHERE user_id IS NOT NULL ORDER BY device_id').pluck().all() as string[];
  }

  /** The device, its user and that user's location, for building its documents. */
  deviceContext(deviceId: string): { device: Device; user: User | null; location: Location | null } | null {
    const device = this.device(deviceId);
    if (!device) return null;
    const user = device.userId !== null ? this.user(device.userId) : null;
    const location = user?.locationId ? this.location(user.locationId) : null;
    return { device, user, location };
  }

  /** What pushing needs to know of each phone, for a whole batch in one query. */
  pushContexts(deviceIds: readonly string[]): Map<string, PushContext> {
    const rows = this.q(
      `SELECT d.device_id, d.user_id, d.addr_version, d.addr_content_hash, d.applied_version, d.loc_version, d.loc_content_hash,
              u.display_name, u.callback, u.location_id, u.recommendations
       FROM json_each(?) j JOIN devices d ON d.device_id = j.value LEFT JOIN users u ON u.id = d.user_id`,
    ).all(JSON.stringify(deviceIds)) as Row[];
    return new Map(
      rows.map((r) => [
        r.device_id as string,
        {
          deviceId: r.device_id as string,
          userId: (r.user_id as number | null) ?? null,
          displayName: str(r.display_name),
          callback: str(r.callback),
          locationId: (r.location_id as number | null) ?? null,
          recommendations: r.recommendations === 1,
          issuedVersion: r.addr_version as number,
          contentHash: str(r.addr_content_hash),
          appliedVersion: (r.applied_version as number | null) ?? null,
          locationsVersion: r.loc_version as number,
          locationsHash: str(r.loc_content_hash),
        },
      ]),
    );
  }

  recordIssuedAddress(deviceId: string, version: number, contentHash: string, signed: string, issuedAt: string): void {
    this.q('UPDATE devices SET addr_version = ?, addr_content_hash = ?, addr_signed = ?, addr_issued_at = ? WHERE device_id = ?')
      .run(version, contentHash, signed, issuedAt, deviceId);
  }

  appliedVersion(deviceId: string): number | null {
    return (this.q('SELECT applied_version FROM devices WHERE device_id = ?').pluck().get(deviceId) as number | null | undefined) ?? null;
  }

  issuedVersion(deviceId: string): number | null {
    return (this.q('SELECT addr_version FROM devices WHERE device_id = ?').pluck().get(deviceId) as number | undefined) ?? null;
  }

  issuedAddress(deviceId: string): { version: number; contentHash: string | null; signed: string | null } | null {
    const r = this.q('SELECT addr_version, addr_content_hash, addr_signed FROM devices WHERE device_id = ?').get(deviceId) as Row | undefined;
    return r ? { version: r.addr_version as number, contentHash: str(r.addr_content_hash), signed: str(r.addr_signed) } : null;
  }

  recordIssuedLocations(deviceId: string, version: number, contentHash: string): void {
    this.q('UPDATE devices SET loc_version = ?, loc_content_hash = ? WHERE device_id = ?').run(version, contentHash, deviceId);
  }

  issuedLocations(deviceId: string): { version: number; contentHash: string | null } | null {
    const r = this.q('SELECT loc_version, loc_content_hash FROM devices WHERE device_id = ?').get(deviceId) as Row | undefined;
    return r ? { version: r.loc_version as number, contentHash: str(r.loc_content_hash) } : null;
  }

  setDeviceStatus(deviceId: string, online: boolean, agentVersion: string | null): void {
    if (!this.deviceExists(deviceId)) this.ensureDevice(deviceId);
    this.q('UPDATE devices SET online = ?, last_seen = ?, agent_version = coalesce(?, agent_version) WHERE device_id = ? AND (online IS NOT ? OR ? = 1)')
      .run(online ? 1 : 0, this.iso(), agentVersion, deviceId, online ? 1 : 0, online ? 1 : 0);
  }

  setDeviceApplied(deviceId: string, version: number, hash: string, appliedAt: string | null): void {
    if (!this.deviceExists(deviceId)) this.ensureDevice(deviceId);
    this.q('UPDATE devices SET applied_version = ?, applied_hash = ?, applied_at = ? WHERE device_id = ? AND (applied_version IS NOT ? OR applied_hash IS NOT ?)')
      .run(version, hash, appliedAt, deviceId, version, hash);
  }

  setDeviceLocationReport(deviceId: string, report: unknown): void {
    this.ensureDevice(deviceId);
    this.q('UPDATE devices SET last_location = ?, last_location_at = ? WHERE device_id = ?').run(JSON.stringify(report), this.iso(), deviceId);
  }

  setDeviceMismatch(deviceId: string, mismatch: unknown): void {
    this.ensureDevice(deviceId);
    this.q('UPDATE devices SET mismatch = ?, mismatch_at = ? WHERE device_id = ?').run(mismatch === null ? null : JSON.stringify(mismatch), mismatch === null ? null : this.iso(), deviceId);
  }

  /**
   * The phone's latest location-disagreement state (null: resolved), as of its event's time.
   * An event older than the one applied last (redelivered, or late from another instance)
   * changes nothing: a late "open" must not mark a phone whose disagreement was resolved.
   * Older is by the phone's monotonic clock when both events carry one from the same boot
   * (a wall clock stepped back a day must not make a new event look late), else by ts.
   * Returns whether it was applied.
   */
  setDeviceDisagreement(deviceId: string, disagreement: unknown, eventTs: string, order: PhoneClock | null = null): boolean {
    this.ensureDevice(deviceId);
    const last = this.q('SELECT disagreement_at AS at, disagreement_boot AS boot, disagreement_mono AS mono FROM devices WHERE device_id = ?').get(deviceId) as {
      at: string | null;
      boot: string | null;
      mono: number | null;
    };
    if (last.at !== null) {
      const sameBoot = order !== null && last.boot === order.boot && last.mono !== null;
      const newer = sameBoot ? order.mono >= last.mono! : eventTs >= last.at;
      if (!newer) return false;
    }
    this.q('UPDATE devices SET disagreement = ?, disagreement_at = ?, disagreement_boot = ?, disagreement_mono = ? WHERE device_id = ?').run(
      disagreement === null ? null : JSON.stringify(disagreement),
      eventTs,
      order?.boot ?? null,
      order?.mono ?? null,
      deviceId,
    );
    return true;
  }

  setDeviceCredential(deviceId: string, mosquittoHash: string): void {
    this.ensureDevice(deviceId);
    this.q('UPDATE devices SET mqtt_hash = ?, mqtt_issued_at = ? WHERE device_id = ?').run(mosquittoHash, this.iso(), deviceId);
  }

  deviceCredential(deviceId: string): string | null {
    return (this.q('SELECT mqtt_hash FROM devices WHERE device_id = ?').pluck().get(deviceId) as string | null | undefined) ?? null;
  }

  deviceCredentials(): { deviceId: string; hash: string }[] {
    return this.q('SELECT device_id AS deviceId, mqtt_hash AS hash FROM devices WHERE mqtt_hash IS NOT NULL ORDER BY device_id').all() as { deviceId: string; hash: string }[];
  }

  deleteDevice(deviceId: string): void {
    this.q('DELETE FROM devices WHERE device_id = ?').run(deviceId);
  }

  // ---- events ----

  /** Stores an event once; false when its id was seen before (a redelivery). */
  insertEvent(e: Omit<StoredEvent, 'receivedAt'>): boolean {
    return (
      this.q('INSERT OR IGNORE INTO events (id, device_id, type, ts, received_at, user_id, location_id, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
        .run(e.id, e.deviceId, e.type, e.ts, this.iso(), e.userId, e.locationId, JSON.stringify(e.data)).changes > 0
    );
  }

  /** Events of these types received since `since` that have no notification row. */
  eventsWithoutNotifications(types: readonly string[], since: string): StoredEvent[] {
    return (
      this.q(
        `SELECT * FROM events e WHERE e.type IN (SELECT value FROM json_each(?)) AND e.received_at >= ?
           AND NOT EXISTS (SELECT 1 FROM notifications n WHERE n.event_id = e.id) ORDER BY e.received_at LIMIT 1000`,
      ).all(JSON.stringify(types), since) as Row[]
    ).map(toEvent);
  }

  event(id: string): StoredEvent | null {
    const r = this.q('SELECT * FROM events WHERE id = ?').get(id) as Row | undefined;
    return r ? toEvent(r) : null;
  }

  events(filter: { types?: readonly string[]; deviceId?: string; limit?: number; before?: string } = {}): StoredEvent[] {
    const clauses: string[] = [];
    const params: Record<string, unknown> = { limit: filter.limit ?? 100 };
    if (filter.types?.length) {
      clauses.push('type IN (SELECT value FROM json_each(@types))');
      params.types = JSON.stringify(filter.types);
    }
    if (filter.deviceId) {
      clauses.push('device_id = @deviceId');
      params.deviceId = filter.deviceId;
    }
    if (filter.before) {
      clauses.push('received_at < @before');
      params.before = filter.before;
    }
    const where = clauses.length ? `WHERE ${clauses.join(' AND ')}` : '';
    return (this.q(`SELECT * FROM events ${where} ORDER BY received_at DESC, rowid DESC LIMIT @limit`).all(params) as Row[]).map(toEvent);
  }

  // ---- notifications ----

  /** Queues a notification once per (event, channel, recipient); false when it existed. */
  addNotification(eventId: string, channel: NotificationChannel, recipient: string): boolean {
    const now = this.iso();
    return (
      this.q('INSERT OR IGNORE INTO notifications (event_id, channel, recipient, next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)')
        .run(eventId, channel, recipient, now, now, now).changes > 0
    );
  }

  /** Claims due notifications for sending (atomic, so several processes never send one twice). */
  claimDueNotifications(limit: number, leaseMs: number, claimant: string | null = null): Notification[] {
    return this.transaction(() => {
      const now = this.iso();
      // A 'sending' row whose lease ran out belongs to a process that died mid-send.
      const rows = this.q(
          `SELECT * FROM notifications WHERE (status IN ('pending', 'retry') AND next_attempt_at <= @now)
             OR (status = 'sending' AND next_attempt_at <= @now) ORDER BY next_attempt_at LIMIT @limit`,
        )
        .all({ now, limit }) as Row[];
      const lease = new Date(this.now().getTime() + leaseMs).toISOString();
      const claim = this.q("UPDATE notifications SET status = 'sending', attempts = attempts + 1, next_attempt_at = ?, updated_at = ?, claimed_by = ? WHERE id = ?");
      for (const r of rows) claim.run(lease, now, claimant, r.id);
      return rows.map((r) => ({ ...toNotification(r), status: 'sending' as const, attempts: (r.attempts as number) + 1 }));
    });
  }

  /**
   * Rows an earlier run of this instance (`<instance>/<other boot>`) left 'sending' when it died:
   * due now, not when their lease runs out. Another instance's rows are left to their lease.
   */
  reclaimNotifications(instance: string, claimant: string): number {
    const prefix = `${instance}/`;
    return this.q(
      "UPDATE notifications SET next_attempt_at = ? WHERE status = 'sending' AND substr(claimed_by, 1, ?) = ? AND claimed_by <> ?",
    ).run(this.iso(), prefix.length, prefix, claimant).changes;
  }

  nextNotificationDue(): string | null {
    return (this.q("SELECT min(next_attempt_at) FROM notifications WHERE status IN ('pending', 'retry', 'sending')").pluck().get() as string | null) ?? null;
  }

  notificationSent(id: number, providerId: string | null): void {
    const now = this.iso();
    this.q("UPDATE notifications SET status = 'sent', sent_at = ?, provider_id = ?, last_error = NULL, updated_at = ? WHERE id = ?").run(now, providerId, now, id);
  }

  notificationFailed(id: number, error: string, retryAt: Date | null): void {
    this.q('UPDATE notifications SET status = ?, last_error = ?, next_attempt_at = ?, updated_at = ? WHERE id = ?')
      .run(retryAt ? 'retry' : 'failed', error.slice(0, 2000), (retryAt ?? this.now()).toISOString(), this.iso(), id);
  }

  notifications(filter: { eventId?: string; status?: NotificationStatus; limit?: number } = {}): Notification[] {
    const clauses: string[] = [];
    if (filter.eventId !== undefined) clauses.push('event_id = @eventId');
    if (filter.status !== undefined) clauses.push('status = @status');
    const where = clauses.length ? `WHERE ${clauses.join(' AND ')}` : '';
    return (
      this.q(`SELECT * FROM notifications ${where} ORDER BY id DESC LIMIT @limit`).all({ ...filter, limit: filter.limit ?? 500 }) as Row[]
    ).map(toNotification);
  }

  // ---- audit ----

  audit(actor: string, action: string, entity: string, entityId: string | number | null, details?: unknown): void {
    this.q('INSERT INTO audit (at, actor, action, entity, entity_id, details) VALUES (?, ?, ?, ?, ?, ?)')
      .run(this.iso(), actor, action, entity, entityId === null ? null : String(entityId), details === undefined ? null : JSON.stringify(details));
  }

  auditLog(filter: { entity?: string; entityId?: string; limit?: number; beforeSeq?: number } = {}): AuditEntry[] {
    const clauses: string[] = [];
    if (filter.entity) clauses.push('entity = @entity');
    if (filter.entityId) clauses.push('entity_id = @entityId');
    if (filter.beforeSeq) clauses.push('seq < @beforeSeq');
    const where = clauses.length ? `WHERE ${clauses.join(' AND ')}` : '';
    return (
      this.q(`SELECT * FROM audit ${where} ORDER BY seq DESC LIMIT @limit`).all({ ...filter, limit: filter.limit ?? 100 }) as Row[]
    ).map((r) => ({
      seq: r.seq as number,
      at: r.at as string,
      actor: r.actor as string,
      action: r.action as string,
      entity: r.entity as string,
      entityId: str(r.entity_id),
      details: json(r.details, null),
    }));
  }

  // ---- jobs ----

  createJob(kind: string, actor: string, params: unknown, total: number): number {
    return Number(
      this.q("INSERT INTO jobs (kind, status, actor, params, total, created_at) VALUES (?, 'queued', ?, ?, ?, ?)")
        .run(kind, actor, JSON.stringify(params), total, this.iso()).lastInsertRowid,
    );
  }

  job(id: number): Job | null {
    const r = this.q('SELECT * FROM jobs WHERE id = ?').get(id) as Row | undefined;
    return r ? toJob(r) : null;
  }

  jobs(limit = 50): Job[] {
    return (this.q('SELECT * FROM jobs ORDER BY id DESC LIMIT ?').all(limit) as Row[]).map(toJob);
  }

  /** Takes the oldest queued job (atomic across processes). */
  claimJob(): Job | null {
    return this.transaction(() => {
      const r = this.q("SELECT * FROM jobs WHERE status = 'queued' ORDER BY id LIMIT 1").get() as Row | undefined;
      if (!r) return null;
      this.q("UPDATE jobs SET status = 'running', started_at = ? WHERE id = ?").run(this.iso(), r.id);
      return { ...toJob(r), status: 'running' as const };
    });
  }

  /** Jobs a stopped process left running go back to the queue: each job is idempotent. */
  requeueRunningJobs(): number {
    return this.q("UPDATE jobs SET status = 'queued', done = 0 WHERE status = 'running'").run().changes;
  }

  jobProgress(id: number, done: number): void {
    this.q('UPDATE jobs SET done = ? WHERE id = ?').run(done, id);
  }

  finishJob(id: number, result: unknown, error: string | null): void {
    this.q('UPDATE jobs SET status = ?, result = ?, error = ?, finished_at = ? WHERE id = ?')
      .run(error ? 'failed' : 'done', result === undefined ? null : JSON.stringify(result), error, this.iso(), id);
  }

  // ---- CSV uploads ----

  saveCsvUpload(id: string, actor: string, rows: number, changes: unknown): void {
    this.q('INSERT INTO csv_uploads (id, created_at, actor, rows, changes) VALUES (?, ?, ?, ?, ?)').run(id, this.iso(), actor, rows, JSON.stringify(changes));
  }

  csvUpload(id: string): { id: string; createdAt: string; rows: number; changes: unknown; jobId: number | null } | null {
    const r = this.q('SELECT * FROM csv_uploads WHERE id = ?').get(id) as Row | undefined;
    return r ? { id: r.id as string, createdAt: r.created_at as string, rows: r.rows as number, changes: json(r.changes, []), jobId: (r.job_id as number | null) ?? null } : null;
  }

  markCsvApplied(id: string, jobId: number): boolean {
    return this.q('UPDATE csv_uploads SET job_id = ? WHERE id = ? AND job_id IS NULL').run(jobId, id).changes > 0;
  }

  // ---- API tokens ----

  createToken(name: string, token: string): number {
    return Number(this.q('INSERT INTO api_tokens (name, hash, created_at) VALUES (?, ?, ?)').run(name, tokenHash(token), this.iso()).lastInsertRowid);
  }

  /** The token's name when it is valid and not revoked. */
  verifyToken(token: string): { id: number; name: string } | null {
    const r = this.q('SELECT id, name, last_used_at FROM api_tokens WHERE hash = ? AND revoked_at IS NULL').get(tokenHash(token)) as Row | undefined;
    if (!r) return null;
    // Once a minute at most: reading the API must not turn into a write per request.
    const last = r.last_used_at ? Date.parse(r.last_used_at as string) : 0;
    if (this.now().getTime() - last > 60_000) this.q('UPDATE api_tokens SET last_used_at = ? WHERE id = ?').run(this.iso(), r.id);
    return { id: r.id as number, name: r.name as string };
  }

  tokens(): ApiToken[] {
    return (this.q('SELECT * FROM api_tokens ORDER BY id').all() as Row[]).map((r) => ({
      id: r.id as number,
      name: r.name as string,
      createdAt: r.created_at as string,
      lastUsedAt: str(r.last_used_at),
      revokedAt: str(r.revoked_at),
    }));
  }

  revokeToken(id: number): boolean {
    return this.q('UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL').run(this.iso(), id).changes > 0;
  }

  // ---- portal sessions (only the hash of a session id is stored) ----

  createSession(id: string, tokenId: number, absoluteMs: number): { expiresAt: string } {
    const now = this.now();
    const expiresAt = new Date(now.getTime() + absoluteMs).toISOString();
    this.q('INSERT INTO admin_sessions (id_hash, token_id, created_at, last_used_at, expires_at) VALUES (?, ?, ?, ?, ?)').run(tokenHash(id), tokenId, now.toISOString(), now.toISOString(), expiresAt);
    return { expiresAt };
  }

  /**
   * The session's token when the session is live: not revoked, before its absolute expiry,
   * used within idleMs, and its token not revoked. A live session's last use moves to now.
   */
  useSession(id: string, idleMs: number): { id: number; name: string } | null {
    const now = this.now();
    const r = this.q(
      `SELECT s.id_hash, s.last_used_at, s.expires_at, t.id, t.name FROM admin_sessions s JOIN api_tokens t ON t.id = s.token_id
       WHERE s.id_hash = ? AND s.revoked_at IS NULL AND t.revoked_at IS NULL`,
    ).get(tokenHash(id)) as Row | undefined;
    if (!r) return null;
    if (now.getTime() >= Date.parse(r.expires_at as string) || now.getTime() - Date.parse(r.last_used_at as string) > idleMs) return null;
    // At most every 10 s: a page's burst of requests is not a burst of writes.
    if (now.getTime() - Date.parse(r.last_used_at as string) > 10_000) this.q('UPDATE admin_sessions SET last_used_at = ? WHERE id_hash = ?').run(now.toISOString(), r.id_hash);
    return { id: r.id as number, name: r.name as string };
  }

  revokeSession(id: string): boolean {
    return this.q('UPDATE admin_sessions SET revoked_at = ? WHERE id_hash = ? AND revoked_at IS NULL').run(this.iso(), tokenHash(id)).changes > 0;
  }

  /** Forgets sessions that ended more than a day ago. */
  pruneSessions(): number {
    const cutoff = new Date(this.now().getTime() - 24 * 3600_000).toISOString();
    return this.q('DELETE FROM admin_sessions WHERE expires_at < ? OR revoked_at < ?').run(cutoff, cutoff).changes;
  }

  // ---- server instances' broker users, shared secrets ----

  setServerBrokerUser(username: string, hash: string): void {
    this.q('INSERT INTO broker_server_users (username, hash, created_at) VALUES (?, ?, ?) ON CONFLICT (username) DO UPDATE SET hash = excluded.hash').run(username, hash, this.iso());
  }

  serverBrokerUsers(): { username: string; hash: string }[] {
    return this.q('SELECT username, hash FROM broker_server_users ORDER BY username').all() as { username: string; hash: string }[];
  }

  /** The named secret, created with make() by whichever instance asks first. */
  sharedSecret(name: string, make: () => string): string {
    this.q('INSERT OR IGNORE INTO server_secrets (name, value, created_at) VALUES (?, ?, ?)').run(name, make(), this.iso());
    return this.q('SELECT value FROM server_secrets WHERE name = ?').pluck().get(name) as string;
  }
}
