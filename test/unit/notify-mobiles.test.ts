// Planning an emergency's SMS reads only the mobiles of the people at its location: it read
// every user row there, 90 ms of CPU per event at 10,000 users (npm run bench -- scale).
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Repo } from '../../provisioning/server/db/repo.js';
import { Notifier } from '../../provisioning/server/notify/notifier.js';
import { locationInputSchema, userInputSchema } from '../../provisioning/server/validation.js';
import { silentLog } from '../helpers/log.js';

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

const site = (code: string) =>
  locationInputSchema.parse({
    code,
    name: code,
    timeZone: 'America/Los_Angeles',
    address: { country: 'US', houseNumber: '1', street: 'Main St', city: 'San Jose', state: 'CA', postalCode: '95110' },
  });

describe('notification planning at a large site', () => {
  it('texts the mobiles of the people at the location, in user order, without reading every user', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'e911-mobiles-'));
    const repo = new Repo({ dataDir: dir });
    cleanup.push(
      () => rmSync(dir, { recursive: true, force: true }),
      async () => await repo.close(),
    );
    await repo.setNotificationSettings({
      smtp: null,
      sms: { url: 'https://sms.example/send', username: undefined, from: '+14085550000' },
      webhook: null,
    });
    const hq = await repo.insertLocation(site('HQ'));
    const other = await repo.insertLocation(site('B2'));
    const add = async (username: string, locationId: number, mobile?: string) =>
      await repo.insertUser(userInputSchema.parse({ username, displayName: username, locationId, ...(mobile ? { mobile } : {}) }));
    const caller = await add('caller', hq);
    await add('b', hq, '+14085550102');
    await add('elsewhere', other, '+14085550199');
    await add('a', hq, '+14085550101');
    await repo.insertEvent({
      id: 'ev-1',
      deviceId: 'p',
      type: 'emergency-call',
      ts: new Date().toISOString(),
      userId: caller,
      locationId: hq,
      data: {},
    });
    // Every user row of a site (100,000 people) is not what planning one event may read.
    repo.users = () => {
      throw new Error('planning read every user row');
    };
    const notifier = new Notifier({
      repo,
      log: silentLog(),
      email: { send: async () => 'm', close: () => undefined },
      sms: { send: async () => 's' },
      webhook: { send: async () => 'w' },
    });
    await notifier.plan((await repo.event('ev-1'))!);
    expect(await repo.mobilesAt(hq)).toEqual(['+14085550102', '+14085550101']);
    const rows = await repo.claimDueNotifications(100, 60_000);
    expect(rows.filter((r) => r.channel === 'sms').map((r) => r.recipient)).toEqual(['+14085550102', '+14085550101']);
  });
});
