// Key, credential and config files written so that a crash or a power cut leaves
// either the old file or the new one, whole: write a temporary file beside it,
// fsync it, rename it over, fsync the folder (the rename is only durable then).
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import path from 'node:path';

export function writeFileAtomic(file: string, data: string, mode = 0o644): void {
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', mode);
  try {
    writeSync(fd, data);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
  closeSync(fd);
  try {
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  const dir = openSync(path.dirname(file), 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}

/**
 * writeFileAtomic with each step on libuv's thread pool: the caller's event loop never waits
 * for the fsyncs (a few ms each, far more under I/O load). `tmpSuffix` keeps its temporary
 * file apart from a synchronous writer's.
 */
export async function writeFileAtomicAsync(file: string, data: string, mode = 0o644, tmpSuffix = 'async'): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}-${tmpSuffix}`;
  try {
    const fh = await open(tmp, 'w', mode);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  const dir = await open(path.dirname(file), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
