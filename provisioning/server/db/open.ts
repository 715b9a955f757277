// The SQLite store: opens the server's database file (the pragmas every server process
// uses on it, then the migrations) and answers the Sql interface on that one connection.
// better-sqlite3 is synchronous: each statement runs when it is called and its promise
// is already settled. A transaction stays open across the awaits inside it, so while
// one is open any statement from outside it waits for its end: nothing else can slip
// into it on the shared connection (the transaction's own statements are recognized
// by the AsyncLocalStorage context transaction() runs them in).
import { AsyncLocalStorage } from 'node:async_hooks';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { migrate } from '../../common/sqlite.js';
import { SERVER_MIGRATIONS } from './migrations.js';
import type { Params, Row, RunResult, Sql } from './sql.js';

export const SERVER_DB_FILE = 'server.db';

export interface ServerDbOptions {
  dataDir: string;
  now?: () => Date;
  nativeBinding?: string;
}

interface Tx {
  /** Settles when the transaction has committed or rolled back. */
  readonly ended: Promise<void>;
}

export class SqliteSql implements Sql {
  readonly dialect = 'sqlite' as const;
  readonly location: string;
  readonly now: () => Date;
  readonly db: Database.Database;
  private readonly statements = new Map<string, Database.Statement>();
  private readonly context = new AsyncLocalStorage<Tx>();
  private active: Tx | null = null;
  private savepoints = 0;

  constructor(opts: ServerDbOptions) {
    this.now = opts.now ?? (() => new Date());
    mkdirSync(opts.dataDir, { recursive: true, mode: 0o750 });
    this.location = path.join(opts.dataDir, SERVER_DB_FILE);
    const db = new Database(this.location, opts.nativeBinding ? { nativeBinding: opts.nativeBinding } : {});
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
    this.db = db;
  }

  iso(): string {
    return this.now().toISOString();
  }

  /** Prepared once per SQL text and mode (a plucking statement stays plucking). */
  private statement(sql: string, pluck = false): Database.Statement {
    const key = pluck ? `p\u0000${sql}` : sql;
    let s = this.statements.get(key);
    if (!s) {
      s = this.db.prepare(sql);
      if (pluck) s.pluck();
      this.statements.set(key, s);
    }
    return s;
  }

  /** Whether a transaction is open that the caller is not part of. */
  private blocked(): boolean {
    return this.active !== null && this.context.getStore() !== this.active;
  }

  /**
   * Runs op now, or after the open transaction when the caller is not inside it. op runs in
   * the same turn as the check that let it through: no transaction can begin in between.
   */
  private async exec<T>(op: () => T): Promise<T> {
    while (this.blocked()) await this.active!.ended;
    return op();
  }

  all<R = Row>(sql: string, params?: Params): Promise<R[]> {
    return this.exec(() => bind(this.statement(sql), params, 'all') as R[]);
  }

  get<R = Row>(sql: string, params?: Params): Promise<R | undefined> {
    return this.exec(() => bind(this.statement(sql), params, 'get') as R | undefined);
  }

  column<V = unknown>(sql: string, params?: Params): Promise<V[]> {
    return this.exec(() => bind(this.statement(sql, true), params, 'all') as V[]);
  }

  run(sql: string, params?: Params): Promise<RunResult> {
    return this.exec(() => ({ changes: (bind(this.statement(sql), params, 'run') as Database.RunResult).changes }));
  }

  async transaction<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active && this.context.getStore() === this.active) {
      const name = `sp${++this.savepoints}`;
      this.db.exec(`SAVEPOINT ${name}`);
      try {
        const result = await fn();
        this.db.exec(`RELEASE ${name}`);
        return result;
      } catch (err) {
        this.db.exec(`ROLLBACK TO ${name}`);
        this.db.exec(`RELEASE ${name}`);
        throw err;
      }
    }
    // Checked again after each wait, and BEGIN in the same turn as the last check: two callers
    // waking together must not both begin.
    while (this.blocked()) await this.active!.ended;
    let end!: () => void;
    const tx: Tx = { ended: new Promise<void>((resolve) => (end = resolve)) };
    // IMMEDIATE: the write lock now, so a read-then-write inside cannot lose to another process.
    this.db.exec('BEGIN IMMEDIATE');
    this.active = tx;
    try {
      const result = await this.context.run(tx, fn);
      this.db.exec('COMMIT');
      return result;
    } catch (err) {
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
      throw err;
    } finally {
      this.active = null;
      end();
    }
  }

  detached<T>(fn: () => T): T {
    return this.context.exit(fn);
  }

  urgent<T>(fn: () => Promise<T>): Promise<T> {
    return fn();
  }

  schemaVersion(): Promise<number> {
    return Promise.resolve(this.db.pragma('user_version', { simple: true }) as number);
  }

  close(): Promise<void> {
    if (this.db.open) this.db.close();
    return Promise.resolve();
  }
}

function bind(s: Database.Statement, params: Params | undefined, how: 'all' | 'get' | 'run'): unknown {
  if (params === undefined) return s[how]();
  return Array.isArray(params) ? s[how](...(params as unknown[])) : s[how](params);
}
