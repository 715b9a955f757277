// Our PIDF-LO validator wrapper: xmllint against test/fixtures/pidf-schemas/pidf.xsd,
// plus the namespace check the schemas cannot do (they let ##other through, so
// gp:retransmission-allowed would "validate"). Both must pass.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CIVIC_ELEMENTS } from '../../provisioning/protocol/address.js';
import { NS } from '../../provisioning/pidf/pidf.js';

const here = path.dirname(fileURLToPath(import.meta.url));
// Run from test/helpers (vitest) or dist/test/helpers (compiled).
const repoRoot =
  [path.resolve(here, '../..'), path.resolve(here, '../../..')].find((p) => existsSync(path.join(p, 'package.json'))) ?? process.cwd();
// The schemas travel with the repo; pidf-schemas.test.ts holds them to SHA256SUMS.
export const PIDF_SCHEMA_DIR = process.env.E911_PIDF_SCHEMAS ?? path.join(repoRoot, 'test/fixtures/pidf-schemas');
export const PIDF_XSD = path.join(PIDF_SCHEMA_DIR, 'pidf.xsd');
if (!existsSync(PIDF_XSD)) throw new Error(`PIDF-LO schema not found at ${PIDF_XSD}`);

export function xmllintAvailable(): boolean {
  return spawnSync('xmllint', ['--version']).status === 0;
}

export interface PidfCheck {
  file: string;
  schemaValid: boolean;
  schemaErrors: string;
  /** One line per rule broken: "<local-name> must be in <namespace> (n found elsewhere)". */
  namespaceErrors: string[];
  ok: boolean;
}

/** Each element local name and the namespace it must be in. */
const EXPECTED_NS: [string, string][] = [
  ...['presence', 'tuple', 'status', 'basic', 'contact'].map((n): [string, string] => [n, NS.pidf]),
  ...['device', 'deviceID', 'person'].map((n): [string, string] => [n, NS.dm]),
  ...['geopriv', 'location-info', 'usage-rules', 'method', 'provided-by'].map((n): [string, string] => [n, NS.gp]),
  ...['retransmission-allowed', 'retention-expiry', 'external-ruleset', 'note-well'].map((n): [string, string] => [n, NS.gbp]),
  ['civicAddress', NS.ca],
];

function rules(): { label: string; xpath: string }[] {
  const out = EXPECTED_NS.map(([name, ns]) => ({
    label: `${name} must be in ${ns}`,
    xpath: `count(//*[local-name()='${name}' and namespace-uri()!='${ns}'])`,
  }));
  // Children of a civicAddress are the RFC 5139 elements, in the civicAddr namespace.
  const civic = CIVIC_ELEMENTS.map((n) => `local-name()='${n}'`).join(' or ');
  out.push({
    label: `civicAddress children must be in ${NS.ca}`,
    xpath: `count(//*[local-name()='civicAddress']/*[(${civic}) and namespace-uri()!='${NS.ca}'])`,
  });
  // timestamp and note exist in two namespaces: the parent decides which.
  out.push({
    label: `timestamp under dm:device must be in ${NS.dm}`,
    xpath: `count(//*[local-name()='device' and namespace-uri()='${NS.dm}']/*[(local-name()='timestamp' or local-name()='note') and namespace-uri()!='${NS.dm}'])`,
  });
  out.push({
    label: `timestamp under tuple must be in ${NS.pidf}`,
    xpath: `count(//*[local-name()='tuple']/*[(local-name()='timestamp' or local-name()='note') and namespace-uri()!='${NS.pidf}'])`,
  });
  return out;
}

function namespaceErrors(file: string): string[] {
  const rs = rules();
  const expr = `concat(${rs.map((r) => r.xpath).join(",',',")})`;
  const r = spawnSync('xmllint', ['--nonet', '--xpath', expr, file], { encoding: 'utf8' });
  if (r.status !== 0) return [`not well-formed: ${r.stderr.trim().split('\n')[0] ?? ''}`];
  const counts = r.stdout.trim().split(',').map(Number);
  return rs.flatMap((rule, i) => (counts[i] ? [`${rule.label} (${counts[i]} found elsewhere)`] : []));
}

/** Checks files (schema in one xmllint run, then namespaces per file). */
export function checkPidfFiles(files: string[]): PidfCheck[] {
  if (files.length === 0) return [];
  const r = spawnSync('xmllint', ['--nonet', '--noout', '--schema', PIDF_XSD, ...files], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const lines = r.stderr.split('\n');
  return files.map((file) => {
    const schemaValid = lines.includes(`${file} validates`);
    const schemaErrors = schemaValid ? '' : lines.filter((l) => l.startsWith(file)).join('\n');
    const ns = namespaceErrors(file);
    return { file, schemaValid, schemaErrors, namespaceErrors: ns, ok: schemaValid && ns.length === 0 };
  });
}

/** Checks documents given as text (written to a temporary folder that is removed after). */
export function checkPidfTexts(docs: string[]): PidfCheck[] {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'e911-pidf-'));
  try {
    const files = docs.map((doc, i) => {
      const f = path.join(dir, `doc${i}.xml`);
      writeFileSync(f, doc, 'utf8');
      return f;
    });
    return checkPidfFiles(files);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Evaluates an XPath 1.0 expression over a document with xmllint (a real XML parser, not a regex). */
export function xpath(doc: string, expr: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'e911-pidf-'));
  try {
    const f = path.join(dir, 'doc.xml');
    writeFileSync(f, doc, 'utf8');
    return execFileSync('xmllint', ['--nonet', '--xpath', expr, f], { encoding: 'utf8' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** An XPath step matching an element by local name and namespace, e.g. el('device', NS.dm). */
export const el = (localName: string, ns: string) => `*[local-name()='${localName}' and namespace-uri()='${ns}']`;
