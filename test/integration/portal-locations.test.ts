// The portal's locations and account pages in Debian's Chromium against a real
// server: the address checked with the phones' rules before saving, a rejected
// address not stored, then fixed and saved; IP groups, admins; E911 enabled
// only once the mandatory information is complete.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPortal, type PortalHarness } from '../helpers/portal.js';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.js';
import { requires } from '../helpers/require.js';

const gate = requires('portal-locations browser tests', ['browser']);

interface Loc {
  id: number;
  code: string;
  name: string;
  address: Record<string, string>;
  building?: string;
  floor?: string;
  room?: string;
  ipGroups: { name: string; cidrs: string[] }[];
  adminEmails: string[];
  smsNumbers: string[];
  civic: Record<string, string>;
}

describe.skipIf(gate.skip)('admin portal: locations and account', () => {
  let h: PortalHarness;
  let smtp: SmtpSink;

  beforeAll(async () => {
    smtp = await startSmtpSink();
    h = await startPortal();
    await h.login();
  });
  afterAll(async () => {
    await smtp?.close();
    await h?.close(); // last: it throws if a page had an uncaught error
  });

  it('a bad address is refused beside its field before saving and nothing is stored; fixed, it saves exactly what was typed', async () => {
    const { page } = h;
    await page.getByRole('link', { name: 'Locations' }).click();
    await page.getByRole('link', { name: 'New location' }).click();
    await page.getByRole('heading', { level: 1, name: 'New location' }).waitFor();

    await page.getByLabel('Location code').fill('SJC-B');
    await page.getByRole('textbox', { name: 'Name', exact: true }).fill('Example Corp');
    await page.getByLabel('Time zone').fill('America/Los_Angeles');
    await page.getByLabel('Country').selectOption('US');
    await page.getByRole('textbox', { name: 'House number', exact: true }).fill('200');
    await page.getByRole('textbox', { name: 'Street', exact: true }).fill('Market St');
    await page.getByLabel('City').fill('San Jose');
    await page.getByLabel('State').fill('CA');
    // A Canadian-looking postal code on a US address: refused by the phones' rules.
    await page.getByLabel('ZIP code').fill('M5H 3T4');
    await page.getByLabel('ZIP code').blur();
    const zip = page.getByLabel('ZIP code');
    await expect.poll(() => zip.getAttribute('aria-invalid')).toBe('true');
    // The ZIP field's own reason, not whichever invalid field comes first on the page. Polled: on a
    // loaded machine a check of the form as it was before the ZIP was typed ("is required") can be
    // on screen first, until the check of the typed ZIP answers.
    const reason = () => page.locator('.field.invalid', { has: zip }).locator('.error').textContent();
    await expect.poll(reason).toContain('must be a ZIP (12345) or ZIP+4 (12345-6789)');
    await h.shot('location-form-rejected');

    await page.getByRole('button', { name: 'Create location' }).click();
    await page.getByRole('alert').filter({ hasText: 'needs fixing' }).waitFor();
    expect(await h.srv.api.get<Loc[]>('/api/locations')).toEqual([]);

    await zip.fill('95113');
    await page.getByLabel('ZIP plus-4').fill('1001');
    await page.getByLabel('Building').fill('B');
    await page.getByLabel('Floor').fill('3');
    await page.getByLabel('Room').fill('301');
    await expect.poll(() => zip.getAttribute('aria-invalid')).toBeNull();

    await page.getByRole('button', { name: 'Add IP group' }).click();
    await page.getByLabel('Group name').fill('voice');
    await page.getByLabel('Group 1 CIDR 1', { exact: true }).fill('10.20.0.0/16');
    await page.getByRole('button', { name: 'Add Group 1 CIDR' }).click();
    // Host bits set: the check names the network it probably meant.
    await page.getByLabel('Group 1 CIDR 2', { exact: true }).fill('2001:db8:20::1/48');
    await page.getByLabel('Group 1 CIDR 2', { exact: true }).blur();
    await expect.poll(() => page.getByLabel('Group 1 CIDR 2', { exact: true }).getAttribute('aria-invalid')).toBe('true');
    expect(await page.locator('.ip-group .error').first().textContent()).toContain('2001:db8:20::/48');
    await page.getByLabel('Group 1 CIDR 2', { exact: true }).fill('2001:db8:20::/48');

    await page.getByRole('button', { name: 'Add email' }).click();
    await page.getByLabel('Email 1', { exact: true }).fill('security@example.com');
    await page.getByRole('button', { name: 'Add SMS number' }).click();
    await page.getByLabel('SMS number 1', { exact: true }).fill('+14085550199');
    await page.getByRole('button', { name: 'Create location' }).click();
    await page.getByRole('status').filter({ hasText: 'Location SJC-B created' }).waitFor();

    const [loc] = await h.srv.api.get<Loc[]>('/api/locations');
    expect(loc).toMatchObject({
      code: 'SJC-B',
      name: 'Example Corp',
      address: {
        country: 'US',
        houseNumber: '200',
        street: 'Market St',
        city: 'San Jose',
        state: 'CA',
        postalCode: '95113',
        plus4: '1001',
      },
      building: 'B',
      floor: '3',
      room: '301',
      ipGroups: [{ name: 'voice', cidrs: ['10.20.0.0/16', '2001:db8:20::/48'] }],
      adminEmails: ['security@example.com'],
      smsNumbers: ['+14085550199'],
    });
    expect(loc!.civic).toMatchObject({
      country: 'US',
      A1: 'CA',
      A3: 'San Jose',
      RD: 'Market St',
      HNO: '200',
      PC: '95113-1001',
      BLD: 'B',
      FLR: '3',
      ROOM: '301',
    });
    await h.shot('location-form');
  });

  it('edits a location: an admin removed, an IP group dropped, the notice language set, the list shows it', async () => {
    const { page } = h;
    await page.getByRole('link', { name: 'All locations' }).click();
    await page.getByRole('link', { name: 'SJC-B' }).click();
    await page.getByRole('heading', { level: 1, name: 'Location SJC-B' }).waitFor();
    await page.getByRole('button', { name: 'Remove email 1' }).click();
    await page.getByRole('button', { name: 'Remove IP group 1' }).click();
    await page.getByLabel('Room').fill('305');
    expect(await page.getByLabel('Notice language').inputValue()).toBe('en');
    await page.getByLabel('Notice language').selectOption('fr');
    await page.getByRole('button', { name: 'Save location' }).click();
    await page.getByRole('status').filter({ hasText: 'Location saved' }).waitFor();
    const [loc] = await h.srv.api.get<Loc[]>('/api/locations');
    expect(loc).toMatchObject({ room: '305', ipGroups: [], adminEmails: [], language: 'fr' });
    await page.getByRole('link', { name: 'All locations' }).click();
    const row = page.locator('tr[data-location-code="SJC-B"]');
    await expect.poll(() => row.textContent()).toContain('Room 305');
    await h.shot('locations');
  });

  it('the account page refuses to enable E911 while information is missing, then enables it once complete', async () => {
    const { page, srv } = h;
    await page.getByRole('link', { name: 'Account' }).click();
    await page.getByRole('heading', { level: 1, name: 'Account' }).waitFor();
    const enable = page.getByRole('button', { name: 'Enable E911' });
    await enable.waitFor();
    expect(await enable.isDisabled()).toBe(true);
    const missingList = page.locator('ul.missing');
    expect(await missingList.textContent()).toContain('the account name');
    expect(await missingList.textContent()).toContain('SMTP server or SMS provider');

    await page.getByLabel('Account name').fill('Example Corp');
    await page.getByLabel('Contact email').fill('it@example.com');
    await page.getByRole('button', { name: 'Save details' }).click();
    await page.getByRole('status').filter({ hasText: 'Account details saved' }).waitFor();
    await expect.poll(() => missingList.textContent()).not.toContain('the account name');
    expect(await enable.isDisabled()).toBe(true);

    // Completed from elsewhere (another admin, the API): the page follows the change live.
    await srv.api.put('/api/account/notifications', {
      smtp: { host: '127.0.0.1', port: smtp.port, security: 'none', from: 'e911@example.com' },
    });
    await expect.poll(() => enable.isDisabled(), { timeout: 10_000 }).toBe(false);
    await h.shot('account');
    await enable.click();
    await page.getByTestId('e911-state').filter({ hasText: 'E911 is enabled' }).waitFor();
    expect(await srv.api.get<{ e911Enabled: boolean; name: string; contactEmail: string }>('/api/account')).toMatchObject({
      e911Enabled: true,
      name: 'Example Corp',
      contactEmail: 'it@example.com',
    });
  });

  it('the recommendation override is saved; disabling E911 asks first', async () => {
    const { page, srv } = h;
    const box = page.getByLabel('Recommend locations to every user');
    expect(await box.isChecked()).toBe(false);
    await box.check();
    await expect.poll(async () => (await srv.api.get<{ recommendations: boolean }>('/api/account')).recommendations).toBe(true);
    await page.getByRole('button', { name: 'Disable E911…' }).click();
    await page.getByRole('button', { name: 'Keep it enabled' }).click();
    expect((await srv.api.get<{ e911Enabled: boolean }>('/api/account')).e911Enabled).toBe(true);
    await page.getByRole('button', { name: 'Disable E911…' }).click();
    await page.getByRole('button', { name: 'Disable E911', exact: true }).click();
    await page.getByTestId('e911-state').filter({ hasText: 'not enabled' }).waitFor();
    expect((await srv.api.get<{ e911Enabled: boolean }>('/api/account')).e911Enabled).toBe(false);
  });
});
