// Two server instances share one database and push to the same phones. Each remembers the
// version it issued last; the phone's report may come to the other one. The database, not
// that memory, says whether the phone is ahead: trusting memory, the instances re-issued
// above each other on every report (npm run bench -- scale, 2 and 3 instances). And a push's
// addresses go out ahead of its retained locations lists, which NATS stores one at a time.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Repo } from '../../provisioning/server/db/repo.js';
import { Pusher } from '../../provisioning/server/pusher.js';
import type { ProvisioningServer } from '../../provisioning/server/server.js';
import { documentHash, signDocument } from '../../provisioning/protocol/signing.js';
import type { AddressDocument } from '../../provisioning/protocol/address.js';
import type { SignedAddress } from '../../provisioning/protocol/messages.js';
import { pino } from 'pino';
import { testKeys } from '../helpers/address.js';
import { silentLog } from '../helpers/log.js';

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

const doc = (version: number) => ({ v: 1, deviceId: 'desk-1', version, civic: { country: 'US', A1: 'CA' } });
const issue = async (repo: Repo, version: number) =>
  await repo.recordIssuedAddress('desk-1', version, `h${version}`, JSON.stringify({ doc: doc(version) }), new Date().toISOString());
const state = (version: number) => ({ v: 1 as const, version, hash: documentHash(doc(version)), appliedAt: null });

