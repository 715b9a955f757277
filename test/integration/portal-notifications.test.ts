// The portal's Notifications page in Debian's Chromium: channel settings typed
// in the page are what the API holds (secrets never echoed, a blank password
// keeps the stored one), test sends reach a real SMTP sink and HTTP sink, a
// dead SMTP port shows its failure, a channel can be removed, and the channel
// policy is saved.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPortal, type PortalHarness } from '../helpers/portal.js';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.js';
import { startHttpSink, type HttpSink } from '../helpers/http-sink.js';
import { freePort } from '../helpers/ports.js';
import { requires } from '../helpers/require.js';

const gate = requires('portal-notifications browser tests', ['browser']);

interface Settings {
  smtp: Record<string, unknown> | null;
  sms: Record<string, unknown> | null;
  webhook: Record<string, unknown> | null;
  call: Record<string, unknown> | null;
  policy: string;
}

describe.skipIf(gate.skip)('admin portal: notifications page', () => {
  let h: PortalHarness;
  let smtp: SmtpSink;
  let sink: HttpSink;

  beforeAll(async () => {
    smtp = await startSmtpSink();
    sink = await startHttpSink();
    h = await startPortal();
    await h.srv.api.patch('/api/account', { name: 'Example Corp', contactEmail: 'it@example.com' });
    await h.login();
  });

  afterAll(async () => {
    await smtp?.close();
    await sink?.close();
    await h?.close(); // last: it throws if a page had an uncaught error
  });

  it('saves the SMTP, SMS and webhook settings typed in the page; the API holds them, secrets only as set', async () => {
    const { page } = h;
    await page.getByRole('link', { name: 'Notifications', exact: true }).click();
    await page.getByRole('heading', { level: 1, name: 'Notifications' }).waitFor();

    await page.getByRole('button', { name: 'Set up SMTP' }).click();
    await page.getByLabel('SMTP host').fill('127.0.0.1');
    await page.getByLabel('SMTP port').fill(String(smtp.port));
    await page.getByLabel('Security').selectOption('none');
    await page.getByLabel('From address').fill('e911@example.com');
    await page.getByLabel('Allow invalid certificates').check();

    await page.getByRole('button', { name: 'Set up SMS' }).click();
    await page.getByLabel('SMS provider URL').fill(`${sink.url}/sms`);
    await page.getByLabel('SMS user name').fill('acct');
    await page.getByLabel('SMS password').fill('s3cret-sms');
    await page.getByLabel('SMS header name').fill('X-API-Key');
    await page.getByLabel('SMS header value').fill('k-123');
    // A number that is not E.164: the server refuses it, and the page says so beside the field.
    await page.getByLabel('SMS from number').fill('5550000');

    await page.getByRole('button', { name: 'Set up webhook' }).click();
    await page.getByLabel('Webhook URL').fill(`${sink.url}/hook`);
    await page.getByLabel('Webhook secret').fill('hook-secret');

    await page.getByRole('button', { name: 'Save channels' }).click();
    await page.getByRole('alert').filter({ hasText: 'sms.from' }).waitFor();
    expect(await page.getByLabel('SMS from number').getAttribute('aria-invalid')).toBe('true');
    expect((await h.srv.api.get<Settings>('/api/account/notifications')).sms).toBeNull();

    await page.getByLabel('SMS from number').fill('+14085550000');
    await page.getByRole('button', { name: 'Save channels' }).click();
    await page.getByRole('status').filter({ hasText: 'Notification settings saved.' }).waitFor();

    const raw = await (await page.request.get('/api/account/notifications')).text();
    expect(raw).not.toContain('s3cret-sms');
    expect(raw).not.toContain('hook-secret');
    // Header values (API keys) are write-only too.
    expect(raw).not.toContain('k-123');
    const s = JSON.parse(raw) as Settings;
    expect(s.smtp).toEqual({
      host: '127.0.0.1',
      port: smtp.port,
      security: 'none',
      from: 'e911@example.com',
      allowInvalidCertificates: true,
      passwordSet: false,
    });
    expect(s.sms).toEqual({
      url: `${sink.url}/sms`,
      username: 'acct',
      from: '+14085550000',
      header: { name: 'X-API-Key', valueSet: true },
      passwordSet: true,
    });
    expect(await page.getByLabel('SMS header value').inputValue()).toBe('');
    expect(s.webhook).toEqual({ url: `${sink.url}/hook`, secretSet: true });
    // The password field is blank again and says the password is set.
    expect(await page.getByLabel('SMS password').inputValue()).toBe('');
    await page.getByText('Set. Blank keeps it.').first().waitFor();
  });

  it('saves the security-desk call settings with PBX credentials; the password is write-only and a blank one keeps it', async () => {
    const { page } = h;
    await page.getByRole('button', { name: 'Set up calls' }).click();
    await page.getByLabel('SIP gateway').fill('sip:pbx.example;transport=tcp');
    // Not a SIP URI: the server refuses it beside the field.
    await page.getByLabel('Call from').fill('e911 at pbx');
    await page.getByLabel('Message repeats').fill('3');
    await page.getByLabel('Ring seconds').fill('20');
    await page.getByLabel('Call attempts').fill('2');
    await page.getByLabel('SIP user name').fill('e911');
    await page.getByLabel('SIP password').fill('sip-s3cret');
    await page.getByLabel('SIP registrar').fill('sip:pbx.example');
    await page.getByLabel('SIP realm').fill('pbx.example');
    await page.getByRole('button', { name: 'Save channels' }).click();
    await page.getByRole('alert').filter({ hasText: 'call.from' }).waitFor();
    expect(await page.getByLabel('Call from').getAttribute('aria-invalid')).toBe('true');

    await page.getByLabel('Call from').fill('sip:e911@pbx.example');
    await page.getByRole('button', { name: 'Save channels' }).click();
    await page.getByRole('status').filter({ hasText: 'Notification settings saved.' }).waitFor();
    const raw = await (await page.request.get('/api/account/notifications')).text();
    expect(raw).not.toContain('sip-s3cret');
    expect((JSON.parse(raw) as { call: unknown }).call).toEqual({
      gateway: 'sip:pbx.example;transport=tcp',
      from: 'sip:e911@pbx.example',
      repeats: 3,
      ringSeconds: 20,
      maxAttempts: 2,
      username: 'e911',
      registrar: 'sip:pbx.example',
      realm: 'pbx.example',
      passwordSet: true,
    });
    expect(await page.getByLabel('SIP password').inputValue()).toBe('');

    // Another save with the password blank keeps the stored one.
    await page.getByLabel('Message repeats').fill('5');
    await page.getByRole('button', { name: 'Save channels' }).click();
    await page.getByRole('status').filter({ hasText: 'Notification settings saved.' }).waitFor();
    expect((await h.srv.app.repo.notificationSettings()).call).toMatchObject({ repeats: 5, username: 'e911', password: 'sip-s3cret' });
  });

  it('a test email reaches the SMTP sink and the page shows the success', async () => {
    const { page } = h;
    const form = page.getByRole('form', { name: 'Test Email' });
    await form.getByLabel('Test email to').fill('ops@example.com');
    await form.getByRole('button', { name: 'Send test email' }).click();
    await form.getByRole('status').filter({ hasText: 'Sent. Provider id' }).waitFor();
    const mail = smtp.mails.find((m) => m.to.includes('ops@example.com'));
    expect(mail?.subject).toContain('Test Call Notification');
    expect(mail?.from).toBe('e911@example.com');
  });

  it('a test SMS and webhook go out with the stored secrets; a blank password on a later save keeps the SMS one', async () => {
    const { page } = h;
    // Change something else on the SMS provider and save with the password left blank.
    await page.getByLabel('SMS header value').fill('k-456');
    await page.getByRole('button', { name: 'Save channels' }).click();
    await page.getByRole('status').filter({ hasText: 'Notification settings saved.' }).waitFor();

    const sms = page.getByRole('form', { name: 'Test SMS' });
    await sms.getByLabel('Test SMS to').fill('+14085550123');
    await sms.getByRole('button', { name: 'Send test SMS' }).click();
    await sms.getByRole('status').filter({ hasText: 'Sent. Provider id' }).waitFor();
    const text = sink.requests.find((r) => r.url === '/sms')!;
    expect(text.headers.authorization).toBe(`Basic ${Buffer.from('acct:s3cret-sms').toString('base64')}`);
    expect(text.headers['x-api-key']).toBe('k-456');
    expect(text.json).toMatchObject({ from: '+14085550000', to: '+14085550123' });

    const hook = page.getByRole('form', { name: 'Test Webhook' });
    await hook.getByRole('button', { name: 'Send test webhook' }).click();
    await hook.getByRole('status').filter({ hasText: 'Sent' }).waitFor();
    expect(sink.requests.find((r) => r.url === '/hook')?.headers['x-e911-signature']).toMatch(/^sha256=[0-9a-f]{64}$/);
  });

  it('a test email to a dead SMTP port shows the failure', async () => {
    const { page } = h;
    const dead = await freePort();
    await page.getByLabel('SMTP port').fill(String(dead));
    await page.getByRole('button', { name: 'Save channels' }).click();
    await page.getByRole('status').filter({ hasText: 'Notification settings saved.' }).waitFor();
    expect((await h.srv.api.get<Settings>('/api/account/notifications')).smtp?.port).toBe(dead);

    const form = page.getByRole('form', { name: 'Test Email' });
    await form.getByRole('button', { name: 'Send test email' }).click();
    const alert = form.getByRole('alert');
    await alert.waitFor({ timeout: 15_000 });
    expect(await alert.textContent()).toMatch(/Not sent: SMTP: .*(ECONNREFUSED|refused)/);
    await h.shot('notifications');
  });

  it('removes a channel and saves the channel policy', async () => {
    const { page } = h;
    await page.getByRole('button', { name: 'Remove webhook' }).click();
    await page.getByRole('button', { name: 'Set up webhook' }).waitFor();
    await page.getByRole('button', { name: 'Save channels' }).click();
    await page.getByRole('status').filter({ hasText: 'Notification settings saved.' }).waitFor();
    const s = await h.srv.api.get<Settings>('/api/account/notifications');
    expect(s.webhook).toBeNull();
    expect(s.sms).not.toBeNull();

    expect(s.policy).toBe('all');
    expect(await page.getByLabel('All channels').isChecked()).toBe(true);
    await page.getByLabel('App, then email and SMS').check();
    await page.getByRole('button', { name: 'Save policy' }).click();
    await page.getByRole('status').filter({ hasText: 'Policy saved: App, then email and SMS.' }).waitFor();
    expect((await h.srv.api.get<{ notificationPolicy: string }>('/api/account')).notificationPolicy).toBe('app-then-email-sms');

    // 933 test calls may have their own policy; "Same as 911" clears it.
    const tests = page.getByLabel('933 test calls');
    expect(await tests.inputValue()).toBe('');
    await tests.selectOption('app-only');
    await page.getByRole('button', { name: 'Save policy' }).click();
    await expect
      .poll(async () => (await h.srv.api.get<{ testNotificationPolicy: string | null }>('/api/account')).testNotificationPolicy)
      .toBe('app-only');
    await tests.selectOption('');
    await page.getByRole('button', { name: 'Save policy' }).click();
    await expect
      .poll(async () => (await h.srv.api.get<{ testNotificationPolicy: string | null }>('/api/account')).testNotificationPolicy)
      .toBeNull();

    // The audit log page shows what this test did, newest first.
    await page.getByRole('link', { name: 'Audit log', exact: true }).click();
    await page.getByLabel('Entity').selectOption('account');
    const rows = page.locator('table.audit tbody tr');
    await expect.poll(() => rows.first().getAttribute('data-action')).toBe('account.update');
    // The unfiltered list can still be on screen for a moment (its newest row is the same): wait for the filter.
    const actions = () => rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-action')));
    const onlyAccount = (list: (string | null)[]) => list.every((a) => a?.startsWith('account.') || a?.startsWith('notifications.'));
    await expect.poll(async () => onlyAccount(await actions())).toBe(true);
    expect(await actions()).toContain('notifications.test');
    expect(await actions()).toContain('notifications.update');
  });
});
