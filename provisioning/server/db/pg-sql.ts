// The PostgreSQL store: the Sql interface on a pg connection pool, for deployments
// whose server instances share one database on other machines. A transaction takes a
// connection from the pool and every statement awaited inside it (found through the
// AsyncLocalStorage context transaction() runs in) goes to that connection. The
// schema is the same numbered list as SQLite's (migrations.ts), each step in its
// PostgreSQL text, applied at open under an advisory lock so that instances starting
// together migrate one after the other.
import { AsyncLocalStorage } from 'node:async_hooks';
import pg from 'pg';
import type { Logger } from 'pino';
import { SchemaTooNewError } from '../../common/sqlite.js';
import { migrationsFor } from './migrations.js';
import { type Params, type Row, type RunResult, type Sql, StoreError, toNumbered } from './sql.js';

/** Any key: it names "the e911 server's schema migration" among the advisory locks of the database. */
const MIGRATION_LOCK = 0x0e911;

export interface PgSqlOptions {
  /** postgres://user:password@host:port/database (or postgresql://). */
  url: string;
  now?: () => Date;
  /** Connections kept by this process for everything but urgent() work (default 10). */
  poolSize?: number;
  /** Connections kept for urgent() work only: 911 events and notifications (default 3). */
  urgentPoolSize?: number;
  log?: Logger;
}

interface Tx {
  readonly client: pg.PoolClient;
  ended: boolean;
  savepoints: number;
}

/** The URL as logs and the API may show it: without its password. */
export function redactedUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://(unparsable URL)';
  }
}

export class PgSql implements Sql {
  readonly dialect = 'postgres' as const;
  readonly location: string;
  readonly now: () => Date;
  private readonly pool: pg.Pool;
  /**
   * urgent() work's own connections. One pool is first come, first served: in the scale bench
   * a 911 event waited there behind ten thousand phone reports' statements (p50 23 s).
   */
  private readonly urgentPool: pg.Pool;
  private readonly context = new AsyncLocalStorage<Tx>();
  private readonly lane = new AsyncLocalStorage<'urgent'>();
  /** Settles once the migrations ran; every statement waits for it (a failure is every statement's). */
  private readonly ready: Promise<void>;

  constructor(opts: PgSqlOptions) {
    this.now = opts.now ?? (() => new Date());
    this.location = redactedUrl(opts.url);
    const pool = (max: number) => {
      const p = new pg.Pool({
        connectionString: opts.url,
        max,
        // count(*) and BIGINT come back as strings by default: every number we store fits a double.
        types: {
          getTypeParser: ((oid: number, format?: string) => (oid === 20 ? Number : pg.types.getTypeParser(oid, format as 'text'))) as never,
        },
      });
      // An idle connection the server closed (a restart, a failover) is an event, not a crash:
      // the pool makes a new one for the next statement.
      p.on('error', (err) => opts.log?.warn({ err: err.message }, 'PostgreSQL: an idle connection failed'));
      return p;
    };
    this.pool = pool(opts.poolSize ?? 10);
    this.urgentPool = pool(opts.urgentPoolSize ?? 3);
    this.ready = this.migrate();
    // Not lost: each statement awaits ready and gets the failure itself.
    this.ready.catch(() => undefined);
  }

  iso(): string {
    return this.now().toISOString();
  }

  /** The open transaction's connection when the caller runs inside one. */
  private tx(): Tx | undefined {
    const t = this.context.getStore();
    return t && !t.ended ? t : undefined;
  }

  private async query(sql: string, params: Params | undefined, rowMode?: 'array'): Promise<pg.QueryResult> {
    await this.ready;
    const { text, values } = toNumbered(sql, params);
    const on = this.tx()?.client ?? this.poolNow();
    try {
      return rowMode ? await on.query({ text, values, rowMode }) : await on.query({ text, values });
    } catch (err) {
      throw new StoreError(`PostgreSQL: ${(err as Error).message}`, { cause: err });
    }
  }

  async all<R = Row>(sql: string, params?: Params): Promise<R[]> {
    return (await this.query(sql, params)).rows as R[];
  }

  async get<R = Row>(sql: string, params?: Params): Promise<R | undefined> {
    return (await this.query(sql, params)).rows[0] as R | undefined;
  }

  async column<V = unknown>(sql: string, params?: Params): Promise<V[]> {
    return ((await this.query(sql, params, 'array')).rows as unknown[][]).map((r) => r[0] as V);
  }

  async run(sql: string, params?: Params): Promise<RunResult> {
    return { changes: (await this.query(sql, params)).rowCount ?? 0 };
  }

  async transaction<T>(fn: () => Promise<T>): Promise<T> {
    const open = this.tx();
    if (open) {
      const name = `sp${++open.savepoints}`;
      await open.client.query(`SAVEPOINT ${name}`);
      try {
        const result = await fn();
        await open.client.query(`RELEASE SAVEPOINT ${name}`);
        return result;
      } catch (err) {
        try {
          await open.client.query(`ROLLBACK TO SAVEPOINT ${name}`);
        } catch (undo) {
          throw new StoreError(
            `PostgreSQL: could not roll back to a savepoint (${(undo as Error).message}) after: ${(err as Error).message}`,
            {
              cause: err,
            },
          );
        }
        throw err;
      }
    }
    await this.ready;
    const client = await this.poolNow().connect();
    const tx: Tx = { client, ended: false, savepoints: 0 };
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const result = await this.context.run(tx, fn);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch((e: Error) => {
        // The connection is gone with the transaction: it leaves the pool.
        broken = e;
      });
      throw err instanceof StoreError || !(err as { code?: unknown }).code
        ? err
        : new StoreError(`PostgreSQL: ${(err as Error).message}`, { cause: err });
    } finally {
      tx.ended = true;
      client.release(broken);
    }
  }

  detached<T>(fn: () => T): T {
    return this.context.exit(fn);
  }

  urgent<T>(fn: () => Promise<T>): Promise<T> {
    return this.lane.run('urgent', fn);
  }

  /** The pool the caller's lane draws from. */
  private poolNow(): pg.Pool {
    return this.lane.getStore() === 'urgent' ? this.urgentPool : this.pool;
  }

  async schemaVersion(): Promise<number> {
    await this.ready;
    const r = await this.pool.query('SELECT version FROM schema_version WHERE id = 1');
    return (r.rows[0] as { version: number } | undefined)?.version ?? 0;
  }

  /** Idempotent, as SQLite's close is: a store may be closed by its owner and again at shutdown. */
  async close(): Promise<void> {
    for (const p of [this.pool, this.urgentPool]) if (!p.ended && !p.ending) await p.end();
  }

  /** Every step above the stored version, in one transaction, under the migration lock. */
  private async migrate(): Promise<void> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      await client.query('CREATE TABLE IF NOT EXISTS schema_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)');
      const current = ((await client.query('SELECT version FROM schema_version WHERE id = 1')).rows[0] as { version: number } | undefined)
        ?.version;
      const steps = migrationsFor('postgres').sort((a, b) => a.version - b.version);
      const latest = steps.at(-1)?.version ?? 0;
      if ((current ?? 0) > latest) throw new SchemaTooNewError(current ?? 0, latest);
      for (const m of steps) if (m.version > (current ?? 0)) await client.query(m.sql);
      await client.query(
        'INSERT INTO schema_version (id, version) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET version = excluded.version',
        [Math.max(current ?? 0, latest)],
      );
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err instanceof SchemaTooNewError ? err : new StoreError(`PostgreSQL migration: ${(err as Error).message}`, { cause: err });
    } finally {
      client.release();
    }
  }
}
