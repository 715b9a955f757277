// Key and config files are replaced whole: the new content with its mode, no
// temporary file left behind, and a failed write leaves the old file as it was.
import { afterEach, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeFileAtomic } from '../../provisioning/common/atomic-file.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('writeFileAtomic', () => {
  it('replaces the file whole, with its mode, leaving no temporary file', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'e911-atomic-'));
    dirs.push(dir);
    const file = path.join(dir, 'signing-key.json');
    writeFileSync(file, 'old');
    writeFileAtomic(file, 'new key', 0o600);
    expect(readFileSync(file, 'utf8')).toBe('new key');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir)).toEqual(['signing-key.json']);
  });

  it('a rename that fails leaves the old file as it was and no temporary file', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'e911-atomic-'));
    dirs.push(dir);
    const file = path.join(dir, 'acl');
    writeFileSync(file, 'old');
    // A folder where the file should go: the temporary file is written, the rename over it fails.
    mkdirSync(path.join(dir, 'mosquitto.conf'));
    expect(() => writeFileAtomic(path.join(dir, 'mosquitto.conf'), 'new')).toThrow();
    expect(readFileSync(file, 'utf8')).toBe('old');
    expect(readdirSync(dir).sort()).toEqual(['acl', 'mosquitto.conf']);
  });
});
