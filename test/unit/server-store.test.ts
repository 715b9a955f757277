// The server's repository as one suite run against each store (SQLite, PostgreSQL):
// the schema, the dialect points (ids returned by inserts, insert-once, case-insensitive
// codes and names, JSON array filters, the user's device list, no limit), transactions
// (all or nothing, savepoints, several at once), and notification work claimed by two
// instances at once: each (event, channel, recipient) taken and sent once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SERVER_SCHEMA } from '../../provisioning/server/db/migrations.js';
import { Repo, type PhoneReport } from '../../provisioning/server/db/repo.js';
import type { Params, Sql } from '../../provisioning/server/db/sql.js';
import { SqliteSql } from '../../provisioning/server/db/open.js';
import { Notifier } from '../../provisioning/server/notify/notifier.js';
import type { EmailChannel, HttpChannel } from '../../provisioning/server/notify/channels.js';
import type { SmsSettings, WebhookSettings } from '../../provisioning/server/validation.js';
import { locationInputSchema, userInputSchema } from '../../provisioning/server/validation.js';
import { silentLog } from '../helpers/log.js';
import { requires } from '../helpers/require.js';
import { serverStores } from '../helpers/server-stores.js';

const LATEST = Math.max(...SERVER_SCHEMA.map((m) => m.version));

const site = (code: string) =>
  locationInputSchema.parse({
    code,
    name: `Site ${code}`,
    address: { country: 'US', houseNumber: '100', street: 'Main St', city: 'San Jose', state: 'CA', postalCode: '95110' },
    timeZone: 'America/Los_Angeles',
    adminEmails: [`admin-${code.toLowerCase()}@example.com`],
  });

const event = (id: string, type = 'emergency-call', deviceId = 'p1') => ({
  id,
  deviceId,
  type,
  ts: new Date().toISOString(),
  userId: null,
  locationId: null,
  data: { n: id },
});

