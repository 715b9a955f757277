// A server killed mid-send left its notification rows 'sending' under a 60 s lease.
// Started again, the same instance takes its own rows back at once; another
// instance's rows (a live process sharing the database) wait for their lease.
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Repo } from '../../provisioning/server/db/repo.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('notifications left mid-send', () => {
  it('an earlier run of this instance: due again at once; another instance: left to its lease', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'e911-reclaim-'));
    dirs.push(dir);
    const repo = new Repo({ dataDir: dir });
    await repo.insertEvent({
      id: 'ev-1',
      deviceId: 'p',
      type: 'emergency-call',
      ts: new Date().toISOString(),
      userId: null,
      locationId: null,
      data: {},
    });
    await repo.addNotification('ev-1', 'email', 'a@example.com');
    await repo.addNotification('ev-1', 'email', 'b@example.com');
    // Two processes claim one row each, with a long lease, and die.
    expect(await repo.claimDueNotifications(1, 60_000, 'srv-a/boot-1')).toHaveLength(1);
    expect(await repo.claimDueNotifications(1, 60_000, 'srv-b/boot-1')).toHaveLength(1);
    expect(await repo.claimDueNotifications(10, 60_000, 'srv-a/boot-2')).toHaveLength(0);
    // srv-a starts again.
    expect(await repo.reclaimNotifications('srv-a', 'srv-a/boot-2')).toBe(1);
    const again = await repo.claimDueNotifications(10, 60_000, 'srv-a/boot-2');
    expect(again.map((n) => n.recipient)).toEqual(['a@example.com']);
    // Its own current rows are not reclaimed by itself.
    expect(await repo.reclaimNotifications('srv-a', 'srv-a/boot-2')).toBe(0);
    await repo.close();
  });
});
