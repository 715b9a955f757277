// Every administrative operation, once: the HTTP API and the CLI both call
// these. Each validates, writes in one transaction with its audit entry, and
// queues pushes for the phones the change affects.
// Over 400 lines: every administrative write in one place, so each keeps its validation,
// audit entry and pushes together; records.ts holds the reads and sessions.
import type { Logger } from 'pino';
import { z } from 'zod';
import type { Repo, Location, User, Device, NotificationSettings } from './db/repo.js';
import type { Pusher } from './pusher.js';
import type { Bus } from './bus.js';
import {
  accountPatchSchema,
  issuesOf,
  locationFieldsSchema,
  locationInputSchema,
  notificationSettingsSchema,
  postalAddressSchema,
  userInputSchema,
  type LocationInputRaw,
  type UserInput,
  type UserInputRaw,
  type PlaceAddress,
  type CompanyCallback,
} from './validation.js';
import { effectiveCallback, type AddressSource } from './defaults.js';
import { noticeStatus, type NoticeStatus } from './notice-status.js';
import { ConflictError, NotFoundError, PreconditionError, ValidationError } from './errors.js';
import { SERVER_USER_PREFIX, hashPassword, hashPasswordBcrypt, isReservedDeviceId, newPassword } from './broker-auth.js';
import { isValidDeviceId } from '../protocol/topics.js';
import type { TargetPolicy } from './notify/targets.js';

export interface AccountView {
  name: string;
  contactEmail: string;
  defaultAddress: PlaceAddress | null;
  defaultCallback: CompanyCallback | null;
  emergencyContacts: string[];
  e911Enabled: boolean;
  e911ChangedAt: string | null;
  recommendations: boolean;
  notificationPolicy: string;
  /** For 933 test calls; null: the same as notificationPolicy. */
  testNotificationPolicy: string | null;
  locationPolicy: string;
  elinCallback: boolean;
  /** What is still needed before E911 can be enabled (empty when complete). */
  missing: string[];
  updatedAt: string;
}

export interface PhoneView extends Device {
  /** Applied version equals the last issued one. */
  inSync: boolean;
  user: { id: number; username: string; displayName: string } | null;
  locationCode: string | null;
  /** Where the user's address comes from: their location, their own address, the company default; null when none. */
  addressSource: AddressSource | null;
  /** The emergency-services notice on this phone: shown or acknowledged, when, for which address version. */
  notice: NoticeStatus;
}

export function parse<T extends z.ZodType>(schema: T, input: unknown): z.infer<T> {
  const r = schema.safeParse(input);
  if (!r.success) throw new ValidationError(issuesOf(r.error));
  return r.data;
}

type Patch<S extends z.ZodRawShape> = z.ZodObject<{ [K in keyof S]: z.ZodOptional<S[K] extends z.ZodDefault<infer I> ? I : S[K]> }>;

/**
 * A partial update's schema: every field optional and none defaulted, so an omitted field
 * keeps its stored value (zod's partial() fills defaults in: a PATCH of one field would reset
 * the others to them).
 */
function patchOf<S extends z.ZodRawShape>(shape: S): Patch<S> {
  const fields = Object.entries(shape).map(([k, s]) => [
    k,
    (s instanceof z.ZodDefault ? (s.unwrap() as z.ZodType) : (s as z.ZodType)).optional(),
  ]);
  return z.strictObject(Object.fromEntries(fields)) as unknown as Patch<S>;
}

/** A location PATCH: the fields it changes, the address field by field. */
export const locationPatchSchema = patchOf({ ...locationFieldsSchema.shape, address: postalAddressSchema.partial() });
/** A user PATCH: the fields it changes (emails and deviceIds replace the lists). */
export const userPatchSchema = patchOf(userInputSchema.shape);

const listNames = (names: string[]) =>
  names.length > 5 ? `${names.slice(0, 5).join(', ')} and ${names.length - 5} more` : names.join(', ');

