// A phone's reports are written in the order they came, whatever the store: on PostgreSQL two
// transactions at once may commit in either order (a retained "offline" followed by "online"
// left phones offline in the server's test run on PostgreSQL). Two instances' batches take
// device rows in one order (by device id), and a batch PostgreSQL gave up on a deadlock is
// written again (the failover test lost a phone's applied version that way).
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { PhoneIntake } from '../../provisioning/server/intake.js';
import type { PhoneReport, Repo } from '../../provisioning/server/db/repo.js';
import type { ProvisioningServer } from '../../provisioning/server/server.js';
import type { Pusher } from '../../provisioning/server/pusher.js';
import type { Notifier } from '../../provisioning/server/notify/notifier.js';
import type { Bus } from '../../provisioning/server/bus.js';
import { silentLog } from '../helpers/log.js';
import { StoreError } from '../../provisioning/server/db/sql.js';

describe('phone reports reach the store in arrival order', () => {
  it('a status written while an earlier one is still committing waits for it', async () => {
    const committed: string[] = [];
    const written: string[] = [];
    let transactions = 0;
    // The first transaction is slow to commit, later ones quick (two connections of a pool can
    // be); what a transaction wrote becomes visible when it commits.
    const repo = {
      async transaction<T>(fn: () => Promise<T>): Promise<T> {
        const slow = transactions++ === 0;
        const r = await fn();
        const mine = written.splice(0);
        await new Promise((res) => setTimeout(res, slow ? 50 : 1));
        committed.push(...mine);
        return r;
      },
      inAccount: <T>(_account: string, fn: () => T) => fn(),
      async recordReports(reports: PhoneReport[]) {
        for (const r of reports) if (r.kind === 'status') written.push(`${r.deviceId}:${r.online ? 'online' : 'offline'}`);
        return new Map(reports.map((r) => [r.deviceId, 'default']));
      },
    };
    const link = Object.assign(new EventEmitter(), { setEventHandler: () => undefined });
    const bus = new EventEmitter();
    const intake = new PhoneIntake({
      link: link as unknown as ProvisioningServer,
      repo: repo as unknown as Repo,
      pusher: {} as Pusher,
      notifier: {} as Notifier,
      bus: bus as unknown as Bus,
      log: silentLog(),
    });
    intake.attach();
    link.emit('status', 'p1', { state: 'offline' });
    await new Promise((r) => setImmediate(r)); // its flush has begun (the slow transaction)
    link.emit('status', 'p1', { state: 'online' });
    await new Promise((r) => setTimeout(r, 120));
    await intake.flush();
    expect(committed).toEqual(['p1:offline', 'p1:online']);
  });

  const intakeOn = (repo: unknown) => {
    const link = Object.assign(new EventEmitter(), { setEventHandler: () => undefined });
    const intake = new PhoneIntake({
      link: link as unknown as ProvisioningServer,
      repo: repo as Repo,
      pusher: {} as Pusher,
      notifier: {} as Notifier,
      bus: new EventEmitter() as unknown as Bus,
      log: silentLog(),
    });
    intake.attach();
    return { link, intake };
  };

  /** Every phone in the default account; each status report recorded as `<phone>:<state>` in to(). */
  const oneAccount = {
    inAccount: <T>(_account: string, fn: () => T) => fn(),
  };
  const statuses = (to: () => string[]) => async (reports: PhoneReport[]) => {
    for (const r of reports) if (r.kind === 'status') to().push(`${r.deviceId}:${r.online ? 'online' : 'offline'}`);
    return new Map(reports.map((r) => [r.deviceId, 'default']));
  };

  it("writes a batch's phones in device-id order, each phone's reports in arrival order", async () => {
    const written: string[] = [];
    const repo = {
      ...oneAccount,
      transaction: <T>(fn: () => Promise<T>) => fn(),
      recordReports: statuses(() => written),
    };
    const { link, intake } = intakeOn(repo);
    link.emit('status', 'p3', { state: 'online' });
    link.emit('status', 'p1', { state: 'offline' });
    link.emit('status', 'p2', { state: 'online' });
    link.emit('status', 'p1', { state: 'online' });
    await intake.flush();
    expect(written).toEqual(['p1:offline', 'p1:online', 'p2:online', 'p3:online']);
  });

  it('a batch PostgreSQL rolled back on a deadlock is written again; another failure is not', async () => {
    const committed: string[] = [];
    let failures = [
      new StoreError('PostgreSQL: deadlock detected', { cause: Object.assign(new Error('deadlock detected'), { code: '40P01' }) }),
    ];
    const repo = {
      ...oneAccount,
      async transaction<T>(fn: () => Promise<T>): Promise<T> {
        const mine: string[] = [];
        pending = mine;
        const r = await fn();
        const fail = failures.shift();
        if (fail) throw fail; // rolled back: nothing it wrote is kept
        committed.push(...mine);
        return r;
      },
      recordReports: statuses(() => pending),
    };
    let pending: string[] = [];
    const { link, intake } = intakeOn(repo);
    link.emit('status', 'p1', { state: 'online' });
    link.emit('status', 'p2', { state: 'online' });
    await intake.flush();
    expect(committed).toEqual(['p1:online', 'p2:online']);
    // A failure that is no lock conflict is logged and the batch dropped, not retried for ever.
    failures = [new StoreError('PostgreSQL: relation "devices" does not exist')];
    link.emit('status', 'p3', { state: 'online' });
    await intake.flush();
    expect(committed).toEqual(['p1:online', 'p2:online']);
  });
});