describe.each(serverStores())('the server store on $name', (backend) => {
  const gate = backend.name === 'postgres' ? requires('the server store on PostgreSQL', ['postgres']) : { skip: false };
  const d = describe.skipIf(gate.skip);

  d('', () => {
    beforeAll(() => backend.setup(), 60_000);
    afterAll(() => backend.teardown(), 30_000);

    it('is migrated to the latest step once; opened again, it keeps its data and its version', async () => {
      const s = await backend.store();
      expect(await s.repo.schemaVersion()).toBe(LATEST);
      await s.repo.updateAccount({ name: 'Kept Corp' });
      const again = s.open();
      expect(await again.schemaVersion()).toBe(LATEST);
      expect((await again.account()).name).toBe('Kept Corp');
    });

    it('returns the ids inserts made, stores an event and a notification once, and a secret once', async () => {
      const { repo } = await backend.store();
      const a = await repo.insertLocation(site('HQ'));
      const b = await repo.insertLocation(site('B2'));
      expect(b).toBe(a + 1);
      expect(await repo.insertEvent(event('e1'))).toBe(true);
      expect(await repo.insertEvent(event('e1'))).toBe(false);
      expect(await repo.addNotification('e1', 'email', 'x@example.com')).toBe(true);
      expect(await repo.addNotification('e1', 'email', 'x@example.com')).toBe(false);
      const job = await repo.createJob('bulk-emails', 'test', { a: 1 }, 3);
      expect(await repo.job(job)).toMatchObject({ id: job, status: 'queued', params: { a: 1 }, total: 3 });
      expect(await repo.createToken('t', 'secret')).toBeGreaterThan(0);
      expect(await repo.verifyToken('secret')).toMatchObject({ name: 't' });
      expect(await repo.sharedSecret('k', () => 'first')).toBe('first');
      expect(await repo.sharedSecret('k', () => 'second')).toBe('first');
    });

    it('finds codes and user names whatever their case; lists a user with their phones; pages users', async () => {
      const { repo } = await backend.store();
      const hq = await repo.insertLocation(site('HQ-A'));
      expect((await repo.locationByCode('hq-a'))?.id).toBe(hq);
      const ids: number[] = [];
      for (const name of ['Alice', 'bob', 'Carol'])
        ids.push(await repo.insertUser(userInputSchema.parse({ username: name, displayName: name, locationId: hq })));
      await repo.setUserDevices(ids[0]!, ['phone-b', 'phone-a']);
      expect(await repo.userByUsername('ALICE')).toMatchObject({ id: ids[0], deviceIds: ['phone-a', 'phone-b'] });
      expect((await repo.user(ids[1]!))?.deviceIds).toEqual([]);
      expect((await repo.users()).map((u) => u.username)).toEqual(['Alice', 'bob', 'Carol']);
      expect((await repo.users({ limit: 1, offset: 1 })).map((u) => u.username)).toEqual(['bob']);
      expect((await repo.users({ offset: 2 })).map((u) => u.username)).toEqual(['Carol']);
      expect(await repo.userCount({ locationId: hq })).toBe(3);
      expect(await repo.existingUserIds([ids[2]!, 999])).toEqual(new Set([ids[2]]));
      expect(await repo.deviceOwners(['phone-a', 'phone-z'], null)).toEqual([{ deviceId: 'phone-a', userId: ids[0] }]);
      expect(await repo.deviceOwners(['phone-a'], ids[0]!)).toEqual([]);
      // A phone moved to Bob leaves Alice: exactly the list given.
      await repo.setUserDevices(ids[1]!, ['phone-a']);
      expect((await repo.user(ids[0]!))?.deviceIds).toEqual(['phone-b']);
      const contexts = await repo.pushContexts(['phone-a', 'phone-b', 'unknown']);
      expect([...contexts.keys()].sort()).toEqual(['phone-a', 'phone-b']);
      expect(contexts.get('phone-a')).toMatchObject({ userId: ids[1], locationId: hq, issuedVersion: 0, recommendations: false });
    });

    it('filters events by a list of types, newest first, and finds those without notifications', async () => {
      const { repo } = await backend.store();
      for (const [id, type] of [
        ['a', 'emergency-call'],
        ['b', 'diagnostics'],
        ['c', 'test-call'],
      ] as const)
        await repo.insertEvent(event(id, type));
      await repo.addNotification('a', 'email', 'x@example.com');
      expect((await repo.events({ types: ['emergency-call', 'test-call'] })).map((e) => e.id)).toEqual(['c', 'a']);
      expect((await repo.events({ types: ['diagnostics'] }))[0]).toMatchObject({ id: 'b', data: { n: 'b' } });
      const since = new Date(Date.now() - 60_000).toISOString();
      expect((await repo.eventsWithoutNotifications(['emergency-call', 'test-call'], since)).map((e) => e.id)).toEqual(['c']);
    });

    it('a transaction is all or nothing; a savepoint inside rolls back alone', async () => {
      const { repo } = await backend.store();
      await expect(
        repo.transaction(async () => {
          await repo.insertEvent(event('lost'));
          await repo.addNotification('lost', 'email', 'x@example.com');
          throw new Error('planning failed');
        }),
      ).rejects.toThrow('planning failed');
      expect(await repo.event('lost')).toBeNull();
      expect(await repo.notifications({ eventId: 'lost' })).toEqual([]);

      await repo.transaction(async () => {
        await repo.insertEvent(event('kept'));
        await expect(
          repo.transaction(async () => {
            await repo.addNotification('kept', 'sms', '+14085550100');
            throw new Error('inner');
          }),
        ).rejects.toThrow('inner');
        await repo.addNotification('kept', 'email', 'x@example.com');
      });
      expect((await repo.notifications({ eventId: 'kept' })).map((n) => n.channel)).toEqual(['email']);
    });

    it('transactions and statements started together all land, none inside another', async () => {
      const { repo } = await backend.store();
      const tx = (id: string) =>
        repo.transaction(async () => {
          await repo.insertEvent(event(id));
          await repo.addNotification(id, 'email', `${id}@example.com`);
        });
      await Promise.all([tx('t1'), tx('t2'), repo.insertEvent(event('plain')), tx('t3')]);
      for (const id of ['t1', 't2', 't3']) expect(await repo.notifications({ eventId: id })).toHaveLength(1);
      expect(await repo.event('plain')).not.toBeNull();
    });

    it("a phone's applied-address report older than the stored one is ignored; a reset phone's (its floor at the stored version) is kept", async () => {
      const { repo } = await backend.store();
      await repo.ensureDevice('p-order');
      // Two instances took the phone's reports: the version it applied committed first, its "nothing yet" at connect after.
      await repo.setDeviceApplied('p-order', 1, 'h1', '2026-01-01T00:00:00.000Z');
      await repo.setDeviceApplied('p-order', 0, '', null);
      expect(await repo.device('p-order')).toMatchObject({ appliedVersion: 1, appliedHash: 'h1' });
      await repo.setDeviceApplied('p-order', 2, 'h2', '2026-01-01T00:00:01.000Z');
      expect(await repo.device('p-order')).toMatchObject({ appliedVersion: 2, appliedHash: 'h2' });
      // Its store was reset: it holds nothing, and its replay floor says it had version 2.
      await repo.setDeviceApplied('p-order', 0, '', null, 2);
      expect(await repo.device('p-order')).toMatchObject({ appliedVersion: 0, appliedHash: '' });
    });

    it("a burst of phones' reports is written in as many statements for 100 phones as for 10, and leaves each row as the reports one by one would", async () => {
      const clock = () => new Date('2026-02-02T00:00:00.000Z');
      const s = await backend.store(clock);
      const statements: string[] = [];
      // Every statement the batch sends (one round trip each on PostgreSQL).
      const q = s.sql(clock);
      const sent = (t: string) => {
        statements.push(t);
      };
      const counted: Sql = Object.assign(Object.create(q) as Sql, {
        all: (t: string, p?: Params) => {
          sent(t);
          return q.all(t, p);
        },
        get: (t: string, p?: Params) => {
          sent(t);
          return q.get(t, p);
        },
        column: (t: string, p?: Params) => {
          sent(t);
          return q.column(t, p);
        },
        run: (t: string, p?: Params) => {
          sent(t);
          return q.run(t, p);
        },
        transaction: <T>(fn: () => Promise<T>) => q.transaction(fn),
      });
      const batchRepo = new Repo(counted);
      const one = s.repo;
      // What each phone reports, in order: on then off then on, an applied version and an older
      // one after it, a reset phone's report with its floor, a location, a sign of life.
      const reportsOf = (id: string, i: number): PhoneReport[] => [
        { kind: 'status', deviceId: id, online: true, agentVersion: `1.${i}` },
        { kind: 'applied', deviceId: id, version: 3, hash: `h3-${i}`, appliedAt: '2026-02-01T00:00:03.000Z', floor: 0 },
        { kind: 'status', deviceId: id, online: false, agentVersion: null },
        { kind: 'applied', deviceId: id, version: 2, hash: 'h2', appliedAt: null, floor: 0 },
        { kind: 'location', deviceId: id, report: { v: 1, ts: '2026-02-01T00:00:00.000Z', n: i } as never },
        ...(i % 3 === 0 ? [{ kind: 'applied' as const, deviceId: id, version: 0, hash: '', appliedAt: null, floor: 3 }] : []),
        { kind: 'status', deviceId: id, online: true, agentVersion: null },
        { kind: 'touch', deviceId: id },
      ];
      const oneByOne = async (r: PhoneReport) => {
        if (r.kind === 'status') await one.setDeviceStatus(r.deviceId, r.online, r.agentVersion);
        else if (r.kind === 'applied') await one.setDeviceApplied(r.deviceId, r.version, r.hash, r.appliedAt, r.floor);
        else if (r.kind === 'location') await one.setDeviceLocationReport(r.deviceId, r.report);
        else await one.touchDevice(r.deviceId);
      };
      const burst = async (n: number) => {
        const ids = Array.from({ length: n }, (_, i) => `b${n}-${i}`);
        // All but the last are known phones: the last is created by its first report, as one by one.
        for (const id of ids.slice(0, -1)) await one.ensureDevice(id);
        for (let i = 0; i < n; i++) for (const r of reportsOf(`a${n}-${i}`, i)) await oneByOne(r);
        statements.length = 0;
        await batchRepo.transaction(() => batchRepo.recordReports(ids.flatMap((id, i) => reportsOf(id, i))));
        const count = statements.length;
        for (const [i, id] of ids.entries()) {
          const { deviceId: _b, createdAt: _bc, ...batched } = (await one.device(id))!;
          const { deviceId: _a, createdAt: _ac, ...single } = (await one.device(`a${n}-${i}`))!;
          expect(batched, id).toEqual(single);
        }
        return count;
      };
      const small = await burst(10);
      const large = await burst(100);
      expect(large).toBe(small);
      // Phones looked up, the new one created and its account read, 3 status + 3 applied + 1 location rounds, 1 touch.
      expect(large).toBeLessThanOrEqual(11);
      const batched = [...statements];
      // A push chunk's records: one statement each.
      statements.length = 0;
      const ids = Array.from({ length: 100 }, (_, i) => `b100-${i}`);
      await batchRepo.transaction(() =>
        batchRepo.recordIssuedMany(
          ids.map((deviceId) => ({ deviceId, version: 4, contentHash: 'c4', signed: '{"doc":{}}', issuedAt: '2026-02-02T00:00:00.000Z' })),
          ids.map((deviceId) => ({ deviceId, version: 2, contentHash: 'l2' })),
        ),
      );
      expect(statements).toHaveLength(2);
      for (const id of ids) expect(await one.device(id)).toMatchObject({ issuedVersion: 4, locationsVersion: 2 });
      // Each phone found by its device id, not every device scanned per JSON row (SQLite's planner
      // took an account_id = ? index for the outer loop once: 27 s per 500-phone push chunk).
      if (q instanceof SqliteSql)
        for (const t of [...batched, ...statements].filter((x) => x.trimStart().startsWith('UPDATE'))) {
          const names = [...t.matchAll(/@(\w+)/g)].map((m) => m[1]!);
          const params = names.length > 0 ? [Object.fromEntries(names.map((n) => [n, '[]']))] : [...t.matchAll(/\?/g)].map(() => '[]');
          const plan = (q.db.prepare(`EXPLAIN QUERY PLAN ${t}`).all(...params) as { detail: string }[]).map((r) => r.detail).join('; ');
          expect(plan, t).toMatch(/SEARCH (d|devices) USING (COVERING )?INDEX sqlite_autoindex_devices_1 \(device_id=\?\)/);
          expect(plan, t).not.toMatch(/SCAN (d|devices)\b|devices_account/);
        }
    });

    it('an address a phone online has not applied is claimed for a resend when due, each time twice as late, by one of two instances; a new issue starts over', async () => {
      // The sweep's clock and the issue times are both given: it compares them, not the host's clock.
      const s = await backend.store();
      const [a, b] = backend.name === 'postgres' ? [s.repo, s.open()] : [s.repo, s.repo];
      const signed = (id: string, v: number) => JSON.stringify({ v: 1, doc: { deviceId: id, version: v } });
      const at = '2026-01-01T00:00:00.000Z';
      for (const id of ['rs-online', 'rs-offline', 'rs-applied']) {
        await a.ensureDevice(id);
        await a.recordIssuedAddress(id, 3, 'h3', signed(id, 3), at);
      }
      await a.setDeviceStatus('rs-online', true, null);
      await a.setDeviceStatus('rs-applied', true, null);
      await a.setDeviceApplied('rs-applied', 3, 'h3', at);
      const base = 60_000;
      let now = Date.parse('2026-01-01T00:00:00.000Z');
      const claim = (repo = a) => repo.claimResends(now, base);
      const online3 = [{ deviceId: 'rs-online', version: 3, signed: signed('rs-online', 3) }];

      // Due base after the issue.
      expect(await claim()).toEqual([]);
      now += base - 1;
      expect(await claim()).toEqual([]);
      now += 1;
      expect(await claim()).toEqual(online3);
      // Then 2, 4, 8, 16, 32 times base, and 64 times from then on.
      for (const wait of [2, 4, 8, 16, 32, 64, 64]) {
        now += wait * base - 1;
        expect(await claim()).toEqual([]);
        now += 1;
        // Two instances at once: one of them takes it.
        const both = await Promise.all([claim(a), claim(b)]);
        expect(both.flat()).toEqual(online3);
      }

      // A new issue starts over: due base after it.
      await a.recordIssuedMany(
        [{ deviceId: 'rs-online', version: 4, contentHash: 'h4', signed: signed('rs-online', 4), issuedAt: new Date(now).toISOString() }],
        [],
      );
      expect(await claim()).toEqual([]);
      now += base;
      expect(await claim()).toEqual([{ deviceId: 'rs-online', version: 4, signed: signed('rs-online', 4) }]);
      // Applied, or offline: never again.
      await a.setDeviceApplied('rs-online', 4, 'h4', at);
      now += 1000 * base;
      expect(await claim()).toEqual([]);
      expect((await a.device('rs-offline'))?.appliedVersion).toBeNull();
    });

    it('two instances claiming at once take each notification once', async () => {
      const s = await backend.store();
      // Two pools on PostgreSQL, as two server instances have. One SQLite file is claimed
      // through one connection per process: its single writer is what keeps claims apart.
      const [a, b] = backend.name === 'postgres' ? [s.repo, s.open()] : [s.repo, s.repo];
      for (let e = 0; e < 10; e++) {
        await a.insertEvent(event(`ev${e}`));
        for (let r = 0; r < 5; r++) await a.addNotification(`ev${e}`, 'email', `r${r}@example.com`);
      }
      const taken: number[] = [];
      const claim = async (repo: Repo, who: string) => {
        for (;;) {
          const rows = await repo.claimDueNotifications(3, 60_000, who);
          if (rows.length === 0) return;
          taken.push(...rows.map((r) => r.id));
        }
      };
      await Promise.all([claim(a, 'a/1'), claim(b, 'b/1'), claim(a, 'a/2'), claim(b, 'b/2')]);
      expect(taken).toHaveLength(50);
      expect(new Set(taken).size).toBe(50);
    });

    // SQLite has one writer: an open transaction holds every row, so this exists on PostgreSQL only.
    if (backend.name === 'postgres') {
      it('rows another instance holds in an open transaction are skipped, not waited for nor taken again (SKIP LOCKED)', async () => {
        const s = await backend.store();
        const [a, b] = [s.repo, s.open()];
        await a.insertEvent(event('ev'));
        for (let r = 0; r < 4; r++) await a.addNotification('ev', 'email', `r${r}@example.com`);
        await a.transaction(async () => {
          const mine = await a.claimDueNotifications(2, 60_000, 'a');
          // A's claim is not committed: B sees those rows still pending, and locked.
          const theirs = await b.claimDueNotifications(10, 60_000, 'b');
          expect(mine).toHaveLength(2);
          expect(theirs).toHaveLength(2);
          expect(theirs.map((n) => n.id).filter((id) => mine.some((m) => m.id === id))).toEqual([]);
        });
      });
    }

    it('two notifiers on the store send each (event, channel, recipient) once', async () => {
      const s = await backend.store();
      const repos = backend.name === 'postgres' ? [s.repo, s.open()] : [s.repo, s.repo];
      await s.repo.setNotificationSettings({
        smtp: {
          host: 'relay.example',
          port: 25,
          security: 'none',
          username: undefined,
          from: 'e911@example.com',
          allowInvalidCertificates: false,
        },
        sms: null,
        webhook: null,
      });
      const sent = new Map<string, number>();
      const email = (who: string): EmailChannel => ({
        send: async (_s, to, _notice, headers) => {
          const key = `${headers?.['X-E911-Event-Id'] ?? '?'}|${to}`;
          sent.set(key, (sent.get(key) ?? 0) + 1);
          await new Promise((r) => setTimeout(r, 2));
          return `${who}-${key}`;
        },
        close: () => undefined,
      });
      const none: HttpChannel<SmsSettings> & HttpChannel<WebhookSettings> = { send: async () => 'x' };
      const notifiers = repos.map(
        (repo, i) =>
          new Notifier({ repo, log: silentLog(), email: email(`n${i}`), sms: none, webhook: none, instance: `n${i}`, concurrency: 4 }),
      );
      for (const n of notifiers) await n.start(3_600_000);
      try {
        for (let e = 0; e < 8; e++) {
          await s.repo.insertEvent(event(`call${e}`));
          for (let r = 0; r < 4; r++) await s.repo.addNotification(`call${e}`, 'email', `r${r}@example.com`);
          for (const n of notifiers) n.kick();
        }
        const deadline = Date.now() + 15_000;
        while ((await s.repo.notifications({ status: 'sent' })).length < 32) {
          if (Date.now() > deadline) throw new Error('not every notification was sent');
          await new Promise((r) => setTimeout(r, 20));
        }
      } finally {
        for (const n of notifiers) await n.stop();
      }
      expect((await s.repo.notifications({ limit: 100 })).every((n) => n.status === 'sent' && n.attempts === 1)).toBe(true);
      expect(sent.size).toBe(32);
      expect([...sent.values()].every((count) => count === 1)).toBe(true);
    });
  });
});