export interface AdminServiceDeps {
  repo: Repo;
  pusher: Pusher;
  bus: Bus;
  log: Logger;
  /** Where SMS and webhook POSTs may go: a URL naming a refused address is not saved. */
  targets?: TargetPolicy;
  /** The broker is NATS: a device id with a dot cannot be a subject token (broker-auth.ts), its credentials are refused. */
  nats?: boolean;
}

export class AdminService {
  constructor(private readonly deps: AdminServiceDeps) {}

  private get repo(): Repo {
    return this.deps.repo;
  }

  private changed(entity: string, id: string | number | null, action: string): void {
    this.deps.bus.emit('change', { entity, id, action });
  }

  /** Pushes run in the background; a failure is logged, the phone catches up on reconnect. */
  private push(deviceIds: Iterable<string>): void {
    this.deps.pusher.schedule(deviceIds).catch((err: Error) => this.deps.log.error({ err }, 'push failed'));
  }

  // ---- account ----

  async account(): Promise<AccountView> {
    const a = await this.repo.account();
    return { ...a, missing: await this.missingForE911() };
  }

  /** The mandatory information E911 needs, as a list of what is missing. */
  async missingForE911(): Promise<string[]> {
    const repo = this.repo;
    const a = await repo.account();
    const s = await repo.notificationSettings();
    const missing: string[] = [];
    if (!a.name) missing.push('the account name');
    if (!a.contactEmail) missing.push('the account contact email');
    if ((await repo.locations()).length === 0 && !a.defaultAddress) missing.push('at least one location or a company default address');
    // Complete at either level: the user's own (location or own address, callback) or the company's default.
    const phoneUsers = (await repo.users()).filter((u) => u.deviceIds.length > 0);
    const noAddress = phoneUsers.filter((u) => u.locationId === null && !u.ownAddress && !a.defaultAddress).map((u) => u.username);
    const noCallback = phoneUsers.filter((u) => !effectiveCallback(u, a)).map((u) => u.username);
    if (noAddress.length)
      missing.push(`a location or own address for users with phones, or a company default address: ${listNames(noAddress)}`);
    if (noCallback.length) missing.push(`a callback number for users with phones, or a company callback number: ${listNames(noCallback)}`);
    const policies = new Set([a.notificationPolicy, a.testNotificationPolicy ?? a.notificationPolicy]);
    const needsApp = [...policies].find((p) => p !== 'all');
    if (needsApp && !s.webhook) missing.push(`the app webhook (the notification policy is ${needsApp})`);
    if ([...policies].some((p) => p !== 'app-only') && !s.smtp && !s.sms) missing.push('an SMTP server or SMS provider for notifications');
    return missing;
  }

  async updateAccount(actor: string, input: unknown): Promise<AccountView> {
    const patch = parse(accountPatchSchema, input);
    const before = await this.repo.account();
    if (before.e911Enabled && (patch.defaultAddress === null || patch.defaultCallback === null)) {
      // Removing a default some phone relies on would leave it without an address or callback.
      const after = { ...before, ...patch } as typeof before;
      const stranded = (await this.repo.users())
        .filter(
          (u) => u.deviceIds.length > 0 && ((!u.locationId && !u.ownAddress && !after.defaultAddress) || !effectiveCallback(u, after)),
        )
        .map((u) => u.username);
      if (stranded.length)
        throw new PreconditionError(`E911 is enabled and these users with phones rely on the company default: ${listNames(stranded)}`, [
          `an address and callback of their own for ${listNames(stranded)}`,
        ]);
    }
    await this.repo.transaction(async () => {
      await this.repo.updateAccount(patch);
      await this.repo.audit(actor, 'account.update', 'account', null, patch);
    });
    this.changed('account', null, 'update');
    const pushAgain =
      (patch.recommendations !== undefined && patch.recommendations !== before.recommendations) ||
      // Both travel in the signed address: every phone gets a new one.
      (patch.locationPolicy !== undefined && patch.locationPolicy !== before.locationPolicy) ||
      (patch.elinCallback !== undefined && patch.elinCallback !== before.elinCallback) ||
      // Phones that use a company default get the new one (the content hash leaves the others unchanged).
      (patch.defaultAddress !== undefined && JSON.stringify(patch.defaultAddress) !== JSON.stringify(before.defaultAddress)) ||
      (patch.defaultCallback !== undefined && JSON.stringify(patch.defaultCallback) !== JSON.stringify(before.defaultCallback)) ||
      (patch.name !== undefined && patch.name !== before.name && before.defaultAddress !== null);
    if (pushAgain) this.push(await this.repo.assignedDeviceIds());
    return this.account();
  }

