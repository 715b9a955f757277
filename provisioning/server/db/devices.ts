// Devices: each phone's row — whom it is assigned to, what address and locations
// document it was issued and applied, what it last reported, its broker credential.
// Over 400 lines: every write to a phone's row is here, including the batched report
// writer (recordReports) that keeps 10,000 phones' reports to a few statements.
import type { LocationPayload, PhoneClock } from '../../protocol/messages.js';
import { jsonArrayTable, jsonRecords, type Sql } from './sql.js';
import { bool, int, intOrNull, json, rowMapper, text, textOrNull, type Row } from './rows.js';
import type { Device, NoticeAck, PushContext } from './types.js';

/** One thing a phone reported, as PhoneIntake writes it (in batches: recordReports). */
export type PhoneReport =
  | { kind: 'status'; deviceId: string; online: boolean; agentVersion: string | null }
  | { kind: 'applied'; deviceId: string; version: number; hash: string; appliedAt: string | null; floor: number }
  | { kind: 'location'; deviceId: string; report: LocationPayload }
  /** Heard from (any message): last seen now. */
  | { kind: 'touch'; deviceId: string };

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

/** A new issue: nothing sent again yet; the first resend is due from its issue time (claimResends). */
const RESEND_CLEARED = 'addr_resends = 0, addr_resend_due = NULL';

export class DeviceStore {
  constructor(
    private readonly s: Sql,
    private readonly acct: () => string,
  ) {}

  async devices(filter: { userId?: number } = {}): Promise<Device[]> {
    const rows =
      filter.userId !== undefined
        ? await this.s.all('SELECT * FROM devices WHERE user_id = ? AND account_id = ? ORDER BY device_id', [filter.userId, this.acct()])
        : await this.s.all('SELECT * FROM devices WHERE account_id = ? ORDER BY device_id', [this.acct()]);
    return (rows as Row[]).map(toDevice);
  }

  async device(deviceId: string): Promise<Device | null> {
    const r = (await this.s.get('SELECT * FROM devices WHERE device_id = ? AND account_id = ?', [deviceId, this.acct()])) as
      | Row
      | undefined;
    return r ? toDevice(r) : null;
  }

  private async deviceExists(deviceId: string): Promise<boolean> {
    return (await this.s.column('SELECT 1 FROM devices WHERE device_id = ? AND account_id = ?', [deviceId, this.acct()]))[0] !== undefined;
  }

  /**
   * Makes sure a row exists for a phone the broker reported; returns whether it was new. A new
   * phone belongs to the running account; one another account holds is left to it (and the
   * scoped updates that follow change nothing).
   */
  async ensureDevice(deviceId: string): Promise<boolean> {
    return (
      (
        await this.s.run('INSERT INTO devices (device_id, created_at, account_id) VALUES (?, ?, ?) ON CONFLICT DO NOTHING', [
          deviceId,
          this.s.iso(),
          this.acct(),
        ])
      ).changes > 0
    );
  }

  /** The account a phone belongs to, whichever that is (null: unknown phone). */
  async accountOfDevice(deviceId: string): Promise<string | null> {
    return (
      ((await this.s.column<string>('SELECT account_id FROM devices WHERE device_id = ?', [deviceId]))[0] as string | undefined) ?? null
    );
  }

  /** Of these device ids, those another account holds (device ids are unique across accounts). */
  async foreignDeviceIds(deviceIds: readonly string[]): Promise<string[]> {
    return await this.s.column<string>(
      `SELECT d.device_id FROM ${jsonArrayTable(this.s.dialect, '?')} j JOIN devices d ON d.device_id = j.value WHERE d.account_id <> ?`,
      [JSON.stringify(deviceIds), this.acct()],
    );
  }

