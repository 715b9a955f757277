import { describe, expect, it, vi } from 'vitest';
import { LocationsBook, type SettingsStore } from '../../../agent/location/locations-book.js';
import { InlineLocationsVerifier, LocationsVerifierError, type LocationsVerifier } from '../../../agent/location/locations-verifier.js';
import { PART_BYTES, type VerifiedLocations } from '../../../agent/location/locations-verify.js';
import type { LocationsDocument, RecommendedLocation } from '../../../provisioning/protocol/locations.js';
import { signDocument } from '../../../provisioning/protocol/signing.js';
import { CompactLocationsBuilder, partText } from '../../../agent/location/locations-view.js';
import { sampleAddress, testKeys } from '../../helpers/address.js';
import { silentLog } from '../../helpers/log.js';
import { Store } from '../../../agent/store/store.js';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const keys = testKeys();
const loc = (i: number): RecommendedLocation => ({
  id: `loc-${i}`,
  code: `C${i}`,
  name: `Location ${i}`,
  civic: { ...sampleAddress().civic, ROOM: String(i) },
  cidrs: [`10.${(i >> 8) & 255}.${i & 255}.0/24`, '2001:db8::/32'],
});
const doc = (version: number, over: Partial<LocationsDocument> = {}): LocationsDocument => ({
  v: 1,
  deviceId: 'phone-1',
  version,
  issuedAt: '2026-11-22T07:00:00Z',
  recommendations: true,
  assignedLocationId: 'loc-0',
  locations: [loc(0)],
  ...over,
});
const many = (n: number) => Array.from({ length: n }, (_, i) => loc(i));
const push = (d: LocationsDocument, k = keys) => JSON.stringify({ v: 1, doc: d, sig: signDocument(d, k.privateKey) });

function memStore() {
  const m = new Map<string, string>();
  let writes = 0;
  let failOn: ((key: string) => boolean) | null = null;
  const store: SettingsStore & { m: Map<string, string>; writes: () => number; failWhen: (f: ((key: string) => boolean) | null) => void } =
    {
      m,
      getSetting: (k) => m.get(k),
      setSetting: (k, v) => {
        if (failOn?.(k)) throw new Error(`disk full writing ${k}`);
        if (m.get(k) === v) return false;
        m.set(k, v);
        writes++;
        return true;
      },
      deleteSetting: (k) => m.delete(k),
      settingKeys: (prefix) => [...m.keys()].filter((k) => k.startsWith(prefix)).sort(),
      writes: () => writes,
      failWhen: (f) => (failOn = f),
    };
  return store;
}

const inline = () => new InlineLocationsVerifier({ deviceId: 'phone-1', serverKey: keys.publicKey });
function book(store: SettingsStore, verifier: LocationsVerifier = inline(), more: { yields?: { n: number } } = {}) {
  return new LocationsBook({
    store,
    log: silentLog(),
    verifier,
    yieldTurn: () => {
      if (more.yields) more.yields.n++;
      return new Promise((r) => setImmediate(r));
    },
  });
}

/** A verifier whose answers the test releases one by one (the worker thread, slow). */
function gatedVerifier() {
  const real = inline();
  const gates: (() => void)[] = [];
  const seen: string[] = [];
  const v: LocationsVerifier = {
    verify: async (payload, current) => {
      seen.push(JSON.parse(payload.toString()).doc.version);
      await new Promise<void>((r) => gates.push(r));
      return real.verify(payload, current);
    },
    close: async () => {},
  };
  const until = async (n: number) => {
    while (gates.length < n) await new Promise((r) => setImmediate(r));
  };
  return {
    v,
    release: async () => {
      await until(1);
      return gates.shift()!();
    },
    seen,
  };
}

