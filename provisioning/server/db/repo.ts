// All SQL of the server, behind one facade: Repo holds the store (SQLite, open.ts, or
// PostgreSQL, pg-sql.ts, behind the Sql interface of sql.ts) and hands each call to the
// module of its aggregate (account.ts, devices.ts, ...). Every method answers with a
// promise; transaction() spans whatever is awaited inside it, in any module. Rows
// become typed objects through the mappers of rows.ts.
// Every query of an owned table belongs to the account of the running context (scope.ts):
// inAccount() sets it; the few methods that span every account say so.
// Over 400 lines: one short forwarding method per query of every aggregate, so callers
// see one typed facade.
import type { LocationPayload, PhoneClock } from '../../protocol/messages.js';
import type { LocationInput, UserRecordInput } from '../validation.js';
import { AccountStore, type AccountSummary, type AccountUpdate } from './account.js';
import { AccountScope } from './scope.js';
import { AuditStore } from './audit.js';
import { DeviceStore, type PhoneReport } from './devices.js';
import { EventStore } from './events.js';
import { JobStore } from './jobs.js';
import { LocationStore } from './locations.js';
import { NotificationStore } from './notifications.js';
import { type ServerDbOptions, SqliteSql } from './open.js';
import type { Sql } from './sql.js';
import { ServerSharedStore } from './shared.js';
import { TokenStore, type TokenIdentity } from './tokens.js';
import { UserStore } from './users.js';
import { UrgentWork } from '../urgent-work.js';
import type {
  Account,
  ApiToken,
  AuditEntry,
  CsvUpload,
  CsvUserRow,
  Device,
  Job,
  Location,
  Notification,
  NotificationChannel,
  NotificationSettings,
  NotificationStatus,
  NoticeAck,
  PushContext,
  StoredEvent,
  User,
} from './types.js';

export type * from './types.js';
export { SERVER_DB_FILE } from './open.js';
export { tokenHash, type TokenIdentity } from './tokens.js';
export { DEFAULT_ACCOUNT, ACCOUNT_ID } from './scope.js';
export type { AccountSummary } from './account.js';
export type { PhoneReport } from './devices.js';
export type { ServerDbOptions as RepoOptions } from './open.js';

export class Repo {
  /** Where the data is: the SQLite file, or the PostgreSQL URL without its password. */
  readonly path: string;
  private readonly s: Sql;
  private readonly scope = new AccountScope();
  /** The urgent() work under way: bulk work that can wait watches it (Pusher's locations lists). */
  readonly urgentWork = new UrgentWork();
  /** The aggregates, one module each, sharing this.s. */
  private readonly a: {
    account: AccountStore;
    locations: LocationStore;
    users: UserStore;
    devices: DeviceStore;
    events: EventStore;
    notifications: NotificationStore;
    audit: AuditStore;
    jobs: JobStore;
    tokens: TokenStore;
    shared: ServerSharedStore;
  };

  /** SQLite in opts.dataDir (opened and migrated now), or a store already opened (openStore()). */
  constructor(opts: ServerDbOptions | Sql) {
    this.s = 'dialect' in opts ? opts : new SqliteSql(opts);
    this.path = this.s.location;
    const acct = () => this.scope.current();
    this.a = {
      account: new AccountStore(this.s, acct),
      locations: new LocationStore(this.s, acct),
      users: new UserStore(this.s, acct),
      devices: new DeviceStore(this.s, acct),
      events: new EventStore(this.s, acct),
      notifications: new NotificationStore(this.s, acct),
      audit: new AuditStore(this.s, acct),
      jobs: new JobStore(this.s, acct),
      tokens: new TokenStore(this.s, acct),
      shared: new ServerSharedStore(this.s),
    };
  }

  /** Which store: 'sqlite' or 'postgres'. */
  get dialect(): Sql['dialect'] {
    return this.s.dialect;
  }

  close(): Promise<void> {
    return this.s.close();
  }

  /**
   * Runs fn in one transaction: every repository call awaited inside it (by fn or what it
   * calls) is part of it. Only database work belongs inside: a transaction holds the SQLite
   * write lock, or a PostgreSQL connection and its row locks, until fn settles.
   */
  transaction<T>(fn: () => Promise<T>): Promise<T> {
    return this.s.transaction(fn);
  }

