// The anti-replay floor survives a reset of a corrupt store: the highest address and
// locations versions are kept in replay-floor.json beside the database (written
// atomically), so after the corrupt file is moved aside and a fresh store starts, an
// older signed push is still refused; the server's current version is accepted.
import { afterEach, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DB_FILE, Store } from '../../agent/store/store.js';
import { REPLAY_FLOOR_FILE, ReplayFloor } from '../../agent/store/replay-floor.js';
import { AddressBook } from '../../agent/address/address-book.js';
import { LocationsBook } from '../../agent/location/locations-book.js';
import { InlineLocationsVerifier } from '../../agent/location/locations-verifier.js';
import { eventFactory } from '../../agent/events/events.js';
import { signDocument } from '../../provisioning/protocol/signing.js';
import type { LocationsDocument } from '../../provisioning/protocol/locations.js';
import { sampleAddress, signedPush, testKeys } from '../helpers/address.js';
import { silentLog } from '../helpers/log.js';

const keys = testKeys();
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'e911-floor-'));
  dirs.push(d);
  return d;
}
const locations = (version: number): LocationsDocument => ({
  v: 1,
  deviceId: 'phone-1',
  version,
  issuedAt: '2026-11-22T07:00:00Z',
  recommendations: true,
  assignedLocationId: 'a',
  locations: [{ id: 'a', code: 'A', name: 'A', civic: sampleAddress().civic, cidrs: ['10.0.0.0/8'] }],
});
const locationsPush = (d: LocationsDocument) => JSON.stringify({ v: 1, doc: d, sig: signDocument(d, keys.privateKey) });

function open(dir: string) {
  const store = new Store({ dataDir: dir, log: silentLog() });
  const address = new AddressBook({
    store,
    log: silentLog(),
    deviceId: 'phone-1',
    serverKey: keys.publicKey,
    newEvent: eventFactory('phone-1'),
  });
  const locs = new LocationsBook({
    store,
    log: silentLog(),
    verifier: new InlineLocationsVerifier({ deviceId: 'phone-1', serverKey: keys.publicKey }),
  });
  return { store, address, locs };
}

/** Corrupts the database so the next open moves it aside and starts fresh. */
function corrupt(dir: string): void {
  for (const s of ['-wal', '-shm']) rmSync(path.join(dir, DB_FILE + s), { force: true });
  writeFileSync(path.join(dir, DB_FILE), Buffer.from('garbage, not an sqlite database '.repeat(200)));
}

