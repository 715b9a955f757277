// Company defaults, a user's own address, the emergency-services notice per phone and the
// CSV apply choice, in Debian's Chromium against a real server, with a real in-process agent
// as the phone and a real SMTP sink:
// - a user with a phone and no address or callback of their own keeps E911 off until the
//   company default address and callback are set on the Account page; the phone then holds
//   the company's address, number and name, and a call from it mails the company contacts;
// - the user's own (home) address, refused beside its field by the location rules, reaches
//   the phone once fixed;
// - the phone's notice shown, then acknowledged on the phone: live on the Phones page, its
//   "not acknowledged" filter, the user's page and the CSV export;
// - a CSV with a wrong row: "apply nothing" applies nothing and says so; "apply the valid
//   rows" applies them and says one was skipped.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startPhone, startPortal, type PortalHarness } from '../helpers/portal.js';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.js';
import { requires } from '../helpers/require.js';
import { waitFor } from '../helpers/agent.js';
import type { Agent } from '../../agent/root.js';
import type { EmergencyNotice } from '../../agent/handset/notice.js';
import type { SignedAddress } from '../../provisioning/protocol/messages.js';
import { csvRecord, parseCsv } from '../../provisioning/server/csv.js';

const gate = requires('portal-defaults browser tests', ['browser']);

interface Phone {
  deviceId: string;
  issuedVersion: number;
  appliedVersion: number | null;
  appliedHash: string | null;
  addressSource: string | null;
  notice: { state: string; addressVersion: number | null; acknowledgedAt: string | null; via: string | null; userId: number | null };
}

const COMPANY_CALLBACK = '+14085550150';

