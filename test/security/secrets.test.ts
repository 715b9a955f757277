// Notification secrets against an admin (or a stolen session) who wants them, and against a
// notification target that misbehaves, with real HTTP sinks: passwords, the webhook secret and
// header values (API keys) never come back out of the API; repointing a channel drops what was
// stored for the old target; no redirect is followed with credentials; the target's answer body
// never reaches the API.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server-app.js';
import { startHttpSink, type HttpSink } from '../helpers/http-sink.js';

const SMS_PASSWORD = 'sms-pass-7Q2x';
const SMS_KEY = 'sms-api-key-9Zt';
const HOOK_SECRET = 'hook-secret-4Kd';
const HOOK_KEY = 'hook-api-key-3Wm';
const SMTP_PASSWORD = 'smtp-pass-8Hy';
const CALL_PASSWORD = 'sip-pass-5Rv';
const SECRETS = [SMS_PASSWORD, SMS_KEY, HOOK_SECRET, HOOK_KEY, SMTP_PASSWORD, CALL_PASSWORD];
const CALL = { from: 'sip:e911@pbx.example', gateway: 'sip:pbx.example', registrar: 'sip:pbx.example', username: 'e911' };

describe('notification secrets and targets', () => {
  let srv: TestServer;
  /** The provider and webhook the account really uses. */
  let provider: HttpSink;
  /** Where an attacker would like the credentials to go. */
  let attacker: HttpSink;

  const fullSettings = () => ({
    smtp: { host: '127.0.0.1', port: 2525, security: 'none', username: 'relay', password: SMTP_PASSWORD, from: 'e911@example.com' },
    sms: {
      url: `${provider.url}/sms`,
      username: 'acct',
      password: SMS_PASSWORD,
      from: '+14085550000',
      header: { name: 'X-Api-Key', value: SMS_KEY },
    },
    webhook: { url: `${provider.url}/hook`, secret: HOOK_SECRET, header: { name: 'X-Hook-Key', value: HOOK_KEY } },
    call: { ...CALL, password: CALL_PASSWORD, realm: 'pbx.example' },
  });
  const testSend = (channel: 'sms' | 'webhook') =>
    srv.api.post<{ ok: boolean; error?: string; providerId?: string }>('/api/account/notifications/test', {
      channel,
      ...(channel === 'sms' ? { to: '+14085550123' } : {}),
    });

  beforeAll(async () => {
    srv = await startTestServer();
    provider = await startHttpSink();
    attacker = await startHttpSink();
  });
  afterAll(async () => {
    await srv?.stop();
    await provider?.close();
    await attacker?.close();
  });
  beforeEach(async () => {
    provider.requests.length = 0;
    attacker.requests.length = 0;
    provider.answer = null;
    expect((await srv.api.call('PUT', '/api/account/notifications', fullSettings())).status).toBe(200);
  });

  it('never returns a password, secret or header value, in any answer that describes the settings', async () => {
    const put = await srv.api.call('PUT', '/api/account/notifications', fullSettings());
    const get = await srv.api.call('GET', '/api/account/notifications');
    const audit = await srv.api.call('GET', '/api/audit?limit=1000');
    const account = await srv.api.call('GET', '/api/account');
    for (const [what, text] of [
      ['PUT', put.text],
      ['GET', get.text],
      ['audit', audit.text],
      ['account', account.text],
    ] as const) {
      for (const secret of SECRETS) expect(text, `${what} shows ${secret}`).not.toContain(secret);
    }
    expect(get.body).toMatchObject({
      smtp: { username: 'relay', passwordSet: true },
      sms: { username: 'acct', passwordSet: true, header: { name: 'X-Api-Key', valueSet: true } },
      webhook: { secretSet: true, header: { name: 'X-Hook-Key', valueSet: true } },
      call: { ...CALL, realm: 'pbx.example', passwordSet: true },
    });
    expect(get.body).not.toHaveProperty('call.password');
  });

  it('keeps the stored secrets when a save leaves them out and the target is the same', async () => {
    const keep = {
      sms: { url: `${provider.url}/sms`, username: 'acct', from: '+14085550001', header: { name: 'X-Api-Key' } },
      webhook: { url: `${provider.url}/hook`, header: { name: 'X-Hook-Key' } },
      call: { ...CALL, repeats: 2 },
    };
    const r = await srv.api.call<{ secretsDropped?: string[] }>('PUT', '/api/account/notifications', keep);
    expect(r.status).toBe(200);
    expect(r.body.secretsDropped).toBeUndefined();
    expect((await srv.app.repo.notificationSettings()).call).toMatchObject({ repeats: 2, username: 'e911', password: CALL_PASSWORD });
    expect(await testSend('sms')).toMatchObject({ ok: true });
    expect(await testSend('webhook')).toMatchObject({ ok: true });
    const sms = provider.requests.find((q) => q.url === '/sms')!;
    expect(sms.headers.authorization).toBe(`Basic ${Buffer.from(`acct:${SMS_PASSWORD}`).toString('base64')}`);
    expect(sms.headers['x-api-key']).toBe(SMS_KEY);
    const hook = provider.requests.find((q) => q.url === '/hook')!;
    expect(hook.headers['x-hook-key']).toBe(HOOK_KEY);
    expect(hook.headers['x-e911-signature']).toMatch(/^sha256=[0-9a-f]{64}$/);
  });

  it('drops the stored secrets when a channel is repointed, so the new target gets none of them', async () => {
    const moved = await srv.api.call<{ secretsDropped?: string[] }>('PUT', '/api/account/notifications', {
      smtp: { host: 'mail.evil.example', port: 2525, security: 'none', username: 'relay', from: 'e911@example.com' },
      sms: { url: `${attacker.url}/sms`, username: 'acct', from: '+14085550000' },
      webhook: { url: `${attacker.url}/hook` },
      call: { ...CALL, registrar: 'sip:evil.example' },
    });
    expect(moved.status).toBe(200);
    expect(moved.body.secretsDropped?.sort()).toEqual(['call.password', 'sms.password', 'smtp.password', 'webhook.secret']);
    const stored = await srv.app.repo.notificationSettings();
    expect(stored.call?.password).toBeUndefined();
    expect(stored.smtp?.password).toBeUndefined();
    expect(stored.sms?.password).toBeUndefined();
    expect(stored.webhook?.secret).toBeUndefined();
    await testSend('sms');
    await testSend('webhook');
    expect(attacker.requests).toHaveLength(2);
    for (const q of attacker.requests) {
      expect(JSON.stringify(q.headers)).not.toMatch(new RegExp(SECRETS.join('|')));
      expect(q.headers.authorization).not.toBe(`Basic ${Buffer.from(`acct:${SMS_PASSWORD}`).toString('base64')}`);
      expect(q.headers['x-e911-signature']).toBeUndefined();
    }
    // A header kept by name while the URL changes must be typed again.
    await srv.api.call('PUT', '/api/account/notifications', fullSettings());
    const header = await srv.api.call<{ issues: { field: string; reason: string }[] }>('PUT', '/api/account/notifications', {
      webhook: { url: `${attacker.url}/hook`, header: { name: 'X-Hook-Key' } },
    });
    expect(header.status).toBe(400);
    expect(header.body.issues).toEqual([
      { field: 'webhook.header.value', reason: 'is required again: the URL changed, so the stored value was not kept' },
    ]);
    // The refused save changed nothing.
    expect((await srv.app.repo.notificationSettings()).webhook?.url).toBe(`${provider.url}/hook`);
  });

  it('follows no redirect: the credentials never reach where it points', async () => {
    for (const status of [301, 302, 303, 307, 308]) {
      provider.answer = { status, headers: { location: `${attacker.url}/collect` } };
      for (const channel of ['sms', 'webhook'] as const) {
        const r = await testSend(channel);
        expect(r.ok, `${status} ${channel}`).toBe(false);
        expect(r.error).toMatch(new RegExp(`HTTP ${status}, a redirect, not followed`));
      }
    }
    expect(attacker.requests).toEqual([]);
    expect(provider.requests).toHaveLength(10);
  });

  it("never repeats the target's answer body in the API", async () => {
    const body = 'INTERNAL-DETAIL <script>alert(1)</script> db=prod password=hunter2';
    for (const status of [400, 403, 500, 503]) {
      provider.answer = { status, headers: { 'content-type': 'text/html' }, body };
      for (const channel of ['sms', 'webhook'] as const) {
        const r = await testSend(channel);
        expect(r).toEqual({ ok: false, error: `${channel === 'sms' ? 'SMS provider' : 'webhook'}: HTTP ${status}` });
      }
    }
    // A success answer's text does not get in either: only an id-shaped "id" is taken.
    provider.answer = { status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: body }) };
    expect(await testSend('sms')).toEqual({ ok: true, providerId: 'http-200' });
  });
});
