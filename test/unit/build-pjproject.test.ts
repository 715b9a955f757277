// The pjproject pin (scripts/build-pjproject.mjs): where the source comes from, and that
// anything not matching the pin stops setup before it is built or cached.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PJPROJECT, PjprojectError, buildTarget, gitTreeId, locateSource, prefixOf } from '../../scripts/build-pjproject.mjs';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'pjbuild-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** A small archive shaped like a release (one top folder) that is not pjproject 2.17. */
function fakeArchive(where: string): string {
  const top = path.join(dir, 'fake', `pjproject-${PJPROJECT.version}`);
  mkdirSync(path.join(top, 'pjlib/include/pj'), { recursive: true });
  writeFileSync(path.join(top, 'aconfigure'), '#!/bin/sh\necho configured > configured\n');
  chmodSync(path.join(top, 'aconfigure'), 0o755);
  mkdirSync(where, { recursive: true });
  const file = path.join(where, PJPROJECT.archive);
  execFileSync('tar', ['-czf', file, '-C', path.join(dir, 'fake'), `pjproject-${PJPROJECT.version}`]);
  return file;
}

describe('gitTreeId', () => {
  it("equals git's own tree id, with executables, symlinks, nested folders and git's name order", () => {
    const tree = path.join(dir, 'tree');
    mkdirSync(path.join(tree, 'a/b'), { recursive: true });
    mkdirSync(path.join(tree, 'a-b'));
    writeFileSync(path.join(tree, 'a/b/file.c'), 'int x;\n');
    writeFileSync(path.join(tree, 'a-b/x'), '');
    writeFileSync(path.join(tree, 'a.txt'), 'dot sorts before slash\n');
    writeFileSync(path.join(tree, 'run.sh'), '#!/bin/sh\n');
    chmodSync(path.join(tree, 'run.sh'), 0o755);
    symlinkSync('a.txt', path.join(tree, 'link'));
    // GIT_DIR outside the tree: the tree holds only the files, as an unpacked archive does.
    const git = (...args: string[]) =>
      spawnSync('git', args, { cwd: tree, encoding: 'utf8', env: { ...process.env, GIT_DIR: path.join(dir, 'git'), GIT_WORK_TREE: tree } });
    expect(git('init', '-q').status).toBe(0);
    expect(git('add', '-A').status).toBe(0);
    const expected = git('write-tree').stdout.trim();
    expect(expected).toMatch(/^[0-9a-f]{40}$/);
    expect(gitTreeId(tree)).toBe(expected);
    writeFileSync(path.join(tree, 'a/b/file.c'), 'int y;\n');
    expect(gitTreeId(tree)).not.toBe(expected);
  });
});

describe('locateSource', () => {
  it('takes E911_PJPROJECT_SRC first, then the download cache, then an earlier download', async () => {
    const cacheDir = path.join(dir, 'cache');
    const offline = fakeArchive(path.join(dir, 'offline'));
    const env = { E911_CACHE_DIR: cacheDir, E911_DOWNLOAD_CACHE: path.join(dir, 'offline') };
    expect(await locateSource({ ...env, E911_PJPROJECT_SRC: path.join(dir, 'fake') })).toEqual({
      kind: 'dir',
      path: path.join(dir, 'fake'),
    });
    expect(await locateSource(env)).toEqual({ kind: 'archive', path: offline });
    const earlier = fakeArchive(path.join(cacheDir, 'downloads'));
    const said: string[] = [];
    expect(await locateSource({ ...env, E911_DOWNLOAD_CACHE: path.join(dir, 'empty') }, (m) => said.push(m))).toMatchObject({
      path: earlier,
      downloaded: true,
    });
    expect(said.join('\n')).toContain(`E911_DOWNLOAD_CACHE has no ${PJPROJECT.archive}`);
  });

  it('names a missing E911_PJPROJECT_SRC', async () => {
    await expect(locateSource({ E911_PJPROJECT_SRC: path.join(dir, 'nope') })).rejects.toThrow(/E911_PJPROJECT_SRC=.*nope does not exist/);
  });

  it('gives up on a download that does not answer within E911_DOWNLOAD_TIMEOUT_S, with what to do offline', async () => {
    const server = http.createServer(() => {}); // accepts, never answers
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/pjproject.tar.gz`;
      const err = await locateSource({
        E911_CACHE_DIR: path.join(dir, 'cache'),
        E911_PJPROJECT_URL: url,
        E911_DOWNLOAD_TIMEOUT_S: '0.3',
      }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PjprojectError);
      expect((err as Error).message).toMatch(/download of .* failed: .*E911_DOWNLOAD_CACHE/s);
      expect(existsSync(path.join(dir, 'cache/downloads', PJPROJECT.archive))).toBe(false);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});

describe('buildTarget', () => {
  it('refuses an archive that is not the pinned release before configuring it, and leaves no build behind', async () => {
    const env = { E911_CACHE_DIR: path.join(dir, 'cache'), E911_DOWNLOAD_CACHE: path.dirname(fakeArchive(path.join(dir, 'offline'))) };
    const err = await buildTarget('x64', { env }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PjprojectError);
    expect((err as Error).message).toMatch(
      new RegExp(
        `is not pjproject ${PJPROJECT.version}: sha256 [0-9a-f]{64} \\(pinned ${PJPROJECT.archiveSha256}\\), tree [0-9a-f]{40} \\(pinned ${PJPROJECT.treeId}\\)`,
      ),
    );
    expect(existsSync(prefixOf('x64', env))).toBe(false);
    // Only the log remains: no work folder, nothing configured.
    expect(readdirSync(path.join(dir, 'cache/pjproject'))).toEqual([`${path.basename(prefixOf('x64', env))}.log`]);
  });

  it('deletes a downloaded archive that fails the pin, so the next setup downloads again', async () => {
    const bytes = readFileSync(fakeArchive(path.join(dir, 'served')));
    const server = http.createServer((_req, res) => res.end(bytes));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const env = {
        E911_CACHE_DIR: path.join(dir, 'cache'),
        E911_PJPROJECT_URL: `http://127.0.0.1:${(server.address() as AddressInfo).port}/x.tar.gz`,
      };
      await expect(buildTarget('x64', { env })).rejects.toThrow(/is not pjproject/);
      expect(existsSync(path.join(dir, 'cache/downloads', PJPROJECT.archive))).toBe(false);
    } finally {
      server.close();
    }
  });

  it('rejects an unknown target', async () => {
    await expect(buildTarget('mips', { env: { E911_CACHE_DIR: dir } })).rejects.toThrow(/unknown target mips; known: x64, arm64, armv7/);
  });
});
