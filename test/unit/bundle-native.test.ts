// The carried-addon loader of the ARM executable, exercised on the host with the
// host's own better-sqlite3 addon: found by explicit path, a missing or foreign
// file named, nothing searched elsewhere.
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkCarried, loadCarried, NativeAddonError } from '../../agent/bundle/native.js';

const require = createRequire(import.meta.url);
const hostAddon = path.join(path.dirname(require.resolve('better-sqlite3/package.json')), 'build/Release/better_sqlite3.node');

describe('carried native addons', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'e911-native-'));
  const env = { E911_NATIVE_DIR: dir };
  copyFileSync(hostAddon, path.join(dir, 'better_sqlite3.node'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('loads lib/<name>.node with or without the suffix, as better-sqlite3 can use it', () => {
    const addon = loadCarried('better_sqlite3', env) as { Database?: unknown };
    expect(typeof addon.Database).toBe('function');
    expect(loadCarried('better_sqlite3.node', env)).toBe(addon);
  });

  it('names the file it could not load', () => {
    expect(() => loadCarried('serialport.node', env)).toThrow(NativeAddonError);
    expect(() => loadCarried('serialport.node', env)).toThrow(path.join(dir, 'serialport.node'));
  });

  it('checks every addon in the folder and reports the one that does not fit', () => {
    writeFileSync(path.join(dir, 'foreign.node'), 'not an ELF object');
    const report = checkCarried(env);
    expect(report.map((r) => [r.file, r.ok])).toEqual([
      ['better_sqlite3.node', true],
      ['foreign.node', false],
    ]);
    expect(report[1]!.error).toMatch(/foreign\.node/);
  });

  it('reports a missing folder instead of throwing', () => {
    const r = checkCarried({ E911_NATIVE_DIR: path.join(dir, 'absent') });
    expect(r).toHaveLength(1);
    expect(r[0]!.ok).toBe(false);
  });
});
