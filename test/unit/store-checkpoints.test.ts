// The store's WAL is checkpointed by a worker thread on its own connection, never
// by SQLite's auto-checkpoint inside a write of the main thread; the WAL stays
// bounded; a worker that fails hands checkpoints back to SQLite. The worker runs
// as the agent runs it: from a file (dist/) and from a code string carrying
// better-sqlite3 and loading its addon by path (the single-executable ARM bundle).
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { DB_FILE, Store } from '../../agent/store/store.js';
import type { CheckpointWorkerScript } from '../../agent/store/wal-checkpointer.js';
// @ts-expect-error: a plain .mjs script without types
import { checkpointWorkerCode } from '../../scripts/build-arm.mjs';
import { bundleEntry } from '../helpers/bundle.js';
import type { Logger } from 'pino';
import { recordingLog, silentLog } from '../helpers/log.js';

const dirs: string[] = [];
const stores: Store[] = [];
const tmp = () => {
  const d = mkdtempSync(path.join(os.tmpdir(), 'e911-ckpt-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const s of stores.splice(0)) s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

let fileScript: CheckpointWorkerScript;
let codeScript: CheckpointWorkerScript;
beforeAll(async () => {
  fileScript = { kind: 'file', url: await bundleEntry('agent/store/checkpoint-worker.ts', 'checkpoint-worker') };
  const addon = path.join(
    path.dirname(createRequire(import.meta.url).resolve('better-sqlite3/package.json')),
    'build/Release/better_sqlite3.node',
  );
  codeScript = { kind: 'code', code: (await checkpointWorkerCode()) as string, nativeBinding: addon };
}, 60_000);

function open(dataDir: string, script: CheckpointWorkerScript, delayMs = 60_000, o: { idleMs?: number; log?: Logger } = {}): Store {
  const store = new Store({
    dataDir,
    log: o.log ?? silentLog(),
    checkpoints: { script, delayMs, ...(o.idleMs !== undefined ? { idleMs: o.idleMs } : {}) },
  });
  stores.push(store);
  return store;
}
const autocheckpoint = (s: Store) => (s as unknown as { db: Database.Database }).db.pragma('wal_autocheckpoint', { simple: true });
const walBytes = (dir: string) => statSync(path.join(dir, `${DB_FILE}-wal`)).size;
// A locations part's size: about 17 WAL pages a write.
const part = (i: number) => `${String(i).padStart(6, '0')}${'x'.repeat(64 * 1024)}`;

describe.each(['file', 'code'] as const)('checkpoints from a worker thread (%s)', (kind) => {
  const script = () => (kind === 'file' ? fileScript : codeScript);

  it('run in the worker, never inside a write on the main connection, and keep the WAL bounded', async () => {
    const dir = tmp();
    const store = open(dir, script());
    // SQLite would checkpoint inside the commit crossing 1000 pages; here it never does.
    expect(autocheckpoint(store)).toBe(0);
    for (let i = 0; i < 100; i++) store.setSetting(`p.${i % 50}`, part(i));
    // ~1700 pages written and none checkpointed: the main connection did not do it.
    const before = walBytes(dir);
    expect(before).toBeGreaterThan(1000 * 4096);
    const first = await store.checkpoint()!;
    expect(first.log).toBeGreaterThan(1000);
    expect(first.checkpointed).toBe(first.log);
    // Checkpointed in batches, the WAL starts over each time: it holds one batch, not all of them.
    for (let batch = 0; batch < 10; batch++) {
      for (let i = 0; i < 10; i++) store.setSetting(`p.${i}`, part(batch * 10 + i + 100));
      const r = await store.checkpoint()!;
      expect(r.log).toBeLessThan(250);
      expect(r.checkpointed).toBe(r.log);
    }
    expect(walBytes(dir)).toBeLessThanOrEqual(before);
    expect(store.health().checkpoints).toMatchObject({ mode: 'worker', checkpoints: 11, lastLeft: 0 });
    // What was written is in the database file: a fresh connection reads it without the WAL's help.
    store.close();
    const db = new Database(path.join(dir, DB_FILE), { readonly: true });
    expect((db.prepare("SELECT count(*) AS n FROM settings WHERE key LIKE 'p.%'").get() as { n: number }).n).toBe(50);
    db.close();
  });

  it('follow the writes by themselves, after the delay', async () => {
    const store = open(tmp(), script(), 20);
    for (let i = 0; i < 30; i++) store.setSetting(`p.${i}`, part(i));
    await vi.waitFor(() => expect(store.health().checkpoints).toMatchObject({ checkpoints: 1, lastLeft: 0 }), { timeout: 5000 });
    expect(store.health().checkpoints!.lastLog).toBeGreaterThan(400);
    // Nothing written since: no further checkpoint.
    await new Promise((r) => setTimeout(r, 100));
    expect(store.health().checkpoints!.checkpoints).toBe(1);
    store.setSetting('p.x', part(1));
    await vi.waitFor(() => expect(store.health().checkpoints!.checkpoints).toBe(2), { timeout: 5000 });
  });

  it('let the main connection write while one runs (PASSIVE: no writer lock)', async () => {
    const store = open(tmp(), script());
    for (let i = 0; i < 60; i++) store.setSetting(`p.${i}`, part(i));
    const running = store.checkpoint()!;
    // Writes on this thread meanwhile, as a dial's event would: none fails as busy.
    for (let i = 0; i < 60; i++) store.setSetting(`q.${i}`, part(i + 60));
    expect((await running).busy).toBe(false);
    const after = await store.checkpoint()!;
    expect(after.checkpointed).toBe(after.log);
    expect(store.settingKeys('q.')).toHaveLength(60);
  });
});

describe.each(['file', 'code'] as const)('the checkpoint worker thread (%s): only while there is work', (kind) => {
  const script = () => (kind === 'file' ? fileScript : codeScript);

  it('starts with the first checkpoint, ends when idle, starts again with the next write', async () => {
    const rec = recordingLog();
    const store = open(tmp(), script(), 20, { idleMs: 150, log: rec.log });
    // Opening the store starts no thread: an idle phone carries none.
    expect(store.health().checkpoints).toMatchObject({ mode: 'worker', running: false, starts: 0 });
    for (let i = 0; i < 30; i++) store.setSetting(`p.${i}`, part(i));
    await vi.waitFor(() => expect(store.health().checkpoints).toMatchObject({ checkpoints: 1, running: true, starts: 1 }), {
      timeout: 5000,
    });
    // Nothing written since: told to close after idleMs, and its thread exits cleanly.
    await vi.waitFor(() => expect(rec.lines().some((l) => l.msg === 'idle checkpoint worker exited')).toBe(true), { timeout: 5000 });
    expect(store.health().checkpoints).toMatchObject({ mode: 'worker', running: false, starts: 1, lastLeft: 0 });
    // The next write's checkpoint is run by a new worker, and what it wrote is checkpointed.
    for (let i = 0; i < 30; i++) store.setSetting(`q.${i}`, part(i));
    await vi.waitFor(() => expect(store.health().checkpoints).toMatchObject({ checkpoints: 2, running: true, starts: 2 }), {
      timeout: 5000,
    });
    expect(store.health().checkpoints!.lastLog).toBeGreaterThan(400);
    expect(store.health().checkpoints!.lastLeft).toBe(0);
    expect(rec.lines().filter((l) => (l.level as number) >= 40)).toEqual([]);
  });

  it('stays while writes keep coming (each within idleMs of the last checkpoint)', async () => {
    const store = open(tmp(), script(), 10, { idleMs: 300 });
    for (let round = 0; round < 8; round++) {
      store.setSetting('p', part(round));
      const before = store.health().checkpoints!.checkpoints;
      await vi.waitFor(() => expect(store.health().checkpoints!.checkpoints).toBe(before + 1), { timeout: 5000 });
      await new Promise((r) => setTimeout(r, 60));
    }
    expect(store.health().checkpoints).toMatchObject({ checkpoints: 8, starts: 1, running: true });
  });

  it('a direct checkpoint starts one too, and closing the store ends it', async () => {
    const store = open(tmp(), script(), 60_000, { idleMs: 60_000 });
    store.setSetting('k', 'v');
    const r = await store.checkpoint()!;
    expect(r.checkpointed).toBe(r.log);
    expect(store.health().checkpoints).toMatchObject({ running: true, starts: 1 });
    store.close();
  });
});

describe('a checkpoint worker that fails', () => {
  it('hands checkpoints back to SQLite on the main connection, so the WAL stays bounded', async () => {
    const rec = recordingLog();
    const store = open(tmp(), { kind: 'code', code: 'throw new Error("cannot load")' }, 20, { log: rec.log });
    // It fails when the first write's checkpoint starts it.
    expect(store.health().checkpoints?.mode).toBe('worker');
    store.setSetting('k0', 'v');
    await vi.waitFor(() => expect(store.health().checkpoints?.mode).toBe('sqlite'), { timeout: 5000 });
    expect(autocheckpoint(store)).toBe(1000);
    await expect(store.checkpoint()!).rejects.toThrow(/not running/);
    // Reported, not swallowed: the store's error names the worker's.
    const err = rec.lines().find((l) => l.msg === 'checkpoint worker failed: SQLite checkpoints the WAL on the main thread again');
    expect(JSON.stringify(err)).toMatch(/cannot load/);
    // Writes go on.
    expect(store.setSetting('k', 'v')).toBe(true);
  });

  it('a checkpoint asked of a worker that cannot start is rejected with the reason', async () => {
    const store = open(tmp(), { kind: 'code', code: 'throw new Error("cannot load")' });
    store.setSetting('k0', 'v');
    await expect(store.checkpoint()!).rejects.toThrow(/cannot load/);
    expect(store.health().checkpoints?.mode).toBe('sqlite');
  });

  it('when its addon cannot be loaded (a bundle whose lib/ lacks it)', async () => {
    const store = open(tmp(), {
      kind: 'code',
      code: (codeScript as { code: string }).code,
      nativeBinding: '/nonexistent/better_sqlite3.node',
    });
    store.setSetting('k0', 'v');
    await store.checkpoint()!.catch(() => undefined);
    await vi.waitFor(() => expect(store.health().checkpoints?.mode).toBe('sqlite'), { timeout: 5000 });
    expect(autocheckpoint(store)).toBe(1000);
  });
});

describe('a store without a checkpoint worker', () => {
  it("keeps SQLite's auto-checkpoint (tools, a store in memory)", () => {
    const store = new Store({ dataDir: tmp(), log: silentLog() });
    stores.push(store);
    expect(autocheckpoint(store)).toBe(1000);
    expect(store.health().checkpoints).toBeNull();
    expect(store.checkpoint()).toBeNull();
  });
});
