// The begin file mapped through the voice addon (MAP_SHARED): a line is a copy into
// the page cache, no write(2). It must keep the file's guarantees: a line copied in
// is there for the next start even when the process is SIGKILLed right after it,
// and a line that does not fit in the mapping is still written.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BEGIN_FILE, BEGIN_FILE_SIZE, BeginFile } from '../../agent/events/begin-file.js';
import { sharedFileMapper } from '../../hal/voice/pjsip/index.js';
import { requires } from '../helpers/require.js';
import { silentLog } from '../helpers/log.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DIST_BEGIN_FILE = path.join(repo, 'dist/agent/events/begin-file.js');
const DIST_VOICE = path.join(repo, 'dist/hal/voice/pjsip/index.js');
const gate = requires('the begin file mapped by the voice addon', [
  'voice',
  { component: 'voice', missing: existsSync(DIST_BEGIN_FILE) ? null : `${DIST_BEGIN_FILE} missing (npm run build)` },
]);

const event = (id: string, filler = '') =>
  JSON.stringify({ v: 1, id, type: 'emergency-call', deviceId: 'phone-1', ts: new Date().toISOString(), data: { filler } });

describe.skipIf(gate.skip)('begin file mapped by the voice addon', () => {
  let dir: string;
  const files: BeginFile[] = [];
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'e911-begin-mapped-'));
  });
  afterEach(() => {
    for (const f of files.splice(0)) f.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const open = (mapped: boolean) => {
    const f = new BeginFile(dir, silentLog(), mapped ? sharedFileMapper() : null);
    f.open();
    files.push(f);
    return f;
  };

  it('copies a line into the mapping: in the file at once, read by the next open', () => {
    const f = open(true);
    expect(f.writeMode).toBe('mapped');
    const line = event('e-1');
    expect(f.append(line)).toBe(true);
    // Read through the file while the writer still has it mapped: the page cache is the file.
    expect(readLine(dir)).toBe(`${line}\n`);
    const next = new BeginFile(dir, silentLog());
    next.open();
    files.push(next);
    expect(next.leftover.events.map((e) => e.id)).toEqual(['e-1']);
  });

  it('marks done and clears through the mapping', () => {
    const f = open(true);
    f.append(event('e-1'));
    f.append(event('e-2'));
    f.markDone('e-1');
    let next = new BeginFile(dir, silentLog());
    next.open();
    expect(next.leftover.events.map((e) => e.id)).toEqual(['e-2']);
    next.close();
    f.clear();
    expect(readLine(dir)).toBe('');
    next = new BeginFile(dir, silentLog());
    next.open();
    files.push(next);
    expect(next.leftover.events).toEqual([]);
  });

  it('writes a line that does not fit in the mapping with write(2)', () => {
    const f = open(true);
    const big = event('e-big', 'x'.repeat(BEGIN_FILE_SIZE));
    expect(f.append(event('e-1'))).toBe(true);
    expect(f.append(big)).toBe(true);
    const next = new BeginFile(dir, silentLog());
    next.open();
    files.push(next);
    expect(next.leftover.events.map((e) => e.id)).toEqual(['e-1', 'e-big']);
    // Emptied: back to its size, zeros only.
    f.clear();
    expect(readFileSync(path.join(dir, BEGIN_FILE)).length).toBe(BEGIN_FILE_SIZE);
    expect(readLine(dir)).toBe('');
  });

  it('keeps a line copied in just before the process is SIGKILLed', async () => {
    // A process of its own (the compiled modules): it begins, says so, and is killed with the mapping still in place.
    const script = `
      const { BeginFile } = await import(${JSON.stringify(DIST_BEGIN_FILE)});
      const { sharedFileMapper } = await import(${JSON.stringify(DIST_VOICE)});
      const log = { error() {}, warn() {}, info() {}, debug() {} };
      const f = new BeginFile(${JSON.stringify(dir)}, log, sharedFileMapper());
      f.open();
      const ok = f.append(${JSON.stringify(event('e-killed'))});
      process.stdout.write(f.writeMode + ' ' + ok + '\\n');
      setInterval(() => {}, 1000);
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const said = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('\n')) resolve(out.trim());
      });
      child.on('exit', (code) => reject(new Error(`child exited (${code}) before beginning`)));
    });
    expect(said).toBe('mapped true');
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const next = new BeginFile(dir, silentLog());
    next.open();
    files.push(next);
    expect(next.leftover.events.map((e) => e.id)).toEqual(['e-killed']);
    expect(next.leftover.unreadable).toBe(0);
  });

  it('falls back to write(2) when the file cannot be mapped', () => {
    const f = new BeginFile(dir, silentLog(), {
      map: () => {
        throw new Error('no mmap here');
      },
      unmap: () => {},
    });
    f.open();
    files.push(f);
    expect(f.writeMode).toBe('write');
    const line = event('e-1');
    expect(f.append(line)).toBe(true);
    expect(readLine(dir)).toBe(`${line}\n`);
  });
});

/** The file's text without its zeros. */
function readLine(dir: string): string {
  return readFileSync(path.join(dir, BEGIN_FILE), 'utf8').replace(/\0/g, '');
}
