// Devices: each phone's row — whom it is assigned to, what address and locations
// document it was issued and applied, what it last reported, its broker credential.
import type { LocationPayload, PhoneClock } from '../../protocol/messages.js';
import type { ServerDb } from './open.js';
import { bool, int, intOrNull, json, rowMapper, text, textOrNull, type Row } from './rows.js';
import type { Device, NoticeAck, PushContext } from './types.js';

export const toDevice = rowMapper<Device>({
  deviceId: text('device_id'),
  userId: intOrNull('user_id'),
  online: bool('online'),
  lastSeen: textOrNull('last_seen'),
  agentVersion: textOrNull('agent_version'),
  issuedVersion: int('addr_version'),
  issuedAt: textOrNull('addr_issued_at'),
  appliedVersion: intOrNull('applied_version'),
  appliedHash: textOrNull('applied_hash'),
  appliedAt: textOrNull('applied_at'),
  locationsVersion: int('loc_version'),
  lastLocation: json<LocationPayload | null>('last_location', null),
  lastLocationAt: textOrNull('last_location_at'),
  mismatch: json('mismatch', null),
  mismatchAt: textOrNull('mismatch_at'),
  disagreement: json('disagreement', null),
  disagreementAt: textOrNull('disagreement_at'),
  credentialsIssuedAt: textOrNull('mqtt_issued_at'),
  noticeAck: (r) =>
    r.notice_ack_at === null || r.notice_ack_at === undefined
      ? null
      : {
          version: intOrNull('notice_version')(r),
          hash: textOrNull('notice_hash')(r),
          shownAt: textOrNull('notice_shown_at')(r),
          acknowledgedAt: text('notice_ack_at')(r),
          via: textOrNull('notice_ack_via')(r),
          userId: intOrNull('notice_user_id')(r),
        },
  createdAt: text('created_at'),
});

const toPushContext = rowMapper<PushContext>({
  deviceId: text('device_id'),
  userId: intOrNull('user_id'),
  displayName: textOrNull('display_name'),
  language: textOrNull('language'),
  callback: textOrNull('callback'),
  locationId: intOrNull('location_id'),
  ownAddress: json('own_address', null),
  recommendations: bool('recommendations'),
  issuedVersion: int('addr_version'),
  contentHash: textOrNull('addr_content_hash'),
  appliedVersion: intOrNull('applied_version'),
  locationsVersion: int('loc_version'),
  locationsHash: textOrNull('loc_content_hash'),
});

const toIssuedAddress = rowMapper<{ version: number; contentHash: string | null; signed: string | null }>({
  version: int('addr_version'),
  contentHash: textOrNull('addr_content_hash'),
  signed: textOrNull('addr_signed'),
});

const toIssuedLocations = rowMapper<{ version: number; contentHash: string | null }>({
  version: int('loc_version'),
  contentHash: textOrNull('loc_content_hash'),
});

export class DeviceStore {
  constructor(private readonly s: ServerDb) {}

  devices(filter: { userId?: number } = {}): Device[] {
    const rows =
      filter.userId !== undefined
        ? this.s.q('SELECT * FROM devices WHERE user_id = ? ORDER BY device_id').all(filter.userId)
        : this.s.q('SELECT * FROM devices ORDER BY device_id').all();
    return (rows as Row[]).map(toDevice);
  }

  device(deviceId: string): Device | null {
    const r = this.s.q('SELECT * FROM devices WHERE device_id = ?').get(deviceId) as Row | undefined;
    return r ? toDevice(r) : null;
  }

  private deviceExists(deviceId: string): boolean {
    return this.s.q('SELECT 1 FROM devices WHERE device_id = ?').pluck().get(deviceId) !== undefined;
  }

  /** Makes sure a row exists for a phone the broker reported; returns whether it was new. */
  ensureDevice(deviceId: string): boolean {
    return this.s.q('INSERT OR IGNORE INTO devices (device_id, created_at) VALUES (?, ?)').run(deviceId, this.s.iso()).changes > 0;
  }

  /** Assigns exactly these devices to the user; others of theirs are unassigned. */
  setUserDevices(userId: number, deviceIds: readonly string[]): void {
    this.s
      .q(`UPDATE devices SET user_id = NULL WHERE user_id = ? AND device_id NOT IN (SELECT value FROM json_each(?))`)
      .run(userId, JSON.stringify(deviceIds));
    const upsert = this.s.q(
      'INSERT INTO devices (device_id, user_id, created_at) VALUES (?, ?, ?) ON CONFLICT (device_id) DO UPDATE SET user_id = excluded.user_id',
    );
    for (const id of deviceIds) upsert.run(id, userId, this.s.iso());
  }