  async setE911(actor: string, enabled: boolean): Promise<AccountView> {
    if (enabled) {
      const missing = await this.missingForE911();
      if (missing.length) throw new PreconditionError(`E911 cannot be enabled until this is complete: ${missing.join('; ')}`, missing);
    }
    await this.repo.transaction(async () => {
      await this.repo.setE911(enabled);
      await this.repo.audit(actor, enabled ? 'account.e911-enable' : 'account.e911-disable', 'account', null);
    });
    this.changed('account', null, enabled ? 'e911-enable' : 'e911-disable');
    if (enabled) this.push(await this.repo.assignedDeviceIds());
    return this.account();
  }

  /** Settings with secrets replaced by whether they are set. */
  /**
   * The channels as the API shows them: secrets (passwords, the webhook secret, header
   * values) never leave the server; only whether one is set.
   */
  async notificationSettings(): Promise<Record<string, unknown>> {
    const s = await this.repo.notificationSettings();
    const hideHeader = (h: { name: string; value?: string } | undefined) =>
      h ? { header: { name: h.name, valueSet: Boolean(h.value) } } : {};
    const smtp = s.smtp && (({ password, ...rest }) => ({ ...rest, passwordSet: Boolean(password) }))(s.smtp);
    const sms = s.sms && (({ password, header, ...rest }) => ({ ...rest, ...hideHeader(header), passwordSet: Boolean(password) }))(s.sms);
    const webhook =
      s.webhook && (({ secret, header, ...rest }) => ({ ...rest, ...hideHeader(header), secretSet: Boolean(secret) }))(s.webhook);
    const call = s.call && (({ password, ...rest }) => ({ ...rest, passwordSet: Boolean(password) }))(s.call);
    const a = await this.repo.account();
    return { smtp, sms, webhook, call, policy: a.notificationPolicy, testPolicy: a.testNotificationPolicy };
  }

