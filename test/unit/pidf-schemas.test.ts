// The repo's copy of the PIDF-LO schemas and examples is the one the project adopted:
// every file is listed in SHA256SUMS beside it with its hash, and nothing else is there.
// A schema edited to make a PIDF-LO pass fails here (change SHA256SUMS in the same
// commit, on purpose, with a reason).
import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { PIDF_SCHEMA_DIR } from '../helpers/pidf-check.js';

const list = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? list(path.join(dir, e.name)).map((f) => path.join(e.name, f)) : [e.name],
  );

describe('PIDF-LO schema copy', () => {
  it('matches SHA256SUMS file for file', () => {
    const sums = new Map(
      readFileSync(path.join(PIDF_SCHEMA_DIR, 'SHA256SUMS'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => {
          const [hash, file] = l.split(/\s+/);
          return [file!, hash!] as const;
        }),
    );
    expect(
      list(PIDF_SCHEMA_DIR)
        .filter((f) => f !== 'SHA256SUMS')
        .sort(),
    ).toEqual([...sums.keys()].sort());
    for (const [file, hash] of sums)
      expect(
        createHash('sha256')
          .update(readFileSync(path.join(PIDF_SCHEMA_DIR, file)))
          .digest('hex'),
        file,
      ).toBe(hash);
  });
});