  /** The owner of each device that belongs to another user than userId. */
  deviceOwners(deviceIds: readonly string[], exceptUserId: number | null): { deviceId: string; userId: number }[] {
    const stmt = this.s.q(
      'SELECT device_id AS deviceId, user_id AS userId FROM devices WHERE device_id = ? AND user_id IS NOT NULL AND user_id IS NOT ?',
    );
    return deviceIds.flatMap((id) => stmt.all(id, exceptUserId) as { deviceId: string; userId: number }[]);
  }

  deviceIdsOfUsers(userIds: readonly number[]): string[] {
    const stmt = this.s.q('SELECT device_id FROM devices WHERE user_id = ?').pluck();
    return userIds.flatMap((id) => stmt.all(id) as string[]);
  }

  deviceIdsAtLocation(locationId: number): string[] {
    return this.s
      .q('SELECT d.device_id FROM devices d JOIN users u ON u.id = d.user_id WHERE u.location_id = ? ORDER BY d.device_id')
      .pluck()
      .all(locationId) as string[];
  }

  assignedDeviceIds(): string[] {
    return this.s.q('SELECT device_id FROM devices WHERE user_id IS NOT NULL ORDER BY device_id').pluck().all() as string[];
  }

  /** What pushing needs to know of each phone, for a whole batch in one query. */
  pushContexts(deviceIds: readonly string[]): Map<string, PushContext> {
    const rows = this.s
      .q(
        `SELECT d.device_id, d.user_id, d.addr_version, d.addr_content_hash, d.applied_version, d.loc_version, d.loc_content_hash,
              u.display_name, u.callback, u.language, u.location_id, u.own_address, u.recommendations
       FROM json_each(?) j JOIN devices d ON d.device_id = j.value LEFT JOIN users u ON u.id = d.user_id`,
      )
      .all(JSON.stringify(deviceIds)) as Row[];
    return new Map(rows.map((r) => [r.device_id as string, toPushContext(r)]));
  }

  recordIssuedAddress(deviceId: string, version: number, contentHash: string, signed: string, issuedAt: string): void {
    this.s
      .q('UPDATE devices SET addr_version = ?, addr_content_hash = ?, addr_signed = ?, addr_issued_at = ? WHERE device_id = ?')
      .run(version, contentHash, signed, issuedAt, deviceId);
  }

  appliedVersion(deviceId: string): number | null {
    return (this.s.q('SELECT applied_version FROM devices WHERE device_id = ?').pluck().get(deviceId) as number | null | undefined) ?? null;
  }

  issuedVersion(deviceId: string): number | null {
    return (this.s.q('SELECT addr_version FROM devices WHERE device_id = ?').pluck().get(deviceId) as number | undefined) ?? null;
  }

  issuedAddress(deviceId: string): { version: number; contentHash: string | null; signed: string | null } | null {
    const r = this.s.q('SELECT addr_version, addr_content_hash, addr_signed FROM devices WHERE device_id = ?').get(deviceId) as
      | Row
      | undefined;
    return r ? toIssuedAddress(r) : null;
  }

  recordIssuedLocations(deviceId: string, version: number, contentHash: string): void {
    this.s.q('UPDATE devices SET loc_version = ?, loc_content_hash = ? WHERE device_id = ?').run(version, contentHash, deviceId);
  }

  issuedLocations(deviceId: string): { version: number; contentHash: string | null } | null {
    const r = this.s.q('SELECT loc_version, loc_content_hash FROM devices WHERE device_id = ?').get(deviceId) as Row | undefined;
    return r ? toIssuedLocations(r) : null;
  }

  setDeviceStatus(deviceId: string, online: boolean, agentVersion: string | null): void {
    if (!this.deviceExists(deviceId)) this.ensureDevice(deviceId);
    this.s
      .q(
        'UPDATE devices SET online = ?, last_seen = ?, agent_version = coalesce(?, agent_version) WHERE device_id = ? AND (online IS NOT ? OR ? = 1)',
      )
      .run(online ? 1 : 0, this.s.iso(), agentVersion, deviceId, online ? 1 : 0, online ? 1 : 0);
  }

  setDeviceApplied(deviceId: string, version: number, hash: string, appliedAt: string | null): void {
    if (!this.deviceExists(deviceId)) this.ensureDevice(deviceId);
    this.s
      .q(
        'UPDATE devices SET applied_version = ?, applied_hash = ?, applied_at = ? WHERE device_id = ? AND (applied_version IS NOT ? OR applied_hash IS NOT ?)',
      )
      .run(version, hash, appliedAt, deviceId, version, hash);
  }