describe('LocationsBook', () => {
  it('applies signed pushes in version order, writes only on change, survives a restart', async () => {
    const store = memStore();
    const b = book(store);
    await b.load();
    expect((await b.handlePush(push(doc(2)))).result).toBe('applied');
    const writes = store.writes();
    expect((await b.handlePush(push(doc(2)))).result).toBe('unchanged');
    expect(store.writes()).toBe(writes);
    expect(await b.handlePush(push(doc(1)))).toMatchObject({
      result: 'rejected',
      code: 'stale-version',
      reason: expect.stringMatching(/older/),
    });
    expect(await b.handlePush(push(doc(3), testKeys()))).toMatchObject({ result: 'rejected', code: 'bad-signature' });
    expect(await b.handlePush(push(doc(3, { deviceId: 'phone-2' })))).toMatchObject({
      result: 'rejected',
      code: 'wrong-device',
      reason: expect.stringMatching(/phone-2/),
    });
    expect(await b.handlePush('{"v":1}')).toMatchObject({ result: 'rejected', code: 'invalid' });
    expect(await b.handlePush('{not json')).toMatchObject({ result: 'rejected', code: 'invalid-json' });
    expect(b.current()?.version).toBe(2);
    const again = book(store);
    await again.load();
    expect(again.current()).toEqual(doc(2));
  });

  it('stores a big document in parts, one per turn, switches to it in one write and drops the old parts', async () => {
    const store = memStore();
    const yields = { n: 0 };
    const b = book(store, inline(), { yields });
    await b.load();
    const big = doc(5, { locations: many(1500) });
    expect(push(big).length).toBeGreaterThan(4 * PART_BYTES);
    expect((await b.handlePush(push(big))).result).toBe('applied');
    const parts = [...store.m.keys()].filter((k) => k.startsWith('locations.part.'));
    expect(parts.length).toBeGreaterThan(4);
    for (const k of parts) expect(store.m.get(k)!.length).toBeLessThan(PART_BYTES + 2048);
    expect(yields.n).toBeGreaterThan(parts.length);
    expect(b.current()).toEqual(big);
    // The pointer row is small: the document lives in its parts.
    expect(store.m.get('locations.doc')!.length).toBeLessThan(1024);

    const smaller = doc(6, { locations: many(10) });
    expect((await b.handlePush(push(smaller))).result).toBe('applied');
    expect([...store.m.keys()].filter((k) => k.startsWith('locations.part.'))).toEqual(['locations.part.2.0']);
    const again = book(store);
    await again.load();
    expect(again.current()).toEqual(smaller);
  });

  it('keeps the stored document whole when a store write fails half-way, and removes the parts left at the next load', async () => {
    const store = memStore();
    const b = book(store);
    await b.load();
    await b.handlePush(push(doc(1, { locations: many(300) })));
    const before = b.current();
    // The disk fills while the third part of the new document is written.
    store.failWhen((k) => k === 'locations.part.2.2');
    expect(await b.handlePush(push(doc(2, { locations: many(1200) })))).toMatchObject({
      result: 'rejected',
      code: 'not-stored',
      reason: expect.stringMatching(/disk full/),
    });
    expect(b.current()).toEqual(before);
    expect(store.settingKeys('locations.part.2.')).toHaveLength(2);
    store.failWhen(null);
    const restarted = book(store);
    await restarted.load();
    expect(restarted.current()).toEqual(before);
    expect(store.settingKeys('locations.part.2.')).toEqual([]);
    // And the push, when it comes again, applies.
    expect((await restarted.handlePush(push(doc(2, { locations: many(1200) })))).result).toBe('applied');
    expect(restarted.current()?.locations).toHaveLength(1200);
  });

  it('applies pushes one at a time: of those waiting only the newest goes on; an older one finishing late never wins', async () => {
    const store = memStore();
    const g = gatedVerifier();
    const b = book(store, g.v);
    await b.load();
    const p2 = b.handlePush(push(doc(2)));
    const p3 = b.handlePush(push(doc(3)));
    const p4 = b.handlePush(push(doc(4)));
    expect(await p3).toEqual({ result: 'superseded' });
    await g.release(); // 2
    expect((await p2).result).toBe('applied');
    await g.release(); // 4
    expect((await p4).result).toBe('applied');
    expect(g.seen).toEqual([2, 4]);
    // The retained older one comes back (a reconnect) after the newer one: refused, the newer kept.
    const p3again = b.handlePush(push(doc(3)));
    await g.release();
    expect(await p3again).toMatchObject({ result: 'rejected', code: 'stale-version' });
    expect(b.current()?.version).toBe(4);
  });

  it('a streamed push superseded before it was looked at is released (its bytes are not kept in the verifier)', async () => {
    const store = memStore();
    const real = inline();
    const gates: (() => void)[] = [];
    const v: LocationsVerifier = {
      verify: async (payload, current) => {
        await new Promise<void>((r) => gates.push(r));
        return real.verify(payload, current);
      },
      close: async () => {},
    };
    const streamed = (d: LocationsDocument) => {
      const bytes = Buffer.from(push(d));
      const s = real.openStream(bytes.length);
      s.write(bytes);
      return s.end();
    };
    const b = book(store, v);
    await b.load();
    const p2 = b.handlePush(streamed(doc(2)));
    const s3 = streamed(doc(3));
    const p3 = b.handlePush(s3);
    const p4 = b.handlePush(streamed(doc(4)));
    expect(await p3).toEqual({ result: 'superseded' });
    // Released: the verifier no longer holds it.
    await expect(real.verify(s3, null)).rejects.toThrow(/not held/);
    while (gates.length < 1) await new Promise((r) => setImmediate(r));
    gates.shift()!();
    expect((await p2).result).toBe('applied');
    while (gates.length < 1) await new Promise((r) => setImmediate(r));
    gates.shift()!();
    expect(await p4).toMatchObject({ result: 'applied', version: 4 });
  });

  it('a failed verifier rejects the push with a reason and keeps what is stored', async () => {
    const store = memStore();
    const b = book(store);
    await b.load();
    await b.handlePush(push(doc(1)));
    const failing = book(store, {
      verify: () => Promise.reject(new LocationsVerifierError('the locations worker exited (1)')),
      close: async () => {},
    });
    await failing.load();
    expect(await failing.handlePush(push(doc(2)))).toMatchObject({
      result: 'rejected',
      code: 'verifier-failed',
      reason: expect.stringMatching(/exited/),
    });
    expect(failing.current()).toEqual(doc(1));
  });

  it('reads a document an earlier agent stored whole, and replaces it with parts at the next push', async () => {
    const store = memStore();
    store.m.set('locations.doc', JSON.stringify(doc(7)));
    const b = book(store);
    await b.load();
    expect(b.current()).toEqual(doc(7));
    // The same document again is applied (no hash was stored with it): now in parts.
    expect((await b.handlePush(push(doc(7)))).result).toBe('applied');
    expect(JSON.parse(store.m.get('locations.doc')!)).toMatchObject({ format: 2, version: 7, parts: 1 });
  });

  it('an unreadable stored document leaves the book empty, not the agent down', async () => {
    const store = memStore();
    store.m.set('locations.doc', JSON.stringify({ format: 2, gen: 3, version: 2, hash: 'h', head: {}, parts: 2, count: 2 }));
    store.m.set('locations.part.3.0', '[]');
    const b = book(store);
    await b.load();
    expect(b.current()).toBeNull();
    expect((await b.handlePush(push(doc(1)))).result).toBe('applied');
    // Written past the generation it could not read, never into it.
    expect(JSON.parse(store.m.get('locations.doc')!)).toMatchObject({ gen: 4, version: 1 });
    expect(store.settingKeys('locations.part.4.')).toEqual(['locations.part.4.0']);
  });

  it('a load that failed is tried again by the next push (the store is back)', async () => {
    const store = memStore();
    await book(store).handlePush(push(doc(1, { locations: many(300) })));
    const getSetting = store.getSetting;
    store.getSetting = () => {
      throw new Error('SQLITE_BUSY');
    };
    const b = book(store);
    await b.load();
    expect(b.current()).toBeNull();
    store.getSetting = getSetting;
    // Read again before the push is compared: the same document is unchanged, not applied anew.
    expect((await b.handlePush(push(doc(1, { locations: many(300) })))).result).toBe('unchanged');
    expect(b.current()?.locations).toHaveLength(300);
  });

  it('a push is applied once switched to, even when the old parts cannot be removed', async () => {
    const store = memStore();
    const b = book(store);
    await b.handlePush(push(doc(1, { locations: many(300) })));
    const deleteSetting = store.deleteSetting;
    store.deleteSetting = () => {
      throw new Error('disk I/O error');
    };
    expect((await b.handlePush(push(doc(2)))).result).toBe('applied');
    expect(b.current()).toEqual(doc(2));
    store.deleteSetting = deleteSetting;
    // The old parts go at the next start.
    expect(store.settingKeys('locations.part.1.').length).toBeGreaterThan(0);
    await book(store).load();
    expect(store.settingKeys('locations.part.1.')).toEqual([]);
  });
});

