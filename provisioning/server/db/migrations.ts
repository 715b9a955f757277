// The server's schema: forward-only numbered migrations compiled into the code, one
// list for both stores. A step whose SQL is the same in SQLite and PostgreSQL is one
// string; where they differ (types, rebuilding a table) it gives each dialect its own
// text in the same entry, so the two schemas never drift apart in number or purpose.
// SQLite applies them with the agent's migrate() (PRAGMA user_version); PostgreSQL with
// migratePostgres() in pg-sql.ts. Never edit one that has shipped: add one.
// Over 400 lines: the schema's whole history, one entry per step in order; splitting it
// would make the order harder to see.
import type { Migration } from '../../common/sqlite.js';
import type { Dialect } from './sql.js';

export interface ServerMigration {
  version: number;
  name: string;
  sql: string | Readonly<Record<Dialect, string>>;
}

export const SERVER_SCHEMA: readonly ServerMigration[] = [
  {
    version: 1,
    name: 'account, locations, users, devices, events, notifications, audit, jobs, tokens',
    sql: {
      sqlite: `
      CREATE TABLE account (
        id                      INTEGER PRIMARY KEY CHECK (id = 1),
        name                    TEXT NOT NULL DEFAULT '',
        contact_email           TEXT NOT NULL DEFAULT '',
        e911_enabled            INTEGER NOT NULL DEFAULT 0,
        e911_changed_at         TEXT,
        -- On: every user gets location recommendations; off: each user's own setting rules.
        recommendations         INTEGER NOT NULL DEFAULT 0,
        notification_policy     TEXT NOT NULL DEFAULT 'all' CHECK (notification_policy IN ('app-only', 'app-then-email-sms', 'all')),
        smtp                    TEXT,
        sms                     TEXT,
        webhook                 TEXT,
        updated_at              TEXT NOT NULL
      );
      INSERT INTO account (id, updated_at) VALUES (1, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));

      CREATE TABLE locations (
        id                  INTEGER PRIMARY KEY AUTOINCREMENT,
        code                TEXT NOT NULL UNIQUE,
        name                TEXT NOT NULL,
        country             TEXT NOT NULL,
        house_number        TEXT NOT NULL,
        house_number_suffix TEXT,
        street              TEXT NOT NULL,
        street2             TEXT,
        city                TEXT NOT NULL,
        state               TEXT NOT NULL,
        postal_code         TEXT NOT NULL,
        plus4               TEXT,
        building            TEXT,
        floor               TEXT,
        room                TEXT,
        time_zone           TEXT NOT NULL,
        ip_groups           TEXT NOT NULL DEFAULT '[]',
        switch_ports        TEXT NOT NULL DEFAULT '[]',
        admin_emails        TEXT NOT NULL DEFAULT '[]',
        sms_numbers         TEXT NOT NULL DEFAULT '[]',
        created_at          TEXT NOT NULL,
        updated_at          TEXT NOT NULL
      );

      CREATE TABLE users (
        id               INTEGER PRIMARY KEY AUTOINCREMENT,
        username         TEXT NOT NULL UNIQUE,
        display_name     TEXT NOT NULL,
        extension        TEXT,
        location_id      INTEGER REFERENCES locations (id) ON DELETE RESTRICT,
        callback         TEXT,
        language         TEXT NOT NULL DEFAULT 'en',
        recommendations  INTEGER NOT NULL DEFAULT 0,
        emails           TEXT NOT NULL DEFAULT '[]',
        created_at       TEXT NOT NULL,
        updated_at       TEXT NOT NULL
      );
      CREATE INDEX users_location ON users (location_id);

      CREATE TABLE devices (
        device_id          TEXT PRIMARY KEY,
        user_id            INTEGER REFERENCES users (id) ON DELETE SET NULL,
        label              TEXT,
        mqtt_hash          TEXT,
        mqtt_issued_at     TEXT,
        -- Last address document issued (signed envelope) and its version: monotonic per device.
        addr_version       INTEGER NOT NULL DEFAULT 0,
        addr_content_hash  TEXT,
        addr_signed        TEXT,
        addr_issued_at     TEXT,
        applied_version    INTEGER,
        applied_hash       TEXT,
        applied_at         TEXT,
        loc_version        INTEGER NOT NULL DEFAULT 0,
        loc_content_hash   TEXT,
        online             INTEGER NOT NULL DEFAULT 0,
        last_seen          TEXT,
        agent_version      TEXT,
        last_location      TEXT,
        last_location_at   TEXT,
        mismatch           TEXT,
        mismatch_at        TEXT,
        created_at         TEXT NOT NULL
      );
      CREATE INDEX devices_user ON devices (user_id);

      -- Every event a phone sent, once (the id is the phone's stable event id).
      CREATE TABLE events (
        id           TEXT PRIMARY KEY,
        device_id    TEXT NOT NULL,
        type         TEXT NOT NULL,
        ts           TEXT NOT NULL,
        received_at  TEXT NOT NULL,
        user_id      INTEGER,
        location_id  INTEGER,
        data         TEXT NOT NULL
      );
      CREATE INDEX events_type ON events (type, received_at);
      CREATE INDEX events_device ON events (device_id, received_at);

      CREATE TABLE notifications (
        id               INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id         TEXT NOT NULL REFERENCES events (id),
        channel          TEXT NOT NULL CHECK (channel IN ('email', 'sms', 'webhook')),
        recipient        TEXT NOT NULL,
        status           TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sending', 'retry', 'sent', 'failed')),
        attempts         INTEGER NOT NULL DEFAULT 0,
        next_attempt_at  TEXT NOT NULL,
        last_error       TEXT,
        provider_id      TEXT,
        created_at       TEXT NOT NULL,
        sent_at          TEXT,
        updated_at       TEXT NOT NULL,
        UNIQUE (event_id, channel, recipient)
      );
      CREATE INDEX notifications_due ON notifications (status, next_attempt_at);

      CREATE TABLE audit (
        seq        INTEGER PRIMARY KEY AUTOINCREMENT,
        at         TEXT NOT NULL,
        actor      TEXT NOT NULL,
        action     TEXT NOT NULL,
        entity     TEXT NOT NULL,
        entity_id  TEXT,
        details    TEXT
      );
      CREATE INDEX audit_entity ON audit (entity, entity_id);

      CREATE TABLE jobs (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        kind         TEXT NOT NULL,
        status       TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
        actor        TEXT NOT NULL,
        params       TEXT NOT NULL,
        total        INTEGER NOT NULL DEFAULT 0,
        done         INTEGER NOT NULL DEFAULT 0,
        result       TEXT,
        error        TEXT,
        created_at   TEXT NOT NULL,
        started_at   TEXT,
        finished_at  TEXT
      );

      -- A validated CSV upload waiting for Apply: only its email changes are kept.
      CREATE TABLE csv_uploads (
        id          TEXT PRIMARY KEY,
        created_at  TEXT NOT NULL,
        actor       TEXT NOT NULL,
        rows        INTEGER NOT NULL,
        changes     TEXT NOT NULL,
        job_id      INTEGER REFERENCES jobs (id)
      );

      CREATE TABLE api_tokens (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        name          TEXT NOT NULL,
        hash          TEXT NOT NULL UNIQUE,
        created_at    TEXT NOT NULL,
        last_used_at  TEXT,
        revoked_at    TEXT
      );
    `,
      // The same tables: identity columns for AUTOINCREMENT (int4, read as JS numbers), and a
      // rowid on events (SQLite's implicit one orders events received in the same millisecond).
      postgres: `
      CREATE TABLE account (
        id                      INTEGER PRIMARY KEY CHECK (id = 1),
        name                    TEXT NOT NULL DEFAULT '',
        contact_email           TEXT NOT NULL DEFAULT '',
        e911_enabled            INTEGER NOT NULL DEFAULT 0,
        e911_changed_at         TEXT,
        recommendations         INTEGER NOT NULL DEFAULT 0,
        notification_policy     TEXT NOT NULL DEFAULT 'all' CHECK (notification_policy IN ('app-only', 'app-then-email-sms', 'all')),
        smtp                    TEXT,
        sms                     TEXT,
        webhook                 TEXT,
        updated_at              TEXT NOT NULL
      );
      INSERT INTO account (id, updated_at) VALUES (1, to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'));

      CREATE TABLE locations (
        id                  INTEGER GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        code                TEXT NOT NULL UNIQUE,
        name                TEXT NOT NULL,
        country             TEXT NOT NULL,
        house_number        TEXT NOT NULL,
        house_number_suffix TEXT,
        street              TEXT NOT NULL,
        street2             TEXT,
        city                TEXT NOT NULL,
        state               TEXT NOT NULL,
        postal_code         TEXT NOT NULL,
        plus4               TEXT,
        building            TEXT,
        floor               TEXT,
        room                TEXT,
        time_zone           TEXT NOT NULL,
        ip_groups           TEXT NOT NULL DEFAULT '[]',
        switch_ports        TEXT NOT NULL DEFAULT '[]',
        admin_emails        TEXT NOT NULL DEFAULT '[]',
        sms_numbers         TEXT NOT NULL DEFAULT '[]',
        created_at          TEXT NOT NULL,
        updated_at          TEXT NOT NULL
      );

      CREATE TABLE users (
        id               INTEGER GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        username         TEXT NOT NULL UNIQUE,
        display_name     TEXT NOT NULL,
        extension        TEXT,
        location_id      INTEGER REFERENCES locations (id) ON DELETE RESTRICT,
        callback         TEXT,
        language         TEXT NOT NULL DEFAULT 'en',
        recommendations  INTEGER NOT NULL DEFAULT 0,
        emails           TEXT NOT NULL DEFAULT '[]',
        created_at       TEXT NOT NULL,
        updated_at       TEXT NOT NULL
      );
      CREATE INDEX users_location ON users (location_id);

      CREATE TABLE devices (
        device_id          TEXT PRIMARY KEY,
        user_id            INTEGER REFERENCES users (id) ON DELETE SET NULL,
        label              TEXT,
        mqtt_hash          TEXT,
        mqtt_issued_at     TEXT,
        addr_version       INTEGER NOT NULL DEFAULT 0,
        addr_content_hash  TEXT,
        addr_signed        TEXT,
        addr_issued_at     TEXT,
        applied_version    INTEGER,
        applied_hash       TEXT,
        applied_at         TEXT,
        loc_version        INTEGER NOT NULL DEFAULT 0,
        loc_content_hash   TEXT,
        online             INTEGER NOT NULL DEFAULT 0,
        last_seen          TEXT,
        agent_version      TEXT,
        last_location      TEXT,
        last_location_at   TEXT,
        mismatch           TEXT,
        mismatch_at        TEXT,
        created_at         TEXT NOT NULL
      );
      CREATE INDEX devices_user ON devices (user_id);

      CREATE TABLE events (
        id           TEXT PRIMARY KEY,
        device_id    TEXT NOT NULL,
        type         TEXT NOT NULL,
        ts           TEXT NOT NULL,
        received_at  TEXT NOT NULL,
        user_id      INTEGER,
        location_id  INTEGER,
        data         TEXT NOT NULL,
        rowid        BIGINT GENERATED ALWAYS AS IDENTITY
      );
      CREATE INDEX events_type ON events (type, received_at);
      CREATE INDEX events_device ON events (device_id, received_at);

      CREATE TABLE notifications (
        id               INTEGER GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        event_id         TEXT NOT NULL REFERENCES events (id),
        channel          TEXT NOT NULL CONSTRAINT notifications_channel CHECK (channel IN ('email', 'sms', 'webhook')),
        recipient        TEXT NOT NULL,
        status           TEXT NOT NULL DEFAULT 'pending'
                           CONSTRAINT notifications_status CHECK (status IN ('pending', 'sending', 'retry', 'sent', 'failed')),
        attempts         INTEGER NOT NULL DEFAULT 0,
        next_attempt_at  TEXT NOT NULL,
        last_error       TEXT,
        provider_id      TEXT,
        created_at       TEXT NOT NULL,
        sent_at          TEXT,
        updated_at       TEXT NOT NULL,
        UNIQUE (event_id, channel, recipient)
      );
      CREATE INDEX notifications_due ON notifications (status, next_attempt_at);

      CREATE TABLE audit (
        seq        INTEGER GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        at         TEXT NOT NULL,
        actor      TEXT NOT NULL,
        action     TEXT NOT NULL,
        entity     TEXT NOT NULL,
        entity_id  TEXT,
        details    TEXT
      );
      CREATE INDEX audit_entity ON audit (entity, entity_id);

      CREATE TABLE jobs (
        id           INTEGER GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        kind         TEXT NOT NULL,
        status       TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
        actor        TEXT NOT NULL,
        params       TEXT NOT NULL,
        total        INTEGER NOT NULL DEFAULT 0,
        done         INTEGER NOT NULL DEFAULT 0,
        result       TEXT,
        error        TEXT,
        created_at   TEXT NOT NULL,
        started_at   TEXT,
        finished_at  TEXT
      );

      CREATE TABLE csv_uploads (
        id          TEXT PRIMARY KEY,
        created_at  TEXT NOT NULL,
        actor       TEXT NOT NULL,
        rows        INTEGER NOT NULL,
        changes     TEXT NOT NULL,
        job_id      INTEGER REFERENCES jobs (id)
      );

      CREATE TABLE api_tokens (
        id            INTEGER GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        name          TEXT NOT NULL,
        hash          TEXT NOT NULL UNIQUE,
        created_at    TEXT NOT NULL,
        last_used_at  TEXT,
        revoked_at    TEXT
      );
    `,
    },
  },
  {
    version: 2,
    name: 'location policy and ELIN callback (account), location disagreement (devices)',
    sql: `
      -- What a 911 call sends first when a phone's network address disagrees with the provisioned one.
      ALTER TABLE account ADD COLUMN location_policy TEXT NOT NULL DEFAULT 'network-first'
        CHECK (location_policy IN ('network-first', 'provisioned-first', 'ask-user'));
      -- Send the switch's ELIN (LLDP-MED) as the emergency callback number when there is one.
      ALTER TABLE account ADD COLUMN elin_callback INTEGER NOT NULL DEFAULT 0;
      -- The phone's last open location-disagreement event data, null when none.
      ALTER TABLE devices ADD COLUMN disagreement TEXT;
      ALTER TABLE devices ADD COLUMN disagreement_at TEXT;
    `,
  },
  {
    version: 3,
    name: 'security: portal sessions (hashed ids, expiry), a broker user per server instance, the shared-subscription group secret',
    sql: `
      -- A portal session: only the SHA-256 of its random id is kept; it ends at expires_at
      -- (absolute), after idle_ms without use, on logout, or when its token is revoked.
      CREATE TABLE admin_sessions (
        id_hash       TEXT PRIMARY KEY,
        token_id      INTEGER NOT NULL REFERENCES api_tokens (id) ON DELETE CASCADE,
        created_at    TEXT NOT NULL,
        last_used_at  TEXT NOT NULL,
        expires_at    TEXT NOT NULL,
        revoked_at    TEXT
      );
      CREATE INDEX admin_sessions_token ON admin_sessions (token_id);

      -- Each server instance's own broker login (Mosquitto PBKDF2 hash only); the
      -- instance keeps its password in its own 0600 file in the data folder.
      CREATE TABLE broker_server_users (
        username    TEXT PRIMARY KEY,
        hash        TEXT NOT NULL,
        created_at  TEXT NOT NULL
      );

      -- Secrets every instance shares, created once (the shared-subscription group's suffix).
      CREATE TABLE server_secrets (
        name        TEXT PRIMARY KEY,
        value       TEXT NOT NULL,
        created_at  TEXT NOT NULL
      );
    `,
  },
  {
    version: 4,
    name: 'notifications: which server process claimed a row, so its restart takes its own unfinished sends back at once',
    sql: `
      -- '<instance>/<boot id>': a server killed mid-send left these rows 'sending' until their lease
      -- ran out (60 s); the same instance, started again, reclaims them at start instead.
      ALTER TABLE notifications ADD COLUMN claimed_by TEXT;
    `,
  },
  {
    version: 5,
    name: 'devices: the phone clock of the location-disagreement event applied last',
    sql: {
      sqlite: `
      -- Its boot id and monotonic ms: the next event is ordered against these, not found again by
      -- its wall-clock ts (a phone clock stepped back can give two events the same ts).
      ALTER TABLE devices ADD COLUMN disagreement_boot TEXT;
      ALTER TABLE devices ADD COLUMN disagreement_mono REAL;
    `,
      // PostgreSQL's REAL is 4 bytes: milliseconds of uptime need the 8 of SQLite's REAL.
      postgres: `
      ALTER TABLE devices ADD COLUMN disagreement_boot TEXT;
      ALTER TABLE devices ADD COLUMN disagreement_mono DOUBLE PRECISION;
    `,
    },
  },
  {
    version: 6,
    name: 'security-desk calls: location call numbers, the call channel settings, call notifications and their acknowledgement',
    sql: {
      sqlite: `
      -- On-site numbers (E.164 through the SIP gateway, or SIP URIs) called when a 911 is reported.
      ALTER TABLE locations ADD COLUMN call_numbers TEXT NOT NULL DEFAULT '[]';
      -- The call channel (JSON, like smtp/sms/webhook): gateway, From, repeats, ring time, attempts.
      ALTER TABLE account ADD COLUMN call TEXT;

      -- The channel and status CHECKs change ('call', 'unacknowledged'): SQLite rebuilds the table.
      CREATE TABLE notifications_new (
        id               INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id         TEXT NOT NULL REFERENCES events (id),
        channel          TEXT NOT NULL CHECK (channel IN ('email', 'sms', 'webhook', 'call')),
        recipient        TEXT NOT NULL,
        status           TEXT NOT NULL DEFAULT 'pending'
                           CHECK (status IN ('pending', 'sending', 'retry', 'sent', 'failed', 'unacknowledged')),
        attempts         INTEGER NOT NULL DEFAULT 0,
        next_attempt_at  TEXT NOT NULL,
        last_error       TEXT,
        provider_id      TEXT,
        created_at       TEXT NOT NULL,
        sent_at          TEXT,
        updated_at       TEXT NOT NULL,
        claimed_by       TEXT,
        -- A call: when a 1 was pressed and how it came (rfc2833, info); how often the message played.
        acknowledged_at  TEXT,
        ack_method       TEXT,
        plays            INTEGER,
        UNIQUE (event_id, channel, recipient)
      );
      INSERT INTO notifications_new (id, event_id, channel, recipient, status, attempts, next_attempt_at, last_error, provider_id,
          created_at, sent_at, updated_at, claimed_by)
        SELECT id, event_id, channel, recipient, status, attempts, next_attempt_at, last_error, provider_id,
          created_at, sent_at, updated_at, claimed_by FROM notifications;
      DROP TABLE notifications;
      ALTER TABLE notifications_new RENAME TO notifications;
      CREATE INDEX notifications_due ON notifications (status, next_attempt_at);
    `,
      // PostgreSQL changes the CHECKs in place.
      postgres: `
      ALTER TABLE locations ADD COLUMN call_numbers TEXT NOT NULL DEFAULT '[]';
      ALTER TABLE account ADD COLUMN call TEXT;
      ALTER TABLE notifications DROP CONSTRAINT notifications_channel;
      ALTER TABLE notifications ADD CONSTRAINT notifications_channel CHECK (channel IN ('email', 'sms', 'webhook', 'call'));
      ALTER TABLE notifications DROP CONSTRAINT notifications_status;
      ALTER TABLE notifications ADD CONSTRAINT notifications_status
        CHECK (status IN ('pending', 'sending', 'retry', 'sent', 'failed', 'unacknowledged'));
      ALTER TABLE notifications ADD COLUMN acknowledged_at TEXT;
      ALTER TABLE notifications ADD COLUMN ack_method TEXT;
      ALTER TABLE notifications ADD COLUMN plays INTEGER;
    `,
    },
  },
  {
    version: 7,
    name: "notices: a user's mobile number, a site's notice language, a separate notification policy for 933 test calls",
    sql: `
      -- A person's own mobile: texted their location's alerts when the policy includes SMS.
      ALTER TABLE users ADD COLUMN mobile TEXT;
      -- The language the site's notices are written in (English where there is no translation).
      ALTER TABLE locations ADD COLUMN language TEXT NOT NULL DEFAULT 'en';
      -- Null: 933 test calls follow notification_policy, as 911 does.
      ALTER TABLE account ADD COLUMN test_notification_policy TEXT
        CHECK (test_notification_policy IN ('app-only', 'app-then-email-sms', 'all'));
    `,
  },
  {
    version: 8,
    name: "company defaults, a user's own address, the emergency-services notice per phone, the CSV apply choice",
    sql: `
      -- Company defaults (JSON), each used wherever a user or location has none of its own:
      -- {address, building, floor, room, timeZone}; {number, displayName, language}; ["email", ...].
      ALTER TABLE account ADD COLUMN default_address TEXT;
      ALTER TABLE account ADD COLUMN default_callback TEXT;
      ALTER TABLE account ADD COLUMN emergency_contacts TEXT NOT NULL DEFAULT '[]';
      -- A user's own address (works from home), instead of a location: same JSON shape as default_address.
      ALTER TABLE users ADD COLUMN own_address TEXT;
      -- The phone's last acknowledgement of the emergency-services notice (its notice-acknowledged
      -- event): the address version and document hash it was for, when shown and acknowledged, how,
      -- and the phone's user then. "Shown" for a newer address is the applied address itself.
      ALTER TABLE devices ADD COLUMN notice_version INTEGER;
      ALTER TABLE devices ADD COLUMN notice_hash TEXT;
      ALTER TABLE devices ADD COLUMN notice_shown_at TEXT;
      ALTER TABLE devices ADD COLUMN notice_ack_at TEXT;
      ALTER TABLE devices ADD COLUMN notice_ack_via TEXT;
      ALTER TABLE devices ADD COLUMN notice_user_id INTEGER;
      -- Rows with errors in a checked upload: applying "nothing while any row is wrong" needs it.
      ALTER TABLE csv_uploads ADD COLUMN error_count INTEGER NOT NULL DEFAULT 0;
    `,
  },
  {
    version: 9,
    name: 'bcrypt hashes of the broker logins, for NATS',
    sql: `
      -- NATS checks passwords against bcrypt hashes only (Mosquitto against its PBKDF2 ones): both are
      -- kept from the same issued password. Null for credentials issued before: re-issue them for NATS.
      ALTER TABLE devices ADD COLUMN mqtt_bcrypt TEXT;
      ALTER TABLE broker_server_users ADD COLUMN bcrypt TEXT;
      -- The last-seen sweep reads online phones by when they were last heard from.
      CREATE INDEX devices_online_seen ON devices (online, last_seen);
    `,
  },
  {
    version: 10,
    name: 'customer accounts: an accounts table, every owned row stamped with its account, codes and user names unique per account',
    sql: {
      sqlite: `${accountsCommon()}
      -- Location codes and user names become unique per account: SQLite keeps column UNIQUEs in
      -- the table, so both are rebuilt, and devices with them: dropping the old users would
      -- delete its rows first and null every phone's user_id. Each new table references the
      -- other new ones; the old ones go children first, and each rename then points its
      -- children's REFERENCES at the final name.
      CREATE TABLE locations_new (
        id                  INTEGER PRIMARY KEY AUTOINCREMENT,
        code                TEXT NOT NULL,
        name                TEXT NOT NULL,
        country             TEXT NOT NULL,
        house_number        TEXT NOT NULL,
        house_number_suffix TEXT,
        street              TEXT NOT NULL,
        street2             TEXT,
        city                TEXT NOT NULL,
        state               TEXT NOT NULL,
        postal_code         TEXT NOT NULL,
        plus4               TEXT,
        building            TEXT,
        floor               TEXT,
        room                TEXT,
        time_zone           TEXT NOT NULL,
        ip_groups           TEXT NOT NULL DEFAULT '[]',
        switch_ports        TEXT NOT NULL DEFAULT '[]',
        admin_emails        TEXT NOT NULL DEFAULT '[]',
        sms_numbers         TEXT NOT NULL DEFAULT '[]',
        created_at          TEXT NOT NULL,
        updated_at          TEXT NOT NULL,
        call_numbers        TEXT NOT NULL DEFAULT '[]',
        language            TEXT NOT NULL DEFAULT 'en',
        account_id          TEXT NOT NULL DEFAULT 'default',
        UNIQUE (account_id, code)
      );
      CREATE TABLE users_new (
        id               INTEGER PRIMARY KEY AUTOINCREMENT,
        username         TEXT NOT NULL,
        display_name     TEXT NOT NULL,
        extension        TEXT,
        location_id      INTEGER REFERENCES locations_new (id) ON DELETE RESTRICT,
        callback         TEXT,
        language         TEXT NOT NULL DEFAULT 'en',
        recommendations  INTEGER NOT NULL DEFAULT 0,
        emails           TEXT NOT NULL DEFAULT '[]',
        created_at       TEXT NOT NULL,
        updated_at       TEXT NOT NULL,
        mobile           TEXT,
        own_address      TEXT,
        account_id       TEXT NOT NULL DEFAULT 'default',
        UNIQUE (account_id, username)
      );
      CREATE TABLE devices_new (
        device_id          TEXT PRIMARY KEY,
        user_id            INTEGER REFERENCES users_new (id) ON DELETE SET NULL,
        label              TEXT,
        mqtt_hash          TEXT,
        mqtt_issued_at     TEXT,
        addr_version       INTEGER NOT NULL DEFAULT 0,
        addr_content_hash  TEXT,
        addr_signed        TEXT,
        addr_issued_at     TEXT,
        applied_version    INTEGER,
        applied_hash       TEXT,
        applied_at         TEXT,
        loc_version        INTEGER NOT NULL DEFAULT 0,
        loc_content_hash   TEXT,
        online             INTEGER NOT NULL DEFAULT 0,
        last_seen          TEXT,
        agent_version      TEXT,
        last_location      TEXT,
        last_location_at   TEXT,
        mismatch           TEXT,
        mismatch_at        TEXT,
        created_at         TEXT NOT NULL,
        disagreement       TEXT,
        disagreement_at    TEXT,
        disagreement_boot  TEXT,
        disagreement_mono  REAL,
        notice_version     INTEGER,
        notice_hash        TEXT,
        notice_shown_at    TEXT,
        notice_ack_at      TEXT,
        notice_ack_via     TEXT,
        notice_user_id     INTEGER,
        mqtt_bcrypt        TEXT,
        account_id         TEXT NOT NULL DEFAULT 'default'
      );
      -- The same columns in the same order (each old table's, account_id added last).
      INSERT INTO locations_new SELECT * FROM locations;
      INSERT INTO users_new SELECT * FROM users;
      INSERT INTO devices_new SELECT * FROM devices;
      -- Ids keep counting from where they were (a deleted last id is not handed out again).
      DELETE FROM sqlite_sequence WHERE name IN ('locations_new', 'users_new');
      UPDATE sqlite_sequence SET name = name || '_new' WHERE name IN ('locations', 'users');
      DROP TABLE devices;
      DROP TABLE users;
      DROP TABLE locations;
      ALTER TABLE locations_new RENAME TO locations;
      ALTER TABLE users_new RENAME TO users;
      ALTER TABLE devices_new RENAME TO devices;
      CREATE INDEX users_location ON users (location_id);
      CREATE INDEX devices_user ON devices (user_id);
      CREATE INDEX devices_online_seen ON devices (online, last_seen);
      CREATE INDEX locations_account ON locations (account_id);
      CREATE INDEX users_account ON users (account_id);
      CREATE INDEX devices_account ON devices (account_id);
    `,
      postgres: `${accountsCommon()}
      ALTER TABLE locations DROP CONSTRAINT locations_code_key;
      ALTER TABLE locations ADD CONSTRAINT locations_account_code UNIQUE (account_id, code);
      ALTER TABLE users DROP CONSTRAINT users_username_key;
      ALTER TABLE users ADD CONSTRAINT users_account_username UNIQUE (account_id, username);
      CREATE INDEX locations_account ON locations (account_id);
      CREATE INDEX users_account ON users (account_id);
      CREATE INDEX devices_account ON devices (account_id);
    `,
    },
  },
];