  /** Assigns exactly these devices to the user; others of theirs are unassigned. */
  async setUserDevices(userId: number, deviceIds: readonly string[]): Promise<void> {
    await this.s.run(
      `UPDATE devices SET user_id = NULL WHERE user_id = ? AND account_id = ? AND device_id NOT IN (SELECT value FROM ${jsonArrayTable(this.s.dialect, '?')})`,
      [userId, this.acct(), JSON.stringify(deviceIds)],
    );
    for (const id of deviceIds)
      await this.s.run(
        // Another account's phone is never taken over (the service refuses such ids first).
        `INSERT INTO devices (device_id, user_id, created_at, account_id) VALUES (?, ?, ?, ?)
         ON CONFLICT (device_id) DO UPDATE SET user_id = excluded.user_id WHERE devices.account_id = excluded.account_id`,
        [id, userId, this.s.iso(), this.acct()],
      );
  }

  /** The owner of each device that belongs to another user than userId. */
  async deviceOwners(deviceIds: readonly string[], exceptUserId: number | null): Promise<{ deviceId: string; userId: number }[]> {
    const owners: { deviceId: string; userId: number }[] = [];
    for (const id of deviceIds)
      owners.push(
        ...(await this.s.all<{ deviceId: string; userId: number }>(
          'SELECT device_id AS "deviceId", user_id AS "userId" FROM devices WHERE device_id = ? AND account_id = ? AND user_id IS NOT NULL AND user_id IS DISTINCT FROM ?',
          [id, this.acct(), exceptUserId],
        )),
      );
    return owners;
  }

  async deviceIdsOfUsers(userIds: readonly number[]): Promise<string[]> {
    const ids: string[] = [];
    for (const id of userIds)
      ids.push(...(await this.s.column<string>('SELECT device_id FROM devices WHERE user_id = ? AND account_id = ?', [id, this.acct()])));
    return ids;
  }

  async deviceIdsAtLocation(locationId: number): Promise<string[]> {
    return (await this.s.column(
      'SELECT d.device_id FROM devices d JOIN users u ON u.id = d.user_id WHERE u.location_id = ? AND d.account_id = ? ORDER BY d.device_id',
      [locationId, this.acct()],
    )) as string[];
  }

  async assignedDeviceIds(): Promise<string[]> {
    return (await this.s.column('SELECT device_id FROM devices WHERE user_id IS NOT NULL AND account_id = ? ORDER BY device_id', [
      this.acct(),
    ])) as string[];
  }

  /** Every account's assigned phones (the push at start), each with its account. */
  async allAssignedDevices(): Promise<{ deviceId: string; accountId: string }[]> {
    return await this.s.all<{ deviceId: string; accountId: string }>(
      'SELECT device_id AS "deviceId", account_id AS "accountId" FROM devices WHERE user_id IS NOT NULL ORDER BY device_id',
    );
  }

  /** The account of each known phone among these (the pusher groups a batch by it). */
  async accountsOfDevices(deviceIds: readonly string[]): Promise<Map<string, string>> {
    const rows = await this.s.all<{ device_id: string; account_id: string }>(
      `SELECT d.device_id, d.account_id FROM ${jsonArrayTable(this.s.dialect, '?')} j JOIN devices d ON d.device_id = j.value`,
      [JSON.stringify(deviceIds)],
    );
    return new Map(rows.map((r) => [r.device_id, r.account_id]));
  }

  /** What was issued last to each known phone among these, of every account (the pusher's report check). */
  async issuedVersions(deviceIds: readonly string[]): Promise<Map<string, { address: number; locations: number; applied: number | null }>> {
    const rows = await this.s.all<{ device_id: string; addr_version: number; loc_version: number; applied_version: number | null }>(
      `SELECT d.device_id, d.addr_version, d.loc_version, d.applied_version FROM ${jsonArrayTable(this.s.dialect, '?')} j JOIN devices d ON d.device_id = j.value`,
      [JSON.stringify(deviceIds)],
    );
    return new Map(
      rows.map((r) => [
        r.device_id,
        {
          address: Number(r.addr_version),
          locations: Number(r.loc_version),
          applied: r.applied_version === null ? null : Number(r.applied_version),
        },
      ]),
    );
  }

