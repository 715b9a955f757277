// Which store the server keeps its data in, from one setting: a PostgreSQL URL
// (postgres://... or postgresql://...) opens the pool of pg-sql.ts; anything else is
// SQLite (open.ts): `sqlite:DIR` or a plain DIR names the folder of server.db, and no
// setting at all is the data folder's, the default `npm start` uses.
import type { Logger } from 'pino';
import { type ServerDbOptions, SqliteSql } from './open.js';
import { PgSql } from './pg-sql.js';
import { Repo } from './repo.js';
import type { Sql } from './sql.js';

export interface StoreOptions extends ServerDbOptions {
  /** postgres://..., postgresql://..., sqlite:DIR or DIR; unset: SQLite in dataDir. */
  store?: string | undefined;
  log?: Logger;
}

export function isPostgresUrl(store: string | undefined): boolean {
  return store !== undefined && /^postgres(ql)?:\/\//i.test(store);
}

export function openSql(o: StoreOptions): Sql {
  const now = o.now ? { now: o.now } : {};
  if (o.store !== undefined && isPostgresUrl(o.store)) return new PgSql({ url: o.store, ...now, ...(o.log ? { log: o.log } : {}) });
  const dir =
    o.store === undefined || o.store === '' ? o.dataDir : o.store.startsWith('sqlite:') ? o.store.slice('sqlite:'.length) : o.store;
  return new SqliteSql({ dataDir: dir, ...now, ...(o.nativeBinding ? { nativeBinding: o.nativeBinding } : {}) });
}

/** The repository on the store the options name. */
export function openRepo(o: StoreOptions): Repo {
  return new Repo(openSql(o));
}
