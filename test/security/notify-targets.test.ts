// SSRF through the notification channels: an admin (or a stolen portal session) points the
// SMS provider or the webhook at the server's own loopback, link-local or private addresses.
// A real HTTP sink listens on loopback, standing for a service only the server can reach
// (a cloud metadata endpoint, a broker's or database's admin port). By default nothing
// reaches it, whether the URL names the address or a name that resolves to it; the operator's
// --allow-notify-target opens named hosts or networks, and only those.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startTestServer, HQ, type TestServer } from '../helpers/server-app.js';
import { startHttpSink, type HttpSink } from '../helpers/http-sink.js';
import mqtt from 'mqtt';
import { generateSigningKeyPair } from '../../provisioning/protocol/signing.js';
import { topicFor } from '../../provisioning/protocol/topics.js';

async function until(cond: () => Promise<boolean>, why: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${why}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

type TestResult = { ok: boolean; error?: string; providerId?: string };

describe("notification targets on the server's own networks (SSRF)", () => {
  let internal: HttpSink;
  const dirs: string[] = [];
  const servers: TestServer[] = [];
  const keys = generateSigningKeyPair();

  /** A server on its own data folder with this allow list ([] = the default policy). */
  const server = async (allowTargets: string[], dir?: string) => {
    const d = dir ?? mkdtempSync(path.join(os.tmpdir(), 'e911-ssrf-'));
    if (!dir) dirs.push(d);
    const srv = await startTestServer({ dir: d, keys, notify: { retry: { baseMs: 100, maxMs: 400, maxAttempts: 50 }, allowTargets } });
    servers.push(srv);
    return srv;
  };
  const settings = (url: string) => ({
    sms: { url: `${url}/sms`, from: '+14085550000' },
    webhook: { url: `${url}/hook`, secret: 'hook-secret' },
  });
  const testSend = (srv: TestServer, channel: 'sms' | 'webhook') =>
    srv.api.post<TestResult>('/api/account/notifications/test', { channel, ...(channel === 'sms' ? { to: '+14085550123' } : {}) });

  beforeAll(async () => {
    internal = await startHttpSink();
  });
  afterAll(async () => {
    for (const s of servers) await s.app.stop().catch(() => undefined);
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    await internal?.close();
  });
  beforeEach(() => {
    internal.requests.length = 0;
  });

  describe('by default', () => {
    let srv: TestServer;
    beforeAll(async () => {
      srv = await server([]);
    });

    it('refuses to save a URL whose host is a loopback, link-local, private or unspecified address, however it is spelled', async () => {
      const port = internal.port;
      const hosts = [
        `127.0.0.1:${port}`,
        `127.1.2.3:${port}`,
        `2130706433:${port}`, // 127.0.0.1 as one number
        `0x7f.1:${port}`, // and in hex
        `[::1]:${port}`,
        `[::ffff:127.0.0.1]:${port}`, // IPv4-mapped IPv6
        `0.0.0.0:${port}`,
        `[::]:${port}`,
        '169.254.169.254', // the cloud metadata service
        '10.0.0.1',
        '172.16.5.4',
        '192.168.1.1',
        '100.64.0.1',
        '[fe80::1]',
        '[fd12:3456::1]',
      ];
      for (const host of hosts) {
        for (const channel of ['sms', 'webhook'] as const) {
          const body =
            channel === 'sms' ? { sms: { url: `http://${host}/sms`, from: '+14085550000' } } : { webhook: { url: `https://${host}/hook` } };
          const r = await srv.api.call<{ error: string; issues: { field: string; reason: string }[] }>(
            'PUT',
            '/api/account/notifications',
            body,
          );
          expect(r.status, `${channel} ${host}`).toBe(400);
          expect(r.body.issues).toEqual([
            {
              field: `${channel}.url`,
              reason: expect.stringMatching(/is an? (loopback|link-local|private|unspecified|shared).* address: .*--allow-notify-target/),
            },
          ]);
        }
      }
      const stored = await srv.app.repo.notificationSettings();
      expect([stored.sms ?? null, stored.webhook ?? null]).toEqual([null, null]);
    });

    it('refuses, when sending, a name that resolves to loopback (checked on the address connected to)', async () => {
      // A name passes the save (no DNS then: its answer may change by the time it is used);
      // the socket's own lookup is checked, so the address refused is the one it would reach.
      const saved = await srv.api.call('PUT', '/api/account/notifications', settings(`http://localhost:${internal.port}`));
      expect(saved.status).toBe(200);
      for (const channel of ['sms', 'webhook'] as const) {
        const r = await testSend(srv, channel);
        expect(r.ok).toBe(false);
        expect(r.error).toMatch(
          new RegExp(`^${channel === 'sms' ? 'SMS provider' : 'webhook'}: localhost resolves to a loopback address:`),
        );
      }
      expect(internal.requests).toEqual([]);
    });
  });

  describe('with --allow-notify-target', () => {
    it('a host name opens that name only, not the address it resolves to', async () => {
      const srv = await server(['localhost']);
      await srv.api.put('/api/account/notifications', settings(`http://localhost:${internal.port}`));
      expect(await testSend(srv, 'sms')).toMatchObject({ ok: true });
      expect(await testSend(srv, 'webhook')).toMatchObject({ ok: true });
      expect(internal.requests.map((q) => q.url)).toEqual(['/sms', '/hook']);
      const literal = await srv.api.call('PUT', '/api/account/notifications', settings(`http://127.0.0.1:${internal.port}`));
      expect(literal.status).toBe(400);
    });

    it('a network opens the addresses in it, by literal or by name, and no others', async () => {
      const srv = await server(['127.0.0.0/8']);
      await srv.api.put('/api/account/notifications', settings(`http://127.0.0.1:${internal.port}`));
      expect(await testSend(srv, 'webhook')).toMatchObject({ ok: true });
      await srv.api.put('/api/account/notifications', settings(`http://localhost:${internal.port}`));
      expect(await testSend(srv, 'sms')).toMatchObject({ ok: true });
      expect(internal.requests.map((q) => q.url)).toEqual(['/hook', '/sms']);
      for (const host of ['[::1]', '169.254.169.254', '10.0.0.1']) {
        expect((await srv.api.call('PUT', '/api/account/notifications', { webhook: { url: `http://${host}/hook` } })).status, host).toBe(
          400,
        );
      }
    });

    it('taking the allowance away stops sends to a URL saved while it was given, and an emergency notice fails for good', async () => {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'e911-ssrf-'));
      dirs.push(dir);
      const before = await server(['127.0.0.1'], dir);
      await before.api.put('/api/account/notifications', settings(`http://127.0.0.1:${internal.port}`));
      expect(await testSend(before, 'webhook')).toMatchObject({ ok: true });
      await before.app.stop();
      servers.splice(servers.indexOf(before), 1);
      internal.requests.length = 0;

      const after = await server([], dir);
      expect(await testSend(after, 'webhook')).toEqual({
        ok: false,
        error: expect.stringMatching(/^webhook: 127\.0\.0\.1 is a loopback address/),
      });
      // Through the notifier, for a real 911 call from a phone: a refused target is a
      // configuration fault, so the SMS and webhook rows fail at once instead of retrying.
      const locationId = (await after.api.post<{ id: number }>('/api/locations', { ...HQ, smsNumbers: ['+14085550199'] })).id;
      await after.api.post('/api/users', {
        username: 'u9',
        displayName: 'User Nine',
        extension: '2009',
        locationId,
        callback: '+14085550100',
        deviceIds: ['desk-9'],
      });
      const creds = await after.api.post<{ username: string; password: string }>('/api/phones/desk-9/credentials');
      const phone = await mqtt.connectAsync(after.app.brokerUrl, {
        clientId: 'desk-9',
        protocolVersion: 4,
        username: creds.username,
        password: creds.password,
      });
      try {
        await phone.publishAsync(
          topicFor('desk-9', 'events'),
          JSON.stringify({
            v: 1,
            id: 'ssrf-call-1',
            type: 'emergency-call',
            deviceId: 'desk-9',
            ts: new Date().toISOString(),
            data: { numberDialed: '911' },
          }),
          { qos: 1 },
        );
        type Row = { channel: string; status: string; attempts: number; lastError: string | null };
        let rows: Row[] = [];
        const settled = async () => {
          rows = (await after.api.get<Row[]>('/api/notifications?eventId=ssrf-call-1')).filter((n) => n.channel !== 'email');
          return rows.length === 2 && rows.every((n) => n.status === 'failed');
        };
        await until(settled, 'the SMS and webhook rows never failed');
        for (const n of rows)
          expect(n).toMatchObject({ attempts: 1, lastError: expect.stringMatching(/127\.0\.0\.1 is a loopback address/) });
      } finally {
        await phone.endAsync();
      }
      expect(internal.requests).toEqual([]);
    });
  });
});
