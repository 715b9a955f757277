// A small RFC 4180 reader and writer. Written here rather than taken from the
// registry: the whole need is ~100 lines (quoted fields, doubled quotes, CRLF
// or LF, a BOM), and a dependency would bring more surface than that.
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

/**
 * Parses CSV text into records. Rows are numbered from 1 (the header) as a
 * spreadsheet numbers them; a quoted field may span lines. A trailing empty
 * line is not a record.
 */
export function parseCsv(text: string, opts: CsvReadOptions = {}): string[][] {
  const maxRecords = opts.maxRecords ?? Infinity;
  const maxField = opts.maxFieldLength ?? 64 * 1024;
  const records: string[][] = [];
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  const n = text.length;
  let record: string[] = [];
  while (i < n) {
    let field: string;
    if (text.charCodeAt(i) === 34 /* " */) {
      // Quoted: runs to the next lone quote; "" is one quote.
      let out = '';
      let start = ++i;
      for (;;) {
        const q = text.indexOf('"', i);
        if (q < 0) throw new CsvSyntaxError(records.length + 1, 'a quoted field is never closed');
        if (text.charCodeAt(q + 1) === 34) {
          out += text.slice(start, q + 1);
          i = start = q + 2;
          continue;
        }
        out += text.slice(start, q);
        i = q + 1;
        break;
      }
      field = out;
      const c = text.charCodeAt(i);
      if (i < n && c !== 44 && c !== 13 && c !== 10) {
        throw new CsvSyntaxError(records.length + 1, 'text after a closing quote (a quote inside a field must be doubled)');
      }
    } else {
      let j = i;
      while (j < n) {
        const c = text.charCodeAt(j);
        if (c === 44 || c === 13 || c === 10) break;
        if (c === 34) throw new CsvSyntaxError(records.length + 1, 'a quote inside an unquoted field (quote the whole field and double the quote)');
        j++;
      }
      field = text.slice(i, j);
      i = j;
    }
    if (field.length > maxField) throw new CsvSyntaxError(records.length + 1, `a field is longer than ${maxField} characters`);
    record.push(field);
    const c = text.charCodeAt(i);
    if (c === 44) {
      i++;
      // A comma at the very end of the text still ends with one empty field.
      if (i === n) record.push('');
      continue;
    }
    // End of record: CRLF, LF, or a lone CR.
    if (c === 13) i += text.charCodeAt(i + 1) === 10 ? 2 : 1;
    else if (c === 10) i++;
    records.push(record);
    record = [];
    if (records.length > maxRecords) throw new CsvSyntaxError(records.length, `more than ${maxRecords} rows`);
  }
  if (record.length > 0) {
    records.push(record);
    if (records.length > maxRecords) throw new CsvSyntaxError(records.length, `more than ${maxRecords} rows`);
  }
  return records;
}

const NEEDS_QUOTES = /[",\r\n]|^\s|\s$/;
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

export function csvField(value: string): string {
  const v = neutraliseFormula(value);
  return NEEDS_QUOTES.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}

/** One record with CRLF, as RFC 4180 has it. */
export function csvRecord(values: readonly (string | number | null | undefined)[]): string {
  return `${values.map((v) => csvField(v === null || v === undefined ? '' : String(v))).join(',')}\r\n`;
}