describe('the anti-replay floor across a reset of a corrupt store', () => {
  it('an older signed address or locations push is refused after the reset; the current one is applied', async () => {
    const dir = tmp();
    const a = open(dir);
    const oldAddress = signedPush(sampleAddress({ version: 3 }), keys);
    const oldLocations = locationsPush(locations(2));
    expect(a.address.handlePush(oldAddress).result).toBe('applied');
    expect(a.address.handlePush(signedPush(sampleAddress({ version: 7, displayName: 'Now' }), keys)).result).toBe('applied');
    expect((await a.locs.handlePush(oldLocations)).result).toBe('applied');
    expect((await a.locs.handlePush(locationsPush(locations(5)))).result).toBe('applied');
    a.store.close();
    expect(JSON.parse(readFileSync(path.join(dir, REPLAY_FLOOR_FILE), 'utf8'))).toMatchObject({ address: 7, locations: 5 });

    corrupt(dir);
    const b = open(dir);
    expect(b.store.health().incident).not.toBeNull();
    expect(b.store.getAddress()).toBeNull();
    // Replays of what the phone applied before the reset.
    expect(b.address.handlePush(oldAddress)).toMatchObject({ result: 'rejected', code: 'stale-version' });
    expect(await b.locs.handlePush(oldLocations)).toMatchObject({ result: 'rejected', reason: expect.stringMatching(/older than 5/) });
    // The server's current versions (it pushes again on address/state version 0).
    expect(b.address.handlePush(signedPush(sampleAddress({ version: 7, displayName: 'Now' }), keys)).result).toBe('applied');
    expect((await b.locs.handlePush(locationsPush(locations(5)))).result).toBe('applied');
    b.store.close();
  });

  it('an agent from before the floor file: the floor is seeded from the store at open, or salvaged from the corrupt file', async () => {
    const dir = tmp();
    const a = open(dir);
    a.address.handlePush(signedPush(sampleAddress({ version: 4 }), keys));
    await a.locs.handlePush(locationsPush(locations(6)));
    a.store.close();
    rmSync(path.join(dir, REPLAY_FLOOR_FILE));
    // Seeded at the next open from what the store holds.
    open(dir).store.close();
    expect(JSON.parse(readFileSync(path.join(dir, REPLAY_FLOOR_FILE), 'utf8'))).toMatchObject({ address: 4, locations: 6 });

    // No floor file, and the database fails its check but still reads: salvaged from the file kept aside.
    rmSync(path.join(dir, REPLAY_FLOOR_FILE));
    const c = open(dir);
    c.store.close();
    rmSync(path.join(dir, REPLAY_FLOOR_FILE));
    const db = path.join(dir, DB_FILE);
    // The header's magic intact, a page in the middle damaged: quick_check fails, the address table may still read.
    const bytes = readFileSync(db);
    bytes.fill(0xff, bytes.length - 1024, bytes.length - 512);
    writeFileSync(db, bytes);
    const d = open(dir);
    if (d.store.health().incident) {
      // Either salvaged (the address row was readable) or nothing: never an older push applied past a salvaged floor.
      const salvaged = existsSync(path.join(dir, REPLAY_FLOOR_FILE))
        ? (JSON.parse(readFileSync(path.join(dir, REPLAY_FLOOR_FILE), 'utf8')) as { address: number }).address
        : 0;
      if (salvaged > 0)
        expect(d.address.handlePush(signedPush(sampleAddress({ version: 2 }), keys))).toMatchObject({
          result: 'rejected',
          code: 'stale-version',
        });
    }
    d.store.close();
  });
});

describe('the floor written off the main thread (a locations push)', () => {
  const floorOf = (dir: string) => JSON.parse(readFileSync(path.join(dir, REPLAY_FLOOR_FILE), 'utf8')) as Record<string, number>;

  it('rises at once; the file follows without the caller waiting for its fsyncs', async () => {
    const dir = tmp();
    const floor = new ReplayFloor(dir, silentLog());
    const written = floor.raiseInBackground('locations', 5);
    expect(floor.get('locations')).toBe(5);
    // Nothing on disk yet: each step runs on libuv's pool and goes on from the event loop.
    expect(existsSync(path.join(dir, REPLAY_FLOOR_FILE))).toBe(false);
    await written;
    expect(floorOf(dir)).toMatchObject({ locations: 5, address: 0 });
    expect(readdirSync(dir)).toEqual([REPLAY_FLOOR_FILE]);
  });

  it('raises during a background write, its own or a synchronous one, end in the file', async () => {
    const dir = tmp();
    const floor = new ReplayFloor(dir, silentLog());
    const first = floor.raiseInBackground('locations', 6);
    const second = floor.raiseInBackground('locations', 7);
    // An address push (synchronous) while the background write runs: its rename may land first.
    floor.raise('address', 9);
    expect(floorOf(dir)).toMatchObject({ address: 9, locations: 7 });
    await Promise.all([first, second]);
    expect(floorOf(dir)).toMatchObject({ address: 9, locations: 7 });
    // A lower or equal version writes nothing.
    await floor.raiseInBackground('locations', 7);
    expect(floorOf(dir)).toMatchObject({ address: 9, locations: 7 });
  });

  it('a write that fails is logged, never thrown; the floor still holds in memory', async () => {
    const dir = tmp();
    // The file's place taken by a folder: the rename over it fails.
    mkdirSync(path.join(dir, REPLAY_FLOOR_FILE));
    const floor = new ReplayFloor(dir, silentLog());
    await expect(floor.raiseInBackground('locations', 3)).resolves.toBeUndefined();
    expect(floor.get('locations')).toBe(3);
    expect(readdirSync(dir)).toEqual([REPLAY_FLOOR_FILE]);
  });
});