describe.skipIf(gate.skip)('admin portal: company defaults, own address, notice acknowledgement, CSV apply choice', () => {
  let h: PortalHarness;
  let smtp: SmtpSink;
  let agent: Agent | null = null;
  let dir: string;
  let alice: number;

  const phone = async () => h.srv.api.get<Phone>('/api/phones/phone-1');
  /** The address the server issued to phone-1 last, as signed. */
  const issued = async () => JSON.parse((await h.srv.app.repo.issuedAddress('phone-1'))!.signed!) as SignedAddress;
  /** Until the phone holds the version the server issued last (the phone's own report). */
  const inSync = async (above = 0) => {
    await expect
      .poll(
        async () => {
          const p = await phone();
          return p.issuedVersion > above && p.appliedVersion === p.issuedVersion;
        },
        { timeout: 15_000 },
      )
      .toBe(true);
    const p = await phone();
    // What the agent itself holds is the document the server issued.
    expect((agent!.status().address as { hash: string }).hash).toBe(p.appliedHash);
    return p;
  };

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'e911-portal-defaults-'));
    smtp = await startSmtpSink();
    h = await startPortal();
    const { api } = h.srv;
    await api.patch('/api/account', { name: 'Example Corp', contactEmail: 'it@example.com' });
    await api.put('/api/account/notifications', {
      smtp: { host: '127.0.0.1', port: smtp.port, security: 'none', from: 'e911@example.com' },
    });
    // No location, no own address, no callback, no emails: only company defaults can complete her.
    alice = (await api.post<{ id: number }>('/api/users', { username: 'alice', displayName: 'Alice Smith', deviceIds: ['phone-1'] })).id;
    const creds = await api.post<{ username: string; password: string }>('/api/phones/phone-1/credentials');
    agent = await startPhone(h.srv, dir, creds);
    await h.login();
    // A server, Chromium and an agent: on the shared 2-core machine under load this takes 20 s or more.
  }, 90_000);

  afterAll(async () => {
    await agent?.stop();
    await smtp?.close();
    rmSync(dir, { recursive: true, force: true });
    await h?.close();
  });

  it('E911 waits for an address and callback at either level; the company defaults complete it and reach the phone', async () => {
    const { page, srv } = h;
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Account' }).click();
    await page.getByRole('heading', { level: 1, name: 'Account' }).waitFor();
    const missing = page.locator('ul.missing');
    await expect.poll(() => missing.textContent()).toContain('or a company default address: alice');
    expect(await missing.textContent()).toContain('or a company callback number: alice');
    expect(await page.getByRole('button', { name: 'Enable E911' }).isDisabled()).toBe(true);

    const defaults = page.locator('form[aria-labelledby="defaults-heading"]');
    await defaults.getByLabel('A company default address').check();
    await defaults.getByRole('textbox', { name: 'House number', exact: true }).fill('500');
    await defaults.getByRole('textbox', { name: 'Street', exact: true }).fill('Market St');
    await defaults.getByLabel('City').fill('San Francisco');
    await defaults.getByLabel('State').fill('CA');
    await defaults.getByLabel('ZIP code').fill('9410');
    await defaults.getByLabel('Time zone').fill('America/Los_Angeles');
    await defaults.getByLabel('Company callback number').fill(COMPANY_CALLBACK);
    await defaults.getByLabel('Callback display name').fill('Example Corp Security');
    await defaults.getByRole('button', { name: 'Add email' }).click();
    await defaults.getByLabel('Email 1', { exact: true }).fill('desk@example.com');
    await defaults.getByRole('button', { name: 'Save company defaults' }).click();
    // The location rules refuse the ZIP beside its field; nothing is stored.
    const zip = defaults.getByLabel('ZIP code');
    await expect.poll(() => zip.getAttribute('aria-invalid')).toBe('true');
    expect((await srv.api.get<{ defaultAddress: unknown }>('/api/account')).defaultAddress).toBeNull();
    await zip.fill('94105');
    await defaults.getByRole('button', { name: 'Save company defaults' }).click();
    await page.getByRole('status').filter({ hasText: 'Company defaults saved.' }).waitFor();
    await expect.poll(() => page.getByRole('button', { name: 'Enable E911' }).isDisabled()).toBe(false);
    await h.shot('account-defaults');
    await page.getByRole('button', { name: 'Enable E911' }).click();
    await page.getByTestId('e911-state').filter({ hasText: 'E911 is enabled' }).waitFor();

    const p = await inSync();
    expect(p.addressSource).toBe('company');
    const doc = (await issued()).doc;
    expect(doc.civic).toMatchObject({
      country: 'US',
      A1: 'CA',
      A3: 'San Francisco',
      RD: 'Market St',
      HNO: '500',
      PC: '94105',
      NAM: 'Example Corp',
    });
    expect(doc).toMatchObject({ callback: COMPANY_CALLBACK, displayName: 'Example Corp Security' });
    expect(doc.locationCode).toBeUndefined();

    // A call from the phone: alice has no emails and no location, so the company contacts are told,
    // and the notice states the company callback and the company address's time zone.
    const eventId = agent!.emit('test-call', { numberDialed: '933', placed: true });
    await waitFor(
      () => smtp.mails.some((m) => m.to.includes('desk@example.com')),
      15_000,
      () => JSON.stringify(smtp.mails.map((m) => m.to)),
    );
    const ev = await srv.api.get<{ facts: { callback: string; timeZone: string; locationName: string } }>(`/api/events/${eventId}`);
    expect(ev.facts).toMatchObject({
      callback: COMPANY_CALLBACK,
      timeZone: 'America/Los_Angeles',
      locationName: 'the company default address',
    });
  });

  it("a user's own address: refused beside its field by the location rules, then pushed to their phone", async () => {
    const { page, srv } = h;
    const before = (await phone()).issuedVersion;
    await page.goto(`/#/users/${alice}`);
    await page.getByRole('heading', { level: 1, name: 'User alice' }).waitFor();
    await page.getByLabel('Location', { exact: true }).selectOption('own');
    const own = page.locator('fieldset', { has: page.locator('legend', { hasText: 'Own address' }) });
    await own.getByRole('textbox', { name: 'House number', exact: true }).fill('12');
    await own.getByRole('textbox', { name: 'Street', exact: true }).fill('Elm St');
    await own.getByLabel('Street 2').fill('Apt 3');
    await own.getByLabel('City').fill('Austin');
    await own.getByLabel('State').fill('ZZ');
    await own.getByLabel('ZIP code').fill('78701');
    await own.getByLabel('Time zone').fill('America/Chicago');
    await page.getByRole('button', { name: 'Save user' }).click();
    const state = own.getByLabel('State');
    await expect.poll(() => state.getAttribute('aria-invalid')).toBe('true');
    expect((await srv.api.get<{ ownAddress: unknown }>(`/api/users/${alice}`)).ownAddress).toBeNull();
    await state.fill('TX');
    await page.getByRole('button', { name: 'Save user' }).click();
    await page.getByRole('status').filter({ hasText: 'Saved' }).waitFor();
    await h.shot('user-own-address');

    const p = await inSync(before);
    expect(p.addressSource).toBe('own');
    const doc = (await issued()).doc;
    expect(doc.civic).toEqual({ country: 'US', A1: 'TX', A3: 'Austin', RD: 'Elm St', HNO: '12', LOC: 'Apt 3', PC: '78701' });
    // Still the company callback: she has none of her own.
    expect(doc.callback).toBe(COMPANY_CALLBACK);
  });

  it('the notice: shown, then acknowledged on the phone, live on the Phones page, its filter, the user page and the CSV', async () => {
    const { page, srv } = h;
    const version = (await phone()).appliedVersion!;
    expect((await phone()).notice).toMatchObject({ state: 'shown', addressVersion: version, acknowledgedAt: null });
    const unacked = async () => (await srv.api.get<Phone[]>('/api/phones?notice=unacknowledged')).map((p) => p.deviceId);
    expect(await unacked()).toEqual(['phone-1']);

    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Phones' }).click();
    await page.getByRole('heading', { level: 1, name: 'Phones' }).waitFor();
    await page.getByLabel('Only phones whose emergency-services notice is not acknowledged').check();
    const row = page.locator('tr[data-device-id="phone-1"]');
    await expect.poll(() => row.getByTestId('notice').textContent()).toContain(`Shown, not acknowledged, address v${version}`);

    // The user presses OK on the phone (here through the phone's own notice, as its keypad does).
    const notice = (agent as unknown as { core: { front: { notice: EmergencyNotice } } }).core.front.notice;
    notice.acknowledge('keypad');
    // Live: the filtered list empties without a reload.
    await expect.poll(() => row.count(), { timeout: 15_000 }).toBe(0);
    expect(await unacked()).toEqual([]);
    const acked = (await phone()).notice;
    expect(acked).toMatchObject({ state: 'acknowledged', addressVersion: version, via: 'keypad', userId: alice });
    await page.getByLabel('Only phones whose emergency-services notice is not acknowledged').uncheck();
    await expect.poll(() => row.getByTestId('notice').textContent()).toContain(`Acknowledged, address v${version}`);
    await h.shot('phones-notice');

    await page.goto(`/#/users/${alice}`);
    const onUser = page.getByRole('table', { name: "Emergency-services notice on this user's phones" });
    await expect.poll(() => onUser.textContent()).toContain(`Acknowledged, address v${version}`);

    const csv = parseCsv((await srv.api.call<string>('GET', '/api/csv/users')).text);
    const col = csv[0]!.indexOf('E911Notice');
    expect(csv[1]![col]).toBe(`phone-1: acknowledged address v${version} at ${acked.acknowledgedAt} (keypad)`);
  });

  it('CSV with a wrong row: "apply nothing" applies nothing and says so; "apply the valid rows" applies them and says one was skipped', async () => {
    const { page, srv } = h;
    const records = parseCsv((await srv.api.call<string>('GET', '/api/csv/users')).text);
    const header = records[0]!;
    const row = (userId: string, email: string) => header.map((c) => (c === 'UserId' ? userId : c === 'Email1' ? email : ''));
    const text = [header, row(String(alice), 'alice.new@example.com'), row('999', 'ghost@example.com')].map((r) => csvRecord(r)).join('');

    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'CSV' }).click();
    await page.getByRole('heading', { level: 1, name: 'CSV' }).waitFor();
    await page.getByLabel('Or choose a CSV file').setInputFiles({ name: 'two.csv', mimeType: 'text/csv', buffer: Buffer.from(text) });
    await page.locator('.csv-report').waitFor();
    await page.getByLabel('Apply nothing while any row is wrong').check();
    await page.getByRole('button', { name: 'Update', exact: true }).click();
    await page.getByRole('alert').filter({ hasText: 'Nothing was applied: 1 row has an error' }).waitFor();
    expect((await srv.api.get<{ emails: string[] }>(`/api/users/${alice}`)).emails).toEqual([]);
    await h.shot('csv-nothing-applied');

    await page.getByLabel('Apply the valid rows, skip the rows with errors').check();
    await page.getByRole('button', { name: 'Update', exact: true }).click();
    await page.getByTestId('csv-outcome').filter({ hasText: 'Applied the valid rows; 1 row with errors was skipped.' }).waitFor();
    expect((await srv.api.get<{ emails: string[] }>(`/api/users/${alice}`)).emails).toEqual(['alice.new@example.com']);
  });

  it('a bulk list to all users can also become the company contacts (only with all users)', async () => {
    const { srv } = h;
    await srv.api.post('/api/bulk/emails', { emails: ['all@example.com'], target: { all: true }, alsoCompanyContacts: true });
    expect((await srv.api.get<{ emergencyContacts: string[] }>('/api/account')).emergencyContacts).toEqual(['all@example.com']);
    const refused = await srv.api.call('POST', '/api/bulk/emails', {
      emails: ['x@example.com'],
      target: { userIds: [alice] },
      alsoCompanyContacts: true,
    });
    expect(refused.status).toBe(400);
  });
});
