// All SQL of the server, behind one facade: Repo opens the database (open.ts) and
// hands each call to the module of its aggregate (account.ts, devices.ts, ...), all on
// one connection so that transaction() spans any of them. Rows become typed objects
// through the mappers of rows.ts. Synchronous (better-sqlite3); callers group writes
// with transaction().
import type { LocationPayload, PhoneClock } from '../../protocol/messages.js';
import type { LocationInput, UserRecordInput } from '../validation.js';
import { AccountStore, type AccountUpdate } from './account.js';
import { AuditStore } from './audit.js';
import { DeviceStore } from './devices.js';
import { EventStore } from './events.js';
import { JobStore } from './jobs.js';
import { LocationStore } from './locations.js';
import { NotificationStore } from './notifications.js';
import { openServerDb, type ServerDb, type ServerDbOptions } from './open.js';
import { ServerSharedStore } from './shared.js';
import { TokenStore } from './tokens.js';
import { UserStore } from './users.js';
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
export { tokenHash } from './tokens.js';
export type { ServerDbOptions as RepoOptions } from './open.js';

export class Repo {
  readonly path: string;
  private readonly s: ServerDb;
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

  constructor(opts: ServerDbOptions) {
    this.s = openServerDb(opts);
    this.path = this.s.path;
    this.a = {
      account: new AccountStore(this.s),
      locations: new LocationStore(this.s),
      users: new UserStore(this.s),
      devices: new DeviceStore(this.s),
      events: new EventStore(this.s),
      notifications: new NotificationStore(this.s),
      audit: new AuditStore(this.s),
      jobs: new JobStore(this.s),
      tokens: new TokenStore(this.s),
      shared: new ServerSharedStore(this.s),
    };
  }

  close(): void {
    if (this.s.db.open) this.s.db.close();
  }

  transaction<T>(fn: () => T): T {
    return this.s.transaction(fn);
  }

  schemaVersion(): number {
    return this.s.db.pragma('user_version', { simple: true }) as number;
  }
  // account
  account(): Account {
    return this.a.account.account();
  }
  updateAccount(a: AccountUpdate): void {
    this.a.account.updateAccount(a);
  }
  setE911(enabled: boolean): void {
    this.a.account.setE911(enabled);
  }
  notificationSettings(): NotificationSettings {
    return this.a.account.notificationSettings();
  }
  setNotificationSettings(s: NotificationSettings): void {
    this.a.account.setNotificationSettings(s);
  }

  // locations
  locations(): Location[] {
    return this.a.locations.locations();
  }
  location(id: number): Location | null {
    return this.a.locations.location(id);
  }
  ipGroupsOfLocations() {
    return this.a.locations.ipGroupsOfLocations();
  }
  locationByCode(code: string): Location | null {
    return this.a.locations.locationByCode(code);
  }
  insertLocation(l: LocationInput): number {
    return this.a.locations.insertLocation(l);
  }
  updateLocation(id: number, l: LocationInput): void {
    this.a.locations.updateLocation(id, l);
  }
  deleteLocation(id: number): void {
    this.a.locations.deleteLocation(id);
  }

  // users
  users(filter: { locationId?: number; limit?: number; offset?: number } = {}): User[] {
    return this.a.users.users(filter);
  }
  mobilesAt(locationId: number): string[] {
    return this.a.users.mobilesAt(locationId);
  }
  userCount(filter: { locationId?: number } = {}): number {
    return this.a.users.userCount(filter);
  }
  user(id: number): User | null {
    return this.a.users.user(id);
  }
  userByUsername(username: string): User | null {
    return this.a.users.userByUsername(username);
  }
  userIds(filter: { locationId?: number } = {}): number[] {
    return this.a.users.userIds(filter);
  }
  existingUserIds(ids: readonly number[]): Set<number> {
    return this.a.users.existingUserIds(ids);
  }
  insertUser(u: UserRecordInput): number {
    return this.a.users.insertUser(u);
  }
  updateUser(id: number, u: UserRecordInput): void {
    this.a.users.updateUser(id, u);
  }
  setUserLocation(id: number, locationId: number): void {
    this.a.users.setUserLocation(id, locationId);
  }
  setUserEmails(id: number, emails: readonly string[]): boolean {
    return this.a.users.setUserEmails(id, emails);
  }
  userEmails(id: number): string[] | null {
    return this.a.users.userEmails(id);
  }
  csvUserRows(): CsvUserRow[] {
    return this.a.users.csvUserRows();
  }
  userEmailIndex(): { byId: Map<number, string>; byName: Map<string, number> } {
    return this.a.users.userEmailIndex();
  }
  deleteUser(id: number): void {
    this.a.users.deleteUser(id);
  }

