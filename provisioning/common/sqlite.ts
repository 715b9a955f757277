// SQLite as both ends use it: forward-only numbered migrations, and prepared
// statements made once per SQL text (preparing costs more than running most of ours).
// Each end chooses its own pragmas (synchronous, busy timeout) where it opens its file.
import type Database from 'better-sqlite3';
import { E911Error } from './errors.js';

/** One schema step, compiled into the code so a bundled executable carries it. Never edit one that has shipped: add one. */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** The file was written by newer code: it is left as it is. */
export class SchemaTooNewError extends E911Error {
  constructor(
    readonly current: number,
    readonly latest: number,
  ) {
    super('schema-too-new', `database schema ${current} is newer than this code knows (${latest}): left as it is`);
  }
}

/** Runs each migration above PRAGMA user_version in its own transaction, then sets user_version to it. */
export function migrate(db: Database.Database, migrations: readonly Migration[]): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  const latest = migrations.reduce((m, x) => Math.max(m, x.version), 0);
  if (current > latest) throw new SchemaTooNewError(current, latest);
  for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
    if (m.version <= current) continue;
    db.transaction(() => {
      db.exec(m.sql);
      db.pragma(`user_version = ${m.version}`);
    })();
  }
}

/** Prepared statements made once per SQL text and reused. */
export function statementCache(db: Database.Database): (sql: string) => Database.Statement {
  const cache = new Map<string, Database.Statement>();
  return (sql) => {
    let statement = cache.get(sql);
    if (!statement) {
      statement = db.prepare(sql);
      cache.set(sql, statement);
    }
    return statement;
  };
}