/** Migration 10's steps that are the same SQL on both stores. */
function accountsCommon(): string {
  return `
      -- The single account row becomes the first of many: its settings move, as they are, to the
      -- account 'default' (the one a single-customer deployment keeps using).
      CREATE TABLE accounts (
        id                        TEXT PRIMARY KEY,
        name                      TEXT NOT NULL DEFAULT '',
        contact_email             TEXT NOT NULL DEFAULT '',
        e911_enabled              INTEGER NOT NULL DEFAULT 0,
        e911_changed_at           TEXT,
        recommendations           INTEGER NOT NULL DEFAULT 0,
        notification_policy       TEXT NOT NULL DEFAULT 'all' CHECK (notification_policy IN ('app-only', 'app-then-email-sms', 'all')),
        test_notification_policy  TEXT CHECK (test_notification_policy IN ('app-only', 'app-then-email-sms', 'all')),
        location_policy           TEXT NOT NULL DEFAULT 'network-first'
                                    CHECK (location_policy IN ('network-first', 'provisioned-first', 'ask-user')),
        elin_callback             INTEGER NOT NULL DEFAULT 0,
        smtp                      TEXT,
        sms                       TEXT,
        webhook                   TEXT,
        call                      TEXT,
        default_address           TEXT,
        default_callback          TEXT,
        emergency_contacts        TEXT NOT NULL DEFAULT '[]',
        created_at                TEXT NOT NULL,
        updated_at                TEXT NOT NULL
      );
      INSERT INTO accounts (id, name, contact_email, e911_enabled, e911_changed_at, recommendations, notification_policy,
          test_notification_policy, location_policy, elin_callback, smtp, sms, webhook, call, default_address, default_callback,
          emergency_contacts, created_at, updated_at)
        SELECT 'default', name, contact_email, e911_enabled, e911_changed_at, recommendations, notification_policy,
          test_notification_policy, location_policy, elin_callback, smtp, sms, webhook, call, default_address, default_callback,
          emergency_contacts, updated_at, updated_at FROM account;
      DROP TABLE account;

      -- Every owned row belongs to one account; rows written before this belong to 'default'.
      -- (No REFERENCES: SQLite adds a column with one only when its default is NULL. Accounts are never deleted.)
      ALTER TABLE locations ADD COLUMN account_id TEXT NOT NULL DEFAULT 'default';
      ALTER TABLE users ADD COLUMN account_id TEXT NOT NULL DEFAULT 'default';
      ALTER TABLE devices ADD COLUMN account_id TEXT NOT NULL DEFAULT 'default';
      ALTER TABLE events ADD COLUMN account_id TEXT NOT NULL DEFAULT 'default';
      ALTER TABLE notifications ADD COLUMN account_id TEXT NOT NULL DEFAULT 'default';
      ALTER TABLE audit ADD COLUMN account_id TEXT NOT NULL DEFAULT 'default';
      ALTER TABLE jobs ADD COLUMN account_id TEXT NOT NULL DEFAULT 'default';
      ALTER TABLE csv_uploads ADD COLUMN account_id TEXT NOT NULL DEFAULT 'default';
      ALTER TABLE api_tokens ADD COLUMN account_id TEXT NOT NULL DEFAULT 'default';
      -- A provider token may also create accounts and mint their first tokens. Tokens made before
      -- this were the deployment's only admins: they keep that power.
      ALTER TABLE api_tokens ADD COLUMN provider INTEGER NOT NULL DEFAULT 0;
      UPDATE api_tokens SET provider = 1;
      CREATE INDEX events_account ON events (account_id, received_at);
      CREATE INDEX notifications_account ON notifications (account_id, event_id);
      CREATE INDEX audit_account ON audit (account_id, seq);
      CREATE INDEX jobs_account ON jobs (account_id, id);
    `;
}

/** The migrations as one dialect runs them. */
export function migrationsFor(dialect: Dialect): Migration[] {
  return SERVER_SCHEMA.map((m) => ({ version: m.version, name: m.name, sql: typeof m.sql === 'string' ? m.sql : m.sql[dialect] }));
}

/** The SQLite list (what migrate() and the tests of single steps take). */
export const SERVER_MIGRATIONS: readonly Migration[] = migrationsFor('sqlite');