  /** The last signed address issued to each of these phones (by device id, across accounts), in one read. */
  async issuedSignedAddresses(deviceIds: readonly string[]): Promise<Map<string, string>> {
    const rows = await this.s.all<{ device_id: string; addr_signed: string | null }>(
      `SELECT d.device_id, d.addr_signed FROM ${jsonArrayTable(this.s.dialect, '?')} j JOIN devices d ON d.device_id = j.value WHERE d.addr_signed IS NOT NULL`,
      [JSON.stringify(deviceIds)],
    );
    return new Map(rows.flatMap((r) => (r.addr_signed ? [[r.device_id, r.addr_signed]] : [])));
  }

  /**
   * Phones' reports, a batch in a few statements: one per kind (and per repeat of a phone within
   * the batch), not one or more per report. A push brings a report from every phone, and on
   * PostgreSQL each statement is a round trip: three or four per report kept 10,000 phones'
   * reports a minute behind (scale bench). Each report changes only its own phone's row, of
   * whichever account (device ids are unique across accounts). A phone no account knows yet is
   * created in the running account, as setDeviceStatus() would. A phone's reports of one kind
   * apply in their order, with the same rules as setDeviceStatus(), setDeviceApplied(),
   * setDeviceLocationReport() and touchDevice(). Returns the account of each phone written.
   */
  async recordReports(reports: readonly PhoneReport[]): Promise<Map<string, string>> {
    const d = this.s.dialect;
    const now = this.s.iso();
    const ids = [...new Set(reports.map((r) => r.deviceId))];
    const accounts = await this.accountsOfDevices(ids);
    const unknown = [...new Set(reports.filter((r) => r.kind !== 'touch' && !accounts.has(r.deviceId)).map((r) => r.deviceId))];
    if (unknown.length > 0) {
      await this.s.run(
        `INSERT INTO devices (device_id, created_at, account_id) SELECT j.value, ?, ? FROM ${jsonArrayTable(d, '?')} j WHERE true ON CONFLICT DO NOTHING`,
        [now, this.acct(), JSON.stringify(unknown)],
      );
      // (WHERE true: SQLite would read ON CONFLICT as a join's.) One another instance created meanwhile keeps its account.
      for (const [id, account] of await this.accountsOfDevices(unknown)) accounts.set(id, account);
    }
    // The k-th report of each phone, per kind, goes in the k-th statement of that kind.
    const status: Extract<PhoneReport, { kind: 'status' }>[][] = [];
    const applied: Extract<PhoneReport, { kind: 'applied' }>[][] = [];
    const location: Extract<PhoneReport, { kind: 'location' }>[][] = [];
    const seen = new Map<string, number>();
    const into = <R extends PhoneReport>(rounds: R[][], r: R) => {
      const key = `${r.kind}\u0000${r.deviceId}`;
      const k = seen.get(key) ?? 0;
      seen.set(key, k + 1);
      if (!rounds[k]) rounds[k] = [];
      rounds[k].push(r);
    };
    const touched = new Set<string>();
    for (const r of reports) {
      if (!accounts.has(r.deviceId)) continue;
      if (r.kind !== 'status') touched.add(r.deviceId);
      if (r.kind === 'status') into(status, r);
      else if (r.kind === 'applied') into(applied, r);
      else if (r.kind === 'location') into(location, r);
    }
    for (const rs of status) {
      const rows = rs.map((r) => ({ id: r.deviceId, online: r.online ? 1 : 0, agent: r.agentVersion }));
      await this.s.run(
        `UPDATE devices AS d SET online = x.online, last_seen = @now, agent_version = coalesce(x.agent, d.agent_version)
         FROM ${jsonRecords(d, '@rows', { id: 'text', online: 'integer', agent: 'text' })}
         WHERE d.device_id = x.id AND (d.online IS DISTINCT FROM x.online OR x.online = 1)`,
        { now, rows: JSON.stringify(rows) },
      );
    }
    for (const rs of applied) {
      const rows = rs.map((r) => ({ id: r.deviceId, v: r.version, h: r.hash, at: r.appliedAt, top: Math.max(r.version, r.floor) }));
      await this.s.run(
        `UPDATE devices AS d SET applied_version = x.v, applied_hash = x.h, applied_at = x.at
         FROM ${jsonRecords(d, '@rows', { id: 'text', v: 'integer', h: 'text', at: 'text', top: 'integer' })}
         WHERE d.device_id = x.id AND (d.applied_version IS DISTINCT FROM x.v OR d.applied_hash IS DISTINCT FROM x.h)
           AND (d.applied_version IS NULL OR d.applied_version <= x.top)`,
        { rows: JSON.stringify(rows) },
      );
    }
    for (const rs of location) {
      const rows = rs.map((r) => ({ id: r.deviceId, report: JSON.stringify(r.report) }));
      await this.s.run(
        `UPDATE devices AS d SET last_location = x.report, last_location_at = @now
         FROM ${jsonRecords(d, '@rows', { id: 'text', report: 'text' })} WHERE d.device_id = x.id`,
        { now, rows: JSON.stringify(rows) },
      );
    }
    if (touched.size > 0)
      await this.s.run(`UPDATE devices SET last_seen = ? WHERE device_id IN (SELECT j.value FROM ${jsonArrayTable(d, '?')} j)`, [
        now,
        JSON.stringify([...touched]),
      ]);
    return accounts;
  }

