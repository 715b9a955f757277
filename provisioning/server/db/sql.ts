// The one way the aggregate modules reach a database, whichever it is: statements
// with `?` or `@name` parameters, answered by promises, and transaction() that spans
// every statement made inside it (an AsyncLocalStorage context carries the open
// transaction, so a module calls this.s.run() the same way in or out of one).
// SQLite (sqlite-sql.ts) answers synchronously underneath; PostgreSQL (pg-sql.ts)
// answers from a pool. Where the SQL of the two differs, the dialect helpers below
// give each its own text, so every query is still written once.
import { E911Error } from '../../common/errors.js';

export type Row = Record<string, unknown>;
export type Params = readonly unknown[] | Readonly<Record<string, unknown>>;

export type Dialect = 'sqlite' | 'postgres';

export interface RunResult {
  /** Rows inserted, updated or deleted. */
  changes: number;
}

export interface Sql {
  readonly dialect: Dialect;
  /** Where the data is: a file path, or the PostgreSQL URL without its password. */
  readonly location: string;
  readonly now: () => Date;
  /** now() as an ISO string: the form every timestamp column holds. */
  iso(): string;
  all<R = Row>(sql: string, params?: Params): Promise<R[]>;
  get<R = Row>(sql: string, params?: Params): Promise<R | undefined>;
  /** The first column of each row. */
  column<V = unknown>(sql: string, params?: Params): Promise<V[]>;
  run(sql: string, params?: Params): Promise<RunResult>;
  /**
   * Runs fn in one transaction (nested: a savepoint). SQLite takes the write lock at
   * BEGIN (IMMEDIATE), so a read-then-write inside is serialized with every other writer;
   * PostgreSQL runs READ COMMITTED, and what must not run twice claims its rows with
   * FOR UPDATE SKIP LOCKED (see claimLock()).
   */
  transaction<T>(fn: () => Promise<T>): Promise<T>;
  /**
   * Runs fn outside any transaction context: background work started inside a transaction
   * (a job queued in one) must not join it, nor use its connection after it ended.
   */
  detached<T>(fn: () => T): T;
  /**
   * Runs fn, and every statement and transaction it awaits, ahead of bulk traffic: 911 work
   * (an emergency event, its notifications) must not queue behind thousands of phone reports.
   * PostgreSQL gives it connections of its own, which report batches and pushes never hold;
   * SQLite has one in-process connection and nothing to reserve (fn runs as is).
   */
  urgent<T>(fn: () => Promise<T>): Promise<T>;
  /** The schema version the migrations reached. */
  schemaVersion(): Promise<number>;
  close(): Promise<void>;
}

/** A statement failed in the database (its message is the driver's). */
export class StoreError extends E911Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super('store-error', message, options);
  }
}

/**
 * PostgreSQL gave up a transaction that lost a lock conflict with another (deadlock detected,
 * 40P01; serialization failure, 40001): nothing was written, and the same transaction run again
 * may succeed. Found through the error's causes (the driver's error carries the SQLSTATE).
 */
export function isTransientConflict(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (code === '40P01' || code === '40001') return true;
  }
  return false;
}

/** The elements of a JSON array parameter as a table with one column, `value` (text). */
export function jsonArrayTable(d: Dialect, param: string): string {
  return d === 'postgres' ? `jsonb_array_elements_text(CAST(${param} AS jsonb))` : `json_each(${param})`;
}

/**
 * A JSON array of objects as a table (alias `x`) with these columns, each read from the key of
 * its name (lower case: PostgreSQL matches keys by the column's name).
 */
export function jsonRecords(d: Dialect, param: string, columns: Readonly<Record<string, 'text' | 'integer'>>): string {
  const cols = Object.entries(columns);
  return d === 'postgres'
    ? `jsonb_to_recordset(CAST(${param} AS jsonb)) AS x(${cols.map(([n, t]) => `${n} ${t}`).join(', ')})`
    : `(SELECT ${cols.map(([n]) => `json_extract(value, '$.${n}') AS ${n}`).join(', ')} FROM json_each(${param})) AS x`;
}

/** The values of a column joined by commas (an aggregate). */
export function commaList(d: Dialect, column: string): string {
  return d === 'postgres' ? `string_agg(${column}, ',')` : `group_concat(${column})`;
}

/**
 * What a claiming SELECT adds so that several instances each take different rows:
 * PostgreSQL locks the rows it returns and skips those another transaction holds;
 * SQLite needs nothing, its single writer (BEGIN IMMEDIATE) is the same guarantee.
 */
export function claimLock(d: Dialect): string {
  return d === 'postgres' ? ' FOR UPDATE SKIP LOCKED' : '';
}

/**
 * The SQL with `?` and `@name` placeholders turned into PostgreSQL's `$1, $2, ...`,
 * and the values in that order. Quoted text and identifiers are left alone.
 */
export function toNumbered(sql: string, params: Params | undefined): { text: string; values: unknown[] } {
  const values: unknown[] = [];
  const named = new Map<string, number>();
  const positional = Array.isArray(params) ? (params as readonly unknown[]) : [];
  const byName = params && !Array.isArray(params) ? (params as Record<string, unknown>) : {};
  let next = 0;
  let out = '';
  for (let i = 0; i < sql.length; i++) {
    const c = sql[i]!;
    if (c === "'" || c === '"') {
      const end = sql.indexOf(c, i + 1);
      if (end < 0) throw new StoreError(`unterminated quote in SQL: ${sql}`);
      out += sql.slice(i, end + 1);
      i = end;
    } else if (c === '?') {
      if (next >= positional.length) throw new StoreError(`SQL has more ? than the ${positional.length} values given`);
      values.push(positional[next++]);
      out += `$${values.length}`;
    } else if (c === '@' && /[A-Za-z_]/.test(sql[i + 1] ?? '')) {
      const name = /^[A-Za-z_][A-Za-z0-9_]*/.exec(sql.slice(i + 1))![0];
      let n = named.get(name);
      if (n === undefined) {
        if (!(name in byName)) throw new StoreError(`missing named parameter @${name}`);
        values.push(byName[name]);
        n = values.length;
        named.set(name, n);
      }
      out += `$${n}`;
      i += name.length;
    } else {
      out += c;
    }
  }
  return { text: out, values };
}