describe('address versions with several server instances', () => {
  it('an instance that remembers an older issue reads the database before re-issuing above the phone', async () => {
    const repo = tempRepo();
    // E911 is off: nothing is published, so no link is reached.
    const link = {} as ProvisioningServer;
    const a = new Pusher({ repo, link, log: silentLog() });
    await repo.ensureDevice('desk-1');
    await issue(repo, 3);
    await a.onAddressState('desk-1', state(3)); // instance A now remembers version 3
    await a.idle();
    await issue(repo, 4); // instance B issued version 4 since
    await a.onAddressState('desk-1', state(4)); // the phone applied B's version; its report reaches A
    await a.idle();
    expect(await repo.issuedAddress('desk-1')).toMatchObject({ version: 4, contentHash: 'h4' });

    // A phone really ahead of the database (restored from a backup) is still issued above.
    await a.onAddressState('desk-1', state(7));
    await a.idle();
    expect(await repo.issuedAddress('desk-1')).toMatchObject({ version: 7, contentHash: 'stale' });
  });

  it('reports of phones another instance issued to are decided in one read, without a transaction each', async () => {
    const repo = tempRepo();
    const phones = Array.from({ length: 50 }, (_, i) => `desk-${i}`);
    const docOf = (deviceId: string, version: number) => ({ ...doc(version), deviceId });
    const issueAll = async (version: number) => {
      for (const id of phones) {
        await repo.ensureDevice(id);
        await repo.recordIssuedAddress(id, version, `h${version}`, JSON.stringify({ doc: docOf(id, version) }), new Date().toISOString());
      }
    };
    const reports = (version: number) =>
      phones.map((deviceId) => ({
        deviceId,
        account: 'default',
        state: { v: 1 as const, version, hash: documentHash(docOf(deviceId, version)), appliedAt: null },
      }));
    let transactions = 0;
    const transaction = repo.transaction.bind(repo);
    repo.transaction = ((fn: () => Promise<unknown>) => {
      transactions++;
      return transaction(fn);
    }) as typeof repo.transaction;
    const b = new Pusher({ repo, link: {} as ProvisioningServer, log: silentLog() });

    // Instance A issued version 2 to every phone; each phone's report reaches B.
    await issueAll(2);
    await b.onAddressStates(reports(2));
    await b.idle();
    expect(transactions).toBe(0);
    // A's next push: B remembers version 2 now, the database says 3.
    await issueAll(3);
    await b.onAddressStates(reports(3));
    await b.idle();
    expect(transactions).toBe(0);
    for (const id of phones) expect((await repo.issuedAddress(id))?.version).toBe(3);

    // A phone that holds another document under the issued version still gets the full check,
    // and a version above it.
    const conflicting = {
      deviceId: phones[0]!,
      account: 'default',
      state: { v: 1 as const, version: 3, hash: 'f'.repeat(64), appliedAt: null },
    };
    await b.onAddressStates([conflicting]);
    await b.idle();
    expect(transactions).toBe(1);
    expect(await repo.issuedAddress(phones[0]!)).toMatchObject({ version: 3, contentHash: 'stale' });
  });

  it('a push chunk that loses a deadlock to the other instance is recorded again, not dropped', async () => {
    const repo = tempRepo();
    const phones = await seedPhones(repo, ['desk-a', 'desk-b', 'desk-c']);
    // PostgreSQL's answer to the losing side of a deadlock, once.
    let conflicts = 1;
    const record = repo.recordIssuedMany.bind(repo);
    repo.recordIssuedMany = async (addresses, locations) => {
      if (conflicts-- > 0)
        throw new Error('PostgreSQL: deadlock detected', { cause: Object.assign(new Error('deadlock detected'), { code: '40P01' }) });
      return record(addresses, locations);
    };
    const published: number[] = [];
    const link = fakeLink((signed) => published.push(signed.doc.version));
    const lines: string[] = [];
    const pusher = new Pusher({ repo, link, log: pino({ level: 'warn' }, { write: (l: string) => void lines.push(l) }) });
    await pusher.scheduleAll();
    await pusher.idle();

    expect(published).toEqual([1, 1, 1]);
    for (const id of phones) expect((await repo.issuedAddress(id))?.version).toBe(1);
    expect(lines.map((l) => JSON.parse(l).msg)).toEqual(['push chunk lost a lock conflict: recording it again']);
  });

  it('two instances pushing the same change at once: each phone gets one document per version, and nothing more', async () => {
    const repo = tempRepo();
    const phones = await seedPhones(repo, ['desk-a', 'desk-b', 'desk-c']);
    // Both instances read the phones before either records: as when a starting instance's
    // scheduleAll() meets another's push of the same change.
    let waiting: (() => void)[] = [];
    let arrived = 0;
    const read = repo.pushContexts.bind(repo);
    repo.pushContexts = async (ids) => {
      const contexts = await read(ids);
      if (++arrived <= 2) {
        await new Promise<void>((r) => {
          waiting.push(r);
          if (waiting.length === 2) for (const w of waiting.splice(0)) w();
        });
      }
      return contexts;
    };
    const published: { by: string; signed: SignedAddress }[] = [];
    const link = (by: string) => fakeLink((signed) => published.push({ by, signed }));
    const a = new Pusher({ repo, link: link('a'), log: silentLog() });
    const b = new Pusher({ repo, link: link('b'), log: silentLog() });
    await Promise.all([a.scheduleAll(), b.scheduleAll()]);
    await Promise.all([a.idle(), b.idle()]);
    waiting = [];

    // One document per phone, from whichever instance recorded first; the other looked again and
    // found the content already issued. The document sent is the one recorded.
    expect(published.map((p) => `${p.signed.doc.deviceId} v${p.signed.doc.version}`).sort()).toEqual(phones.map((id) => `${id} v1`).sort());
    for (const { signed } of published) expect((await repo.issuedAddress(signed.doc.deviceId))?.signed).toBe(JSON.stringify(signed));
  });
});

