import { describe, expect, it } from 'vitest';
import { LocationsBook } from '../../../agent/location/locations-book.js';
import type { LocationsDocument } from '../../../provisioning/protocol/locations.js';
import { signDocument } from '../../../provisioning/protocol/signing.js';
import { sampleAddress, testKeys } from '../../helpers/address.js';
import { silentLog } from '../../helpers/log.js';

const keys = testKeys();
const doc = (version: number, over: Partial<LocationsDocument> = {}): LocationsDocument => ({
  v: 1,
  deviceId: 'phone-1',
  version,
  issuedAt: '2026-11-22T07:00:00Z',
  recommendations: true,
  assignedLocationId: 'a',
  locations: [{ id: 'a', code: 'A', name: 'A', civic: sampleAddress().civic, cidrs: ['10.0.0.0/8', '2001:db8::/32'] }],
  ...over,
});
const push = (d: LocationsDocument, k = keys) => JSON.stringify({ v: 1, doc: d, sig: signDocument(d, k.privateKey) });

function memStore() {
  const m = new Map<string, string>();
  let writes = 0;
  return {
    getSetting: (k: string) => m.get(k),
    setSetting: (k: string, v: string) => (m.get(k) === v ? false : (m.set(k, v), writes++, true)),
    writes: () => writes,
  };
}

describe('LocationsBook', () => {
  it('applies signed pushes in version order, writes only on change, survives a restart', () => {
    const store = memStore();
    const book = new LocationsBook({ store, log: silentLog(), deviceId: 'phone-1', serverKey: keys.publicKey });
    expect(book.handlePush(push(doc(2))).result).toBe('applied');
    expect(book.handlePush(push(doc(2))).result).toBe('unchanged');
    expect(store.writes()).toBe(1);
    expect(book.handlePush(push(doc(1)))).toMatchObject({ result: 'rejected', reason: expect.stringMatching(/older/) });
    expect(book.handlePush(push(doc(3), testKeys()))).toMatchObject({ result: 'rejected', reason: expect.stringMatching(/signature/) });
    expect(book.handlePush(push(doc(3, { deviceId: 'phone-2' })))).toMatchObject({ result: 'rejected', reason: expect.stringMatching(/phone-2/) });
    expect(book.handlePush('{"v":1}')).toMatchObject({ result: 'rejected' });
    expect(book.current()?.version).toBe(2);
    const again = new LocationsBook({ store, log: silentLog(), deviceId: 'phone-1', serverKey: keys.publicKey });
    expect(again.current()?.version).toBe(2);
  });
});
