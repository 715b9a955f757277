// What an event changes on the phone's row (a location disagreement, a mismatch) is committed with
// the event: the event is acknowledged after that commit and never handled again, so a change
// written after it was lost whenever the server died in between (the clock chaos run found a
// disagreement event stored and the phone not yet marked).
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PhoneIntake } from '../../provisioning/server/intake.js';
import { Repo } from '../../provisioning/server/db/repo.js';
import { StoreError } from '../../provisioning/server/db/sql.js';
import type { ProvisioningServer } from '../../provisioning/server/server.js';
import type { Pusher } from '../../provisioning/server/pusher.js';
import type { Notifier } from '../../provisioning/server/notify/notifier.js';
import type { Bus } from '../../provisioning/server/bus.js';
import type { EventPayload } from '../../provisioning/protocol/messages.js';
import { recordingLog } from '../helpers/log.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const civic = { country: 'US', A1: 'CA', A3: 'Santa Clara', RD: 'Mission College', STS: 'Blvd', HNO: '2200', PC: '95054' };
const disagreement = (id: string): EventPayload => ({
  v: 1,
  id,
  deviceId: 'phone-1',
  type: 'location-disagreement',
  ts: '2026-12-06T10:00:00.000Z',
  data: {
    state: 'open',
    policy: 'provisioned-first',
    chosen: 'provisioned',
    fields: ['street'],
    provisioned: null,
    network: { source: 'dhcp', method: 'DHCP', civic, origin: {} },
    elin: null,
  },
});

/**
 * A Repo that "dies" when the first outermost transaction has committed: every later call
 * throws, as nothing after the commit happens when the process is killed there.
 */
function dyingAfterCommit(repo: Repo): Repo {
  let depth = 0;
  let dead = false;
  return new Proxy(repo, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver);
      if (typeof v !== 'function') return v;
      if (prop === 'transaction')
        return async <T>(fn: () => Promise<T>) => {
          if (dead) throw new Error('the server died');
          depth++;
          try {
            return await target.transaction(fn);
          } finally {
            if (--depth === 0) dead = true;
          }
        };
      return (...args: unknown[]) => {
        if (dead) throw new Error('the server died');
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

function intakeOn(repo: Repo, notifier: Partial<Notifier> = {}) {
  const log = recordingLog();
  const bus = new EventEmitter();
  const intake = new PhoneIntake({
    link: Object.assign(new EventEmitter(), { setEventHandler: () => undefined }) as unknown as ProvisioningServer,
    repo,
    pusher: { schedule: async () => {} } as unknown as Pusher,
    notifier: notifier as Notifier,
    bus: bus as unknown as Bus,
    log: log.log,
  });
  return { intake, bus, log };
}

/** The messages of the lines logged at error level or above. */
function errorsIn(log: ReturnType<typeof recordingLog>): unknown[] {
  return log
    .lines()
    .filter((l) => (l.level as number) >= 50)
    .map((l) => l.msg);
}

function newRepo(): Repo {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'e911-event-state-'));
  dirs.push(dir);
  return new Repo({ dataDir: dir });
}

describe("an event and what it changes on the phone's row commit together", () => {
  it('a server that dies right after the commit has still marked the phone', async () => {
    const repo = newRepo();
    await repo.ensureDevice('phone-1');
    const { intake } = intakeOn(dyingAfterCommit(repo));
    await intake.handleEvent(disagreement('e1')).catch(() => undefined);
    expect(await repo.event('e1')).not.toBeNull();
    expect((await repo.device('phone-1'))!.disagreement).toMatchObject({ state: 'open', eventId: 'e1' });
    await repo.close();
  });

  it('watchers hear of the event only once the phone is marked', async () => {
    const repo = newRepo();
    const { intake, bus } = intakeOn(repo);
    const seen: unknown[] = [];
    bus.on('event', () => {
      void repo.device('phone-1').then((d) => seen.push(d?.disagreement ?? null));
    });
    expect(await intake.handleEvent(disagreement('e1'))).toBe(true);
    await new Promise((r) => setImmediate(r));
    expect(seen).toEqual([expect.objectContaining({ eventId: 'e1' })]);
    await repo.close();
  });

  it('a failure applying the event to the phone keeps the event, logs it, and leaves the row as it was', async () => {
    const repo = newRepo();
    await repo.ensureDevice('phone-1');
    const failing = new Proxy(repo, {
      get(target, prop, receiver) {
        if (prop === 'setDeviceDisagreement')
          return async () => {
            // A statement of the savepoint ran, then the next failed: the savepoint undoes the first.
            await target.setDeviceMismatch('phone-1', { half: 'written' });
            throw new StoreError('disk I/O error');
          };
        const v = Reflect.get(target, prop, receiver);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
    const { intake, log } = intakeOn(failing);
    expect(await intake.handleEvent(disagreement('e1'))).toBe(true);
    expect(await repo.event('e1')).not.toBeNull();
    const device = (await repo.device('phone-1'))!;
    expect({ disagreement: device.disagreement, mismatch: device.mismatch }).toEqual({ disagreement: null, mismatch: null });
    expect(errorsIn(log)).toEqual(['event stored; applying it to the phone failed']);
    // Redelivered: already stored, nothing to do.
    expect(await intake.handleEvent(disagreement('e1'))).toBe(false);
    await repo.close();
  });

  it('a watcher that throws on a 911 event does not hold back its notifications', async () => {
    const repo = newRepo();
    let kicks = 0;
    const { intake, bus, log } = intakeOn(repo, { planRows: async () => 0, kick: () => void kicks++ });
    bus.on('event', () => {
      throw new Error('watcher broke');
    });
    const call: EventPayload = { v: 1, id: 'c1', deviceId: 'phone-1', type: 'emergency-call', ts: '2026-12-06T10:00:00.000Z', data: {} };
    expect(await intake.handleEvent(call)).toBe(true);
    expect(kicks).toBe(1);
    expect(errorsIn(log)).toEqual(['event stored; follow-up failed']);
    await repo.close();
  });
});
