// Users: who sits at a phone (name, extension, callback, location, emails); the
// devices assigned to them are read with them.
import type { UserRecordInput } from '../validation.js';
import { commaList, type Dialect, type Sql } from './sql.js';
import { bool, int, intOrNull, json, parseJson, rowMapper, sortedList, text, textOrNull, type Row } from './rows.js';
import type { CsvUserRow, User } from './types.js';

const userSelect = (d: Dialect) =>
  `SELECT u.*, (SELECT ${commaList(d, 'device_id')} FROM devices d WHERE d.user_id = u.id) AS device_ids FROM users u`;

export const toUser = rowMapper<User>({
  id: int('id'),
  username: text('username'),
  displayName: text('display_name'),
  extension: textOrNull('extension'),
  locationId: intOrNull('location_id'),
  callback: textOrNull('callback'),
  ownAddress: json('own_address', null),
  language: text('language'),
  mobile: textOrNull('mobile'),
  recommendations: bool('recommendations'),
  emails: json('emails', []),
  deviceIds: sortedList('device_ids'),
  createdAt: text('created_at'),
  updatedAt: text('updated_at'),
});

const toCsvUserRow = rowMapper<CsvUserRow>({
  id: int('id'),
  username: text('username'),
  displayName: text('display_name'),
  extension: textOrNull('extension'),
  locationCode: textOrNull('location_code'),
  locationName: textOrNull('location_name'),
  emails: json('emails', []),
});

export class UserStore {
  constructor(
    private readonly s: Sql,
    private readonly acct: () => string,
  ) {}

  async users(filter: { locationId?: number; limit?: number; offset?: number } = {}): Promise<User[]> {
    const where = `WHERE u.account_id = @account_id${filter.locationId !== undefined ? ' AND u.location_id = @locationId' : ''}`;
    return (
      (await this.s.all(`${userSelect(this.s.dialect)} ${where} ORDER BY u.id LIMIT @limit OFFSET @offset`, {
        locationId: filter.locationId,
        account_id: this.acct(),
        // No limit: -1 in SQLite, NULL in PostgreSQL (which refuses a negative one).
        limit: filter.limit ?? (this.s.dialect === 'postgres' ? null : -1),
        offset: filter.offset ?? 0,
      })) as Row[]
    ).map(toUser);
  }

  /** The mobiles of the people at a location, in user order: what an emergency there texts. One column, not every user row: a site may have 100,000 people. */
  async mobilesAt(locationId: number): Promise<string[]> {
    return (await this.s.column(
      "SELECT mobile FROM users WHERE location_id = ? AND account_id = ? AND mobile IS NOT NULL AND mobile <> '' ORDER BY id",
      [locationId, this.acct()],
    )) as string[];
  }

  async userCount(filter: { locationId?: number } = {}): Promise<number> {
    const r =
      filter.locationId !== undefined
        ? await this.s.get('SELECT count(*) AS n FROM users WHERE location_id = ? AND account_id = ?', [filter.locationId, this.acct()])
        : await this.s.get('SELECT count(*) AS n FROM users WHERE account_id = ?', [this.acct()]);
    return (r as { n: number }).n;
  }

  async user(id: number): Promise<User | null> {
    const r = (await this.s.get(`${userSelect(this.s.dialect)} WHERE u.id = ? AND u.account_id = ?`, [id, this.acct()])) as Row | undefined;
    return r ? toUser(r) : null;
  }

  async userByUsername(username: string): Promise<User | null> {
    const r = (await this.s.get(`${userSelect(this.s.dialect)} WHERE lower(u.username) = lower(?) AND u.account_id = ?`, [
      username,
      this.acct(),
    ])) as Row | undefined;
    return r ? toUser(r) : null;
  }

  async userIds(filter: { locationId?: number } = {}): Promise<number[]> {
    const rows =
      filter.locationId !== undefined
        ? await this.s.all('SELECT id FROM users WHERE location_id = ? AND account_id = ? ORDER BY id', [filter.locationId, this.acct()])
        : await this.s.all('SELECT id FROM users WHERE account_id = ? ORDER BY id', [this.acct()]);
    return (rows as { id: number }[]).map((r) => r.id);
  }