  /** Runs fn outside any transaction: for background work started by a caller that may be in one. */
  detached<T>(fn: () => T): T {
    return this.s.detached(fn);
  }

  /**
   * Runs fn ahead of bulk traffic: 911 events and their notifications. Its statements take the
   * store's urgent lane (Sql.urgent), and while it runs urgentWork is busy.
   */
  urgent<T>(fn: () => Promise<T>): Promise<T> {
    return this.urgentWork.run(() => this.s.urgent(fn));
  }

  schemaVersion(): Promise<number> {
    return this.s.schemaVersion();
  }

  /** Runs fn, and every repository call it awaits, in the account. */
  inAccount<T>(accountId: string, fn: () => T): T {
    return this.scope.run(accountId, fn);
  }

  /** The account of the running context. */
  currentAccount(): string {
    return this.scope.current();
  }

  // accounts (the provider's view)
  createAccount(id: string, name: string): Promise<boolean> {
    return this.a.account.createAccount(id, name);
  }
  accounts(): Promise<AccountSummary[]> {
    return this.a.account.accounts();
  }
  accountExists(id: string): Promise<boolean> {
    return this.a.account.accountExists(id);
  }
  // account
  account(): Promise<Account> {
    return this.a.account.account();
  }
  updateAccount(a: AccountUpdate): Promise<void> {
    return this.a.account.updateAccount(a);
  }
  setE911(enabled: boolean): Promise<void> {
    return this.a.account.setE911(enabled);
  }
  notificationSettings(): Promise<NotificationSettings> {
    return this.a.account.notificationSettings();
  }
  setNotificationSettings(s: NotificationSettings): Promise<void> {
    return this.a.account.setNotificationSettings(s);
  }

  // locations
  locations(): Promise<Location[]> {
    return this.a.locations.locations();
  }
  location(id: number): Promise<Location | null> {
    return this.a.locations.location(id);
  }
  ipGroupsOfLocations() {
    return this.a.locations.ipGroupsOfLocations();
  }
  locationByCode(code: string): Promise<Location | null> {
    return this.a.locations.locationByCode(code);
  }
  insertLocation(l: LocationInput): Promise<number> {
    return this.a.locations.insertLocation(l);
  }
  updateLocation(id: number, l: LocationInput): Promise<void> {
    return this.a.locations.updateLocation(id, l);
  }
  deleteLocation(id: number): Promise<void> {
    return this.a.locations.deleteLocation(id);
  }

  // users
  users(filter: { locationId?: number; limit?: number; offset?: number } = {}): Promise<User[]> {
    return this.a.users.users(filter);
  }
  mobilesAt(locationId: number): Promise<string[]> {
    return this.a.users.mobilesAt(locationId);
  }
  userCount(filter: { locationId?: number } = {}): Promise<number> {
    return this.a.users.userCount(filter);
  }
  user(id: number): Promise<User | null> {
    return this.a.users.user(id);
  }
  userByUsername(username: string): Promise<User | null> {
    return this.a.users.userByUsername(username);
  }
  userIds(filter: { locationId?: number } = {}): Promise<number[]> {
    return this.a.users.userIds(filter);
  }
  existingUserIds(ids: readonly number[]): Promise<Set<number>> {
    return this.a.users.existingUserIds(ids);
  }
  insertUser(u: UserRecordInput): Promise<number> {
    return this.a.users.insertUser(u);
  }
  updateUser(id: number, u: UserRecordInput): Promise<void> {
    return this.a.users.updateUser(id, u);
  }
  setUserLocation(id: number, locationId: number): Promise<void> {
    return this.a.users.setUserLocation(id, locationId);
  }
  setUserEmails(id: number, emails: readonly string[]): Promise<boolean> {
    return this.a.users.setUserEmails(id, emails);
  }
  userEmails(id: number): Promise<string[] | null> {
    return this.a.users.userEmails(id);
  }
  csvUserRows(): Promise<CsvUserRow[]> {
    return this.a.users.csvUserRows();
  }
  userEmailIndex(): Promise<{ byId: Map<number, string>; byName: Map<string, number> }> {
    return this.a.users.userEmailIndex();
  }
  deleteUser(id: number): Promise<void> {
    return this.a.users.deleteUser(id);
  }