  /** What pushing needs to know of each phone, for a whole batch in one query. */
  async pushContexts(deviceIds: readonly string[]): Promise<Map<string, PushContext>> {
    const rows = (await this.s.all(
      `SELECT d.device_id, d.user_id, d.addr_version, d.addr_content_hash, d.applied_version, d.loc_version, d.loc_content_hash,
              u.display_name, u.callback, u.language, u.location_id, u.own_address, u.recommendations
       FROM ${jsonArrayTable(this.s.dialect, '?')} j JOIN devices d ON d.device_id = j.value LEFT JOIN users u ON u.id = d.user_id
       WHERE d.account_id = ?`,
      [JSON.stringify(deviceIds), this.acct()],
    )) as Row[];
    return new Map(rows.map((r) => [r.device_id as string, toPushContext(r)]));
  }

  async recordIssuedAddress(deviceId: string, version: number, contentHash: string, signed: string, issuedAt: string): Promise<void> {
    await this.s.run(
      `UPDATE devices SET addr_version = ?, addr_content_hash = ?, addr_signed = ?, addr_issued_at = ?, ${RESEND_CLEARED}
       WHERE device_id = ? AND account_id = ?`,
      [version, contentHash, signed, issuedAt, deviceId, this.acct()],
    );
  }

  /**
   * recordIssuedAddress() and recordIssuedLocations() for a push chunk's phones, one statement
   * each (a round trip per phone on PostgreSQL otherwise). Each phone at most once per call.
   * `account_id || ''`: with a plain `account_id = ?` SQLite walked the account's index for
   * every phone of the account and scanned the JSON for each (27 s per 500-phone chunk at
   * 10,000 phones); as an expression it looks each JSON row up by device id instead.
   */
  async recordIssuedMany(
    addresses: readonly { deviceId: string; version: number; contentHash: string; signed: string; issuedAt: string }[],
    locations: readonly { deviceId: string; version: number; contentHash: string }[],
  ): Promise<{ addresses: Set<string>; locations: Set<string> }> {
    const d = this.s.dialect;
    const ids = (rows: { device_id: string }[]) => new Set(rows.map((r) => r.device_id));
    // Only above what is stored: another instance may have issued to the phone since this push
    // read it. The caller learns which rows it recorded and looks at the others again.
    const recorded = { addresses: new Set<string>(), locations: new Set<string>() };
    if (addresses.length > 0)
      recorded.addresses = ids(
        await this.s.all<{ device_id: string }>(
          `UPDATE devices AS d SET addr_version = x.v, addr_content_hash = x.h, addr_signed = x.signed, addr_issued_at = x.at, ${RESEND_CLEARED}
         FROM ${jsonRecords(d, '@rows', { id: 'text', v: 'integer', h: 'text', signed: 'text', at: 'text' })}
         WHERE d.device_id = x.id AND d.account_id || '' = @acct AND d.addr_version < x.v RETURNING device_id`,
          {
            acct: this.acct(),
            rows: JSON.stringify(
              addresses.map((a) => ({ id: a.deviceId, v: a.version, h: a.contentHash, signed: a.signed, at: a.issuedAt })),
            ),
          },
        ),
      );
    if (locations.length > 0)
      recorded.locations = ids(
        await this.s.all<{ device_id: string }>(
          `UPDATE devices AS d SET loc_version = x.v, loc_content_hash = x.h
         FROM ${jsonRecords(d, '@rows', { id: 'text', v: 'integer', h: 'text' })}
         WHERE d.device_id = x.id AND d.account_id || '' = @acct AND d.loc_version < x.v RETURNING device_id`,
          { acct: this.acct(), rows: JSON.stringify(locations.map((l) => ({ id: l.deviceId, v: l.version, h: l.contentHash }))) },
        ),
      );
    return recorded;
  }