  // devices
  devices(filter: { userId?: number } = {}): Device[] {
    return this.a.devices.devices(filter);
  }
  device(deviceId: string): Device | null {
    return this.a.devices.device(deviceId);
  }
  ensureDevice(deviceId: string): boolean {
    return this.a.devices.ensureDevice(deviceId);
  }
  setUserDevices(userId: number, deviceIds: readonly string[]): void {
    this.a.devices.setUserDevices(userId, deviceIds);
  }
  deviceOwners(deviceIds: readonly string[], exceptUserId: number | null): { deviceId: string; userId: number }[] {
    return this.a.devices.deviceOwners(deviceIds, exceptUserId);
  }
  deviceIdsOfUsers(userIds: readonly number[]): string[] {
    return this.a.devices.deviceIdsOfUsers(userIds);
  }
  deviceIdsAtLocation(locationId: number): string[] {
    return this.a.devices.deviceIdsAtLocation(locationId);
  }
  assignedDeviceIds(): string[] {
    return this.a.devices.assignedDeviceIds();
  }
  /** The device, its user and that user's location, for building its documents. */
  deviceContext(deviceId: string): { device: Device; user: User | null; location: Location | null } | null {
    const device = this.a.devices.device(deviceId);
    if (!device) return null;
    const user = device.userId !== null ? this.a.users.user(device.userId) : null;
    const location = user?.locationId ? this.a.locations.location(user.locationId) : null;
    return { device, user, location };
  }
  pushContexts(deviceIds: readonly string[]): Map<string, PushContext> {
    return this.a.devices.pushContexts(deviceIds);
  }
  recordIssuedAddress(deviceId: string, version: number, contentHash: string, signed: string, issuedAt: string): void {
    this.a.devices.recordIssuedAddress(deviceId, version, contentHash, signed, issuedAt);
  }
  appliedVersion(deviceId: string): number | null {
    return this.a.devices.appliedVersion(deviceId);
  }
  issuedVersion(deviceId: string): number | null {
    return this.a.devices.issuedVersion(deviceId);
  }
  issuedAddress(deviceId: string): { version: number; contentHash: string | null; signed: string | null } | null {
    return this.a.devices.issuedAddress(deviceId);
  }
  recordIssuedLocations(deviceId: string, version: number, contentHash: string): void {
    this.a.devices.recordIssuedLocations(deviceId, version, contentHash);
  }
  issuedLocations(deviceId: string): { version: number; contentHash: string | null } | null {
    return this.a.devices.issuedLocations(deviceId);
  }
  setDeviceStatus(deviceId: string, online: boolean, agentVersion: string | null): void {
    this.a.devices.setDeviceStatus(deviceId, online, agentVersion);
  }
  setDeviceApplied(deviceId: string, version: number, hash: string, appliedAt: string | null): void {
    this.a.devices.setDeviceApplied(deviceId, version, hash, appliedAt);
  }
  setDeviceLocationReport(deviceId: string, report: LocationPayload): void {
    this.a.devices.setDeviceLocationReport(deviceId, report);
  }
  setDeviceMismatch(deviceId: string, mismatch: unknown): void {
    this.a.devices.setDeviceMismatch(deviceId, mismatch);
  }
  setDeviceDisagreement(deviceId: string, disagreement: unknown, eventTs: string, order: PhoneClock | null = null): boolean {
    return this.a.devices.setDeviceDisagreement(deviceId, disagreement, eventTs, order);
  }
  setNoticeAck(deviceId: string, ack: NoticeAck): boolean {
    return this.a.devices.setNoticeAck(deviceId, ack);
  }
  setDeviceCredential(deviceId: string, mosquittoHash: string, bcrypt: string | null = null): void {
    this.a.devices.setDeviceCredential(deviceId, mosquittoHash, bcrypt);
  }
  deviceCredential(deviceId: string): string | null {
    return this.a.devices.deviceCredential(deviceId);
  }
  deviceCredentials(): { deviceId: string; hash: string; bcrypt: string | null }[] {
    return this.a.devices.deviceCredentials();
  }
  touchDevice(deviceId: string): void {
    this.a.devices.touchDevice(deviceId);
  }
  markSilentOffline(cutoffIso: string): string[] {
    return this.transaction(() => this.a.devices.markSilentOffline(cutoffIso));
  }
  deleteDevice(deviceId: string): void {
    this.a.devices.deleteDevice(deviceId);
  }

  // events
  insertEvent(e: Omit<StoredEvent, 'receivedAt'>): boolean {
    return this.a.events.insertEvent(e);
  }
  eventsWithoutNotifications(types: readonly string[], since: string): StoredEvent[] {
    return this.a.events.eventsWithoutNotifications(types, since);
  }
  event(id: string): StoredEvent | null {
    return this.a.events.event(id);
  }
  events(filter: { types?: readonly string[]; deviceId?: string; limit?: number; before?: string } = {}): StoredEvent[] {
    return this.a.events.events(filter);
  }

