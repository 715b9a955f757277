// The security-desk call migration on a database that already holds notifications: the
// notifications table is rebuilt (its CHECKs change), so every row must come through it.
import { describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { migrate } from '../../provisioning/common/sqlite.js';
import { SERVER_MIGRATIONS } from '../../provisioning/server/db/migrations.js';

const DESK = SERVER_MIGRATIONS.find((m) => m.name.startsWith('security-desk calls'))!;

describe('the security-desk call migration', () => {
  it('keeps every notification row, adds the call columns, and takes call rows and the unacknowledged status', () => {
    const db = new Database(':memory:');
    db.pragma('foreign_keys = ON');
    migrate(
      db,
      SERVER_MIGRATIONS.filter((m) => m.version < DESK.version),
    );
    const now = '2026-12-01T00:00:00.000Z';
    db.prepare("INSERT INTO events (id, device_id, type, ts, received_at, data) VALUES ('e1', 'p1', 'emergency-call', ?, ?, '{}')").run(
      now,
      now,
    );
    db.prepare(
      `INSERT INTO notifications (event_id, channel, recipient, status, attempts, next_attempt_at, provider_id, created_at, sent_at, updated_at, claimed_by)
       VALUES ('e1', 'email', 'a@example.com', 'sent', 2, ?, 'm1', ?, ?, ?, 'main/boot')`,
    ).run(now, now, now, now);
    expect(() =>
      db
        .prepare(
          "INSERT INTO notifications (event_id, channel, recipient, next_attempt_at, created_at, updated_at) VALUES ('e1', 'call', 'x', ?, ?, ?)",
        )
        .run(now, now, now),
    ).toThrow(/CHECK/);

    // Up to this step: a later one (customer accounts) moves the account row into accounts.
    migrate(
      db,
      SERVER_MIGRATIONS.filter((m) => m.version <= DESK.version),
    );
    expect(db.prepare('SELECT * FROM notifications').all()).toEqual([
      expect.objectContaining({
        id: 1,
        channel: 'email',
        recipient: 'a@example.com',
        status: 'sent',
        attempts: 2,
        provider_id: 'm1',
        claimed_by: 'main/boot',
        acknowledged_at: null,
        ack_method: null,
        plays: null,
      }),
    ]);
    db.prepare(
      "INSERT INTO notifications (event_id, channel, recipient, status, next_attempt_at, created_at, updated_at) VALUES ('e1', 'call', 'sip:desk@pbx', 'unacknowledged', ?, ?, ?)",
    ).run(now, now, now);
    expect(db.prepare('SELECT call_numbers FROM locations').all()).toEqual([]);
    expect(db.prepare('SELECT call FROM account').get()).toEqual({ call: null });
    expect(
      db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'notifications' AND name = 'notifications_due'").get(),
    ).toBeTruthy();
    expect(db.pragma('foreign_key_check')).toEqual([]);
  });
});
