// House rules a reader can rely on: a source file over 400 lines says why at its
// top, and nothing in the repository points outside it.
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/bundle.js';

const tracked = () => execFileSync('git', ['ls-files'], { cwd: REPO_ROOT, encoding: 'utf8' }).split('\n').filter(Boolean);
const read = (f: string) => readFileSync(path.join(REPO_ROOT, f), 'utf8');

describe('the house', () => {
  it('a source file over 400 lines (outside tests and generated code) says why in its opening comment', () => {
    const sources = tracked().filter(
      (f) => /^(agent|hal|provisioning|scripts)\/.*\.(ts|tsx|mts|mjs|c|cc|h)$/.test(f) && !f.endsWith('.d.ts') && !f.endsWith('.d.mts'),
    );
    expect(sources.length).toBeGreaterThan(100);
    const unexplained = sources.filter((f) => {
      const lines = read(f).split('\n');
      if (lines.length <= 400) return false;
      const opening: string[] = [];
      for (const l of lines) {
        if (!(l.startsWith('//') || l.startsWith('#!'))) break;
        opening.push(l);
      }
      return !/Over 400 lines: \S/.test(opening.join('\n'));
    });
    expect(unexplained).toEqual([]);
  });

  it('no code, test or doc points to files outside the repository', () => {
    // .ci/run may: it finds the offline pjproject archive beside the checkout on CI machines.
    const texts = tracked().filter(
      (f) => /\.(ts|tsx|mts|mjs|js|md|sh|json|yml|yaml)$/.test(f) && f !== 'package-lock.json' && !f.startsWith('.ci/'),
    );
    const outside = /\.\.\/shared\b|FIELD-NOTES|DESIGN\.md|\bdecision [1-9]\b/;
    // This file names the patterns it looks for.
    const hits = texts.filter((f) => f !== 'test/unit/house.test.ts' && outside.test(read(f)));
    expect(hits).toEqual([]);
  });
});
