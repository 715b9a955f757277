// A 911 event does not wait behind phones' reports. In the scale bench on PostgreSQL, events
// waited 23 s (p50) behind 10,000 reports: each event first waited for every queued report
// batch to be written, then for a pool connection behind the reports' statements. Here the
// burst's batch cannot finish (another session holds its phones' rows), and plain statements
// fill every bulk connection, waiting on the same rows; the event must still be stored with its
// notifications planned, and the burst lands once the rows are free. PostgreSQL only: SQLite
// runs a batch on its one in-process connection without yielding, so nothing can hold it half way.
import { EventEmitter } from 'node:events';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import type { Bus } from '../../provisioning/server/bus.js';
import type { StoredEvent } from '../../provisioning/server/db/repo.js';
import { PhoneIntake } from '../../provisioning/server/intake.js';
import type { Notifier } from '../../provisioning/server/notify/notifier.js';
import type { Pusher } from '../../provisioning/server/pusher.js';
import type { ProvisioningServer } from '../../provisioning/server/server.js';
import { silentLog } from '../helpers/log.js';
import { requires } from '../helpers/require.js';
import { serverStores } from '../helpers/server-stores.js';

const backend = serverStores().find((b) => b.name === 'postgres')!;
const gate = requires('911 ahead of phone reports on PostgreSQL', ['postgres']);

describe.skipIf(gate.skip)('a 911 event behind a burst of phone reports (PostgreSQL)', () => {
  beforeAll(() => backend.setup(), 60_000);
  afterAll(() => backend.teardown());

  it('is stored with its notifications planned while the burst cannot be written and every bulk connection waits', async () => {
    const s = await backend.store();
    const { repo } = s;
    const burst = Array.from({ length: 40 }, (_, i) => `burst-${String(i).padStart(2, '0')}`);
    for (const id of [...burst, 'caller']) await repo.ensureDevice(id);

    // Another session (an admin's long statement, another instance's batch) holds the burst's rows.
    const holder = new pg.Client({ connectionString: s.setting });
    await holder.connect();
    await holder.query('BEGIN');
    await holder.query("SELECT device_id FROM devices WHERE device_id LIKE 'burst-%' FOR UPDATE");

    // Freed at the end, and when the test fails or times out (onTestFinished): the blocked
    // statements must end before teardown can close the pools and stop the cluster.
    let held = true;
    const release = async () => {
      if (!held) return;
      held = false;
      await holder.query('COMMIT');
      await holder.end();
    };
    onTestFinished(release);
    const link = Object.assign(new EventEmitter(), { setEventHandler: () => undefined });
    const planned: string[] = [];
    const notifier = {
      async planRows(event: StoredEvent) {
        planned.push(event.id);
        return (await repo.addNotification(event.id, 'email', 'desk@example.com')) ? 1 : 0;
      },
      kick: () => undefined,
    };
    const intake = new PhoneIntake({
      link: link as unknown as ProvisioningServer,
      repo,
      pusher: { onAddressStates: async () => undefined } as unknown as Pusher,
      notifier: notifier as unknown as Notifier,
      bus: new EventEmitter() as unknown as Bus,
      log: silentLog(),
    });
    intake.attach();
    // The burst: each phone applied version 1 (queued, then one batch that waits on the rows).
    for (const id of burst) link.emit('address-state', id, { version: 1, hash: `h-${id}`, appliedAt: new Date().toISOString() });
    // More than the bulk pool's 10 connections, each waiting on a held row.
    const stuck = burst.slice(0, 12).map((id) => repo.setDeviceStatus(id, true, null));
    // Until the batch and 9 statements (all 10 bulk connections) wait on the held rows.
    const watcher = new pg.Client({ connectionString: s.setting });
    await watcher.connect();
    const waiting = async () =>
      Number(
        (await watcher.query("SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"))
          .rows[0].n,
      );
    while ((await waiting()) < 10) await new Promise((r) => setTimeout(r, 20));
    await watcher.end();

    const stored = await intake.handleEvent({
      v: 1,
      id: 'ev-911',
      type: 'emergency-call',
      deviceId: 'caller',
      ts: new Date().toISOString(),
      data: { numberDialed: '911' },
    } as never);
    expect(stored).toBe(true);
    expect(planned).toEqual(['ev-911']);
    expect((await repo.urgent(() => repo.notifications({ eventId: 'ev-911' }))).map((n) => n.recipient)).toEqual(['desk@example.com']);
    // The burst is still unwritten: the event went ahead of it, not after it.
    const applied = await repo.urgent(() => repo.devices());
    expect(applied.filter((d) => d.deviceId.startsWith('burst-') && d.appliedVersion === 1)).toHaveLength(0);

    await release();
    await Promise.all(stuck);
    await intake.flush();
    const after = await repo.devices();
    expect(after.filter((d) => d.deviceId.startsWith('burst-') && d.appliedVersion === 1)).toHaveLength(burst.length);
  }, 60_000);
});
