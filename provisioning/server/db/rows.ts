// Rows in, typed objects out. Each stored type is described once, field by field
// (which column, read how: text, nullable, boolean, JSON), and rowMapper turns that
// into its mapper. A column the row lacks throws rather than reading as undefined,
// so a misspelt column fails the first time the mapper runs.
import { E911Error } from '../../common/errors.js';

export type Row = Record<string, unknown>;

/** Reads one field from a row; undefined leaves the field out of the object. */
export type Field<T> = (row: Row) => T;

/** A mapper named a column its query does not select. */
export class RowShapeError extends E911Error {
  constructor(readonly column: string) {
    super('row-shape', `the row has no column ${column}`);
  }
}

function cell(row: Row, column: string): unknown {
  const v = row[column];
  // SQLite gives NULL as null: undefined means the query has no such column.
  if (v === undefined && !(column in row)) throw new RowShapeError(column);
  return v;
}

/** TEXT NOT NULL (or a union of strings stored as text). */
export const text =
  <T extends string = string>(column: string): Field<T> =>
  (r) =>
    cell(r, column) as T;

/** Nullable TEXT: null when NULL. */
export const textOrNull =
  (column: string): Field<string | null> =>
  (r) => {
    const v = cell(r, column);
    return v === null || v === undefined ? null : (v as string);
  };

/** TEXT left out of the object when NULL or empty. */
export const optionalText =
  (column: string): Field<string | undefined> =>
  (r) => {
    const v = cell(r, column);
    return v ? (v as string) : undefined;
  };

/** INTEGER NOT NULL. */
export const int =
  (column: string): Field<number> =>
  (r) =>
    cell(r, column) as number;

/** Nullable INTEGER: null when NULL. */
export const intOrNull =
  (column: string): Field<number | null> =>
  (r) =>
    (cell(r, column) as number | null | undefined) ?? null;

/** A 0/1 INTEGER: true only for 1. */
export const bool =
  (column: string): Field<boolean> =>
  (r) =>
    cell(r, column) === 1;

/** A JSON TEXT value parsed; the fallback when it is NULL. */
export function parseJson<T>(v: unknown, fallback: T): T {
  return typeof v === 'string' ? (JSON.parse(v) as T) : fallback;
}

/** JSON stored as TEXT: the fallback when NULL. */
export const json =
  <T>(column: string, fallback: T): Field<T> =>
  (r) =>
    parseJson(cell(r, column), fallback);

/** A comma-separated list (group_concat), sorted; empty when NULL or ''. */
export const sortedList =
  (column: string): Field<string[]> =>
  (r) => {
    const v = cell(r, column);
    return typeof v === 'string' && v !== '' ? v.split(',').sort() : [];
  };

/** The mapper for T: fields in the order written (so JSON output keeps its key order). */
export function rowMapper<T>(fields: { [K in keyof T]-?: Field<T[K]> }): (row: Row) => T {
  const keys = Object.keys(fields);
  const reads = Object.values(fields) as Field<unknown>[];
  return (row) => {
    const out: Record<string, unknown> = {};
    for (let i = 0; i < keys.length; i++) {
      const v = reads[i]!(row);
      if (v !== undefined) out[keys[i]!] = v;
    }
    return out as T;
  };
}
