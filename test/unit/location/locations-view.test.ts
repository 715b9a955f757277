// The locations as the agent's main thread keeps them (locations-view.ts): parts as
// text and a compact matcher index. It must answer exactly as the parsed document
// did (matches, lookups by id and code, the locations offered), and keep no parsed
// location alive (the main-thread scavenges a 2 MiB push caused came from those).
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { CompactLocationsBuilder, type CompactLocations } from '../../../agent/location/locations-view.js';
import { cutParts } from '../../../agent/location/locations-verify.js';
import { assess, documentView, matchesNetwork, parseFacts, type NetworkFacts } from '../../../agent/location/recommend.js';
import { LocationsBook, type SettingsStore } from '../../../agent/location/locations-book.js';
import { InlineLocationsVerifier } from '../../../agent/location/locations-verifier.js';
import type { LocationsDocument, RecommendedLocation } from '../../../provisioning/protocol/locations.js';
import { signDocument } from '../../../provisioning/protocol/signing.js';
import { sampleAddress, testKeys } from '../../helpers/address.js';
import { silentLog } from '../../helpers/log.js';

/** A small deterministic generator: the same cases on every run. */
function rng(seed: number) {
  let s = seed >>> 0;
  const next = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  return { next, int: (n: number) => Math.floor(next() * n), pick: <T>(xs: readonly T[]) => xs[Math.floor(next() * xs.length)]! };
}

// Ids and codes with what JSON escapes, non-Latin-1 text, and one location's code being another's id.
const NAMES = ['a', 'A', 'a"b', 'back\\slash', 'tab\there', 'line\nbreak', 'ümlaut', '東京', '😀', 'x', 'loc-1', 'loc-10', 'SITE', ' sp '];
const CHASSIS = ['aa:bb:cc:00:00:01', 'AA:BB:CC:00:00:01', ' aa:bb:cc:00:00:02 ', 'sw"1', 'sw\t2', 'Sw-3'];
const PORTS = ['ge-0/0/1', 'GE-0/0/1', 'ge-0/0/2', 'port "7"', ' 8 '];

function randomCidr(r: ReturnType<typeof rng>): string {
  switch (r.int(6)) {
    case 0:
      return `10.${r.int(4)}.${r.int(4)}.0/${r.pick([8, 16, 24, 30, 32])}`;
    case 1:
      return `2001:db8:${r.int(4).toString(16)}::/${r.pick([32, 48, 64, 128])}`;
    case 2:
      return `10.${r.int(4)}.${r.int(4)}.${r.int(4)}`; // no prefix: one host
    case 3:
      return r.pick(['0.0.0.0/0', '::/0', 'fe80::/10', '::ffff:10.0.0.0/104']);
    case 4:
      return r.pick(['10.0.0.0/33', 'nonsense', '10.0.0.0/x', 'fe80::1%eth0/64', '']); // matches nothing
    default:
      return ` 10.${r.int(4)}.0.0/16 `;
  }
}

function randomDoc(seed: number, n: number): LocationsDocument {
  const r = rng(seed);
  const locations: RecommendedLocation[] = Array.from({ length: n }, (_, i) => {
    const l: RecommendedLocation = {
      id: r.next() < 0.3 ? r.pick(NAMES) : `loc-${i}`,
      code: r.next() < 0.3 ? r.pick(NAMES) : `C${i}`,
      name: `Location ${i} ${r.pick(NAMES)}`,
      civic: { ...sampleAddress().civic, ROOM: String(i) },
      cidrs: Array.from({ length: r.int(3) }, () => randomCidr(r)),
    };
    if (r.next() < 0.4)
      l.switchPorts = Array.from({ length: 1 + r.int(2) }, () =>
        r.next() < 0.5 ? { chassisId: r.pick(CHASSIS) } : { chassisId: r.pick(CHASSIS), portId: r.pick(PORTS) },
      );
    return l;
  });
  return {
    v: 1,
    deviceId: 'phone-1',
    version: 1,
    issuedAt: '2026-11-22T07:00:00Z',
    recommendations: true,
    assignedLocationId: r.pick(NAMES),
    locations,
  };
}

function randomFacts(r: ReturnType<typeof rng>): NetworkFacts {
  return {
    addresses: Array.from({ length: r.int(3) }, () =>
      r.pick([
        `10.${r.int(4)}.${r.int(4)}.${r.int(4)}`,
        `2001:db8:${r.int(4).toString(16)}::${r.int(9)}`,
        'fe80::1%eth0',
        '::ffff:10.0.0.1',
        '192.0.2.1',
      ]),
    ),
    switches: Array.from({ length: r.int(3) }, () => ({ chassisId: r.pick(CHASSIS), portId: r.pick(PORTS) })),
  };
}

function compact(doc: LocationsDocument, parts: string[]): CompactLocations {
  const { locations: _l, ...head } = doc;
  const b = new CompactLocationsBuilder();
  for (const p of parts) b.addPart(p);
  return b.finish(head);
}

/** The two ways a document is cut: as the verifier cuts it (~64 KiB parts), and one location per part. */
const cuts = (doc: LocationsDocument) => ({
  verifier: compact(doc, cutParts(doc.locations)),
  single: compact(doc, doc.locations.length ? doc.locations.map((l) => JSON.stringify([l])) : ['[]']),
});

