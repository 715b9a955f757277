// The required-components gate (test/helpers/require.ts, docs/testing.md): E911_REQUIRE
// parsing, and a gated suite run in its own vitest with and without the gate.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { COMPONENTS, decide, parseRequire } from '../helpers/require.js';

const repo = path.resolve(import.meta.dirname, '../..');

describe('E911_REQUIRE', () => {
  it('takes a comma list, `all`, and `-name` to leave one out', () => {
    expect(parseRequire(undefined)).toEqual(new Set());
    expect(parseRequire('')).toEqual(new Set());
    expect(parseRequire(' voice , broker,')).toEqual(new Set(['voice', 'broker']));
    expect(parseRequire('all')).toEqual(new Set(COMPONENTS));
    expect([...parseRequire('all,-arm')].sort()).toEqual(COMPONENTS.filter((c) => c !== 'arm').sort());
  });

  it('refuses a name it does not know, so a typo never requires nothing', () => {
    expect(() => parseRequire('voice,brokr')).toThrow('E911_REQUIRE: unknown component "brokr"');
  });

  it('fails only for missing components that are required', () => {
    const missing = [
      { component: 'voice' as const, missing: 'not built' },
      { component: 'arm' as const, missing: 'no build/arm' },
    ];
    expect(decide([], parseRequire('all'))).toEqual({ skip: false, fail: [] });
    expect(decide(missing, new Set())).toEqual({ skip: true, fail: [] });
    expect(decide(missing, parseRequire('voice'))).toEqual({ skip: true, fail: [missing[0]] });
  });
});

describe('a gated suite in its own vitest', () => {
  const run = (env: Record<string, string>) => {
    const r = spawnSync(
      process.execPath,
      [path.join(repo, 'node_modules/vitest/vitest.mjs'), 'run', '--config', 'test/fixtures/require/vitest.config.ts'],
      {
        cwd: repo,
        encoding: 'utf8',
        env: { PATH: process.env.PATH, HOME: process.env.HOME, NO_COLOR: '1', ...env },
        timeout: 60_000,
      },
    );
    return { code: r.status, out: `${r.stdout}${r.stderr}` };
  };

  it('outside the gate: skipped, with one loud line naming what is missing; the run passes', () => {
    const r = run({});
    expect(r.out).toContain('!!! SKIPPED the gated fixture suite: voice missing: pretend: no addon in this fixture');
    expect(r.out).toMatch(/1 passed \| 1 skipped/);
    expect(r.code, r.out).toBe(0);
  });

  it('under the gate: the run fails, naming the suite and the missing component', () => {
    const r = run({ E911_REQUIRE: 'all' });
    expect(r.out).toContain('requires voice: the gated fixture suite');
    expect(r.out).toContain(
      'RequiredComponentMissing: the gated fixture suite: required component missing (E911_REQUIRE=all): voice: pretend: no addon in this fixture',
    );
    expect(r.out).not.toContain('!!! SKIPPED');
    expect(r.code, r.out).toBe(1);
  });
});