  // devices
  devices(filter: { userId?: number } = {}): Promise<Device[]> {
    return this.a.devices.devices(filter);
  }
  device(deviceId: string): Promise<Device | null> {
    return this.a.devices.device(deviceId);
  }
  ensureDevice(deviceId: string): Promise<boolean> {
    return this.a.devices.ensureDevice(deviceId);
  }
  /** Every account: the account a phone belongs to (null: unknown phone). */
  accountOfDevice(deviceId: string): Promise<string | null> {
    return this.a.devices.accountOfDevice(deviceId);
  }
  /** Phones' reports, a batch in a few statements, of every account (DeviceStore.recordReports). */
  recordReports(reports: readonly PhoneReport[]): Promise<Map<string, string>> {
    return this.a.devices.recordReports(reports);
  }
  /** What was issued last to each of these phones, of every account. */
  issuedSignedAddresses(deviceIds: readonly string[]): Promise<Map<string, string>> {
    return this.a.devices.issuedSignedAddresses(deviceIds);
  }

  issuedVersions(deviceIds: readonly string[]): Promise<Map<string, { address: number; locations: number; applied: number | null }>> {
    return this.a.devices.issuedVersions(deviceIds);
  }
  /** Every account: the account of each known phone among these. */
  accountsOfDevices(deviceIds: readonly string[]): Promise<Map<string, string>> {
    return this.a.devices.accountsOfDevices(deviceIds);
  }
  foreignDeviceIds(deviceIds: readonly string[]): Promise<string[]> {
    return this.a.devices.foreignDeviceIds(deviceIds);
  }
  /** Every account: assigned phones with their account. */
  allAssignedDevices(): Promise<{ deviceId: string; accountId: string }[]> {
    return this.a.devices.allAssignedDevices();
  }
  setUserDevices(userId: number, deviceIds: readonly string[]): Promise<void> {
    return this.a.devices.setUserDevices(userId, deviceIds);
  }
  deviceOwners(deviceIds: readonly string[], exceptUserId: number | null): Promise<{ deviceId: string; userId: number }[]> {
    return this.a.devices.deviceOwners(deviceIds, exceptUserId);
  }
  deviceIdsOfUsers(userIds: readonly number[]): Promise<string[]> {
    return this.a.devices.deviceIdsOfUsers(userIds);
  }
  deviceIdsAtLocation(locationId: number): Promise<string[]> {
    return this.a.devices.deviceIdsAtLocation(locationId);
  }
  assignedDeviceIds(): Promise<string[]> {
    return this.a.devices.assignedDeviceIds();
  }
  /** The device, its user and that user's location, for building its documents. */
  async deviceContext(deviceId: string): Promise<{ device: Device; user: User | null; location: Location | null } | null> {
    const device = await this.a.devices.device(deviceId);
    if (!device) return null;
    const user = device.userId !== null ? await this.a.users.user(device.userId) : null;
    const location = user?.locationId ? await this.a.locations.location(user.locationId) : null;
    return { device, user, location };
  }
  pushContexts(deviceIds: readonly string[]): Promise<Map<string, PushContext>> {
    return this.a.devices.pushContexts(deviceIds);
  }
  /** A push chunk's issued addresses and locations documents, one statement each; returns the phones recorded. */
  recordIssuedMany(
    addresses: readonly { deviceId: string; version: number; contentHash: string; signed: string; issuedAt: string }[],
    locations: readonly { deviceId: string; version: number; contentHash: string }[],
  ): Promise<{ addresses: Set<string>; locations: Set<string> }> {
    return this.a.devices.recordIssuedMany(addresses, locations);
  }
  recordIssuedAddress(deviceId: string, version: number, contentHash: string, signed: string, issuedAt: string): Promise<void> {
    return this.a.devices.recordIssuedAddress(deviceId, version, contentHash, signed, issuedAt);
  }
  issuedAddress(deviceId: string): Promise<{ version: number; contentHash: string | null; signed: string | null } | null> {
    return this.a.devices.issuedAddress(deviceId);
  }
  recordIssuedLocations(deviceId: string, version: number, contentHash: string): Promise<void> {
    return this.a.devices.recordIssuedLocations(deviceId, version, contentHash);
  }
  issuedLocations(deviceId: string): Promise<{ version: number; contentHash: string | null } | null> {
    return this.a.devices.issuedLocations(deviceId);
  }
  setDeviceStatus(deviceId: string, online: boolean, agentVersion: string | null): Promise<void> {
    return this.a.devices.setDeviceStatus(deviceId, online, agentVersion);
  }
  setDeviceApplied(deviceId: string, version: number, hash: string, appliedAt: string | null, floor = 0): Promise<void> {
    return this.a.devices.setDeviceApplied(deviceId, version, hash, appliedAt, floor);
  }
  setDeviceLocationReport(deviceId: string, report: LocationPayload): Promise<void> {
    return this.a.devices.setDeviceLocationReport(deviceId, report);
  }
  setDeviceMismatch(deviceId: string, mismatch: unknown): Promise<void> {
    return this.a.devices.setDeviceMismatch(deviceId, mismatch);
  }
  setDeviceDisagreement(deviceId: string, disagreement: unknown, eventTs: string, order: PhoneClock | null = null): Promise<boolean> {
    return this.a.devices.setDeviceDisagreement(deviceId, disagreement, eventTs, order);
  }
  setNoticeAck(deviceId: string, ack: NoticeAck): Promise<boolean> {
    return this.a.devices.setNoticeAck(deviceId, ack);
  }
  setDeviceCredential(deviceId: string, mosquittoHash: string, bcrypt: string | null = null): Promise<void> {
    return this.a.devices.setDeviceCredential(deviceId, mosquittoHash, bcrypt);
  }
  deviceCredential(deviceId: string): Promise<string | null> {
    return this.a.devices.deviceCredential(deviceId);
  }
  deviceCredentials(): Promise<{ deviceId: string; hash: string; bcrypt: string | null }[]> {
    return this.a.devices.deviceCredentials();
  }
  touchDevice(deviceId: string): Promise<void> {
    return this.a.devices.touchDevice(deviceId);
  }
  markSilentOffline(cutoffIso: string): Promise<string[]> {
    return this.transaction(() => this.a.devices.markSilentOffline(cutoffIso));
  }
  claimResends(nowMs: number, baseMs: number): Promise<{ deviceId: string; version: number; signed: string }[]> {
    return this.transaction(() => this.a.devices.claimResends(nowMs, baseMs));
  }
  deleteDevice(deviceId: string): Promise<void> {
    return this.a.devices.deleteDevice(deviceId);
  }

