// The server's row mapping: the column readers (JSON, booleans, NULLs, left-out
// fields), and every stored type read back from a real database where each column
// holds a value no other column holds, so a field mapped from the wrong column fails.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Repo } from '../../provisioning/server/db/repo.js';
import { requires } from '../helpers/require.js';
import { type ServerStoreBackend, serverStores } from '../helpers/server-stores.js';
import type { LocationPayload } from '../../provisioning/protocol/messages.js';
import {
  bool,
  int,
  intOrNull,
  json,
  optionalText,
  rowMapper,
  RowShapeError,
  sortedList,
  text,
  textOrNull,
} from '../../provisioning/server/db/rows.js';

/** A repo whose clock moves one second per reading, so every timestamp column differs. */
async function repoAt(
  backend: ServerStoreBackend,
  start = '2026-01-01T00:00:00.000Z',
): Promise<{ repo: Repo; exec(sql: string): Promise<void>; open(): Repo }> {
  let t = Date.parse(start);
  const s = await backend.store(() => {
    t += 1000;
    return new Date(t);
  });
  return { repo: s.repo, exec: s.exec, open: () => s.open() };
}

describe('the column readers', () => {
  interface Thing {
    id: number;
    label: string;
    note: string | null;
    parent: number | null;
    on: boolean;
    tags: string[];
    extra: unknown;
    room?: string;
    ids: string[];
  }
  const toThing = rowMapper<Thing>({
    id: int('id'),
    label: text('label'),
    note: textOrNull('note'),
    parent: intOrNull('parent_id'),
    on: bool('is_on'),
    tags: json('tags', []),
    extra: json('extra', null),
    room: optionalText('room'),
    ids: sortedList('ids'),
  });

  it('parses JSON, reads 1 as true, keeps NULL as null and leaves out an empty optional', () => {
    const row = { id: 7, label: 'a', note: 'n', parent_id: 3, is_on: 1, tags: '["x","y"]', extra: '{"k":1}', room: '12', ids: 'b,a' };
    expect(toThing(row)).toEqual({
      id: 7,
      label: 'a',
      note: 'n',
      parent: 3,
      on: true,
      tags: ['x', 'y'],
      extra: { k: 1 },
      room: '12',
      ids: ['a', 'b'],
    });
    const empty = { id: 8, label: 'b', note: null, parent_id: null, is_on: 0, tags: null, extra: null, room: '', ids: null };
    const thing = toThing(empty);
    expect(thing).toEqual({ id: 8, label: 'b', note: null, parent: null, on: false, tags: [], extra: null, ids: [] });
    expect('room' in thing).toBe(false);
    // Only 1 is true: SQLite has no booleans, and a stray 2 is not one.
    expect(toThing({ ...empty, is_on: 2 }).on).toBe(false);
  });

  it('keeps the fields in the order written (the API serializes them so)', () => {
    const row = { id: 1, label: 'a', note: null, parent_id: null, is_on: 1, tags: '[]', extra: null, room: 'r', ids: '' };
    expect(Object.keys(toThing(row))).toEqual(['id', 'label', 'note', 'parent', 'on', 'tags', 'extra', 'room', 'ids']);
  });

  it('a column the row lacks is an error, not undefined', () => {
    const { parent_id: _dropped, ...row } = {
      id: 1,
      label: 'a',
      note: null,
      parent_id: 2,
      is_on: 1,
      tags: '[]',
      extra: null,
      room: null,
      ids: '',
    };
    expect(() => toThing(row)).toThrow(RowShapeError);
    expect(() => toThing(row)).toThrow(/parent_id/);
  });
});