describe('a push indexed by the verifier (as the worker sends it)', () => {
  it('stores the parts sent as bytes and takes their index: the main thread parses no part', async () => {
    const d = doc(1, { locations: many(900) });
    // What the worker sends: the parts as UTF-8 bytes and their matcher index (made here before the push).
    const v = (await inline().verify(push(d), null)) as Extract<VerifiedLocations, { result: 'apply' }>;
    const built = new CompactLocationsBuilder();
    for (const p of v.parts) built.addPart(partText(p));
    const sent: VerifiedLocations = { ...v, parts: v.parts.map((p) => new Uint8Array(Buffer.from(partText(p)))), index: built.index() };
    const indexed: LocationsVerifier = { verify: async () => sent, close: async () => {} };
    const s = memStore();
    const b = book(s, indexed);
    const addPart = vi.spyOn(CompactLocationsBuilder.prototype, 'addPart');
    try {
      expect(await b.handlePush(push(d))).toEqual({ result: 'applied', version: 1 });
      expect(addPart).not.toHaveBeenCalled();
    } finally {
      addPart.mockRestore();
    }
    // Stored as text, answered as the document.
    const stored = [...s.m.entries()].filter(([k]) => k.startsWith('locations.part.')).map(([, v]) => JSON.parse(v) as unknown[]);
    expect(stored.flat()).toEqual(d.locations);
    expect(b.current()?.locations).toEqual(d.locations);
    expect(b.view()?.findFirst('loc-777', (l) => l.id === 'loc-777')).toEqual(loc(777));
    expect(
      b
        .view()
        ?.at([3, 800])
        .map((l) => l.id),
    ).toEqual(['loc-3', 'loc-800']);
    // A restart reads the stored text back to the same document.
    const again = book(s);
    await again.load();
    expect(again.current()).toEqual(b.current());
  });

  it("the agent's store takes the parts as bytes (no string made for them): the same text rows", async () => {
    const d = doc(1, { locations: many(900) });
    const v = (await inline().verify(push(d), null)) as Extract<VerifiedLocations, { result: 'apply' }>;
    const built = new CompactLocationsBuilder();
    for (const p of v.parts) built.addPart(partText(p));
    // Views of one buffer, as the worker moves them.
    const whole = Buffer.from(v.parts.map((p) => partText(p)).join(''), 'utf8');
    let at = 0;
    const views = v.parts.map((p) => {
      const n = Buffer.byteLength(partText(p));
      const view = new Uint8Array(whole.buffer, whole.byteOffset + at, n);
      at += n;
      return view;
    });
    const sent: VerifiedLocations = { ...v, parts: views, index: built.index() };
    const store = new Store({ dataDir: mkdtempSync(path.join(os.tmpdir(), 'e911-book-')), log: silentLog() });
    try {
      const asText = vi.spyOn(store, 'setSetting');
      const asBytes = vi.spyOn(store, 'setSettingUtf8');
      const b = book(store, { verify: async () => sent, close: async () => {} });
      expect(await b.handlePush(push(d))).toEqual({ result: 'applied', version: 1 });
      expect(asBytes).toHaveBeenCalledTimes(v.parts.length);
      expect(asText.mock.calls.map(([k]) => k)).toEqual(['locations.doc']);
      const keys = store.settingKeys('locations.part.');
      expect(keys.map((k) => store.getSetting(k))).toEqual(v.parts.map((p) => partText(p)));
      const again = book(store);
      await again.load();
      expect(again.current()).toEqual({ ...d, locations: d.locations });
      expect(again.current()).toEqual(b.current());
    } finally {
      store.close();
    }
  });
});

describe("verifyLocationsPush (the worker's work)", () => {
  it('cuts the locations into parts that join back to the document', async () => {
    const big = doc(1, { locations: many(800) });
    const v = (await inline().verify(push(big), null)) as Extract<VerifiedLocations, { result: 'apply' }>;
    expect(v).toMatchObject({ ok: true, result: 'apply', version: 1, count: 800 });
    expect(v.parts.length).toBeGreaterThan(1);
    expect(v.parts.flatMap((p) => JSON.parse(partText(p)) as unknown[])).toEqual(big.locations);
    const { locations: _all, ...head } = big;
    expect(v.head).toEqual(head);
  });

  it('refuses a payload over the size bound before parsing it', async () => {
    const huge = `{"v":1,"pad":"${'x'.repeat(2 * 1024 * 1024)}"}`;
    expect(await inline().verify(huge, null)).toMatchObject({ ok: false, code: 'too-large' });
  });
});
