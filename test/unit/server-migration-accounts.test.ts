// The customer-accounts migration on a database a single-customer server filled: the settings
// row, locations, users, phones and tokens all become the default account's; locations and
// users are rebuilt on SQLite (their codes and names become unique per account), so every
// row, every reference and the id counters must come through it.
import { describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { migrate } from '../../provisioning/common/sqlite.js';
import { SERVER_MIGRATIONS } from '../../provisioning/server/db/migrations.js';

const ACCOUNTS = SERVER_MIGRATIONS.find((m) => m.name.startsWith('customer accounts'))!;
const now = '2026-12-01T00:00:00.000Z';

describe('the customer-accounts migration (SQLite)', () => {
  it('moves everything into the default account, keeps rows, references and id counters, and makes codes unique per account', () => {
    const db = new Database(':memory:');
    db.pragma('foreign_keys = ON');
    migrate(
      db,
      SERVER_MIGRATIONS.filter((m) => m.version < ACCOUNTS.version),
    );
    db.prepare('UPDATE account SET name = \'Example Corp\', e911_enabled = 1, smtp = \'{"host":"mx"}\'').run();
    const loc = db.prepare(
      `INSERT INTO locations (code, name, country, house_number, street, city, state, postal_code, time_zone, created_at, updated_at)
       VALUES (?, 'HQ', 'US', '1', 'Main St', 'Austin', 'TX', '78701', 'America/Chicago', ?, ?)`,
    );
    loc.run('HQ', now, now);
    loc.run('GONE', now, now);
    db.prepare("DELETE FROM locations WHERE code = 'GONE'").run();
    db.prepare(
      "INSERT INTO users (username, display_name, location_id, emails, created_at, updated_at) VALUES ('alice', 'Alice', 1, '[]', ?, ?)",
    ).run(now, now);
    db.prepare("INSERT INTO devices (device_id, user_id, mqtt_hash, created_at) VALUES ('phone-1', 1, 'h', ?)").run(now);
    db.prepare("INSERT INTO api_tokens (name, hash, created_at) VALUES ('admin', 'x', ?)").run(now);

    migrate(db, SERVER_MIGRATIONS);
    expect(db.prepare('SELECT id, name, e911_enabled, smtp FROM accounts').all()).toEqual([
      { id: 'default', name: 'Example Corp', e911_enabled: 1, smtp: '{"host":"mx"}' },
    ]);
    expect(db.prepare('SELECT id, code, account_id FROM locations').all()).toEqual([{ id: 1, code: 'HQ', account_id: 'default' }]);
    expect(db.prepare('SELECT id, location_id, account_id FROM users').all()).toEqual([{ id: 1, location_id: 1, account_id: 'default' }]);
    // The phone is still alice's (rebuilding users did not null it).
    expect(db.prepare('SELECT device_id, user_id, account_id FROM devices').all()).toEqual([
      { device_id: 'phone-1', user_id: 1, account_id: 'default' },
    ]);
    // Tokens made before accounts were the deployment's admins: provider tokens.
    expect(db.prepare('SELECT account_id, provider FROM api_tokens').all()).toEqual([{ account_id: 'default', provider: 1 }]);
    expect(db.pragma('foreign_key_check')).toEqual([]);
    // References still hold: a user at a missing location is refused, a used location cannot go.
    expect(() =>
      db
        .prepare(
          "INSERT INTO users (username, display_name, location_id, emails, created_at, updated_at) VALUES ('bob', 'Bob', 99, '[]', ?, ?)",
        )
        .run(now, now),
    ).toThrow(/FOREIGN KEY/);
    expect(() => db.prepare('DELETE FROM locations WHERE id = 1').run()).toThrow(/FOREIGN KEY/);
    // Ids go on from where they were: the deleted location's 2 is not handed out again.
    db.prepare('INSERT INTO accounts (id, created_at, updated_at) VALUES (?, ?, ?)').run('acme', now, now);
    const id = loc.source
      .replace('INSERT INTO locations (code,', 'INSERT INTO locations (account_id, code,')
      .replace('VALUES (?,', "VALUES ('acme', ?,");
    expect(db.prepare(`${id} RETURNING id`).get('HQ', now, now)).toEqual({ id: 3 });
    // The same code in another account is fine, twice in one account is not.
    expect(() => db.prepare(id).run('HQ', now, now)).toThrow(/UNIQUE/);
    expect(
      db
        .prepare(
          "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name IN ('users', 'locations', 'devices') AND sql IS NOT NULL ORDER BY name",
        )
        .all(),
    ).toEqual(
      ['devices_account', 'devices_online_seen', 'devices_user', 'locations_account', 'users_account', 'users_location'].map((name) => ({
        name,
      })),
    );
  });
});
