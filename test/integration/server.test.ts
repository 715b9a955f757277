// The provisioning server end to end on loopback with real parts: the embedded
// broker with per-phone credentials, the real agent (in-process), an SMTP sink
// (smtp-server), an HTTP SMS sink and webhook sink (node:http).
import { serverStores } from '../helpers/server-stores.js';
import { requires } from '../helpers/require.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { agentConfig, inProcessAgent } from '../helpers/agent.js';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.js';
import { startHttpSink, type HttpSink } from '../helpers/http-sink.js';
import { startTestServer, HQ, BRANCH, apiClient, type TestServer } from '../helpers/server-app.js';
import { controlRequest } from '../../agent/control/control-client.js';
import type { Agent } from '../../agent/root.js';
import { topicFor } from '../../provisioning/protocol/topics.js';

interface Phone {
  deviceId: string;
  issuedVersion: number;
  appliedVersion: number | null;
  inSync: boolean;
  online: boolean;
}

// The same suite on each store the server keeps its records in (SQLite, PostgreSQL).
describe.each(serverStores())("provisioning server: pushes and Kari's Law notifications on $name", (backend) => {
  const gate = backend.name === 'postgres' ? requires('the server on PostgreSQL', ['postgres']) : { skip: false };
  describe.skipIf(gate.skip)('', () => {
    let srv: TestServer;
    let smtp: SmtpSink;
    let sms: HttpSink;
    let dir: string;
    let agent: Agent;
    let socketPath: string;
    let creds: { username: string; password: string };
    /** A second phone of Alice's that the test drives by hand (a login's client id is its own). */
    let creds2: { username: string; password: string };
    let hqId: number;
    let userId: number;

    beforeAll(async () => {
      dir = mkdtempSync(path.join(os.tmpdir(), 'e911-srvit-'));
      smtp = await startSmtpSink();
      sms = await startHttpSink();
      await backend.setup();
      srv = await startTestServer({ store: (await backend.store()).setting });
      const { api } = srv;
      await api.patch('/api/account', { name: 'Example Corp', contactEmail: 'it@example.com' });
      await api.put('/api/account/notifications', {
        smtp: { host: '127.0.0.1', port: smtp.port, security: 'none', from: 'e911@example.com' },
        sms: {
          url: `${sms.url}/sms`,
          username: 'acct',
          password: 's3cret',
          from: '+14085550000',
          header: { name: 'X-Api-Key', value: 'k-123' },
        },
      });
      hqId = (await api.post<{ id: number }>('/api/locations', HQ)).id;
      userId = (
        await api.post<{ id: number }>('/api/users', {
          username: 'alice',
          displayName: 'Alice Smith',
          extension: '2101',
          locationId: hqId,
          callback: '+14085550100',
          emails: ['alice@example.com', 'team-lead@example.com'],
          deviceIds: ['phone-1', 'phone-1b'],
        })
      ).id;
      creds = await api.post('/api/phones/phone-1/credentials');
      creds2 = await api.post('/api/phones/phone-1b/credentials');
      await api.post('/api/account/e911', { enabled: true });

      const setup = agentConfig(
        path.join(dir, 'phone-1'),
        { deviceId: 'phone-1', brokerUrl: srv.app.brokerUrl, serverPublicKey: srv.keys.publicKey },
        {
          broker: {
            urls: [srv.app.brokerUrl],
            protocolVersion: 4,
            username: creds.username,
            password: creds.password,
            reconnectMinMs: 100,
            reconnectMaxMs: 1000,
          },
        },
      );
      socketPath = setup.socketPath;
      agent = inProcessAgent(setup).agent;
      await agent.start();
    });

    afterAll(async () => {
      await agent?.stop();
      await srv?.stop();
      await backend.teardown();
      await smtp?.close();
      await sms?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    const phone = () => srv.api.get<Phone>('/api/phones/phone-1');
    const agentAddress = async () => {
      const r = await controlRequest(socketPath, 'address');
      if (!r.ok) throw new Error(r.error);
      return r.result as {
        version: number;
        doc: { civic: Record<string, string>; callback: string; displayName: string; locationCode: string };
      } | null;
    };
    const mailsFor = (eventId: string) => smtp.mails.filter((m) => m.headers['x-e911-event-id'] === eventId);
    async function until(cond: () => Promise<boolean> | boolean, ms = 10_000, why = '') {
      const deadline = Date.now() + ms;
      while (!(await cond())) {
        if (Date.now() > deadline) throw new Error(`timed out: ${why}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    }

    it('pushes the signed address to the phone, which stores it and reports it applied', async () => {
      // The first wait includes the phone's start and the store's first push: generous for a loaded CI host.
      await until(async () => (await phone()).inSync, 25_000, 'phone never applied its address');
      const a = await agentAddress();
      expect(a?.doc).toMatchObject({
        callback: '+14085550100',
        displayName: 'Alice Smith',
        locationCode: 'SJC-A',
        civic: {
          country: 'US',
          A1: 'CA',
          A3: 'San Jose',
          RD: 'Main St',
          HNO: '100',
          PC: '95110-1234',
          NAM: 'Example Corp',
          BLD: 'A',
          FLR: '2',
          ROOM: '210',
        },
      });
      // English, the default, is left out of the document (an older phone reads it as before).
      expect(a?.doc).not.toHaveProperty('language');
      const p = await phone();
      expect(p.online).toBe(true);
      expect(p.appliedVersion).toBe(a!.version);
    });

    it("the user's language travels in the signed address, and the phone applies it", async () => {
      await srv.api.patch(`/api/users/${userId}`, { language: 'es-US' });
      await until(
        async () => ((await agentAddress())?.doc as { language?: string } | undefined)?.language === 'es-US',
        10_000,
        'the language never reached the phone',
      );
      await until(async () => (await phone()).inSync);
      await srv.api.patch(`/api/users/${userId}`, { language: 'en' });
      await until(async () => !('language' in (await agentAddress())!.doc), 10_000, 'back to English never reached the phone');
      await until(async () => (await phone()).inSync);
    });

    it('a change to the location gives the phone a higher version', async () => {
      const before = (await agentAddress())!.version;
      await srv.api.patch(`/api/locations/${hqId}`, { room: '214' });
      await until(async () => (await agentAddress())!.doc.civic.ROOM === '214', 10_000, 'new room never reached the phone');
      expect((await agentAddress())!.version).toBeGreaterThan(before);
      await until(async () => (await phone()).inSync);
      // An edit that changes nothing the phone holds issues no new version.
      const v = (await phone()).issuedVersion;
      await srv.api.patch(`/api/locations/${hqId}`, { adminEmails: ['security@example.com'] });
      await srv.app.pusher.idle();
      expect((await phone()).issuedVersion).toBe(v);
    });

    it("a 911 event emails the user's list and the location's admins with the facts, and texts the SMS list", async () => {
      const a = (await agentAddress())!;
      agent.emit('emergency-call', {
        callRef: 'call-1',
        numberDialed: '911',
        emergencyNumber: '911',
        placed: true,
        route: { name: 'primary', uri: 'sip:psap@127.0.0.1', target: 'urn:service:sos' },
        callback: a.doc.callback,
        displayName: a.doc.displayName,
        locationCode: a.doc.locationCode,
        addressMissing: false,
        location: { source: 'provisioned', method: 'Manual', addressVersion: a.version, civic: a.doc.civic },
        device: { deviceId: 'phone-1', ip: '10.1.2.3', mac: '00:11:22:33:44:55' },
        time: { utc: '2026-11-22T16:05:00.000Z', local: '2026-11-22T08:05:00.000-08:00', timeZone: 'America/Los_Angeles' },
      });
      const events = await (async () => {
        let list: { id: string; type: string }[] = [];
        await until(async () => {
          list = await srv.api.get('/api/events?type=emergency-call');
          return list.length === 1;
        });
        return list;
      })();
      const id = events[0]!.id;
      await until(() => mailsFor(id).length === 3, 10_000, `emails for ${id}: ${mailsFor(id).length}`);
      expect(
        mailsFor(id)
          .map((m) => m.to[0])
          .sort(),
      ).toEqual(['alice@example.com', 'security@example.com', 'team-lead@example.com']);
      const mail = mailsFor(id)[0]!;
      expect(mail.subject).toBe('EMERGENCY: 911 was called from Alice Smith at SJC-A');
      expect(mail.text).toContain('911 WAS CALLED');
      for (const fact of [
        'Caller:               Alice Smith',
        'User:                 alice',
        'Callback number:      +14085550100',
        'Dispatchable address: Example Corp, 100 Main St, Bldg A Floor 2 Room 214, San Jose, CA 95110-1234, US',
        'Building:             A',
        'Floor:                2',
        'Room:                 214',
        'Address source:       as sent to the PSAP',
        'Address missing:      no',
        'Location code:        SJC-A',
        'Caller ID:            +14085550100 "Alice Smith"',
        'Account:              Example Corp',
        'Extension:            2101',
        'Device IP:            10.1.2.3',
        'Time (location):      2026-11-22 08:05:00 PST (America/Los_Angeles)',
        'Time (UTC):           2026-11-22T16:05:00.000Z',
      ]) {
        expect(mail.text).toContain(fact);
      }
      await until(() => sms.requests.length === 1, 5000, 'no SMS');
      const text = sms.requests[0]!;
      expect(text.headers['x-api-key']).toBe('k-123');
      expect(text.headers.authorization).toBe(`Basic ${Buffer.from('acct:s3cret').toString('base64')}`);
      expect(text.json).toMatchObject({ from: '+14085550000', to: '+14085550199' });
      expect((text.json as { text: string }).text).toMatch(/^911 CALLED by Alice Smith at SJC-A\. Example Corp, 100 Main St/);

      // Delivery status is recorded and queryable, per recipient.
      const detail = await srv.api.get<{ notifications: { channel: string; recipient: string; status: string }[] }>(`/api/events/${id}`);
      expect(detail.notifications.map((n) => `${n.channel}:${n.recipient}:${n.status}`).sort()).toEqual([
        'email:alice@example.com:sent',
        'email:security@example.com:sent',
        'email:team-lead@example.com:sent',
        'sms:+14085550199:sent',
      ]);
      const audit = await srv.api.get<{ action: string; entityId: string }[]>('/api/audit?entity=event');
      expect(audit.some((x) => x.action === 'phone.emergency-call' && x.entityId === id)).toBe(true);
    });

    it('the same event delivered twice, even to a restarted server, gives one email per recipient', async () => {
      const ev = {
        v: 1,
        id: 'dup-evt-1',
        type: 'emergency-call',
        deviceId: 'phone-1b',
        ts: new Date().toISOString(),
        data: { numberDialed: '911', callback: '+14085550100', displayName: 'Alice Smith', addressMissing: true },
      };
      const sentinel = (n: number) => ({ ...ev, id: `sentinel-${n}`, type: 'test-call', data: { numberDialed: '933' } });
      // Alice's second phone, driven by hand, redelivers the identical payload.
      const redeliver = await mqtt.connectAsync(srv.app.brokerUrl, {
        clientId: 'phone-1b',
        protocolVersion: 4,
        username: creds2.username,
        password: creds2.password,
      });
      try {
        await redeliver.publishAsync(topicFor('phone-1b', 'events'), JSON.stringify(ev), { qos: 1 });
        await until(() => mailsFor('dup-evt-1').length === 3, 10_000, 'first delivery not mailed');
        await redeliver.publishAsync(topicFor('phone-1b', 'events'), JSON.stringify(ev), { qos: 1 });
        // Messages of one client arrive in order: once the sentinel is mailed, the duplicate was handled.
        await redeliver.publishAsync(topicFor('phone-1b', 'events'), JSON.stringify(sentinel(1)), { qos: 1 });
        await until(() => mailsFor('sentinel-1').length === 3);
        expect(mailsFor('dup-evt-1')).toHaveLength(3);
      } finally {
        await redeliver.endAsync();
      }
      expect(mailsFor('dup-evt-1')[0]!.text).toContain('Address missing:      YES');

      // A new server process has no memory of the id but the database has.
      await srv.restart();
      srv.api = apiClient(srv.app.httpUrl, srv.token);
      const again = await mqtt.connectAsync(srv.app.brokerUrl, {
        clientId: 'phone-1b',
        protocolVersion: 4,
        username: creds2.username,
        password: creds2.password,
      });
      try {
        await again.publishAsync(topicFor('phone-1b', 'events'), JSON.stringify(ev), { qos: 1 });
        await again.publishAsync(topicFor('phone-1b', 'events'), JSON.stringify(sentinel(2)), { qos: 1 });
        await until(() => mailsFor('sentinel-2').length === 3);
      } finally {
        await again.endAsync();
      }
      expect(mailsFor('dup-evt-1')).toHaveLength(3);
      // The agent reconnects to the restarted broker by itself.
      await until(async () => (await phone()).online, 10_000, 'agent did not come back');
    });

    it('a 933 test call sends a Test Call Notification, clearly marked as a test', async () => {
      agent.emit('test-call', {
        callRef: 'call-933',
        numberDialed: '933',
        placed: true,
        callback: '+14085550100',
        displayName: 'Alice Smith',
        addressMissing: false,
        device: { ip: '10.1.2.3' },
      });
      let id = '';
      await until(async () => {
        const list = await srv.api.get<{ id: string; data: { callRef?: string } }[]>('/api/events?type=test-call');
        id = list.find((e) => e.data.callRef === 'call-933')?.id ?? '';
        return id !== '' && mailsFor(id).length === 3;
      });
      const mail = mailsFor(id)[0]!;
      expect(mail.subject).toMatch(/^Test Call Notification: 933 test call from Alice Smith at SJC-A \(TEST, not an emergency\)$/);
      expect(mail.text).toMatch(/^TEST CALL NOTIFICATION\. This is a test/);
      // The event did not say which address it sent: the provisioned one is shown, and said to be that.
      expect(mail.text).toContain('Address source:       as provisioned to the phone; the phone did not report the address it sent');
      expect(mail.text).toContain('Room:                 214');
    });

    it("recommendations: the locations push reaches the phone, the user's pick there becomes their location and address", async () => {
      const branchId = (await srv.api.post<{ id: number }>('/api/locations', BRANCH)).id;
      await srv.api.patch(`/api/users/${userId}`, { recommendations: true });
      // The signed locations push reaches the phone; the user picks the branch there (as from the keypad).
      let choices: { id: string; code: string }[] = [];
      await until(
        async () => {
          const r = await controlRequest(socketPath, 'location');
          choices = r.ok ? ((r.result as { choices: { id: string; code: string }[] }).choices ?? []) : [];
          return choices.some((c) => c.code === 'YYZ-1');
        },
        10_000,
        'the locations push never reached the phone',
      );
      expect(choices.map((c) => c.code).sort()).toEqual(['SJC-A', 'YYZ-1']);
      const picked = await controlRequest(socketPath, 'location-select', { id: String(branchId) });
      expect(picked).toMatchObject({ ok: true, result: { locationId: String(branchId), confirmed: false } });
      await until(async () => (await agentAddress())!.doc.locationCode === 'YYZ-1', 10_000, 'chosen location never reached the phone');
      expect((await agentAddress())!.doc.civic).toMatchObject({ country: 'CA', A1: 'ON', A3: 'Toronto', PC: 'M5H 3T4', FLR: '5' });
      expect((await srv.api.get<{ locationId: number }>(`/api/users/${userId}`)).locationId).toBe(branchId);
      const audit = await srv.api.get<{ action: string; actor: string }[]>(`/api/audit?entity=user&entityId=${userId}`);
      expect(audit[0]).toMatchObject({ action: 'user.location-selected', actor: 'phone:phone-1' });
      // The next 911 notice goes to the new location's admins.
      agent.emit('emergency-call', { numberDialed: '911', callRef: 'call-2' });
      let id = '';
      await until(async () => {
        const list = await srv.api.get<{ id: string; data: { callRef?: string } }[]>('/api/events?type=emergency-call');
        id = list.find((e) => e.data.callRef === 'call-2')?.id ?? '';
        return id !== '' && mailsFor(id).length === 3;
      });
      expect(
        mailsFor(id)
          .map((m) => m.to[0])
          .sort(),
      ).toEqual(['alice@example.com', 'team-lead@example.com', 'toronto-desk@example.com']);
      expect(mailsFor(id)[0]!.text).toContain('(America/Toronto)');
    });

    it('refuses a phone without credentials and one with a wrong password', async () => {
      const tryConnect = (o: mqtt.IClientOptions) =>
        mqtt.connectAsync(srv.app.brokerUrl, { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 3000, ...o }).then(
          async (c) => {
            await c.endAsync();
            return 'connected';
          },
          (err: Error) => err.message,
        );
      expect(await tryConnect({ clientId: 'anon' })).toMatch(/Not authorized/i);
      expect(await tryConnect({ clientId: 'wrong', username: 'phone-1', password: 'nope' })).toMatch(/Bad username or password/i);
      expect(await tryConnect({ clientId: 'phone-1b', username: creds2.username, password: creds2.password })).toBe('connected');
      // Right credentials, another client id: refused (test/security/mqtt.test.ts attacks this further).
      expect(await tryConnect({ clientId: 'right', username: creds2.username, password: creds2.password })).toMatch(/Identifier rejected/i);
    });

    it('the embedded broker keeps a phone to its own topics, as the Mosquitto ACL does', async () => {
      const intruder = await mqtt.connectAsync(srv.app.brokerUrl, {
        clientId: 'phone-1b',
        protocolVersion: 4,
        username: creds2.username,
        password: creds2.password,
        reconnectPeriod: 0,
      });
      // SUBACK return codes, read off the wire (mqtt.js turns any 128 into an error).
      const suback = new Promise<number[]>((resolve) =>
        intruder.on('packetreceive', (p) => p.cmd === 'suback' && resolve(p.granted as number[])),
      );
      intruder.subscribe(
        ['e911/v1/other/address/set', 'e911/v1/+/events', '#', topicFor('phone-1b', 'address/set')],
        { qos: 1 },
        () => undefined,
      );
      expect(await suback).toEqual([128, 128, 128, 1]);
      // Publishing as another phone: refused, and aedes drops the connection.
      const closed = new Promise<void>((resolve) => intruder.once('close', () => resolve()));
      intruder.publish(
        topicFor('other', 'events'),
        JSON.stringify({ v: 1, id: 'forged-embedded', type: 'emergency-call', deviceId: 'other', ts: new Date().toISOString(), data: {} }),
        { qos: 1 },
      );
      await closed;
      intruder.end(true);
      const events = await srv.api.get<{ id: string }[]>('/api/events?limit=1000');
      expect(events.some((e) => e.id === 'forged-embedded')).toBe(false);
    });
  });
});
