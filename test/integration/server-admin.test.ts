// The provisioning server's admin side on loopback: token authentication and
// the OpenAPI document, the E911 precondition, notification retries while SMTP
// is down, the app-then-email policy with a failing webhook, bulk email jobs,
// and the CSV round trip with bad files.
import { serverStores } from '../helpers/server-stores.js';
import { requires } from '../helpers/require.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mqtt from 'mqtt';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.js';
import { startHttpSink, type HttpSink } from '../helpers/http-sink.js';
import { startTestServer, HQ, BRANCH, apiClient, type TestServer } from '../helpers/server-app.js';
import { freePort } from '../helpers/ports.js';
import { topicFor } from '../../provisioning/protocol/topics.js';
import { parseCsv } from '../../provisioning/server/csv.js';

interface Job {
  id: number;
  status: string;
  total: number;
  done: number;
  result: { updated: number; unchanged: number; missing: number } | null;
}
interface Report {
  uploadId: string | null;
  rows: number;
  changes: number;
  unchanged: number;
  errorCount: number;
  errors: { row: number; column: string; reason: string }[];
}
interface Notification {
  channel: string;
  recipient: string;
  status: string;
  attempts: number;
  lastError: string | null;
}

async function until(cond: () => Promise<boolean> | boolean, ms = 10_000, why = '') {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${why}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

// The same suite on each store the server keeps its records in (SQLite, PostgreSQL).
describe.each(serverStores())('provisioning server: admin API on $name', (backend) => {
  const gate = backend.name === 'postgres' ? requires('the server on PostgreSQL', ['postgres']) : { skip: false };
  describe.skipIf(gate.skip)('', () => {
    let srv: TestServer;
    let smtp: SmtpSink;
    let hook: HttpSink;
    let hqId: number;
    let branchId: number;
    let phone: mqtt.MqttClient;

    beforeAll(async () => {
      // The SMTP port is reserved but nothing listens yet: the server is "down".
      smtp = await startSmtpSink({ port: await freePort(), listen: false });
      hook = await startHttpSink();
      await backend.setup();
      srv = await startTestServer({ store: (await backend.store()).setting });
      const { api } = srv;
      await api.put('/api/account/notifications', {
        smtp: { host: '127.0.0.1', port: smtp.port, security: 'none', from: 'e911@example.com' },
      });
      hqId = (await api.post<{ id: number }>('/api/locations', HQ)).id;
      branchId = (await api.post<{ id: number }>('/api/locations', BRANCH)).id;
      // 30 users: 20 at HQ, 10 at the branch; user 1 has the phone.
      for (let i = 1; i <= 30; i++) {
        await api.post('/api/users', {
          username: `user${i}`,
          displayName: `User ${i}`,
          extension: String(2000 + i),
          locationId: i <= 20 ? hqId : branchId,
          callback: '+14085550100',
          emails: i === 1 ? ['one@example.com'] : [],
          deviceIds: i === 1 ? ['desk-1'] : [],
        });
      }
      const creds = await api.post<{ username: string; password: string }>('/api/phones/desk-1/credentials');
      phone = await mqtt.connectAsync(srv.app.brokerUrl, {
        clientId: 'desk-1',
        protocolVersion: 4,
        username: creds.username,
        password: creds.password,
      });
    });

    afterAll(async () => {
      await phone?.endAsync();
      await srv?.stop();
      await backend.teardown();
      await smtp?.close();
      await hook?.close();
    });

    const sendEvent = (id: string, type = 'emergency-call', data: Record<string, unknown> = { numberDialed: '911' }) =>
      phone.publishAsync(
        topicFor('desk-1', 'events'),
        JSON.stringify({ v: 1, id, type, deviceId: 'desk-1', ts: new Date().toISOString(), data }),
        { qos: 1 },
      );
    const deliveries = (eventId: string) => srv.api.get<Notification[]>(`/api/notifications?eventId=${eventId}`);

    it('refuses requests without a valid token and serves an OpenAPI document', async () => {
      const anon = apiClient(srv.app.httpUrl, null);
      expect((await anon.call('GET', '/api/locations')).status).toBe(401);
      expect((await apiClient(srv.app.httpUrl, 'e911_wrong').call('GET', '/api/locations')).status).toBe(401);
      expect((await anon.call('GET', '/api/health')).body).toMatchObject({ ok: true, mqtt: 'connected' });
      const doc = (await anon.call<{ openapi: string; paths: Record<string, unknown> }>('GET', '/api/openapi.json')).body;
      expect(doc.openapi).toBe('3.1.0');
      for (const p of [
        '/api/locations',
        '/api/users/{id}',
        '/api/bulk/emails',
        '/api/csv/users/validate',
        '/api/events/{id}',
        '/api/phones/{deviceId}/credentials',
      ]) {
        expect(Object.keys(doc.paths)).toContain(p);
      }
      // The browser portal logs in once and then uses the cookie.
      const login = await anon.call('POST', '/api/session', { token: srv.token });
      const cookie = login.headers.get('set-cookie')!;
      expect(cookie).toMatch(/HttpOnly; SameSite=Strict/);
      const withCookie = await anon.call('GET', '/api/account', undefined, { cookie: cookie.split(';')[0]! });
      expect(withCookie.status).toBe(200);
    });

    it("validates locations with the phone's rules and says which field is wrong", async () => {
      const r = await srv.api.call<{ error: string; issues: { field: string }[] }>('POST', '/api/locations', {
        ...HQ,
        code: 'BAD',
        address: { ...HQ.address, state: 'ON', postalCode: '9511' },
        ipGroups: [{ name: 'x', cidrs: ['10.1.0.1/16', '2001:db8::/200'] }],
        adminEmails: ['not-an-email'],
        timeZone: 'Mars/Base',
      });
      expect(r.status).toBe(400);
      expect(r.body.error).toBe('invalid');
      expect(r.body.issues.map((i) => i.field).sort()).toEqual([
        'address.postalCode',
        'address.state',
        'adminEmails.0',
        'ipGroups.0.cidrs.0',
        'ipGroups.0.cidrs.1',
        'timeZone',
      ]);
      const check = await srv.api.post<{ ok: boolean; issues: { field: string; reason: string }[] }>('/api/locations/validate', {
        ...HQ,
        address: { ...HQ.address, plus4: '12' },
      });
      expect(check).toEqual({ ok: false, issues: [{ field: 'address.plus4', reason: 'must be 4 digits' }] });
      expect((await srv.api.call('POST', '/api/locations', { ...HQ })).status).toBe(409);
    });

    it('enables E911 only once the mandatory information is complete', async () => {
      const r = await srv.api.call<{ error: string; missing: string[] }>('POST', '/api/account/e911', { enabled: true });
      expect(r.status).toBe(409);
      expect(r.body.missing).toEqual(['the account name', 'the account contact email']);
      await srv.api.patch('/api/account', { name: 'Example Corp', contactEmail: 'it@example.com' });
      expect(await srv.api.post('/api/account/e911', { enabled: true })).toMatchObject({ e911Enabled: true, missing: [] });
      // While enabled, a user with a phone cannot lose their callback number.
      const users = await srv.api.get<{ users: { id: number; username: string }[] }>('/api/users?limit=1');
      expect((await srv.api.call('PATCH', `/api/users/${users.users[0]!.id}`, { callback: null })).status).toBe(409);
    });

    it('retries notifications while SMTP is down and delivers them once it is back', async () => {
      await sendEvent('while-down-1');
      // A row reads 'sending' while an attempt is under way (every few hundred ms here): wait for
      // an email row that has failed twice and waits for its next try, rather than reading once.
      const emailRetrying = async () =>
        (await deliveries('while-down-1')).find((n) => n.channel === 'email' && n.status === 'retry' && n.attempts >= 2);
      let failing: Notification | undefined;
      await until(
        async () => {
          failing = await emailRetrying();
          return failing !== undefined;
        },
        10_000,
        'no email retry seen',
      );
      expect(failing!.lastError).toMatch(/ECONNREFUSED/);
      await smtp.start();
      const emails = async () => (await deliveries('while-down-1')).filter((n) => n.channel === 'email');
      await until(async () => (await emails()).every((n) => n.status === 'sent'), 30_000, 'never delivered').catch(async (err: Error) => {
        throw new Error(`${err.message}: ${JSON.stringify(await emails())}`);
      });
      // No SMS provider is set up in this account: that row says so, and keeps trying (read between tries).
      const smsRow = async () => (await deliveries('while-down-1')).find((n) => n.channel === 'sms');
      let sms: Notification | undefined;
      await until(
        async () => {
          sms = await smsRow();
          return sms?.status === 'retry';
        },
        10_000,
        'the SMS row never waited for a retry',
      );
      expect(sms!.lastError).toBe('the SMS provider is not configured');
      const mails = smtp.mails.filter((m) => m.headers['x-e911-event-id'] === 'while-down-1');
      expect(mails.map((m) => m.to[0]).sort()).toEqual(['one@example.com', 'security@example.com']);
      // Condition waits: generous bounds cost nothing when things go well, and a loaded CI machine needs them.
    }, 90_000);

    it('under "app, then email and SMS" a failing webhook brings in email', async () => {
      hook.failWith = 503;
      await srv.api.put('/api/account/notifications', { webhook: { url: `${hook.url}/hook`, secret: 'shh' } });
      await srv.api.patch('/api/account', { notificationPolicy: 'app-then-email-sms' });
      await sendEvent('app-fails-1');
      await until(
        async () => (await deliveries('app-fails-1')).some((n) => n.channel === 'email' && n.status === 'sent'),
        30_000,
        'no email fallback',
      ).catch(async (err: Error) => {
        throw new Error(`${err.message}: ${JSON.stringify(await deliveries('app-fails-1'))}`);
      });
      // The webhook keeps failing (503) and waits for its next try ('sending' while a try is under way).
      let webhook: Notification | undefined;
      await until(
        async () => {
          webhook = (await deliveries('app-fails-1')).find((n) => n.channel === 'webhook');
          return webhook?.status === 'retry';
        },
        10_000,
        'the webhook row never waited for a retry',
      );
      expect(webhook!.lastError).toBe('webhook: HTTP 503');
      // With the app working, nothing else is sent.
      hook.failWith = null;
      await until(async () => (await deliveries('app-fails-1')).find((n) => n.channel === 'webhook')!.status === 'sent');
      await sendEvent('app-works-1');
      await until(async () => (await deliveries('app-works-1')).some((n) => n.status === 'sent'));
      expect((await deliveries('app-works-1')).map((n) => n.channel)).toEqual(['webhook']);
      const req = hook.requests.find((r) => (r.json as { eventId?: string }).eventId === 'app-works-1')!;
      expect(req.headers['x-e911-signature']).toMatch(/^sha256=[0-9a-f]{64}$/);
      await srv.api.patch('/api/account', { notificationPolicy: 'all' });
    }, 90_000);

    it("applies one email list to a location's users as a background job, replacing their lists", async () => {
      const job = await srv.api.post<Job>('/api/bulk/emails', {
        emails: ['Desk@Example.com', 'floor-wardens@example.com'],
        target: { locationId: branchId },
      });
      expect(job.status).toBe('queued');
      expect(job.total).toBe(10);
      let done: Job = job;
      await until(async () => {
        done = await srv.api.get<Job>(`/api/jobs/${job.id}`);
        return done.status === 'done';
      });
      expect(done).toMatchObject({ done: 10, result: { updated: 10, unchanged: 0, missing: 0 } });
      const branchUsers = await srv.api.get<{ users: { emails: string[] }[] }>(`/api/users?locationId=${branchId}`);
      expect(branchUsers.users.every((u) => JSON.stringify(u.emails) === '["Desk@example.com","floor-wardens@example.com"]')).toBe(true);
      const hqUsers = await srv.api.get<{ users: { emails: string[] }[] }>(`/api/users?locationId=${hqId}`);
      expect(hqUsers.users.filter((u) => u.emails.length > 0)).toHaveLength(1);
      // Selected users, and bad requests.
      const sel = await srv.api.post<Job>('/api/bulk/emails', { emails: [], target: { userIds: [1, 2] } });
      await until(async () => (await srv.api.get<Job>(`/api/jobs/${sel.id}`)).status === 'done');
      expect((await srv.api.get<{ emails: string[] }>('/api/users/1')).emails).toEqual([]);
      const tooMany = await srv.api.call<{ issues: { field: string; reason: string }[] }>('POST', '/api/bulk/emails', {
        emails: Array.from({ length: 11 }, (_, i) => `a${i}@example.com`),
        target: { all: true },
      });
      expect(tooMany.status).toBe(400);
      expect(tooMany.body.issues[0]!.reason).toMatch(/at most 10/);
      expect((await srv.api.call('POST', '/api/bulk/emails', { emails: [], target: { userIds: [999] } })).status).toBe(400);
      await srv.api.patch('/api/users/1', { emails: ['one@example.com'] });
    });

    it('CSV: download pre-filled, edit, validate with nothing applied, then apply in the background', async () => {
      // An address a spreadsheet would read as a formula: it must survive the round trip.
      await srv.api.patch('/api/users/2', { emails: ['=cmd@example.com'] });
      // A location name that a spreadsheet would run as a formula.
      await srv.api.patch(`/api/locations/${branchId}`, { name: '=HYPERLINK("http://evil")' });
      const res = await srv.api.call('GET', '/api/csv/users');
      expect(res.headers.get('content-type')).toMatch(/^text\/csv/);
      expect(res.headers.get('content-disposition')).toMatch(/attachment; filename="e911-users-/);
      const rows = parseCsv(res.text);
      expect(rows[0]).toEqual([
        'UserId',
        'Username',
        'DisplayName',
        'Extension',
        'LocationCode',
        'LocationName',
        ...Array.from({ length: 10 }, (_, i) => `Email${i + 1}`),
        // Reference only, after the emails: each of the user's phones and its emergency-services notice.
        'E911Notice',
      ]);
      expect(rows).toHaveLength(31);
      expect(rows[1]!.slice(0, 7)).toEqual(['1', 'user1', 'User 1', '2001', 'SJC-A', 'Example Corp', 'one@example.com']);
      const branchRow = rows.find((r) => r[1] === 'user21')!;
      expect(branchRow[5]).toBe('\'=HYPERLINK("http://evil")');
      expect(res.text).toContain('"\'=HYPERLINK(""http://evil"")"');

      // Edit: user1 gets two addresses, user21 loses theirs, everything else as downloaded.
      rows[1]![6] = 'first@example.com';
      rows[1]![7] = 'second@example.com';
      const r21 = rows.indexOf(branchRow);
      rows[r21]!.fill('', 6);
      rows[r21]![3] = 'edited but ignored';
      const csv = rows.map((r) => r.map((v) => (/[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v)).join(',')).join('\r\n');
      const report = await srv.api.post<Report>('/api/csv/users/validate', csv);
      expect(report).toMatchObject({ rows: 30, changes: 2, unchanged: 28, errorCount: 0, errors: [] });
      // Nothing applied yet.
      expect((await srv.api.get<{ emails: string[] }>('/api/users/1')).emails).toEqual(['one@example.com']);
      const job = await srv.api.post<Job>(`/api/csv/uploads/${report.uploadId}/apply`);
      await until(async () => (await srv.api.get<Job>(`/api/jobs/${job.id}`)).status === 'done');
      expect((await srv.api.get<{ emails: string[] }>('/api/users/1')).emails).toEqual(['first@example.com', 'second@example.com']);
      expect(await srv.api.get<{ emails: string[]; extension: string }>('/api/users/21')).toMatchObject({ emails: [], extension: '2021' });
      // An upload applies once.
      expect((await srv.api.call('POST', `/api/csv/uploads/${report.uploadId}/apply`)).status).toBe(409);
      // A round trip of the new download changes nothing.
      const again = await srv.api.post<Report>('/api/csv/users/validate', (await srv.api.call('GET', '/api/csv/users')).text);
      expect(again).toMatchObject({ rows: 30, changes: 0, unchanged: 30, errorCount: 0 });
    });

    it('CSV: reports bad rows by row, column and reason, and applies only the good ones on request', async () => {
      const header =
        'UserId,Username,DisplayName,Extension,LocationCode,LocationName,Email1,Email2,Email3,Email4,Email5,Email6,Email7,Email8,Email9,Email10';
      const blanks = ',,,,,,,,';
      const csv = [
        header,
        `3,user3,,,,,ok3@example.com,not-an-email${blanks}`,
        `4,user4,,,,,dup@example.com,DUP@example.com${blanks}`,
        `999,nobody,,,,,x@example.com,${blanks}`,
        `5,user5,,,,,good5@example.com,${blanks}`,
        `5,user5,,,,,again@example.com,${blanks}`,
        `,user6,,,,,by-name@example.com,${blanks}`,
        `"7",user7,,,,,"'-dash@example.com",${blanks}`,
        '',
      ].join('\r\n');
      const report = await srv.api.post<Report>('/api/csv/users/validate', csv);
      expect(report.errors).toEqual([
        { row: 2, column: 'Email2', reason: '"not-an-email" is not a valid email address' },
        { row: 3, column: 'Email2', reason: 'DUP@example.com is listed twice in this row' },
        { row: 4, column: 'UserId', reason: 'no user with id "999"' },
        { row: 6, column: 'UserId', reason: 'user 5 appears again (first in row 5)' },
      ]);
      expect(report).toMatchObject({ rows: 7, changes: 3, errorCount: 4 });
      expect((await srv.api.get<{ emails: string[] }>('/api/users/5')).emails).toEqual([]);
      const job = await srv.api.post<Job>(`/api/csv/uploads/${report.uploadId}/apply`);
      await until(async () => (await srv.api.get<Job>(`/api/jobs/${job.id}`)).status === 'done');
      expect((await srv.api.get<{ emails: string[] }>('/api/users/5')).emails).toEqual(['good5@example.com']);
      expect((await srv.api.get<{ emails: string[] }>('/api/users/6')).emails).toEqual(['by-name@example.com']);
      expect((await srv.api.get<{ emails: string[] }>('/api/users/7')).emails).toEqual(['-dash@example.com']);
      expect((await srv.api.get<{ emails: string[] }>('/api/users/3')).emails).toEqual([]);

      const bad = async (body: string) => {
        const r = await srv.api.call<{ error: string; message: string; issues?: { field: string; reason: string }[] }>(
          'POST',
          '/api/csv/users/validate',
          body,
        );
        return { status: r.status, error: r.body.error, text: `${r.body.message} ${JSON.stringify(r.body.issues ?? [])}` };
      };
      expect(await bad('')).toMatchObject({ status: 400, text: expect.stringContaining('the file is empty') });
      expect(await bad('UserId,Email1\r\n1,a@example.com\r\n')).toMatchObject({ status: 400, text: expect.stringContaining('Email2') });
      expect(await bad(`${header}\r\n1,"unterminated\r\n`)).toMatchObject({ status: 400, text: expect.stringContaining('never closed') });
      expect(await bad(`${header}\r\n1,us"er1${blanks}\r\n`)).toMatchObject({
        status: 400,
        text: expect.stringContaining('a quote inside an unquoted field'),
      });
      const notUtf8 = await srv.api.call<{ message: string }>(
        'POST',
        '/api/csv/users/validate',
        Buffer.from(`${header}\r\n1,,,,,\xff\xfe`, 'latin1'),
      );
      expect(notUtf8.status).toBe(400);
      expect(notUtf8.body.message).toMatch(/not UTF-8/);
    });

    it('CSV: a file over the row or size limit gets a clear error', async () => {
      const small = await startTestServer({ csvLimits: { maxBytes: 2048, maxRows: 5, maxReportedErrors: 10 } });
      try {
        const header = 'UserId,Email1,Email2,Email3,Email4,Email5,Email6,Email7,Email8,Email9,Email10';
        const rows = (n: number) => [header, ...Array.from({ length: n }, (_, i) => `${i + 1},,,,,,,,,,`)].join('\r\n');
        const r1 = await small.api.call<{ error: string; message: string }>('POST', '/api/csv/users/validate', rows(6));
        expect(r1.status).toBe(413);
        expect(r1.body).toEqual({ error: 'too-large', message: 'the file has more than 5 data rows; the limit is 5' });
        const r2 = await small.api.call<{ error: string; message: string }>(
          'POST',
          '/api/csv/users/validate',
          `${header}\r\n${'x'.repeat(3000)}`,
        );
        expect(r2.status).toBe(413);
        expect(r2.body.message).toMatch(/larger than the .* limit|limit is/);
        expect((await small.api.call('POST', '/api/csv/users/validate', rows(5))).status).toBe(200);
      } finally {
        await small.stop();
      }
    });

    it('keeps answering while a large bulk job runs', async () => {
      // 2,000 more users at HQ, then one list for everyone.
      const t = srv.app.repo;
      await t.transaction(async () => {
        for (let i = 0; i < 2000; i++)
          await t.insertUser({
            username: `bulk${i}`,
            displayName: `Bulk ${i}`,
            locationId: hqId,
            callback: null,
            language: 'en',
            mobile: null,
            recommendations: false,
            emails: [],
            deviceIds: [],
            extension: undefined,
          });
      });
      const job = await srv.api.post<Job>('/api/bulk/emails', { emails: ['all-hands@example.com'], target: { all: true } });
      // The request returned before the work was done: it runs in the background.
      expect(job).toMatchObject({ status: 'queued', done: 0, total: 2030 });
      const seen = new Set<string>();
      let last: Job = job;
      while (last.status !== 'done' && last.status !== 'failed') {
        expect((await srv.api.call('GET', '/api/health')).status).toBe(200);
        last = await srv.api.get<Job>(`/api/jobs/${job.id}`);
        seen.add(last.status);
      }
      expect(last).toMatchObject({ status: 'done', done: 2030, result: { updated: 2030, missing: 0 } });
      // The states it was seen in, in the order first seen, are those of a successful job in its order
      // (whether 'queued' or 'running' was caught at all depends on the machine's speed).
      const order = [...seen].map((st) => ['queued', 'running', 'done'].indexOf(st));
      expect(
        order.every((i, k) => i >= 0 && (k === 0 || i > order[k - 1]!)),
        [...seen].join(),
      ).toBe(true);
      expect([...seen].at(-1)).toBe('done');
      const audit = await srv.api.get<{ action: string }[]>('/api/audit?entity=user&limit=5');
      expect(audit[0]!.action).toBe('user.emails-replace');
      // On PostgreSQL each of the job's ~8,000 statements is a round trip: on a loaded CI host that took over 30 s.
    }, 90_000);
  });
});
