// Two server instances share one database and push to the same phones. Each remembers the
// version it issued last; the phone's report may come to the other one. The database, not
// that memory, says whether the phone is ahead: trusting memory, the instances re-issued
// above each other on every report (npm run bench -- scale, 2 and 3 instances).
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Repo } from '../../provisioning/server/db/repo.js';
import { Pusher } from '../../provisioning/server/pusher.js';
import type { ProvisioningServer } from '../../provisioning/server/server.js';
import { documentHash } from '../../provisioning/protocol/signing.js';
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
    const dir = mkdtempSync(path.join(os.tmpdir(), 'e911-pusher-'));
    const repo = new Repo({ dataDir: dir });
    cleanup.push(
      () => rmSync(dir, { recursive: true, force: true }),
      async () => await repo.close(),
    );
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
});
