// Forward-only numbered migrations, compiled into the code so a bundled
// executable carries them. Each runs in its own transaction and sets
// PRAGMA user_version to its number. Never edit one that has shipped: add one.
import type { Migration } from '../../provisioning/common/sqlite.js';

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'address, history, outbox, settings',
    sql: `
      CREATE TABLE address (
        id          INTEGER PRIMARY KEY CHECK (id = 1),
        device_id   TEXT NOT NULL,
        version     INTEGER NOT NULL,
        hash        TEXT NOT NULL,
        document    TEXT NOT NULL,
        signature   TEXT NOT NULL,
        received_at TEXT NOT NULL,
        applied_at  TEXT NOT NULL
      );
      CREATE TABLE address_history (
        seq         INTEGER PRIMARY KEY AUTOINCREMENT,
        version     INTEGER NOT NULL,
        hash        TEXT NOT NULL,
        document    TEXT NOT NULL,
        signature   TEXT NOT NULL,
        received_at TEXT NOT NULL,
        applied_at  TEXT NOT NULL
      );
      CREATE TABLE outbox (
        seq        INTEGER PRIMARY KEY AUTOINCREMENT,
        id         TEXT NOT NULL UNIQUE,
        type       TEXT NOT NULL,
        protected  INTEGER NOT NULL DEFAULT 0,
        payload    TEXT NOT NULL,
        created_at TEXT NOT NULL
      );
      CREATE INDEX outbox_evictable ON outbox (protected, seq);
      CREATE TABLE settings (
        key        TEXT PRIMARY KEY,
        value      TEXT NOT NULL,
        updated_at TEXT NOT NULL
      );
    `,
  },
  {
    version: 2,
    name: 'emergency-services notice, diagnostics runs',
    sql: `
      CREATE TABLE emergency_notice (
        id               INTEGER PRIMARY KEY CHECK (id = 1),
        address_hash     TEXT,
        address_version  INTEGER,
        shown_at         TEXT NOT NULL,
        acknowledged_at  TEXT,
        acknowledged_via TEXT
      );
      CREATE TABLE diagnostics_runs (
        seq        INTEGER PRIMARY KEY AUTOINCREMENT,
        id         TEXT NOT NULL UNIQUE,
        started_at TEXT NOT NULL,
        overall    TEXT NOT NULL,
        report     TEXT NOT NULL
      );
    `,
  },
  {
    version: 3,
    name: 'location observations',
    sql: `
      CREATE TABLE location_observation (
        source      TEXT PRIMARY KEY,
        fingerprint TEXT NOT NULL,
        data        TEXT NOT NULL,
        observed_at TEXT NOT NULL
      );
    `,
  },
  {
    version: 4,
    name: 'emergency events begun before the INVITE',
    // No index, no AUTOINCREMENT: the commit before the INVITE writes one page, not four
    // (outbox row, its id index, its evictable index, sqlite_sequence). Rows move to the
    // outbox when the event is completed, or at the next open after a crash.
    sql: `
      CREATE TABLE emergency_begun (
        id         TEXT NOT NULL,
        type       TEXT NOT NULL,
        payload    TEXT NOT NULL,
        created_at TEXT NOT NULL
      );
    `,
  },
];
