// Users: who sits at a phone (name, extension, callback, location, emails); the
// devices assigned to them are read with them.
import type { UserRecordInput } from '../validation.js';
import type { ServerDb } from './open.js';
import { bool, int, intOrNull, json, parseJson, rowMapper, sortedList, text, textOrNull, type Row } from './rows.js';
import type { CsvUserRow, User } from './types.js';

const USER_SELECT = `SELECT u.*, (SELECT group_concat(device_id) FROM devices d WHERE d.user_id = u.id) AS device_ids FROM users u`;

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
  constructor(private readonly s: ServerDb) {}

  users(filter: { locationId?: number; limit?: number; offset?: number } = {}): User[] {
    const where = filter.locationId !== undefined ? 'WHERE u.location_id = @locationId' : '';
    return (
      this.s
        .q(`${USER_SELECT} ${where} ORDER BY u.id LIMIT @limit OFFSET @offset`)
        .all({ locationId: filter.locationId, limit: filter.limit ?? -1, offset: filter.offset ?? 0 }) as Row[]
    ).map(toUser);
  }

  /** The mobiles of the people at a location, in user order: what an emergency there texts. One column, not every user row: a site may have 100,000 people. */
  mobilesAt(locationId: number): string[] {
    return this.s
      .q("SELECT mobile FROM users WHERE location_id = ? AND mobile IS NOT NULL AND mobile <> '' ORDER BY id")
      .pluck()
      .all(locationId) as string[];
  }

  userCount(filter: { locationId?: number } = {}): number {
    const r =
      filter.locationId !== undefined
        ? this.s.q('SELECT count(*) AS n FROM users WHERE location_id = ?').get(filter.locationId)
        : this.s.q('SELECT count(*) AS n FROM users').get();
    return (r as { n: number }).n;
  }

  user(id: number): User | null {
    const r = this.s.q(`${USER_SELECT} WHERE u.id = ?`).get(id) as Row | undefined;
    return r ? toUser(r) : null;
  }

  userByUsername(username: string): User | null {
    const r = this.s.q(`${USER_SELECT} WHERE u.username = ? COLLATE NOCASE`).get(username) as Row | undefined;
    return r ? toUser(r) : null;
  }

  userIds(filter: { locationId?: number } = {}): number[] {
    const rows =
      filter.locationId !== undefined
        ? this.s.q('SELECT id FROM users WHERE location_id = ? ORDER BY id').all(filter.locationId)
        : this.s.q('SELECT id FROM users ORDER BY id').all();
    return (rows as { id: number }[]).map((r) => r.id);
  }

  existingUserIds(ids: readonly number[]): Set<number> {
    const stmt = this.s.q('SELECT id FROM users WHERE id = ?').pluck();
    return new Set(ids.filter((id) => stmt.get(id) !== undefined));
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
    };
  }

  insertUser(u: UserRecordInput): number {
    const r = this.s
      .q(
        `INSERT INTO users (username, display_name, extension, location_id, callback, own_address, language, mobile, recommendations, emails,
           created_at, updated_at)
         VALUES (@username, @display_name, @extension, @location_id, @callback, @own_address, @language, @mobile, @recommendations, @emails,
           @now, @now)`,
      )
      .run(this.params(u));
    return Number(r.lastInsertRowid);
  }

  updateUser(id: number, u: UserRecordInput): void {
    this.s
      .q(
        `UPDATE users SET username = @username, display_name = @display_name, extension = @extension, location_id = @location_id,
           callback = @callback, own_address = @own_address, language = @language, mobile = @mobile, recommendations = @recommendations,
           emails = @emails, updated_at = @now
         WHERE id = @id`,
      )
      .run({ ...this.params(u), id });
  }

  /** A location picked on the phone: it replaces the user's own address, if any (a user has one or the other). */
  setUserLocation(id: number, locationId: number): void {
    this.s.q('UPDATE users SET location_id = ?, own_address = NULL, updated_at = ? WHERE id = ?').run(locationId, this.s.iso(), id);
  }

  /** Replaces a user's email list; false when the list was already that (no write). */
  setUserEmails(id: number, emails: readonly string[]): boolean {
    return (
      this.s
        .q('UPDATE users SET emails = ?, updated_at = ? WHERE id = ? AND emails IS NOT ?')
        .run(JSON.stringify(emails), this.s.iso(), id, JSON.stringify(emails)).changes > 0
    );
  }

  userEmails(id: number): string[] | null {
    const v = this.s.q('SELECT emails FROM users WHERE id = ?').pluck().get(id);
    return v === undefined ? null : parseJson<string[]>(v, []);
  }

  /** Users with their location, for the CSV download. */
  csvUserRows(): CsvUserRow[] {
    return (
      this.s
        .q(
          `SELECT u.id, u.username, u.display_name, u.extension, l.code AS location_code, l.name AS location_name, u.emails
           FROM users u LEFT JOIN locations l ON l.id = u.location_id ORDER BY u.id`,
        )
        .all() as Row[]
    ).map(toCsvUserRow);
  }

  /** Every user's id, name and current email list (as stored JSON), for validating uploads in one read. */
  userEmailIndex(): { byId: Map<number, string>; byName: Map<string, number> } {
    const byId = new Map<number, string>();
    const byName = new Map<string, number>();
    for (const r of this.s.q('SELECT id, username, emails FROM users').raw().iterate() as Iterable<[number, string, string]>) {
      byId.set(r[0], r[2]);
      byName.set(r[1].toLowerCase(), r[0]);
    }
    return { byId, byName };
  }

  deleteUser(id: number): void {
    this.s.q('DELETE FROM users WHERE id = ?').run(id);
  }
}