describe('CompactLocations', () => {
  it('matches exactly the locations the parsed document matches, for any addresses and switches', () => {
    const r = rng(11);
    for (let seed = 1; seed <= 40; seed++) {
      const doc = randomDoc(seed, 40 + seed * 5);
      for (const view of Object.values(cuts(doc))) {
        for (let k = 0; k < 25; k++) {
          const facts = randomFacts(r);
          const expected = doc.locations.flatMap((l, i) => (matchesNetwork(l, facts) ? [i] : []));
          expect(view.matching(parseFacts(facts)), JSON.stringify(facts)).toEqual(expected);
        }
      }
    }
  });

  it('finds by id or code what Array.find finds (escaped text, a code that is another id, a value in the civic or name only)', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const doc = randomDoc(seed, 60);
      for (const view of Object.values(cuts(doc))) {
        for (const x of [...NAMES, 'loc-0', 'C5', 'loc-59', 'Location', 'US', 'missing', '"', '']) {
          const pred = (l: RecommendedLocation) => l.id === x || l.code === x;
          expect(view.findFirst(x, pred)).toEqual(doc.locations.find(pred) ?? null);
          expect(view.findFirst(x, (l) => l.code === x)).toEqual(doc.locations.find((l) => l.code === x) ?? null);
        }
      }
    }
  });

  it('gives back the locations at given indexes, and all of them, as stored; the count and head', () => {
    const doc = randomDoc(3, 3000);
    const { verifier, single } = cuts(doc);
    expect(verifier.partCount).toBeGreaterThan(1);
    for (const view of [verifier, single]) {
      expect(view.count).toBe(3000);
      const { locations: _l, ...head } = doc;
      expect(view.head).toEqual(head);
      const idx = [0, 1, 7, 899, 900, 1500, 2999];
      expect(view.at(idx)).toEqual(idx.map((i) => doc.locations[i]));
      expect(view.all()).toEqual(doc.locations);
      expect(() => view.at([3000])).toThrow(RangeError);
    }
    const empty = cuts({ ...doc, locations: [] });
    expect(empty.verifier.count).toBe(0);
    expect(empty.verifier.all()).toEqual([]);
    expect(empty.verifier.matching(parseFacts({ addresses: ['10.0.0.1'], switches: [] }))).toEqual([]);
  });

  it('assesses as the parsed document does: status, assigned, matches, what is offered', () => {
    const r = rng(5);
    for (let seed = 1; seed <= 30; seed++) {
      const doc = randomDoc(seed, 80);
      // Half the documents assign a location that exists, by id.
      if (seed % 2 === 0) doc.assignedLocationId = doc.locations[r.int(80)]!.id;
      if (seed % 5 === 0) doc.assignedLocationId = null;
      for (const view of Object.values(cuts(doc))) {
        for (let k = 0; k < 10; k++) {
          const facts = randomFacts(r);
          const code = r.next() < 0.5 ? r.pick(NAMES) : null;
          expect(assess(view, facts, code)).toEqual(assess(documentView(doc), facts, code));
        }
      }
    }
    // And the plain document's own answer is the old one: every location offered when none match.
    const d = randomDoc(1, 10);
    for (const l of d.locations) {
      l.cidrs = ['192.168.0.0/16'];
      delete l.switchPorts;
    }
    expect(assess(compact(d, cutParts(d.locations)), { addresses: ['10.0.0.1'], switches: [] }, null)).toMatchObject({
      status: 'mismatch',
      matches: [],
      choices: 'all',
      choiceCount: 10,
    });
  });

  it('refuses a stored part that is not a JSON array of locations', () => {
    const b = new CompactLocationsBuilder();
    expect(() => b.addPart('{"id":"x"}')).toThrow(/not a JSON array/);
    expect(() => b.addPart('[{"id":')).toThrow(SyntaxError);
  });
});

describe('LocationsBook keeps no parsed location alive', () => {
  const keys = testKeys();
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;

  function memStore(): SettingsStore {
    const m = new Map<string, string>();
    return {
      getSetting: (k) => m.get(k),
      setSetting: (k, v) => {
        m.set(k, v);
        return true;
      },
      deleteSetting: (k) => m.delete(k),
      settingKeys: (prefix) => [...m.keys()].filter((k) => k.startsWith(prefix)).sort(),
    };
  }

  it('the locations it hands out are its own copies, gone once the caller drops them; after a restart too', async () => {
    const store = memStore();
    const doc = randomDoc(9, 2000);
    doc.assignedLocationId = doc.locations[1500]!.id;
    const mk = () =>
      new LocationsBook({
        store,
        log: silentLog(),
        verifier: new InlineLocationsVerifier({ deviceId: 'phone-1', serverKey: keys.publicKey }),
      });
    const b = mk();
    expect(await b.handlePush(JSON.stringify({ v: 1, doc, sig: signDocument(doc, keys.privateKey) }))).toEqual({
      result: 'applied',
      version: 1,
    });
    const again = mk();
    await again.load();
    for (const book of [b, again]) {
      const refs: WeakRef<object>[] = [];
      (() => {
        const whole = book.current()!;
        expect(whole).toEqual(doc);
        refs.push(new WeakRef(whole.locations[0]!), new WeakRef(whole.locations[1999]!));
        const a = assess(book.view(), { addresses: [], switches: [] }, null);
        expect(a.assigned).toEqual(doc.locations[1500]);
        refs.push(new WeakRef(a.assigned!));
      })();
      // WeakRef creation and deref() keep a target alive until the job ends, so
      // each collection follows a turn of the loop; a loaded machine gets a few.
      let gone: boolean[] = [];
      for (let turn = 0; turn < 10 && !(gone.length > 0 && gone.every(Boolean)); turn++) {
        await new Promise((r) => setImmediate(r));
        gc();
        gone = refs.map((r) => r.deref() === undefined);
      }
      expect(gone).toEqual([true, true, true]);
    }
  });
});
