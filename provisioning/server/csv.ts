// RFC 4180 reading and writing for bulk import/export, on the csv project's
// csv-parse and csv-stringify. An upload (up to 32 MiB, CsvLimits) is read with
// parseCsvYielding: csv-parse's stream fed in slices, giving the event loop back
// between them, because the same loop carries 911 event intake over MQTT; the sync
// parseCsv is for small texts (exports read back, tests). What stays ours: the error
// wording (a row number a spreadsheet user can find) and the formula-injection policy.
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { parse as parseStream } from 'csv-parse';
import { CsvError, parse, type Options as ParseOptions } from 'csv-parse/sync';
import { stringify, type Options as StringifyOptions } from 'csv-stringify/sync';

export class CsvSyntaxError extends Error {
  constructor(
    readonly row: number,
    message: string,
  ) {
    super(`row ${row}: ${message}`);
  }
}

export interface CsvReadOptions {
  /** Stop with an error past this many records (the header included). */
  maxRecords?: number;
  maxFieldLength?: number;
}

/** csv-parse's codes for the mistakes people make, said the way a spreadsheet user can act on. */
const REASONS: Record<string, string> = {
  CSV_QUOTE_NOT_CLOSED: 'a quoted field is never closed',
  INVALID_OPENING_QUOTE: 'a quote inside an unquoted field (quote the whole field and double the quote)',
  CSV_INVALID_CLOSING_QUOTE: 'text after a closing quote (a quote inside a field must be doubled)',
};

const BASE: ParseOptions = {
  bom: true,
  // CRLF, LF or a lone CR, mixed in one file as editors leave them.
  record_delimiter: ['\r\n', '\n', '\r'],
  // Rows may be shorter or longer than the header: the bulk validator reports that per row.
  relax_column_count: true,
  skip_empty_lines: false,
};

/**
 * Parses CSV text into records. Rows are numbered from 1 (the header) as a
 * spreadsheet numbers them; a quoted field may span lines. A trailing empty
 * line is not a record.
 */
export function parseCsv(text: string, opts: CsvReadOptions = {}): string[][] {
  const maxRecords = opts.maxRecords ?? Infinity;
  let records: string[][];
  try {
    // Reading one record past the limit is enough to know the file is over it.
    records = parse(text, Number.isFinite(maxRecords) ? { ...BASE, to: maxRecords + 1 } : BASE) as string[][];
  } catch (err) {
    throw syntaxError(err);
  }
  for (const [r, rec] of records.entries()) checkRecord(rec, r + 1, opts);
  return records;
}

/** Bytes parsed between two turns of the event loop: about 5 ms of csv-parse's work. */
const SLICE_BYTES = 64 * 1024;

/**
 * parseCsv for an upload, without holding the event loop: the bytes go to csv-parse's
 * stream a slice at a time, with a turn of the loop after each, so MQTT and HTTP are
 * served while a large file is read. Same records, same errors as parseCsv. A slice may
 * end inside a UTF-8 character: csv-parse decodes a field only once it is complete.
 */
export async function parseCsvYielding(input: Buffer, opts: CsvReadOptions = {}): Promise<string[][]> {
  const parser = parseStream(BASE);
  const records: string[][] = [];
  let failure: unknown = null;
  parser.on('data', (rec: string[]) => {
    if (failure) return;
    try {
      checkRecord(rec, records.length + 1, opts);
      records.push(rec);
    } catch (err) {
      failure = err;
    }
  });
  parser.on('error', (err) => {
    failure ??= syntaxError(err);
  });
  const ended = new Promise<void>((resolve) => parser.once('end', resolve).once('error', () => resolve()));
  for (let at = 0; at < input.length && !failure; at += SLICE_BYTES) {
    parser.write(input.subarray(at, at + SLICE_BYTES));
    await yieldToLoop();
  }
  if (failure) {
    parser.destroy();
    throw failure;
  }
  parser.end();
  await ended;
  if (failure) throw failure;
  return records;
}

/**
 * A pause for long synchronous work (a loop over 100,000 rows): await it at each step;
 * it gives the event loop a turn once `budgetMs` have passed since the last one.
 */
export function loopTurns(budgetMs = 10): () => Promise<void> | undefined {
  let last = performance.now();
  return () => {
    if (performance.now() - last < budgetMs) return undefined;
    return yieldToLoop().then(() => {
      last = performance.now();
    });
  };
}

/** A csv-parse error as the row a spreadsheet user can find; anything else unchanged. */
function syntaxError(err: unknown): unknown {
  if (!(err instanceof CsvError)) return err;
  // Its context's `records` counts the records read before the one that failed.
  const before = typeof err.records === 'number' ? err.records : 0;
  return new CsvSyntaxError(before + 1, REASONS[err.code] ?? err.message);
}

/** The per-record limits: the row count (row is 1-based) and each field's length. */
function checkRecord(rec: readonly string[], row: number, opts: CsvReadOptions): void {
  const maxRecords = opts.maxRecords ?? Infinity;
  const maxField = opts.maxFieldLength ?? 64 * 1024;
  if (row > maxRecords) throw new CsvSyntaxError(row, `more than ${maxRecords} rows`);
  if (rec.some((f) => f.length > maxField)) throw new CsvSyntaxError(row, `a field is longer than ${maxField} characters`);
}

/** First characters a spreadsheet reads as a formula (OWASP CSV injection). */
const FORMULA_START = /^[=+\-@\t\r]/;

/** A cell a spreadsheet will show as text: formula starters get a leading apostrophe. */
export function neutraliseFormula(value: string): string {
  return FORMULA_START.test(value) ? `'${value}` : value;
}

/** Undoes neutraliseFormula on a value read back. */
export function restoreFormula(value: string): string {
  return value.length > 1 && value[0] === "'" && FORMULA_START.test(value.slice(1)) ? value.slice(1) : value;
}

const STRINGIFY: StringifyOptions = {
  record_delimiter: '\r\n',
  // Besides separators, quotes and line breaks: edge spaces, which some readers trim.
  quoted_match: [/^\s/, /\s$/, /\r/, /\n/],
};

export function csvField(value: string): string {
  return csvRecord([value]).slice(0, -2);
}

/** One record with CRLF, as RFC 4180 has it. */
export function csvRecord(values: readonly (string | number | null | undefined)[]): string {
  return stringify([values.map((v) => neutraliseFormula(v === null || v === undefined ? '' : String(v)))], STRINGIFY);
}