  async issuedAddress(deviceId: string): Promise<{ version: number; contentHash: string | null; signed: string | null } | null> {
    const r = (await this.s.get('SELECT addr_version, addr_content_hash, addr_signed FROM devices WHERE device_id = ? AND account_id = ?', [
      deviceId,
      this.acct(),
    ])) as Row | undefined;
    return r ? toIssuedAddress(r) : null;
  }

  async recordIssuedLocations(deviceId: string, version: number, contentHash: string): Promise<void> {
    await this.s.run('UPDATE devices SET loc_version = ?, loc_content_hash = ? WHERE device_id = ? AND account_id = ?', [
      version,
      contentHash,
      deviceId,
      this.acct(),
    ]);
  }

  async issuedLocations(deviceId: string): Promise<{ version: number; contentHash: string | null } | null> {
    const r = (await this.s.get('SELECT loc_version, loc_content_hash FROM devices WHERE device_id = ? AND account_id = ?', [
      deviceId,
      this.acct(),
    ])) as Row | undefined;
    return r ? toIssuedLocations(r) : null;
  }

  async setDeviceStatus(deviceId: string, online: boolean, agentVersion: string | null): Promise<void> {
    if (!(await this.deviceExists(deviceId))) await this.ensureDevice(deviceId);
    await this.s.run(
      'UPDATE devices SET online = ?, last_seen = ?, agent_version = coalesce(?, agent_version) WHERE device_id = ? AND account_id = ? AND (online IS DISTINCT FROM ? OR ? = 1)',
      [online ? 1 : 0, this.s.iso(), agentVersion, deviceId, this.acct(), online ? 1 : 0, online ? 1 : 0],
    );
  }

  /**
   * What the phone reports it holds. A report older than the stored one is ignored: with several
   * instances, a phone's reports reach different instances and may commit out of order (its
   * "nothing yet" at connect after the version it applied next). A phone whose store was reset
   * reports less than it held, with its replay floor at least the stored version: that is kept.
   */
  async setDeviceApplied(deviceId: string, version: number, hash: string, appliedAt: string | null, floor = 0): Promise<void> {
    if (!(await this.deviceExists(deviceId))) await this.ensureDevice(deviceId);
    await this.s.run(
      'UPDATE devices SET applied_version = ?, applied_hash = ?, applied_at = ? WHERE device_id = ? AND account_id = ? AND (applied_version IS DISTINCT FROM ? OR applied_hash IS DISTINCT FROM ?) AND (applied_version IS NULL OR applied_version <= ?)',
      [version, hash, appliedAt, deviceId, this.acct(), version, hash, Math.max(version, floor)],
    );
  }

