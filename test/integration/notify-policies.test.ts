// The three notification policies, each end to end: a real server (embedded broker), a
// phone's events published over MQTT with its own login, an SMTP sink, an HTTP sink for
// the SMS provider and another for the app's webhook. SMS goes to the location's numbers
// and to the mobiles of the people there (not to people elsewhere); 933 may have its own
// policy; a 911 mail is flagged high importance, a 933 mail is not.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mqtt from 'mqtt';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.js';
import { startHttpSink, type HttpSink } from '../helpers/http-sink.js';
import { startTestServer, HQ, BRANCH, type TestServer } from '../helpers/server-app.js';
import { topicFor } from '../../provisioning/protocol/topics.js';

describe('notification policies, end to end', () => {
  let srv: TestServer;
  let smtp: SmtpSink;
  let sms: HttpSink;
  let hook: HttpSink;
  let phone: mqtt.MqttClient;
  let n = 0;

  beforeAll(async () => {
    smtp = await startSmtpSink();
    sms = await startHttpSink();
    hook = await startHttpSink();
    srv = await startTestServer();
    const { api } = srv;
    await api.patch('/api/account', { name: 'Example Corp PBX', contactEmail: 'it@example.com' });
    await api.put('/api/account/notifications', {
      smtp: { host: '127.0.0.1', port: smtp.port, security: 'none', from: 'e911@example.com' },
      sms: { url: `${sms.url}/sms`, from: '+14085550000' },
      webhook: { url: `${hook.url}/hook` },
    });
    const hq = (await api.post<{ id: number }>('/api/locations', HQ)).id;
    const branch = (await api.post<{ id: number }>('/api/locations', BRANCH)).id;
    await api.post('/api/users', {
      username: 'alice',
      displayName: 'Alice Smith',
      extension: '2101',
      locationId: hq,
      callback: '+14085550100',
      emails: ['alice@example.com'],
      deviceIds: ['phone-1'],
    });
    // People with a mobile: one at HQ (texted HQ's alerts), one at the branch (not).
    await api.post('/api/users', {
      username: 'bob',
      displayName: 'Bob Jones',
      locationId: hq,
      callback: '+14085550101',
      mobile: '+14085550177',
    });
    await api.post('/api/users', {
      username: 'carol',
      displayName: 'Carol Tremblay',
      locationId: branch,
      callback: '+14165550102',
      mobile: '+14165550188',
    });
    const creds = await api.post<{ username: string; password: string }>('/api/phones/phone-1/credentials');
    phone = await mqtt.connectAsync(srv.app.brokerUrl, {
      clientId: 'phone-1',
      protocolVersion: 4,
      username: creds.username,
      password: creds.password,
    });
  });

  afterAll(async () => {
    await phone?.endAsync();
    await srv?.stop();
    await Promise.all([smtp?.close(), sms?.close(), hook?.close()]);
  });

  async function until(cond: () => Promise<boolean> | boolean, ms = 10_000, why = '') {
    const deadline = Date.now() + ms;
    while (!(await cond())) {
      if (Date.now() > deadline) throw new Error(`timed out: ${why}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  const mailsFor = (id: string) => smtp.mails.filter((m) => m.headers['x-e911-event-id'] === id);
  const hooksFor = (id: string) => hook.requests.filter((r) => (r.json as { eventId: string }).eventId === id);

  /** Publishes a call event as the phone; resolves once every notification row of it is settled. */
  async function call(type: 'emergency-call' | 'test-call', extra: Record<string, unknown> = {}) {
    const id = `pol-${type}-${++n}`;
    const smsBefore = sms.requests.length;
    const ev = {
      v: 1,
      id,
      type,
      deviceId: 'phone-1',
      ts: new Date().toISOString(),
      data: {
        numberDialed: type === 'test-call' ? '933' : '911',
        placed: true,
        callback: '+14085550100',
        displayName: 'Alice Smith',
        addressMissing: false,
        language: 'es',
        ...extra,
      },
    };
    await phone.publishAsync(topicFor('phone-1', 'events'), JSON.stringify(ev), { qos: 1 });
    let rows: { channel: string; recipient: string; status: string }[] = [];
    await until(
      async () => {
        const r = await srv.api.get<{ notifications: typeof rows } | null>(`/api/events/${id}`).catch(() => null);
        rows = r?.notifications ?? [];
        return rows.length > 0 && rows.every((x) => x.status === 'sent' || x.status === 'failed');
      },
      15_000,
      `notifications of ${id}: ${JSON.stringify(rows)}`,
    );
    return {
      id,
      rows: rows.map((x) => `${x.channel}:${x.recipient}:${x.status}`).sort(),
      texts: () =>
        sms.requests
          .slice(smsBefore)
          .map((r) => (r.json as { to: string }).to)
          .sort(),
    };
  }

  const setPolicy = (notificationPolicy: string, testNotificationPolicy: string | null = null) =>
    srv.api.patch('/api/account', { notificationPolicy, testNotificationPolicy });

  it('all: the app, every email, and SMS to the location numbers and the mobiles of the people there', async () => {
    await setPolicy('all');
    const c = await call('emergency-call');
    expect(c.rows).toEqual([
      'email:alice@example.com:sent',
      'email:security@example.com:sent',
      'sms:+14085550177:sent',
      'sms:+14085550199:sent',
      `webhook:${hook.url}/hook:sent`,
    ]);
    // Carol is at the branch: not texted HQ's alert.
    expect(c.texts()).toEqual(['+14085550177', '+14085550199']);
    expect(hooksFor(c.id)).toHaveLength(1);
    const mail = mailsFor(c.id)[0]!;
    expect(mail.headers.importance).toBe('High');
    expect(mail.headers['x-priority']).toBe('1');
    expect(mail.text).toMatch(/^Account: +Example Corp PBX$/m);
    expect(mail.text).toMatch(/^Extension: +2101$/m);
    expect(mail.text).toMatch(/^Caller's language: +Spanish \(es\), sent to the PSAP$/m);
    // Who dialed, by every name admins know them; the phone's own number went out.
    expect(mail.text).toMatch(/^Directory name: +Alice Smith$/m);
    expect(mail.text).toMatch(/^Caller ID: +\+14085550100 "Alice Smith"$/m);
    expect(mail.text).not.toContain('Caller ID sent');
  });

  it('a call that carried another number than the phone\'s own says "Caller ID sent"; a Spanish site gets the notice in Spanish', async () => {
    await setPolicy('all');
    const elin = await call('emergency-call', { callback: '+14085550199' });
    const mail = mailsFor(elin.id)[0]!;
    expect(mail.text).toMatch(/^Caller ID sent: +\+14085550199, not the phone's own number \+14085550100/m);

    const hq = (await srv.api.get<{ id: number; code: string }[]>('/api/locations')).find((l) => l.code === HQ.code);
    await srv.api.patch(`/api/locations/${hq!.id}`, { language: 'es-US' });
    try {
      const es = await call('emergency-call');
      const text = mailsFor(es.id)[0]!.text;
      expect(text).toMatch(/^Extensión: +2101$/m);
      expect(text).toMatch(/^Nombre en el directorio: +Alice Smith$/m);
      expect(text).not.toMatch(/^Extension:/m);
    } finally {
      await srv.api.patch(`/api/locations/${hq!.id}`, { language: 'en-US' });
    }
  });

  it('app only: the webhook, and nothing else', async () => {
    await setPolicy('app-only');
    const c = await call('emergency-call');
    expect(c.rows).toEqual([`webhook:${hook.url}/hook:sent`]);
    expect(mailsFor(c.id)).toHaveLength(0);
    expect(c.texts()).toEqual([]);
  });

  it('app, then email and SMS: nothing more while the app takes it; everyone once the app fails', async () => {
    await setPolicy('app-then-email-sms');
    const ok = await call('emergency-call');
    expect(ok.rows).toEqual([`webhook:${hook.url}/hook:sent`]);
    expect(mailsFor(ok.id)).toHaveLength(0);

    // 400: not retryable, so the row settles as failed, and the fallback goes at the first failure.
    hook.failWith = 400;
    try {
      const failed = await call('emergency-call');
      expect(failed.rows).toEqual([
        'email:alice@example.com:sent',
        'email:security@example.com:sent',
        'sms:+14085550177:sent',
        'sms:+14085550199:sent',
        `webhook:${hook.url}/hook:failed`,
      ]);
      expect(failed.texts()).toEqual(['+14085550177', '+14085550199']);
    } finally {
      hook.failWith = null;
    }
  });

  it('933 has its own policy: app only for tests while 911 goes to everyone; a test mail is not flagged', async () => {
    await setPolicy('all', 'app-only');
    expect(await srv.api.get('/api/account')).toMatchObject({ notificationPolicy: 'all', testNotificationPolicy: 'app-only' });
    const test = await call('test-call');
    expect(test.rows).toEqual([`webhook:${hook.url}/hook:sent`]);
    const real = await call('emergency-call');
    expect(real.rows).toHaveLength(5);

    // Back to "same as 911": a 933 is mailed too, without the high-importance flag, naming who dialed.
    await setPolicy('all', null);
    const test2 = await call('test-call');
    expect(test2.rows).toHaveLength(5);
    const mail = mailsFor(test2.id)[0]!;
    expect(mail.headers.importance).toBeUndefined();
    expect(mail.headers['x-priority']).toBeUndefined();
    expect(mail.subject).toMatch(/test call/);
    expect(mail.text.split('\n')[0]).toContain('Alice Smith dialed the 933 test number at SJC-A');
  });
});