  /**
   * Replaces the given channels (null removes one). An omitted secret keeps the stored one,
   * but only while it would still go where it went: a stored password, secret or header value
   * is dropped when the SMTP host, port or user name, the SMS or webhook URL, or the call
   * channel's gateway, registrar or user name changes (or the header's name does), so whoever
   * repoints a channel cannot collect its credentials.
   */
  async setNotificationSettings(actor: string, input: unknown): Promise<Record<string, unknown>> {
    const next = parse(notificationSettingsSchema, input);
    // Literal addresses are refused here, at once; a name is checked each time it is resolved to send.
    const refused = (['sms', 'webhook'] as const).flatMap((ch) => {
      const why = next[ch] ? this.deps.targets?.urlRefusal(next[ch].url) : null;
      return why ? [{ field: `${ch}.url`, reason: why }] : [];
    });
    if (refused.length) throw new ValidationError(refused);
    const cur = await this.repo.notificationSettings();
    const merged: NotificationSettings = { ...cur };
    const dropped: string[] = [];
    const keep = <T>(field: string, given: T | undefined, stored: T | undefined, sameTarget: boolean): T | undefined => {
      if (given !== undefined) return given;
      if (stored === undefined) return undefined;
      if (sameTarget) return stored;
      dropped.push(field);
      return undefined;
    };
    const headerOf = (
      field: string,
      given: { name: string; value?: string | undefined } | undefined,
      stored: { name: string; value?: string } | undefined,
      sameUrl: boolean,
    ) => {
      if (!given) return undefined;
      const value = keep(
        `${field}.value`,
        given.value,
        stored?.name.toLowerCase() === given.name.toLowerCase() ? stored.value : undefined,
        sameUrl,
      );
      if (value === undefined)
        throw new ValidationError([
          {
            field: `${field}.value`,
            reason: sameUrl ? 'is required' : 'is required again: the URL changed, so the stored value was not kept',
          },
        ]);
      return { name: given.name, value };
    };
    if (next.smtp !== undefined) {
      const n = next.smtp;
      const same =
        !!n &&
        !!cur.smtp &&
        n.host.toLowerCase() === cur.smtp.host.toLowerCase() &&
        n.port === cur.smtp.port &&
        n.username === cur.smtp.username;
      merged.smtp = n && { ...n, password: n.username ? keep('smtp.password', n.password, cur.smtp?.password, same) : n.password };
    }
    if (next.sms !== undefined) {
      const n = next.sms;
      const sameUrl = !!n && !!cur.sms && n.url === cur.sms.url;
      merged.sms = n && {
        ...n,
        password: n.username
          ? keep('sms.password', n.password, cur.sms?.password, sameUrl && n.username === cur.sms?.username)
          : n.password,
        header: headerOf('sms.header', n.header, cur.sms?.header, sameUrl),
      };
      if (!merged.sms?.header && merged.sms) delete merged.sms.header;
    }
    if (next.webhook !== undefined) {
      const n = next.webhook;
      const sameUrl = !!n && !!cur.webhook && n.url === cur.webhook.url;
      merged.webhook = n && {
        ...n,
        secret: keep('webhook.secret', n.secret, cur.webhook?.secret, sameUrl),
        header: headerOf('webhook.header', n.header, cur.webhook?.header, sameUrl),
      };
      if (merged.webhook && !merged.webhook.header) delete merged.webhook.header;
      if (merged.webhook && merged.webhook.secret === undefined) delete merged.webhook.secret;
    }
    if (next.call !== undefined) {
      const n = next.call;
      const same =
        !!n &&
        !!cur.call &&
        n.username === cur.call.username &&
        n.gateway?.toLowerCase() === cur.call.gateway?.toLowerCase() &&
        n.registrar?.toLowerCase() === cur.call.registrar?.toLowerCase();
      merged.call = n && { ...n, password: n.username ? keep('call.password', n.password, cur.call?.password, same) : n.password };
      if (merged.call && merged.call.password === undefined) delete merged.call.password;
    }
    await this.repo.transaction(async () => {
      await this.repo.setNotificationSettings(merged);
      await this.repo.audit(actor, 'notifications.update', 'account', null, {
        channels: Object.keys(next),
        ...(dropped.length ? { secretsDropped: dropped } : {}),
      });
    });
    if (dropped.length) this.deps.log.warn({ dropped }, 'a channel was repointed: its stored secrets were dropped');
    this.changed('notifications', null, 'update');
    return { ...(await this.notificationSettings()), ...(dropped.length ? { secretsDropped: dropped } : {}) };
  }

  // ---- locations ----

  async locations(): Promise<(Location & { userCount: number })[]> {
    const out: (Location & { userCount: number })[] = [];
    for (const l of await this.repo.locations()) out.push({ ...l, userCount: await this.repo.userCount({ locationId: l.id }) });
    return out;
  }

  async location(id: number): Promise<Location & { userCount: number }> {
    const l = await this.repo.location(id);
    if (!l) throw new NotFoundError(`location ${id}`);
    return { ...l, userCount: await this.repo.userCount({ locationId: id }) };
  }