  /** Stored only as decodePayload('location') passed it: the row reads back as that type. */
  async setDeviceLocationReport(deviceId: string, report: LocationPayload): Promise<void> {
    await this.ensureDevice(deviceId);
    await this.s.run('UPDATE devices SET last_location = ?, last_location_at = ? WHERE device_id = ? AND account_id = ?', [
      JSON.stringify(report),
      this.s.iso(),
      deviceId,
      this.acct(),
    ]);
  }

  async setDeviceMismatch(deviceId: string, mismatch: unknown): Promise<void> {
    await this.ensureDevice(deviceId);
    await this.s.run('UPDATE devices SET mismatch = ?, mismatch_at = ? WHERE device_id = ? AND account_id = ?', [
      mismatch === null ? null : JSON.stringify(mismatch),
      mismatch === null ? null : this.s.iso(),
      deviceId,
      this.acct(),
    ]);
  }

  /**
   * The phone's latest location-disagreement state (null: resolved), as of its event's time.
   * An event older than the one applied last (redelivered, or late from another instance)
   * changes nothing: a late "open" must not mark a phone whose disagreement was resolved.
   * Older is by the phone's monotonic clock when both events carry one from the same boot
   * (a wall clock stepped back a day must not make a new event look late), else by ts.
   * Returns whether it was applied.
   */
  async setDeviceDisagreement(deviceId: string, disagreement: unknown, eventTs: string, order: PhoneClock | null = null): Promise<boolean> {
    await this.ensureDevice(deviceId);
    const last = (await this.s.get(
      'SELECT disagreement_at AS at, disagreement_boot AS boot, disagreement_mono AS mono FROM devices WHERE device_id = ? AND account_id = ?',
      [deviceId, this.acct()],
    )) as
      | {
          at: string | null;
          boot: string | null;
          mono: number | null;
        }
      | undefined;
    if (!last) return false; // another account's phone
    if (last.at !== null) {
      const sameBoot = order !== null && last.boot === order.boot && last.mono !== null;
      const newer = sameBoot ? order.mono >= last.mono! : eventTs >= last.at;
      if (!newer) return false;
    }
    await this.s.run(
      'UPDATE devices SET disagreement = ?, disagreement_at = ?, disagreement_boot = ?, disagreement_mono = ? WHERE device_id = ? AND account_id = ?',
      [
        disagreement === null ? null : JSON.stringify(disagreement),
        eventTs,
        order?.boot ?? null,
        order?.mono ?? null,
        deviceId,
        this.acct(),
      ],
    );
    return true;
  }

  /**
   * The phone acknowledged the notice for an address. An acknowledgement for an older address
   * than the one recorded (a late redelivery) changes nothing; returns whether it was applied.
   */
  async setNoticeAck(deviceId: string, ack: NoticeAck): Promise<boolean> {
    await this.ensureDevice(deviceId);
    return (
      (
        await this.s.run(
          `UPDATE devices SET notice_version = @version, notice_hash = @hash, notice_shown_at = @shownAt, notice_ack_at = @acknowledgedAt,
             notice_ack_via = @via, notice_user_id = @userId
           WHERE device_id = @deviceId AND account_id = @accountId AND (notice_ack_at IS NULL OR coalesce(notice_version, 0) < coalesce(@version, 0)
             OR (coalesce(notice_version, 0) = coalesce(@version, 0) AND notice_ack_at <= @acknowledgedAt))`,
          { ...ack, deviceId, accountId: this.acct() },
        )
      ).changes > 0
    );
  }