  // events
  insertEvent(e: Omit<StoredEvent, 'receivedAt'>): Promise<boolean> {
    return this.a.events.insertEvent(e);
  }
  eventsWithoutNotifications(types: readonly string[], since: string): Promise<(StoredEvent & { accountId: string })[]> {
    return this.a.events.eventsWithoutNotifications(types, since);
  }
  event(id: string): Promise<StoredEvent | null> {
    return this.a.events.event(id);
  }
  events(filter: { types?: readonly string[]; deviceId?: string; limit?: number; before?: string } = {}): Promise<StoredEvent[]> {
    return this.a.events.events(filter);
  }

  // notifications
  addNotification(eventId: string, channel: NotificationChannel, recipient: string): Promise<boolean> {
    return this.a.notifications.addNotification(eventId, channel, recipient);
  }
  claimDueNotifications(limit: number, leaseMs: number, claimant: string | null = null): Promise<(Notification & { accountId: string })[]> {
    return this.a.notifications.claimDueNotifications(limit, leaseMs, claimant);
  }
  reclaimNotifications(instance: string, claimant: string): Promise<number> {
    return this.a.notifications.reclaimNotifications(instance, claimant);
  }
  nextNotificationDue(): Promise<string | null> {
    return this.a.notifications.nextNotificationDue();
  }
  notificationSent(id: number, providerId: string | null): Promise<void> {
    return this.a.notifications.notificationSent(id, providerId);
  }
  notificationAcknowledged(id: number, providerId: string, ack: { at: string; method: string; plays: number }): Promise<void> {
    return this.a.notifications.notificationAcknowledged(id, providerId, ack);
  }
  notificationUnacknowledged(id: number, providerId: string, plays: number, why: string): Promise<void> {
    return this.a.notifications.notificationUnacknowledged(id, providerId, plays, why);
  }
  extendNotificationLease(id: number, until: Date): Promise<void> {
    return this.a.notifications.extendNotificationLease(id, until);
  }
  notificationFailed(id: number, error: string, retryAt: Date | null): Promise<void> {
    return this.a.notifications.notificationFailed(id, error, retryAt);
  }
  notifications(filter: { eventId?: string; status?: NotificationStatus; limit?: number } = {}): Promise<Notification[]> {
    return this.a.notifications.notifications(filter);
  }