  /** Checks a location without saving it: the portal shows the issues as the user types. */
  validateLocation(input: unknown): { ok: boolean; issues: { field: string; reason: string }[]; civic?: unknown } {
    const r = locationInputSchema.safeParse(input);
    if (!r.success) return { ok: false, issues: issuesOf(r.error) };
    return { ok: true, issues: [] };
  }

  async createLocation(actor: string, input: unknown): Promise<Location> {
    const loc = parse(locationInputSchema, input);
    if (await this.repo.locationByCode(loc.code)) throw new ConflictError(`location code ${loc.code} is already used`);
    const id = await this.repo.transaction(async () => {
      const id = await this.repo.insertLocation(loc);
      await this.repo.audit(actor, 'location.create', 'location', id, loc);
      return id;
    });
    this.changed('location', id, 'create');
    // Phones with recommendations on get the longer list.
    this.push(await this.repo.assignedDeviceIds());
    return (await this.repo.location(id))!;
  }

  /** Partial update: the given fields replace the stored ones, then the whole is validated. */
  async updateLocation(actor: string, id: number, input: unknown): Promise<Location> {
    const cur = await this.location(id);
    const patch = parse(locationPatchSchema, input ?? {});
    const merged = {
      ...toLocationInput(cur),
      ...patch,
      address: patch.address ? { ...cur.address, ...patch.address } : cur.address,
    };
    const loc = parse(locationInputSchema, merged);
    const other = await this.repo.locationByCode(loc.code);
    if (other && other.id !== id) throw new ConflictError(`location code ${loc.code} is already used`);
    await this.repo.transaction(async () => {
      await this.repo.updateLocation(id, loc);
      await this.repo.audit(actor, 'location.update', 'location', id, { before: toLocationInput(cur), after: loc });
    });
    this.changed('location', id, 'update');
    this.push(await this.repo.assignedDeviceIds());
    return (await this.repo.location(id))!;
  }

  async deleteLocation(actor: string, id: number): Promise<void> {
    const cur = await this.location(id);
    if (cur.userCount > 0) throw new ConflictError(`location ${cur.code} still has ${cur.userCount} users: move them first`);
    await this.repo.transaction(async () => {
      await this.repo.deleteLocation(id);
      await this.repo.audit(actor, 'location.delete', 'location', id, { code: cur.code });
    });
    this.changed('location', id, 'delete');
    this.push(await this.repo.assignedDeviceIds());
  }

  // ---- users ----

  async users(filter: { locationId?: number; limit?: number; offset?: number } = {}): Promise<{ total: number; users: User[] }> {
    return { total: await this.repo.userCount(filter), users: await this.repo.users(filter) };
  }

  async user(id: number): Promise<User> {
    const u = await this.repo.user(id);
    if (!u) throw new NotFoundError(`user ${id}`);
    return u;
  }

  async createUser(actor: string, input: unknown): Promise<User> {
    const u = parse(userInputSchema, input);
    // No language of their own: the company callback's language, else English.
    u.language ??= (await this.repo.account()).defaultCallback?.language ?? 'en';
    await this.checkUser(u, null);
    const id = await this.repo.transaction(async () => {
      const id = await this.repo.insertUser(u);
      await this.repo.setUserDevices(id, u.deviceIds);
      await this.repo.audit(actor, 'user.create', 'user', id, u);
      return id;
    });
    this.changed('user', id, 'create');
    this.push(u.deviceIds);
    return (await this.repo.user(id))!;
  }

