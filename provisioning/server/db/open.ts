// Opens the server's database file: the pragmas every server process uses on it,
// then the migrations. What it returns is the one connection all the aggregate
// modules share, so a transaction spans any of them.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { migrate, statementCache } from '../../common/sqlite.js';
import { SERVER_MIGRATIONS } from './migrations.js';

export const SERVER_DB_FILE = 'server.db';

export interface ServerDbOptions {
  dataDir: string;
  now?: () => Date;
  nativeBinding?: string;
}

/** The open database as the aggregate modules use it. */
export interface ServerDb {
  readonly path: string;
  readonly db: Database.Database;
  /** A prepared statement, prepared once per SQL text (each text is used in one mode: plain, pluck or raw). */
  readonly q: (sql: string) => Database.Statement;
  readonly now: () => Date;
  /** now() as an ISO string: the form every timestamp column holds. */
  iso(): string;
  /** Runs fn in an IMMEDIATE transaction (nested: a savepoint). */
  transaction<T>(fn: () => T): T;
}

export function openServerDb(opts: ServerDbOptions): ServerDb {
  const now = opts.now ?? (() => new Date());
  mkdirSync(opts.dataDir, { recursive: true, mode: 0o750 });
  const file = path.join(opts.dataDir, SERVER_DB_FILE);
  const db = new Database(file, opts.nativeBinding ? { nativeBinding: opts.nativeBinding } : {});
  try {
    db.pragma('journal_mode = WAL');
    // FULL: the server acknowledges an emergency event (to the broker and the phone,
    // which then deletes it) after this commit; a commit lost to a power cut after
    // that ack would lose the event. Measured cost: docs/reliability.md.
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    // Several server processes may share this file (one host): wait for a writer rather than fail.
    db.pragma('busy_timeout = 5000');
    migrate(db, SERVER_MIGRATIONS);
  } catch (err) {
    db.close();
    throw err;
  }
  return {
    path: file,
    db,
    q: statementCache(db),
    now,
    iso: () => now().toISOString(),
    transaction: (fn) => db.transaction(fn).immediate(),
  };
}