  // notifications
  addNotification(eventId: string, channel: NotificationChannel, recipient: string): boolean {
    return this.a.notifications.addNotification(eventId, channel, recipient);
  }
  claimDueNotifications(limit: number, leaseMs: number, claimant: string | null = null): Notification[] {
    return this.a.notifications.claimDueNotifications(limit, leaseMs, claimant);
  }
  reclaimNotifications(instance: string, claimant: string): number {
    return this.a.notifications.reclaimNotifications(instance, claimant);
  }
  nextNotificationDue(): string | null {
    return this.a.notifications.nextNotificationDue();
  }
  notificationSent(id: number, providerId: string | null): void {
    this.a.notifications.notificationSent(id, providerId);
  }
  notificationAcknowledged(id: number, providerId: string, ack: { at: string; method: string; plays: number }): void {
    this.a.notifications.notificationAcknowledged(id, providerId, ack);
  }
  notificationUnacknowledged(id: number, providerId: string, plays: number, why: string): void {
    this.a.notifications.notificationUnacknowledged(id, providerId, plays, why);
  }
  extendNotificationLease(id: number, until: Date): void {
    this.a.notifications.extendNotificationLease(id, until);
  }
  notificationFailed(id: number, error: string, retryAt: Date | null): void {
    this.a.notifications.notificationFailed(id, error, retryAt);
  }
  notifications(filter: { eventId?: string; status?: NotificationStatus; limit?: number } = {}): Notification[] {
    return this.a.notifications.notifications(filter);
  }

  // audit
  audit(actor: string, action: string, entity: string, entityId: string | number | null, details?: unknown): void {
    this.a.audit.audit(actor, action, entity, entityId, details);
  }
  auditLog(filter: { entity?: string; entityId?: string; limit?: number; beforeSeq?: number } = {}): AuditEntry[] {
    return this.a.audit.auditLog(filter);
  }

  // jobs
  createJob(kind: string, actor: string, params: unknown, total: number): number {
    return this.a.jobs.createJob(kind, actor, params, total);
  }
  job(id: number): Job | null {
    return this.a.jobs.job(id);
  }
  jobs(limit = 50): Job[] {
    return this.a.jobs.jobs(limit);
  }
  claimJob(): Job | null {
    return this.a.jobs.claimJob();
  }
  requeueRunningJobs(): number {
    return this.a.jobs.requeueRunningJobs();
  }
  jobProgress(id: number, done: number): void {
    this.a.jobs.jobProgress(id, done);
  }
  finishJob(id: number, result: unknown, error: string | null): void {
    this.a.jobs.finishJob(id, result, error);
  }

  // CSV uploads
  saveCsvUpload(id: string, actor: string, rows: number, changes: unknown, errorCount = 0): void {
    this.a.jobs.saveCsvUpload(id, actor, rows, changes, errorCount);
  }
  csvUpload(id: string): CsvUpload | null {
    return this.a.jobs.csvUpload(id);
  }
  markCsvApplied(id: string, jobId: number): boolean {
    return this.a.jobs.markCsvApplied(id, jobId);
  }

  // API tokens
  createToken(name: string, token: string): number {
    return this.a.tokens.createToken(name, token);
  }
  verifyToken(token: string): { id: number; name: string } | null {
    return this.a.tokens.verifyToken(token);
  }
  tokens(): ApiToken[] {
    return this.a.tokens.tokens();
  }
  revokeToken(id: number): boolean {
    return this.a.tokens.revokeToken(id);
  }

  // portal sessions (only the hash of a session id is stored)
  createSession(id: string, tokenId: number, absoluteMs: number): { expiresAt: string } {
    return this.a.tokens.createSession(id, tokenId, absoluteMs);
  }
  useSession(id: string, idleMs: number): { id: number; name: string } | null {
    return this.a.tokens.useSession(id, idleMs);
  }
  revokeSession(id: string): boolean {
    return this.a.tokens.revokeSession(id);
  }
  pruneSessions(): number {
    return this.a.tokens.pruneSessions();
  }

  // server instances' broker users, shared secrets
  setServerBrokerUser(username: string, hash: string, bcrypt: string | null = null): void {
    this.a.shared.setServerBrokerUser(username, hash, bcrypt);
  }
  serverBrokerUsers(): { username: string; hash: string; bcrypt: string | null }[] {
    return this.a.shared.serverBrokerUsers();
  }
  sharedSecret(name: string, make: () => string): string {
    return this.a.shared.sharedSecret(name, make);
  }
}
