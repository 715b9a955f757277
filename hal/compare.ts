// Ordering of plain ASCII names and addresses (interfaces, IPs, source names) for
// a stable order. Not String.prototype.localeCompare: that loads ICU's collation
// data into the process (about 2 MB of the node binary's pages, measured), and
// these strings have no locale.
export function compareCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