  async setDeviceCredential(deviceId: string, mosquittoHash: string, bcrypt: string | null = null): Promise<void> {
    await this.ensureDevice(deviceId);
    await this.s.run('UPDATE devices SET mqtt_hash = ?, mqtt_bcrypt = ?, mqtt_issued_at = ? WHERE device_id = ? AND account_id = ?', [
      mosquittoHash,
      bcrypt,
      this.s.iso(),
      deviceId,
      this.acct(),
    ]);
  }

  /** The phone's broker login hash, whichever its account (the broker authenticates before any account is known). */
  async deviceCredential(deviceId: string): Promise<string | null> {
    return ((await this.s.column('SELECT mqtt_hash FROM devices WHERE device_id = ?', [deviceId]))[0] as string | null | undefined) ?? null;
  }

  /** Every account's phone logins: the broker's password file serves the whole deployment. */
  async deviceCredentials(): Promise<{ deviceId: string; hash: string; bcrypt: string | null }[]> {
    return (await this.s.all(
      'SELECT device_id AS "deviceId", mqtt_hash AS hash, mqtt_bcrypt AS bcrypt FROM devices WHERE mqtt_hash IS NOT NULL ORDER BY device_id',
    )) as { deviceId: string; hash: string; bcrypt: string | null }[];
  }

  /** A phone was heard from (any message): the last-seen sweep counts from here. */
  async touchDevice(deviceId: string): Promise<void> {
    await this.s.run('UPDATE devices SET last_seen = ? WHERE device_id = ? AND account_id = ?', [this.s.iso(), deviceId, this.acct()]);
  }

  /**
   * The issued addresses that phones online have not confirmed (applied) and whose resend is
   * due, of every account: claimed in one statement, so two instances sweeping at once take each
   * phone once. The first is due `baseMs` after the issue; each resend puts the next off twice
   * as long as the last, up to 64 times `baseMs` (a phone that refuses the document is not sent
   * it every minute). Nothing is written for a phone not due: a push's phones, not confirmed
   * for a few seconds, cost no write each.
   */
  async claimResends(nowMs: number, baseMs: number): Promise<{ deviceId: string; version: number; signed: string }[]> {
    const rows = await this.s.all<{ device_id: string; addr_version: number; addr_signed: string }>(
      `UPDATE devices SET addr_resends = addr_resends + 1,
         addr_resend_due = CAST(? AS BIGINT) + CAST(? AS BIGINT) * (CASE WHEN addr_resends >= 5 THEN 64 ELSE 2 << addr_resends END)
       WHERE online = 1 AND addr_version > 0 AND addr_signed IS NOT NULL AND (applied_version IS NULL OR applied_version < addr_version)
         AND (addr_resend_due <= CAST(? AS BIGINT) OR (addr_resend_due IS NULL AND COALESCE(addr_issued_at, '') <= ?))
       RETURNING device_id, addr_version, addr_signed`,
      [nowMs, baseMs, nowMs, new Date(nowMs - baseMs).toISOString()],
    );
    return rows.map((r) => ({ deviceId: r.device_id, version: Number(r.addr_version), signed: r.addr_signed }));
  }

  /** Online phones (of every account) not heard from since the cutoff are marked offline; returns their ids. */
  async markSilentOffline(cutoffIso: string): Promise<string[]> {
    const where = 'online = 1 AND (last_seen IS NULL OR last_seen < ?)';
    const ids = await this.s.column<string>(`SELECT device_id FROM devices WHERE ${where}`, [cutoffIso]);
    if (ids.length > 0) await this.s.run(`UPDATE devices SET online = 0 WHERE ${where}`, [cutoffIso]);
    return ids;
  }

  async deleteDevice(deviceId: string): Promise<void> {
    await this.s.run('DELETE FROM devices WHERE device_id = ? AND account_id = ?', [deviceId, this.acct()]);
  }
}
