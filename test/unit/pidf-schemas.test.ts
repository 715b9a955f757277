// The repo's copy of the PIDF-LO schemas and examples is the shared one, byte for byte.
import { describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { PIDF_SCHEMA_DIR, SHARED_PIDF_SCHEMA_DIR } from '../helpers/pidf-check.js';

const shared = existsSync(SHARED_PIDF_SCHEMA_DIR);
if (!shared) console.warn(`\n!!! ${SHARED_PIDF_SCHEMA_DIR} is not beside this checkout: the schema copy cannot be compared with it here\n`);

describe.skipIf(!shared)('PIDF-LO schema copy', () => {
  it('matches ../shared/schemas/pidf file for file', () => {
    const list = (dir: string): string[] =>
      readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? list(path.join(dir, e.name)).map((f) => path.join(e.name, f)) : [e.name]));
    const files = list(SHARED_PIDF_SCHEMA_DIR).sort();
    expect(list(PIDF_SCHEMA_DIR).sort()).toEqual(files);
    for (const f of files) expect(readFileSync(path.join(PIDF_SCHEMA_DIR, f)), f).toEqual(readFileSync(path.join(SHARED_PIDF_SCHEMA_DIR, f)));
  });
});