  async updateUser(actor: string, id: number, input: unknown): Promise<User> {
    const cur = await this.user(id);
    const patch = parse(userPatchSchema, input ?? {});
    const merged = { ...toUserInput(cur), ...patch };
    // A user has a location or an own address: giving one replaces the other unless both are given.
    if (patch.locationId != null && !('ownAddress' in patch)) merged.ownAddress = null;
    if (patch.ownAddress != null && !('locationId' in patch)) merged.locationId = null;
    const u = parse(userInputSchema, merged);
    await this.checkUser(u, id);
    await this.repo.transaction(async () => {
      await this.repo.updateUser(id, u);
      await this.repo.setUserDevices(id, u.deviceIds);
      await this.repo.audit(actor, 'user.update', 'user', id, { before: toUserInput(cur), after: u });
    });
    this.changed('user', id, 'update');
    // Phones taken away keep their address until reassigned; they are pushed again then.
    this.push(new Set([...u.deviceIds, ...cur.deviceIds]));
    return (await this.repo.user(id))!;
  }

  async deleteUser(actor: string, id: number): Promise<void> {
    const cur = await this.user(id);
    await this.repo.transaction(async () => {
      await this.repo.deleteUser(id);
      await this.repo.audit(actor, 'user.delete', 'user', id, { username: cur.username, deviceIds: cur.deviceIds });
    });
    this.changed('user', id, 'delete');
  }

  private async checkUser(u: UserInput, id: number | null): Promise<void> {
    if (u.ownAddress && u.locationId !== null)
      throw new ValidationError([{ field: 'ownAddress', reason: 'a user has a location or an own address, not both' }]);
    const byName = await this.repo.userByUsername(u.username);
    if (byName && byName.id !== id) throw new ConflictError(`user name ${u.username} is already used`);
    if (u.locationId !== null && !(await this.repo.location(u.locationId))) {
      throw new ValidationError([{ field: 'locationId', reason: `location ${u.locationId} does not exist` }]);
    }
    // Device ids are unique across accounts: a phone another account holds is never taken over.
    const foreign = await this.repo.foreignDeviceIds(u.deviceIds);
    if (foreign.length) throw new ConflictError(`phone ${foreign.join(', ')}: registered to another account`);
    const taken = await this.repo.deviceOwners(u.deviceIds, id);
    if (taken.length)
      throw new ConflictError(`phone ${taken.map((t) => `${t.deviceId} belongs to user ${t.userId}`).join(', ')}: unassign it first`);
    const account = await this.repo.account();
    if (account.e911Enabled && u.deviceIds.length > 0) {
      const missing = [
        u.locationId === null &&
          !u.ownAddress &&
          !account.defaultAddress &&
          'a location or own address (there is no company default address)',
        !u.callback && !account.defaultCallback && 'a callback number (there is no company callback number)',
      ].filter(Boolean);
      if (missing.length)
        throw new PreconditionError(`E911 is enabled: a user with a phone needs ${missing.join(' and ')}`, missing as string[]);
    }
  }

  // ---- phones ----

  /** filter.notice 'unacknowledged': phones whose notice for the address they hold is not acknowledged. */
  async phones(filter: { notice?: 'unacknowledged' } = {}): Promise<PhoneView[]> {
    const users = new Map((await this.repo.users()).map((u) => [u.id, u]));
    const codes = new Map((await this.repo.locations()).map((l) => [l.id, l.code]));
    const hasDefault = (await this.repo.account()).defaultAddress !== null;
    const all = (await this.repo.devices()).map((d) => this.phoneView(d, users, codes, hasDefault));
    return filter.notice === 'unacknowledged' ? all.filter((p) => p.notice.state !== 'acknowledged') : all;
  }

  async phone(deviceId: string): Promise<PhoneView> {
    const d = await this.repo.device(deviceId);
    if (!d) throw new NotFoundError(`phone ${deviceId}`);
    const u = d.userId !== null ? await this.repo.user(d.userId) : null;
    const l = u?.locationId ? await this.repo.location(u.locationId) : null;
    return this.phoneView(
      d,
      new Map(u ? [[u.id, u]] : []),
      new Map(l ? [[l.id, l.code]] : []),
      (await this.repo.account()).defaultAddress !== null,
    );
  }