// On each store the server keeps its records in (SQLite, PostgreSQL).
describe.each(serverStores())('each stored type read back through Repo, on $name', (backend) => {
  const gate = backend.name === 'postgres' ? requires('stored types on PostgreSQL', ['postgres']) : { skip: false };
  describe.skipIf(gate.skip)('', () => {
    beforeAll(() => backend.setup(), 60_000);
    afterAll(() => backend.teardown(), 30_000);
    it('a device: every field from its own column', async () => {
      const { repo, exec, open } = await repoAt(backend);
      await repo.ensureDevice('p1'); // created_at :01
      await repo.recordIssuedAddress('p1', 7, 'addr-hash', 'signed-doc', '2026-02-02T00:00:00.000Z');
      await repo.recordIssuedLocations('p1', 5, 'loc-hash');
      await repo.setDeviceStatus('p1', true, '3.1.4'); // last_seen :02
      await repo.setDeviceApplied('p1', 6, 'applied-hash', '2026-03-03T00:00:00.000Z');
      const report: LocationPayload = {
        v: 1,
        ts: '2026-01-01T00:00:03.500Z',
        source: 'lldp-med',
        data: {
          best: null,
          candidates: [],
          elin: null,
          network: null,
          lldp: [{ iface: 'eth0', chassisId: 'c1', portId: 'p1', portDescr: null, sysName: null }],
          recommendation: null,
          disagreement: null,
        },
      };
      await repo.setDeviceLocationReport('p1', report); // :04 (its ensureDevice reads the clock first)
      await repo.setDeviceMismatch('p1', { fields: ['street'] }); // :06
      await repo.setDeviceDisagreement('p1', { state: 'open' }, '2026-04-04T00:00:00.000Z');
      await repo.setDeviceCredential('p1', 'mosq-hash'); // :09
      const ack = {
        version: 6,
        hash: 'applied-hash',
        shownAt: '2026-03-03T00:00:01.000Z',
        acknowledgedAt: '2026-03-03T00:05:00.000Z',
        via: 'keypad',
        userId: 12,
      };
      expect(await repo.setNoticeAck('p1', ack)).toBe(true);
      // An acknowledgement of an older address arriving late changes nothing.
      expect(await repo.setNoticeAck('p1', { ...ack, version: 5, hash: 'old', acknowledgedAt: '2026-03-04T00:00:00.000Z' })).toBe(false);
      expect(await repo.device('p1')).toEqual({
        deviceId: 'p1',
        userId: null,
        online: true,
        lastSeen: '2026-01-01T00:00:02.000Z',
        agentVersion: '3.1.4',
        issuedVersion: 7,
        issuedAt: '2026-02-02T00:00:00.000Z',
        appliedVersion: 6,
        appliedHash: 'applied-hash',
        appliedAt: '2026-03-03T00:00:00.000Z',
        locationsVersion: 5,
        lastLocation: report,
        lastLocationAt: '2026-01-01T00:00:04.000Z',
        mismatch: { fields: ['street'] },
        mismatchAt: '2026-01-01T00:00:06.000Z',
        disagreement: { state: 'open' },
        disagreementAt: '2026-04-04T00:00:00.000Z',
        credentialsIssuedAt: '2026-01-01T00:00:09.000Z',
        noticeAck: ack,
        createdAt: '2026-01-01T00:00:01.000Z',
      });
      expect(await repo.issuedAddress('p1')).toEqual({ version: 7, contentHash: 'addr-hash', signed: 'signed-doc' });
      expect(await repo.issuedLocations('p1')).toEqual({ version: 5, contentHash: 'loc-hash' });
      expect((await repo.pushContexts(['p1'])).get('p1')).toEqual({
        deviceId: 'p1',
        userId: null,
        displayName: null,
        callback: null,
        language: null,
        locationId: null,
        ownAddress: null,
        recommendations: false,
        issuedVersion: 7,
        contentHash: 'addr-hash',
        appliedVersion: 6,
        locationsVersion: 5,
        locationsHash: 'loc-hash',
      });
      await repo.close();
      // The NULLs a fresh row holds, written straight to the file: nulls, not undefined or "null".
      await exec("INSERT INTO devices (device_id, created_at) VALUES ('p2', 'c')");
      const again = open();
      expect(await again.device('p2')).toMatchObject({
        userId: null,
        online: false,
        lastSeen: null,
        appliedVersion: null,
        lastLocation: null,
        mismatch: null,
        disagreement: null,
        credentialsIssuedAt: null,
        noticeAck: null,
      });
      await again.close();
    });

    it('a location, a user and their CSV row', async () => {
      const { repo } = await repoAt(backend);
      const id = await repo.insertLocation({
        code: 'HQ',
        name: 'Head office',
        address: {
          country: 'US',
          houseNumber: '12',
          houseNumberSuffix: 'B',
          street: 'Main St',
          street2: 'Suite 4',
          city: 'Springfield',
          state: 'IL',
          postalCode: '62701',
          plus4: '1234',
        },
        building: 'North',
        floor: '3',
        room: '301',
        timeZone: 'America/Chicago',
        ipGroups: [{ name: 'lan', cidrs: ['10.1.0.0/16'] }],
        switchPorts: [{ chassisId: 'sw1', portId: 'p7' }],
        adminEmails: ['admin@example.com'],
        smsNumbers: ['+15550100'],
        language: 'fr-CA',
      });
      const location = (await repo.location(id))!;
      expect(location).toMatchObject({
        id,
        code: 'HQ',
        name: 'Head office',
        address: {
          country: 'US',
          houseNumber: '12',
          houseNumberSuffix: 'B',
          street: 'Main St',
          street2: 'Suite 4',
          city: 'Springfield',
          state: 'IL',
          postalCode: '62701',
          plus4: '1234',
        },
        building: 'North',
        floor: '3',
        room: '301',
        timeZone: 'America/Chicago',
        ipGroups: [{ name: 'lan', cidrs: ['10.1.0.0/16'] }],
        switchPorts: [{ chassisId: 'sw1', portId: 'p7' }],
        adminEmails: ['admin@example.com'],
        smsNumbers: ['+15550100'],
        language: 'fr-CA',
        createdAt: '2026-01-01T00:00:01.000Z',
        updatedAt: '2026-01-01T00:00:01.000Z',
      });
      expect(location.civic).toMatchObject({
        country: 'US',
        A1: 'IL',
        A3: 'Springfield',
        HNO: '12',
        HNS: 'B',
        PC: '62701-1234',
        NAM: 'Head office',
        BLD: 'North',
        FLR: '3',
        ROOM: '301',
      });

      const userId = await repo.insertUser({
        username: 'ann',
        displayName: 'Ann Lee',
        extension: '101',
        locationId: id,
        callback: '+15550101',
        language: 'fr-CA',
        mobile: '+14085550177',
        recommendations: true,
        emails: ['ann@example.com'],
        deviceIds: [],
      });
      await repo.setUserDevices(userId, ['phone-b', 'phone-a']);
      await repo.setUserLocation(userId, id); // updated_at moves past created_at
      expect(await repo.user(userId)).toEqual({
        id: userId,
        username: 'ann',
        displayName: 'Ann Lee',
        extension: '101',
        locationId: id,
        callback: '+15550101',
        ownAddress: null,
        language: 'fr-CA',
        mobile: '+14085550177',
        recommendations: true,
        emails: ['ann@example.com'],
        deviceIds: ['phone-a', 'phone-b'],
        createdAt: '2026-01-01T00:00:02.000Z',
        updatedAt: '2026-01-01T00:00:05.000Z',
      });
      const home = {
        address: { country: 'US', houseNumber: '9', street: 'Elm St', city: 'Austin', state: 'TX', postalCode: '78701' },
        room: 'Office',
        timeZone: 'America/Chicago',
      };
      const ben = await repo.insertUser({
        username: 'ben',
        displayName: 'Ben Ho',
        locationId: null,
        ownAddress: home as never,
        callback: null,
        language: 'en',
        recommendations: false,
        emails: [],
        deviceIds: [],
      } as never);
      expect(await repo.user(ben)).toMatchObject({ locationId: null, ownAddress: home });
      // A location picked on the phone replaces the own address: a user has one or the other.
      await repo.setUserLocation(ben, id);
      expect(await repo.user(ben)).toMatchObject({ locationId: id, ownAddress: null });
      await repo.deleteUser(ben);
      expect(await repo.csvUserRows()).toEqual([
        {
          id: userId,
          username: 'ann',
          displayName: 'Ann Lee',
          extension: '101',
          locationCode: 'HQ',
          locationName: 'Head office',
          emails: ['ann@example.com'],
        },
      ]);
      await repo.close();
    });

    it('an account, an event, a notification, a job, an upload, an audit entry and a token', async () => {
      const { repo } = await repoAt(backend);
      await repo.updateAccount({ name: 'Acme', contactEmail: 'ops@example.com', recommendations: true, elinCallback: false });
      await repo.setE911(true);
      expect(await repo.account()).toMatchObject({
        name: 'Acme',
        contactEmail: 'ops@example.com',
        e911Enabled: true,
        recommendations: true,
        elinCallback: false,
        defaultAddress: null,
        defaultCallback: null,
        emergencyContacts: [],
      });
      const cb = { number: '+14085550100', displayName: 'Acme Security', language: 'es' };
      await repo.updateAccount({ defaultCallback: cb, emergencyContacts: ['desk@example.com'] });
      // Left out: kept; null: removed.
      await repo.updateAccount({ name: 'Acme' });
      expect(await repo.account()).toMatchObject({ defaultCallback: cb, emergencyContacts: ['desk@example.com'] });
      await repo.updateAccount({ defaultCallback: null });
      expect((await repo.account()).defaultCallback).toBeNull();
      expect((await repo.account()).e911ChangedAt).toMatch(/^2026-01-01T/);
      await repo.setNotificationSettings({ smtp: null, sms: null, webhook: { url: 'https://hooks.example.com/x' } as never });
      expect(await repo.notificationSettings()).toEqual({
        smtp: null,
        sms: null,
        webhook: { url: 'https://hooks.example.com/x' },
        call: null,
      });

      await repo.insertEvent({
        id: 'ev-1',
        deviceId: 'p1',
        type: 'emergency-call',
        ts: '2026-05-05T00:00:00.000Z',
        userId: null,
        locationId: null,
        data: { dialed: '911' },
      });
      expect(await repo.event('ev-1')).toEqual({
        id: 'ev-1',
        deviceId: 'p1',
        type: 'emergency-call',
        ts: '2026-05-05T00:00:00.000Z',
        receivedAt: expect.stringMatching(/^2026-01-01T/),
        userId: null,
        locationId: null,
        data: { dialed: '911' },
      });

      await repo.addNotification('ev-1', 'sms', '+15550199');
      const [n] = await repo.claimDueNotifications(5, 60_000, 'srv/boot');
      await repo.notificationFailed(n!.id, 'carrier said no', new Date('2026-06-06T00:00:00.000Z'));
      expect((await repo.notifications())[0]).toMatchObject({
        eventId: 'ev-1',
        channel: 'sms',
        recipient: '+15550199',
        status: 'retry',
        attempts: 1,
        nextAttemptAt: '2026-06-06T00:00:00.000Z',
        lastError: 'carrier said no',
        providerId: null,
        sentAt: null,
        acknowledgedAt: null,
        ackMethod: null,
        plays: null,
      });

      // Security-desk calls: one acknowledged (a 1 pressed), one answered and never acknowledged.
      await repo.addNotification('ev-1', 'call', 'sip:desk@pbx.example');
      await repo.addNotification('ev-1', 'call', '+15550123');
      const calls = (await repo.claimDueNotifications(5, 60_000, 'srv/boot')).filter((x) => x.channel === 'call');
      await repo.notificationAcknowledged(calls[0]!.id, 'call-id-1', { at: '2026-06-06T00:00:05.000Z', method: 'rfc2833', plays: 1 });
      await repo.notificationUnacknowledged(calls[1]!.id, 'call-id-2', 4, 'played 4 times, not acknowledged');
      const byRecipient = new Map((await repo.notifications()).map((x) => [x.recipient, x]));
      expect(byRecipient.get(calls[0]!.recipient)).toMatchObject({
        status: 'sent',
        providerId: 'call-id-1',
        acknowledgedAt: '2026-06-06T00:00:05.000Z',
        ackMethod: 'rfc2833',
        plays: 1,
      });
      expect(byRecipient.get(calls[1]!.recipient)).toMatchObject({ status: 'unacknowledged', plays: 4, acknowledgedAt: null });
      // Final: an unacknowledged call is not claimed again.
      expect(await repo.claimDueNotifications(5, 60_000, 'srv/boot')).toEqual([]);

      const jobId = await repo.createJob('push', 'admin', { all: true }, 4);
      await repo.claimJob();
      await repo.jobProgress(jobId, 2);
      await repo.finishJob(jobId, { pushed: 2 }, 'half failed');
      const job = (await repo.job(jobId))!;
      expect(job).toMatchObject({
        id: jobId,
        kind: 'push',
        status: 'failed',
        actor: 'admin',
        params: { all: true },
        total: 4,
        done: 2,
        result: { pushed: 2 },
        error: 'half failed',
      });
      expect(new Set([job.createdAt, job.startedAt, job.finishedAt]).size).toBe(3);

      await repo.saveCsvUpload('up-1', 'admin', 3, [{ op: 'add', username: 'bob' }], 2);
      await repo.markCsvApplied('up-1', jobId);
      expect(await repo.csvUpload('up-1')).toEqual({
        id: 'up-1',
        createdAt: expect.stringMatching(/^2026-01-01T/),
        rows: 3,
        changes: [{ op: 'add', username: 'bob' }],
        errorCount: 2,
        jobId,
      });

      await repo.audit('admin', 'update', 'user', 42, { field: 'emails' });
      await repo.audit('admin', 'delete', 'device', null);
      expect(await repo.auditLog()).toMatchObject([
        { actor: 'admin', action: 'delete', entity: 'device', entityId: null, details: null },
        { actor: 'admin', action: 'update', entity: 'user', entityId: '42', details: { field: 'emails' } },
      ]);

      const tokenId = await repo.createToken('ci', 'secret-token');
      await repo.revokeToken(tokenId);
      const [token] = await repo.tokens();
      expect(token).toMatchObject({ id: tokenId, name: 'ci', lastUsedAt: null });
      expect(token!.revokedAt).not.toBe(token!.createdAt);
      expect(token!.revokedAt).toMatch(/^2026-01-01T/);
      await repo.close();
    });
  });
});
