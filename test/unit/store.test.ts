import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync, existsSync, readdirSync, chmodSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { Store, DB_FILE } from '../../agent/store/store.js';
import { migrate } from '../../provisioning/common/sqlite.js';
import { MIGRATIONS } from '../../agent/store/migrations.js';
import {
  StoreAccessError,
  StoreBusyError,
  StoreCorruptError,
  StoreFullError,
  StoreIoError,
  StoreTooNewError,
  classifyStoreError,
} from '../../agent/errors.js';
import { eventFactory } from '../../agent/events/events.js';
import { documentHash } from '../../provisioning/protocol/signing.js';
import { sampleAddress } from '../helpers/address.js';
import { silentLog } from '../helpers/log.js';

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(path.join(os.tmpdir(), 'e911-store-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const newEvent = eventFactory('phone-1');
const latest = Math.max(...MIGRATIONS.map((m) => m.version));

describe('migrations', () => {
  it('bring a fresh database to the latest version in WAL mode', () => {
    const store = new Store({ dataDir: tmp(), log: silentLog() });
    expect(store.health()).toMatchObject({ schemaVersion: latest, journalMode: 'wal', incident: null });
    store.close();
  });

  it("cap SQLite's page cache at 512 KiB (a phone's RSS), not its default 2 MiB", () => {
    const store = new Store({ dataDir: tmp(), log: silentLog() });
    const db = (store as unknown as { db: Database.Database }).db;
    expect(db.pragma('cache_size', { simple: true })).toBe(-512);
    store.close();
  });

  it('run each in a transaction: a failing one leaves no trace and the version unchanged', () => {
    const db = new Database(':memory:');
    const bad = [...MIGRATIONS, { version: latest + 1, name: 'half', sql: 'CREATE TABLE half (x); SELECT nonsense FROM nowhere;' }];
    expect(() => migrate(db, bad)).toThrow();
    expect(db.pragma('user_version', { simple: true })).toBe(latest);
    expect(db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name = 'half'").get()).toEqual({ n: 0 });
    migrate(db, MIGRATIONS); // idempotent
    expect(db.pragma('user_version', { simple: true })).toBe(latest);
  });

  it('refuse a database newer than the code', () => {
    const db = new Database(':memory:');
    db.pragma(`user_version = ${latest + 5}`);
    expect(() => migrate(db, MIGRATIONS)).toThrow(/newer/);
  });
});

describe('a corrupt or unreadable database', () => {
  it('is kept aside, a fresh store starts, and the incident is known', () => {
    const dir = tmp();
    const garbage = Buffer.from('this is not an sqlite database, it is garbage '.repeat(200));
    writeFileSync(path.join(dir, DB_FILE), garbage);
    const store = new Store({ dataDir: dir, log: silentLog() });
    const incident = store.health().incident!;
    expect(incident.reason).toMatch(/not a database|malformed|corrupt/i);
    expect(readFileSync(incident.keptAs)).toEqual(garbage);
    expect(store.getAddress()).toBeNull();
    expect(store.health().schemaVersion).toBe(latest);
    store.close();
  });
});

describe('store errors told apart: only corruption moves the file', () => {
  it('a database newer than the code: StoreTooNewError, the file untouched', () => {
    const dir = tmp();
    const first = new Store({ dataDir: dir, log: silentLog() });
    first.close();
    const db = new Database(path.join(dir, DB_FILE));
    db.pragma(`user_version = ${latest + 5}`);
    db.close();
    const before = readFileSync(path.join(dir, DB_FILE));
    expect(() => new Store({ dataDir: dir, log: silentLog() })).toThrow(StoreTooNewError);
    expect(readFileSync(path.join(dir, DB_FILE))).toEqual(before);
    expect(readdirSync(dir).filter((f) => f.includes('corrupt'))).toEqual([]);
  });

  it('a store that opens but cannot be used (a table missing) is closed again: no handle left on the file', () => {
    const dir = tmp();
    // Says it is at the latest schema, holds none of its tables: statements fail to prepare.
    const db = new Database(path.join(dir, DB_FILE));
    db.pragma(`user_version = ${latest}`);
    db.close();
    const heldFiles = () =>
      readdirSync('/proc/self/fd')
        .flatMap((fd) => {
          try {
            return [readlinkSync(`/proc/self/fd/${fd}`)];
          } catch {
            return []; // closed between the listing and the read
          }
        })
        .filter((f) => f.startsWith(path.join(dir, DB_FILE)));
    expect(() => new Store({ dataDir: dir, log: silentLog() })).toThrow(/no such table/);
    expect(heldFiles()).toEqual([]);
  });

  it('permission denied (EACCES) and a full disk are their own errors, and nothing is moved', () => {
    expect(classifyStoreError(Object.assign(new Error('unable to open database file'), { code: 'SQLITE_CANTOPEN' }), 'x')).toBeInstanceOf(
      StoreAccessError,
    );
    expect(classifyStoreError(Object.assign(new Error('EACCES'), { code: 'EACCES' }), 'x')).toBeInstanceOf(StoreAccessError);
    expect(classifyStoreError(Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' }), 'x')).toBeInstanceOf(
      StoreFullError,
    );
    expect(classifyStoreError(Object.assign(new Error('no space'), { code: 'ENOSPC' }), 'x')).toBeInstanceOf(StoreFullError);
    expect(classifyStoreError(Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' }), 'x')).toBeInstanceOf(StoreBusyError);
    expect(classifyStoreError(Object.assign(new Error('file is not a database'), { code: 'SQLITE_NOTADB' }), 'x')).toBeInstanceOf(
      StoreCorruptError,
    );
    expect(classifyStoreError(Object.assign(new Error('malformed'), { code: 'SQLITE_CORRUPT' }), 'x')).toBeInstanceOf(StoreCorruptError);
    expect(classifyStoreError(Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR_WRITE' }), 'x')).toBeInstanceOf(
      StoreIoError,
    );
  });

  it('a data folder the agent may not write: StoreAccessError, nothing moved aside', () => {
    if (process.getuid?.() === 0) {
      // root ignores file modes: a read-only bind is what denies it here.
      const dir = tmp();
      const first = new Store({ dataDir: dir, log: silentLog() });
      first.close();
      const ro = tmp();
      execFileSync('mount', ['--bind', dir, ro]);
      try {
        execFileSync('mount', ['-o', 'remount,bind,ro', ro]);
        expect(() => new Store({ dataDir: ro, log: silentLog() })).toThrow(StoreAccessError);
        expect(readdirSync(dir).filter((f) => f.includes('corrupt'))).toEqual([]);
      } finally {
        execFileSync('umount', [ro]);
      }
    } else {
      const dir = tmp();
      chmodSync(dir, 0o500);
      expect(() => new Store({ dataDir: dir, log: silentLog() })).toThrow(StoreAccessError);
    }
  });
});

describe('address', () => {
  it('stores document, signature, history and its event in one transaction', () => {
    const store = new Store({ dataDir: tmp(), log: silentLog() });
    const doc = sampleAddress();
    const applied = store.applyAddress(
      { doc, version: 1, hash: documentHash(doc), signature: 'sig', receivedAt: 'r' },
      newEvent('address-applied', { version: 1 }),
    );
    expect(store.getAddress()).toEqual(applied);
    expect(store.getAddress()!.doc).toEqual(doc);
    const doc2 = sampleAddress({ version: 2 });
    store.applyAddress(
      { doc: doc2, version: 2, hash: documentHash(doc2), signature: 'sig2', receivedAt: 'r2' },
      newEvent('address-applied', { version: 2 }),
    );
    expect(store.addressHistory().map((h) => h.version)).toEqual([2, 1]);
    expect(store.outboxBacklog()).toBe(2);
    store.close();
  });

  it('survives a reopen', () => {
    const dir = tmp();
    const doc = sampleAddress();
    const s1 = new Store({ dataDir: dir, log: silentLog() });
    s1.applyAddress({ doc, version: 1, hash: 'h', signature: 's', receivedAt: 'r' }, newEvent('address-applied', {}));
    s1.close();
    const s2 = new Store({ dataDir: dir, log: silentLog() });
    expect(s2.getAddress()?.doc).toEqual(doc);
    expect(s2.outboxBacklog()).toBe(1);
    s2.close();
  });
});

describe('settings', () => {
  it('write only when the value changes', () => {
    const store = new Store({ dataDir: tmp(), log: silentLog() });
    const before = store.writes;
    expect(store.setSetting('k', 'a')).toBe(true);
    expect(store.setSetting('k', 'a')).toBe(false);
    expect(store.writes).toBe(before + 1);
    expect(store.setSetting('k', 'b')).toBe(true);
    expect(store.getSetting('k')).toBe('b');
    store.close();
  });

  it('a value given as UTF-8 bytes is stored as the same text row as the string', () => {
    const dir = tmp();
    const store = new Store({ dataDir: dir, log: silentLog() });
    const text = `[${JSON.stringify({ name: 'Bâtiment Zürich — 3ᵉ étage 🚒', code: 'é\u0000x' })}]`;
    // A view into a larger buffer, as the locations worker sends the parts.
    const whole = Buffer.from(`xx${text}yy`, 'utf8');
    const view = new Uint8Array(whole.buffer, whole.byteOffset + 2, Buffer.byteLength(text));
    const before = store.writes;
    expect(store.setSettingUtf8('p', view)).toBe(true);
    expect(store.setSettingUtf8('p', view)).toBe(false);
    expect(store.getSetting('p')).toBe(text);
    store.setSetting('s', text);
    expect(store.setSetting('p', text)).toBe(false);
    expect(store.setSettingUtf8('p', Buffer.from('[1]'))).toBe(true);
    expect(store.getSetting('p')).toBe('[1]');
    expect(store.writes).toBe(before + 3);
    store.close();
    const db = new Database(path.join(dir, DB_FILE), { readonly: true });
    expect(db.prepare("SELECT typeof(value) AS t, value FROM settings WHERE key = 's'").get()).toEqual({ t: 'text', value: text });
    expect(db.prepare("SELECT typeof(value) AS t FROM settings WHERE key = 'p'").get()).toEqual({ t: 'text' });
    db.close();
  });
});

describe('outbox', () => {
  it('keeps events in order and removes only acknowledged ones', () => {
    const store = new Store({ dataDir: tmp(), log: silentLog() });
    const ids = Array.from({ length: 10 }, (_, i) => {
      const e = newEvent('diagnostics', { i });
      store.enqueue(e);
      return e.id;
    });
    const rows = store.pendingEvents(0, 100);
    expect(rows.map((r) => r.id)).toEqual(ids);
    store.ackEvents([rows[0]!.seq, rows[3]!.seq]);
    expect(store.pendingEvents(0, 100).map((r) => r.id)).toEqual(ids.filter((_, i) => i !== 0 && i !== 3));
    expect(store.outboxBacklog()).toBe(8);
    expect(store.pendingEvents(rows[5]!.seq, 2).map((r) => r.id)).toEqual([ids[6], ids[7]]);
    store.close();
  });

  it('stores an event id once however often it is enqueued', () => {
    const store = new Store({ dataDir: tmp(), log: silentLog() });
    const e = newEvent('diagnostics', {});
    store.enqueue(e);
    store.enqueue(e);
    expect(store.outboxBacklog()).toBe(1);
    store.close();
  });

  it('is bounded: evicts the oldest unprotected events, never emergency or test-call events', () => {
    const store = new Store({ dataDir: tmp(), log: silentLog(), outboxMax: 100 });
    const emergency = newEvent('emergency-call', { n: 0 });
    store.enqueue(emergency);
    for (let i = 0; i < 150; i++) store.enqueue(newEvent('location-changed', { i }));
    const rows = store.pendingEvents(0, 1000);
    expect(rows).toHaveLength(100);
    expect(rows[0]!.id).toBe(emergency.id);
    expect(JSON.parse(rows[1]!.payload).data.i).toBe(51); // 0..50 evicted
    store.close();
  });

  it('keeps protected events beyond the bound and drops unprotected ones when nothing can be evicted', () => {
    const store = new Store({ dataDir: tmp(), log: silentLog(), outboxMax: 100 });
    for (let i = 0; i < 120; i++) expect(store.enqueue(newEvent(i % 2 ? 'emergency-call' : 'test-call', { i }))).toBe(true);
    expect(store.enqueue(newEvent('diagnostics', {}))).toBe(false);
    expect(store.outboxBacklog()).toBe(120);
    expect(store.pendingEvents(0, 1000).every((r) => r.type === 'emergency-call' || r.type === 'test-call')).toBe(true);
    store.close();
  });

  it('counts its write transactions (the idle-write benchmark reads it)', () => {
    const dir = tmp();
    const store = new Store({ dataDir: dir, log: silentLog() });
    const w = store.writes;
    store.getAddress();
    store.pendingEvents(0, 10);
    store.outboxBacklog();
    expect(store.writes).toBe(w);
    store.enqueue(newEvent('diagnostics', {}));
    expect(store.writes).toBe(w + 1);
    store.close();
    expect(existsSync(path.join(dir, DB_FILE))).toBe(true);
  });
});
