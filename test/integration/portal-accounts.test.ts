// The portal's account picker in Debian's Chromium against a real server: a provider's
// session picks the customer account it shows (every page and the live stream then belong
// to it); an account's own admin sees its account's name and no picker.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPortal, type PortalHarness } from '../helpers/portal.js';
import { apiClient, HQ } from '../helpers/server-app.js';
import { requires } from '../helpers/require.js';

const gate = requires('portal-accounts browser tests', ['browser']);

describe.skipIf(gate.skip)('admin portal: customer accounts', () => {
  let h: PortalHarness;
  let acmeToken: string;

  beforeAll(async () => {
    h = await startPortal();
    const { api } = h.srv;
    await api.patch('/api/account', { name: 'Provider Inc' });
    await api.post('/api/accounts', { id: 'acme', name: 'Acme Corp' });
    acmeToken = (await api.post<{ token: string }>('/api/accounts/acme/tokens', { name: 'acme admin' })).token;
    await apiClient(h.srv.app.httpUrl, acmeToken).post('/api/locations', { ...HQ, code: 'ACME-HQ', name: 'Acme Headquarters' });
    await h.login();
  });
  afterAll(async () => {
    await h?.close(); // last: it throws if a page had an uncaught error
  });

  it("a provider picks the account the portal shows; the other account's data is not on its pages", async () => {
    const { page } = h;
    const picker = page.getByRole('combobox', { name: 'Account' });
    await expect.poll(() => picker.inputValue()).toBe('default');
    expect((await picker.locator('option').allTextContents()).sort()).toEqual(['Acme Corp', 'Provider Inc']);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Locations' }).click();
    await page.getByRole('heading', { level: 1, name: 'Locations' }).waitFor();
    expect(await page.getByText('ACME-HQ').count()).toBe(0);

    // Picking reloads the portal in the chosen account.
    await Promise.all([page.waitForEvent('load'), picker.selectOption('acme')]);
    await expect.poll(() => page.getByRole('combobox', { name: 'Account' }).inputValue()).toBe('acme');
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Locations' }).click();
    await page.getByText('ACME-HQ').first().waitFor();
    await h.shot('accounts-provider-picked-acme');

    // And back.
    await Promise.all([page.waitForEvent('load'), page.getByRole('combobox', { name: 'Account' }).selectOption('default')]);
    await expect.poll(() => page.getByRole('combobox', { name: 'Account' }).inputValue()).toBe('default');
  });

  it("an account's own admin sees its account's name and no picker", async () => {
    const context = await h.browser.newContext({ baseURL: h.srv.app.httpUrl });
    try {
      const page = await context.newPage();
      await page.goto('/');
      await page.getByLabel('API token').fill(acmeToken);
      await page.getByRole('button', { name: 'Log in' }).click();
      await page.getByRole('navigation', { name: 'Main' }).waitFor();
      await page.locator('header .account', { hasText: 'Acme Corp' }).waitFor();
      expect(await page.getByRole('combobox', { name: 'Account' }).count()).toBe(0);
    } finally {
      await context.close();
    }
  });
});
