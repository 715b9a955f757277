import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Store } from '../../agent/store/store.js';
import { AddressBook } from '../../agent/address/address-book.js';
import { eventFactory } from '../../agent/events/events.js';
import { signDocument } from '../../provisioning/protocol/signing.js';
import { sampleAddress, signedPush, testKeys } from '../helpers/address.js';
import { silentLog } from '../helpers/log.js';

let dir: string;
let store: Store;
let book: AddressBook;
const keys = testKeys();

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'e911-book-'));
  store = new Store({ dataDir: dir, log: silentLog() });
  book = new AddressBook({ store, log: silentLog(), deviceId: 'phone-1', serverKey: keys.publicKey, newEvent: eventFactory('phone-1') });
});
afterEach(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

const events = () => store.pendingEvents(0, 1000).map((r) => JSON.parse(r.payload) as { type: string; data: Record<string, unknown> });

describe('address pushes', () => {
  it('applies a signed, valid push and records an address-applied event', () => {
    const out = book.handlePush(signedPush(sampleAddress({ version: 3 }), keys));
    expect(out.result).toBe('applied');
    expect(book.current()?.version).toBe(3);
    expect(events()).toMatchObject([{ type: 'address-applied', data: { version: 3, previousVersion: null } }]);
  });

  it('treats the same version and content again as unchanged: no write, no event', () => {
    book.handlePush(signedPush(sampleAddress(), keys));
    const writes = store.writes;
    expect(book.handlePush(signedPush(sampleAddress(), keys)).result).toBe('unchanged');
    expect(store.writes).toBe(writes);
    expect(events()).toHaveLength(1);
  });

  const cases: [string, () => string | Buffer, string][] = [
    ['forged (another key)', () => signedPush(sampleAddress({ version: 9 }), testKeys()), 'bad-signature'],
    [
      'tampered after signing',
      () => {
        const doc = sampleAddress({ version: 9 });
        const sig = signDocument(doc, keys.privateKey);
        return JSON.stringify({ v: 1, doc: { ...doc, civic: { ...doc.civic, ROOM: '999' } }, sig });
      },
      'bad-signature',
    ],
    ['unsigned', () => JSON.stringify({ v: 1, doc: sampleAddress({ version: 9 }) }), 'unsigned'],
    ['replayed (older version)', () => signedPush(sampleAddress({ version: 1 }), keys), 'stale-version'],
    ['same version, other content', () => signedPush(sampleAddress({ version: 5, displayName: 'Other' }), keys), 'version-conflict'],
    ['for another phone', () => signedPush(sampleAddress({ version: 9, deviceId: 'phone-2' }), keys), 'wrong-device'],
    [
      'signed but invalid address',
      () => signedPush(sampleAddress({ version: 9, civic: { country: 'US', A1: 'XX', A3: 'A', RD: 'B', HNO: '1', PC: '1' } }), keys),
      'invalid-address',
    ],
    ['invalid JSON', () => Buffer.from('{"v":1,"doc":'), 'malformed'],
    ['unknown version', () => JSON.stringify({ v: 7 }), 'unsigned'],
    ['oversized', () => Buffer.alloc(100_000, 0x7b), 'malformed'],
  ];

  it.each(cases)('rejects a push that is %s, keeps the stored address, reports why', (_name, payload, code) => {
    book.handlePush(signedPush(sampleAddress({ version: 5 }), keys));
    const before = book.current();
    const out = book.handlePush(payload());
    expect(out).toMatchObject({ result: 'rejected', code });
    expect(book.current()).toEqual(before);
    const last = events().at(-1)!;
    expect(last).toMatchObject({ type: 'address-rejected', data: { code, keptVersion: 5 } });
    expect(String(last.data.reason).length).toBeGreaterThan(5);
  });
});
