// The server's two stores as one test suite sees them (the way MQTT.js runs one suite
// against every store): `describe.each(SERVER_STORES)` and the same tests run on SQLite
// in a temp folder and on PostgreSQL in a throwaway cluster. One cluster per test file
// (started in beforeAll), one fresh database per store() call, made from a template the
// migrations ran in once.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { SqliteSql } from '../../provisioning/server/db/open.js';
import { PgSql } from '../../provisioning/server/db/pg-sql.js';
import type { Sql } from '../../provisioning/server/db/sql.js';
import { Repo } from '../../provisioning/server/db/repo.js';
import { type PgCluster, postgresMissing, startPostgres } from './postgres.js';

export interface TestStore {
  repo: Repo;
  /** The store setting ServerApp takes (--store): the folder, or the database URL. */
  setting: string;
  /** The data folder a ServerApp on this store uses for its files (keys, logins). */
  dataDir: string;
  /** Another Repo on the same data (a second server instance, or a restart). */
  open(now?: () => Date): Repo;
  /** Another connection to the same data as the Sql interface (a test wraps it, to count statements); closed at teardown. */
  sql(now?: () => Date): Sql;
  /** Runs SQL on the data directly, around the repository (a row as an older server wrote it). */
  exec(sql: string): Promise<void>;
}

export interface ServerStoreBackend {
  name: 'sqlite' | 'postgres';
  /** Why this backend cannot run here (skip), or null. */
  missing: string | null;
  /** Once per test file (beforeAll). */
  setup(): Promise<void>;
  /** Once per test file (afterAll): also closes every repo store() opened. */
  teardown(): Promise<void>;
  /** A fresh, migrated store. */
  store(now?: () => Date): Promise<TestStore>;
}

function sqliteBackend(): ServerStoreBackend {
  const dirs: string[] = [];
  const repos: Repo[] = [];
  return {
    name: 'sqlite',
    missing: null,
    async setup() {},
    async teardown() {
      for (const r of repos.splice(0)) await r.close();
      for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
    },
    async store(now) {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'e911-store-'));
      dirs.push(dir);
      const open = (n?: () => Date) => {
        const r = new Repo({ dataDir: dir, ...(n ? { now: n } : {}) });
        repos.push(r);
        return r;
      };
      return {
        repo: open(now),
        setting: dir,
        dataDir: dir,
        open,
        sql(n) {
          const q = new SqliteSql({ dataDir: dir, ...(n ? { now: n } : {}) });
          repos.push(new Repo(q));
          return q;
        },
        async exec(sql) {
          const db = new Database(path.join(dir, 'server.db'));
          try {
            db.exec(sql);
          } finally {
            db.close();
          }
        },
      };
    },
  };
}

function postgresBackend(): ServerStoreBackend {
  let cluster: PgCluster | null = null;
  let template: string | null = null;
  const repos: Repo[] = [];
  const dirs: string[] = [];
  return {
    name: 'postgres',
    missing: postgresMissing(),
    async setup() {
      cluster = await startPostgres();
      // The migrations run once, into the template every test's database is copied from.
      const url = await cluster.createDatabase();
      const r = new Repo(new PgSql({ url }));
      await r.schemaVersion();
      await r.close();
      template = new URL(url).pathname.slice(1);
    },
    async teardown() {
      for (const r of repos.splice(0)) await r.close();
      for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
      await cluster?.stop();
      cluster = null;
    },
    async store(now) {
      if (!cluster || !template) throw new Error('postgres backend: setup() first');
      const url = await cluster.createDatabase(template);
      const dir = mkdtempSync(path.join(os.tmpdir(), 'e911-store-pg-'));
      dirs.push(dir);
      const open = (n?: () => Date) => {
        const r = new Repo(new PgSql({ url, ...(n ? { now: n } : {}) }));
        repos.push(r);
        return r;
      };
      return {
        repo: open(now),
        setting: url,
        dataDir: dir,
        open,
        sql(n) {
          const q = new PgSql({ url, ...(n ? { now: n } : {}) });
          repos.push(new Repo(q));
          return q;
        },
        async exec(sql) {
          const c = new pg.Client({ connectionString: url });
          await c.connect();
          try {
            await c.query(sql);
          } finally {
            await c.end();
          }
        },
      };
    },
  };
}

/** Both stores, each to be used by one describe block of a file. */
export function serverStores(): ServerStoreBackend[] {
  return [sqliteBackend(), postgresBackend()];
}