  async existingUserIds(ids: readonly number[]): Promise<Set<number>> {
    const found = new Set<number>();
    for (const id of ids)
      if ((await this.s.column('SELECT id FROM users WHERE id = ? AND account_id = ?', [id, this.acct()])).length > 0) found.add(id);
    return found;
  }

  private params(u: UserRecordInput) {
    return {
      username: u.username,
      display_name: u.displayName,
      extension: u.extension ?? null,
      location_id: u.locationId,
      callback: u.callback,
      own_address: u.ownAddress ? JSON.stringify(u.ownAddress) : null,
      language: u.language ?? 'en',
      mobile: u.mobile ?? null,
      recommendations: u.recommendations ? 1 : 0,
      emails: JSON.stringify(u.emails),
      now: this.s.iso(),
      account_id: this.acct(),
    };
  }

  async insertUser(u: UserRecordInput): Promise<number> {
    const r = await this.s.get<{ id: number }>(
      `INSERT INTO users (username, display_name, extension, location_id, callback, own_address, language, mobile, recommendations, emails,
           created_at, updated_at, account_id)
         VALUES (@username, @display_name, @extension, @location_id, @callback, @own_address, @language, @mobile, @recommendations, @emails,
           @now, @now, @account_id)
         RETURNING id`,
      this.params(u),
    );
    return r!.id;
  }

  async updateUser(id: number, u: UserRecordInput): Promise<void> {
    await this.s.run(
      `UPDATE users SET username = @username, display_name = @display_name, extension = @extension, location_id = @location_id,
           callback = @callback, own_address = @own_address, language = @language, mobile = @mobile, recommendations = @recommendations,
           emails = @emails, updated_at = @now
         WHERE id = @id AND account_id = @account_id`,
      { ...this.params(u), id },
    );
  }

  /** A location picked on the phone: it replaces the user's own address, if any (a user has one or the other). */
  async setUserLocation(id: number, locationId: number): Promise<void> {
    await this.s.run('UPDATE users SET location_id = ?, own_address = NULL, updated_at = ? WHERE id = ? AND account_id = ?', [
      locationId,
      this.s.iso(),
      id,
      this.acct(),
    ]);
  }

  /** Replaces a user's email list; false when the list was already that (no write). */
  async setUserEmails(id: number, emails: readonly string[]): Promise<boolean> {
    return (
      (
        await this.s.run('UPDATE users SET emails = ?, updated_at = ? WHERE id = ? AND account_id = ? AND emails IS DISTINCT FROM ?', [
          JSON.stringify(emails),
          this.s.iso(),
          id,
          this.acct(),
          JSON.stringify(emails),
        ])
      ).changes > 0
    );
  }

  async userEmails(id: number): Promise<string[] | null> {
    const v = (await this.s.column('SELECT emails FROM users WHERE id = ? AND account_id = ?', [id, this.acct()]))[0];
    return v === undefined ? null : parseJson<string[]>(v, []);
  }

  /** Users with their location, for the CSV download. */
  async csvUserRows(): Promise<CsvUserRow[]> {
    return (
      (await this.s.all(
        `SELECT u.id, u.username, u.display_name, u.extension, l.code AS location_code, l.name AS location_name, u.emails
           FROM users u LEFT JOIN locations l ON l.id = u.location_id WHERE u.account_id = ? ORDER BY u.id`,
        [this.acct()],
      )) as Row[]
    ).map(toCsvUserRow);
  }

  /** Every user's id, name and current email list (as stored JSON), for validating uploads in one read. */
  async userEmailIndex(): Promise<{ byId: Map<number, string>; byName: Map<string, number> }> {
    const byId = new Map<number, string>();
    const byName = new Map<string, number>();
    for (const r of await this.s.all<{ id: number; username: string; emails: string }>(
      'SELECT id, username, emails FROM users WHERE account_id = ?',
      [this.acct()],
    )) {
      byId.set(r.id, r.emails);
      byName.set(r.username.toLowerCase(), r.id);
    }
    return { byId, byName };
  }

  async deleteUser(id: number): Promise<void> {
    await this.s.run('DELETE FROM users WHERE id = ? AND account_id = ?', [id, this.acct()]);
  }
}