  // audit
  audit(actor: string, action: string, entity: string, entityId: string | number | null, details?: unknown): Promise<void> {
    return this.a.audit.audit(actor, action, entity, entityId, details);
  }
  auditLog(filter: { entity?: string; entityId?: string; limit?: number; beforeSeq?: number } = {}): Promise<AuditEntry[]> {
    return this.a.audit.auditLog(filter);
  }

  // jobs
  createJob(kind: string, actor: string, params: unknown, total: number): Promise<number> {
    return this.a.jobs.createJob(kind, actor, params, total);
  }
  job(id: number): Promise<Job | null> {
    return this.a.jobs.job(id);
  }
  jobs(limit = 50): Promise<Job[]> {
    return this.a.jobs.jobs(limit);
  }
  claimJob(): Promise<(Job & { accountId: string }) | null> {
    return this.a.jobs.claimJob();
  }
  requeueRunningJobs(): Promise<number> {
    return this.a.jobs.requeueRunningJobs();
  }
  jobProgress(id: number, done: number): Promise<void> {
    return this.a.jobs.jobProgress(id, done);
  }
  finishJob(id: number, result: unknown, error: string | null): Promise<void> {
    return this.a.jobs.finishJob(id, result, error);
  }

  // CSV uploads
  saveCsvUpload(id: string, actor: string, rows: number, changes: unknown, errorCount = 0): Promise<void> {
    return this.a.jobs.saveCsvUpload(id, actor, rows, changes, errorCount);
  }
  csvUpload(id: string): Promise<CsvUpload | null> {
    return this.a.jobs.csvUpload(id);
  }
  markCsvApplied(id: string, jobId: number): Promise<boolean> {
    return this.a.jobs.markCsvApplied(id, jobId);
  }

  // API tokens
  createToken(name: string, token: string, opts: { provider?: boolean } = {}): Promise<number> {
    return this.a.tokens.createToken(name, token, opts);
  }
  verifyToken(token: string): Promise<TokenIdentity | null> {
    return this.a.tokens.verifyToken(token);
  }
  tokens(): Promise<ApiToken[]> {
    return this.a.tokens.tokens();
  }
  revokeToken(id: number): Promise<boolean> {
    return this.a.tokens.revokeToken(id);
  }

  // portal sessions (only the hash of a session id is stored)
  createSession(id: string, tokenId: number, absoluteMs: number): Promise<{ expiresAt: string }> {
    return this.a.tokens.createSession(id, tokenId, absoluteMs);
  }
  useSession(id: string, idleMs: number): Promise<TokenIdentity | null> {
    return this.a.tokens.useSession(id, idleMs);
  }
  showAccount(sessionId: string, accountId: string | null): Promise<boolean> {
    return this.a.tokens.showAccount(sessionId, accountId);
  }
  revokeSession(id: string): Promise<boolean> {
    return this.a.tokens.revokeSession(id);
  }
  pruneSessions(): Promise<number> {
    return this.a.tokens.pruneSessions();
  }

  // server instances' broker users, shared secrets
  setServerBrokerUser(username: string, hash: string, bcrypt: string | null = null): Promise<void> {
    return this.a.shared.setServerBrokerUser(username, hash, bcrypt);
  }
  serverBrokerUsers(): Promise<{ username: string; hash: string; bcrypt: string | null }[]> {
    return this.a.shared.serverBrokerUsers();
  }
  sharedSecret(name: string, make: () => string): Promise<string> {
    return this.a.shared.sharedSecret(name, make);
  }
}