describe('the order of a push', () => {
  it("a push's addresses wait neither behind its own locations lists nor an earlier push's (a broker stores a retained list before it reads the next)", async () => {
    const repo = tempRepo();
    // More than one chunk of 500: the second chunk's addresses came after the first's lists.
    const phones = await seedPhones(
      repo,
      Array.from({ length: 520 }, (_, i) => `desk-${i}`),
    );
    const published: string[] = [];
    let release!: () => void;
    const listsHeld = new Promise<void>((r) => {
      release = r;
    });
    const link = {
      ...fakeLink((signed) => published.push(signed.doc.deviceId)),
      pushLocations: () => listsHeld,
    } as unknown as ProvisioningServer;
    const pusher = new Pusher({ repo, link, log: silentLog(), window: 8 });
    // Every phone's address goes out while no list has been stored yet.
    const first = pusher.scheduleAll();
    const deadline = Date.now() + 10_000;
    while (published.length < phones.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(published).toHaveLength(phones.length);
    await first;
    // The next push (an admin's change) goes out while the first push's lists are still held.
    await pusher.schedule(['desk-7'], { forceAddress: true });
    expect(published.slice(phones.length)).toEqual(['desk-7']);
    expect(pusher.totals.locations).toBe(0);
    // idle() is the end of everything, the lists included.
    release();
    await pusher.idle();
    expect(pusher.totals).toMatchObject({ addresses: phones.length + 1, locations: phones.length, failed: 0 });
  });

  it('the locations lists go one at a time while a 911 event is stored or notified (Repo.urgent), then a full window again', async () => {
    const repo = tempRepo();
    const phones = await seedPhones(
      repo,
      Array.from({ length: 40 }, (_, i) => `desk-${i}`),
    );
    let inFlight = 0;
    let most = 0;
    let stored = 0;
    const link = {
      ...fakeLink(() => undefined),
      pushLocations: async () => {
        most = Math.max(most, ++inFlight);
        await new Promise((r) => setTimeout(r, 5));
        inFlight--;
        stored++;
      },
    } as unknown as ProvisioningServer;
    const pusher = new Pusher({ repo, link, log: silentLog(), window: 8 });
    // A 911 event under way: its store and its notifications run as Repo.urgent.
    let endCall!: () => void;
    const call = repo.urgent(() => new Promise<void>((r) => (endCall = r)));
    await pusher.scheduleAll();
    const deadline = Date.now() + 10_000;
    while (stored < 10 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(stored).toBeGreaterThanOrEqual(10);
    expect(most).toBe(1);
    // The call's work done: the rest of the lists go out a full window at a time.
    most = 0;
    endCall();
    await call;
    await pusher.idle();
    expect(most).toBe(8);
    expect(pusher.totals).toMatchObject({ addresses: phones.length, locations: phones.length, failed: 0 });
  });
});

/** A throwaway SQLite store, removed after the test. */
function tempRepo(): Repo {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'e911-pusher-'));
  const repo = new Repo({ dataDir: dir });
  cleanup.push(
    () => rmSync(dir, { recursive: true, force: true }),
    async () => await repo.close(),
  );
  return repo;
}

/** The link a push needs: real signatures, each published address handed to `published`. */
function fakeLink(published: (signed: SignedAddress) => void): ProvisioningServer {
  const keys = testKeys();
  return {
    signAddressWithHash: (doc: AddressDocument) => ({
      signed: { v: 1, doc, sig: signDocument(doc, keys.privateKey) },
      hash: documentHash(doc),
    }),
    publishSigned: async (signed: SignedAddress) => void published(signed),
    pushLocations: async () => undefined,
  } as unknown as ProvisioningServer;
}

/** An E911 account with one location and a user per phone. */
async function seedPhones(repo: Repo, phones: string[]): Promise<string[]> {
  await repo.setE911(true);
  const locationId = await repo.insertLocation({
    code: 'HQ',
    name: 'Head office',
    address: { country: 'US', houseNumber: '12', street: 'Main St', city: 'Springfield', state: 'IL', postalCode: '62701' },
    timeZone: 'America/Chicago',
    ipGroups: [],
    switchPorts: [],
    adminEmails: [],
    smsNumbers: [],
    language: 'en',
  } as never);
  for (const [i, id] of phones.entries()) {
    const user = await repo.insertUser({
      username: `u${i}`,
      displayName: `User ${i}`,
      extension: `10${i}`,
      locationId,
      callback: '+15550101',
      language: 'en',
      recommendations: false,
      emails: [],
      deviceIds: [],
    } as never);
    await repo.setUserDevices(user, [id]);
  }
  return phones;
}