  private phoneView(d: Device, users: Map<number, User>, codes: Map<number, string>, companyAddress: boolean): PhoneView {
    const u = d.userId !== null ? users.get(d.userId) : undefined;
    return {
      ...d,
      inSync: d.issuedVersion > 0 && d.appliedVersion === d.issuedVersion,
      user: u ? { id: u.id, username: u.username, displayName: u.displayName } : null,
      locationCode: u?.locationId ? (codes.get(u.locationId) ?? null) : null,
      addressSource: u ? (u.locationId ? 'location' : u.ownAddress ? 'own' : companyAddress ? 'company' : null) : null,
      notice: noticeStatus(d),
    };
  }

  /** Pushes a phone's documents again now, as if something had changed. */
  async repush(actor: string, deviceId: string): Promise<void> {
    await this.phone(deviceId);
    await this.repo.audit(actor, 'phone.repush', 'phone', deviceId);
    this.deps.pusher
      .schedule([deviceId], { forceAddress: true, forceLocations: true })
      .catch((err: Error) => this.deps.log.error({ err }, 'push failed'));
  }

  /**
   * New MQTT credentials for a phone: its user name is the device id. The
   * password is returned once and only its hash is kept.
   */
  async issueCredentials(actor: string, deviceId: string): Promise<{ username: string; password: string }> {
    if (!isValidDeviceId(deviceId))
      throw new ValidationError([{ field: 'deviceId', reason: 'must be 1-64 of letters, digits, dot, dash, underscore' }]);
    if (isReservedDeviceId(deviceId))
      throw new ValidationError([
        { field: 'deviceId', reason: `is reserved: ids starting with ${SERVER_USER_PREFIX} are the server's broker users` },
      ]);
    if (this.deps.nats && deviceId.includes('.'))
      throw new ValidationError([
        { field: 'deviceId', reason: 'must not contain a dot on a NATS broker (a dot splits the NATS subject its topics map to)' },
      ]);
    if ((await this.repo.foreignDeviceIds([deviceId])).length) throw new ConflictError(`phone ${deviceId}: registered to another account`);
    const password = newPassword();
    await this.repo.transaction(async () => {
      // Both hashes of the one password: Mosquitto's and the embedded broker's, and NATS's.
      await this.repo.setDeviceCredential(deviceId, hashPassword(password), hashPasswordBcrypt(password));
      await this.repo.audit(actor, 'phone.credentials-issue', 'phone', deviceId);
    });
    this.changed('phone', deviceId, 'credentials');
    return { username: deviceId, password };
  }

  async deletePhone(actor: string, deviceId: string): Promise<void> {
    const p = await this.phone(deviceId);
    if (p.userId !== null) throw new ConflictError(`phone ${deviceId} is assigned to user ${p.userId}: unassign it first`);
    await this.repo.transaction(async () => {
      await this.repo.deleteDevice(deviceId);
      await this.repo.audit(actor, 'phone.delete', 'phone', deviceId);
    });
    this.changed('phone', deviceId, 'delete');
  }
}

export function toLocationInput(l: Location): LocationInputRaw {
  return {
    code: l.code,
    name: l.name,
    address: l.address,
    building: l.building,
    floor: l.floor,
    room: l.room,
    timeZone: l.timeZone,
    ipGroups: l.ipGroups,
    switchPorts: l.switchPorts,
    adminEmails: l.adminEmails,
    smsNumbers: l.smsNumbers,
    callNumbers: l.callNumbers,
    language: l.language,
  };
}

export function toUserInput(u: User): UserInputRaw {
  return {
    username: u.username,
    displayName: u.displayName,
    extension: u.extension ?? undefined,
    locationId: u.locationId,
    ownAddress: u.ownAddress,
    callback: u.callback,
    language: u.language,
    mobile: u.mobile,
    recommendations: u.recommendations,
    emails: u.emails,
    deviceIds: u.deviceIds,
  };
}