  /** Stored only as decodePayload('location') passed it: the row reads back as that type. */
  setDeviceLocationReport(deviceId: string, report: LocationPayload): void {
    this.ensureDevice(deviceId);
    this.s
      .q('UPDATE devices SET last_location = ?, last_location_at = ? WHERE device_id = ?')
      .run(JSON.stringify(report), this.s.iso(), deviceId);
  }

  setDeviceMismatch(deviceId: string, mismatch: unknown): void {
    this.ensureDevice(deviceId);
    this.s
      .q('UPDATE devices SET mismatch = ?, mismatch_at = ? WHERE device_id = ?')
      .run(mismatch === null ? null : JSON.stringify(mismatch), mismatch === null ? null : this.s.iso(), deviceId);
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
    const last = this.s
      .q('SELECT disagreement_at AS at, disagreement_boot AS boot, disagreement_mono AS mono FROM devices WHERE device_id = ?')
      .get(deviceId) as {
      at: string | null;
      boot: string | null;
      mono: number | null;
    };
    if (last.at !== null) {
      const sameBoot = order !== null && last.boot === order.boot && last.mono !== null;
      const newer = sameBoot ? order.mono >= last.mono! : eventTs >= last.at;
      if (!newer) return false;
    }
    this.s
      .q('UPDATE devices SET disagreement = ?, disagreement_at = ?, disagreement_boot = ?, disagreement_mono = ? WHERE device_id = ?')
      .run(disagreement === null ? null : JSON.stringify(disagreement), eventTs, order?.boot ?? null, order?.mono ?? null, deviceId);
    return true;
  }

  /**
   * The phone acknowledged the notice for an address. An acknowledgement for an older address
   * than the one recorded (a late redelivery) changes nothing; returns whether it was applied.
   */
  setNoticeAck(deviceId: string, ack: NoticeAck): boolean {
    this.ensureDevice(deviceId);
    return (
      this.s
        .q(
          `UPDATE devices SET notice_version = @version, notice_hash = @hash, notice_shown_at = @shownAt, notice_ack_at = @acknowledgedAt,
             notice_ack_via = @via, notice_user_id = @userId
           WHERE device_id = @deviceId AND (notice_ack_at IS NULL OR coalesce(notice_version, 0) < coalesce(@version, 0)
             OR (coalesce(notice_version, 0) = coalesce(@version, 0) AND notice_ack_at <= @acknowledgedAt))`,
        )
        .run({ ...ack, deviceId }).changes > 0
    );
  }

  setDeviceCredential(deviceId: string, mosquittoHash: string, bcrypt: string | null = null): void {
    this.ensureDevice(deviceId);
    this.s
      .q('UPDATE devices SET mqtt_hash = ?, mqtt_bcrypt = ?, mqtt_issued_at = ? WHERE device_id = ?')
      .run(mosquittoHash, bcrypt, this.s.iso(), deviceId);
  }

  deviceCredential(deviceId: string): string | null {
    return (this.s.q('SELECT mqtt_hash FROM devices WHERE device_id = ?').pluck().get(deviceId) as string | null | undefined) ?? null;
  }

  deviceCredentials(): { deviceId: string; hash: string; bcrypt: string | null }[] {
    return this.s
      .q(
        'SELECT device_id AS deviceId, mqtt_hash AS hash, mqtt_bcrypt AS bcrypt FROM devices WHERE mqtt_hash IS NOT NULL ORDER BY device_id',
      )
      .all() as { deviceId: string; hash: string; bcrypt: string | null }[];
  }

  /** A phone was heard from (any message): the last-seen sweep counts from here. */
  touchDevice(deviceId: string): void {
    this.s.q('UPDATE devices SET last_seen = ? WHERE device_id = ?').run(this.s.iso(), deviceId);
  }

  /** Online phones not heard from since the cutoff are marked offline; returns their ids. */
  markSilentOffline(cutoffIso: string): string[] {
    const ids = this.s
      .q('SELECT device_id FROM devices WHERE online = 1 AND (last_seen IS NULL OR last_seen < ?)')
      .pluck()
      .all(cutoffIso) as string[];
    if (ids.length > 0) this.s.q('UPDATE devices SET online = 0 WHERE online = 1 AND (last_seen IS NULL OR last_seen < ?)').run(cutoffIso);
    return ids;
  }

  deleteDevice(deviceId: string): void {
    this.s.q('DELETE FROM devices WHERE device_id = ?').run(deviceId);
  }
}
