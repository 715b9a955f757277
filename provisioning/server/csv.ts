// RFC 4180 reading and writing for bulk import/export, on the csv project's
// csv-parse and csv-stringify (sync APIs: uploads are bounded by CsvLimits, 32 MiB
// by default). What stays ours: the error wording (a row number a spreadsheet
// user can find) and the formula-injection policy.
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
  const maxField = opts.maxFieldLength ?? 64 * 1024;
  let records: string[][];
  try {
    // Reading one record past the limit is enough to know the file is over it.
    records = parse(text, Number.isFinite(maxRecords) ? { ...BASE, to: maxRecords + 1 } : BASE) as string[][];
  } catch (err) {
    if (!(err instanceof CsvError)) throw err;
    const reason = REASONS[err.code];
    // Its context's `records` counts the records read before the one that failed.
    const before = typeof err.records === 'number' ? err.records : 0;
    throw new CsvSyntaxError(before + 1, reason ?? err.message);
  }
  if (records.length > maxRecords) throw new CsvSyntaxError(records.length, `more than ${maxRecords} rows`);
  for (let r = 0; r < records.length; r++) {
    if (records[r]!.some((f) => f.length > maxField)) throw new CsvSyntaxError(r + 1, `a field is longer than ${maxField} characters`);
  }
  return records;
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
