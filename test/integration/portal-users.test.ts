// The portal's users pages in Debian's Chromium against a real server: the
// list filtered by location, a user's E911 tab (location, callback, display
// name, language, mobile number, notification emails added with + up to 10 and removed with
// −), errors shown beside their fields, tabs by keyboard, create and delete.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPortal, type PortalHarness } from '../helpers/portal.js';
import { HQ, BRANCH } from '../helpers/server-app.js';
import { requires } from '../helpers/require.js';

const gate = requires('portal-users browser tests', ['browser']);

interface U {
  id: number;
  username: string;
  displayName: string;
  locationId: number | null;
  callback: string | null;
  language: string;
  mobile: string | null;
  emails: string[];
  deviceIds: string[];
  extension: string | null;
}

describe.skipIf(gate.skip)('admin portal: users', () => {
  let h: PortalHarness;
  let hq: number;
  let branch: number;
  let alice: number;

  beforeAll(async () => {
    h = await startPortal();
    const { api } = h.srv;
    hq = (await api.post<{ id: number }>('/api/locations', HQ)).id;
    branch = (await api.post<{ id: number }>('/api/locations', BRANCH)).id;
    alice = (
      await api.post<{ id: number }>('/api/users', {
        username: 'alice',
        displayName: 'Alice Smith',
        extension: '2101',
        locationId: hq,
        callback: '+14085550100',
        emails: ['alice@example.com'],
        deviceIds: ['phone-1'],
      })
    ).id;
    await api.post('/api/users', {
      username: 'bob',
      displayName: 'Bob Jones',
      locationId: branch,
      callback: '+14165550111',
      deviceIds: ['phone-2'],
    });
    await h.login();
  });
  afterAll(async () => {
    await h?.close();
  });

  it('lists users, by location and by text', async () => {
    const { page } = h;
    await page.getByRole('link', { name: 'Users' }).click();
    await page.getByRole('heading', { level: 1, name: 'Users' }).waitFor();
    await page.locator('tr[data-username="bob"]').waitFor();
    expect(await page.locator('tbody tr').count()).toBe(2);
    await page.getByLabel('Location', { exact: true }).selectOption(String(branch));
    await expect.poll(() => page.locator('tbody tr').count()).toBe(1);
    expect(await page.locator('tbody tr').textContent()).toContain('bob');
    await page.getByLabel('Location', { exact: true }).selectOption('');
    await page.getByLabel('Find').fill('2101');
    await expect.poll(() => page.locator('tbody tr').count()).toBe(1);
    expect(await page.locator('tbody tr').textContent()).toContain('alice');
    await page.getByLabel('Find').fill('');
    await h.shot('users');
  });

  it('the E911 tab: + adds emails up to 10, − removes one, a bad callback is refused beside its field, the fix saves', async () => {
    const { page, srv } = h;
    await page.getByRole('link', { name: 'alice' }).click();
    await page.getByRole('heading', { level: 1, name: 'User alice' }).waitFor();
    expect(await page.getByRole('tab', { name: 'E911' }).getAttribute('aria-selected')).toBe('true');

    const add = page.getByRole('button', { name: 'Add email' });
    for (let i = 2; i <= 10; i++) {
      await add.click();
      await page.getByLabel(`Email ${i}`, { exact: true }).fill(`oncall${i}@example.com`);
    }
    // Ten is the most: + stops there.
    expect(await add.isDisabled()).toBe(true);
    await page.getByRole('button', { name: 'Remove email 3 (oncall3@example.com)' }).click();
    expect(await add.isDisabled()).toBe(false);

    await page.getByLabel('Callback number').fill('+1408555');
    await page.getByLabel('Display name').fill('Alice M Smith');
    await page.getByLabel('Preferred language').selectOption('es-US');
    await page.getByLabel('Mobile number').fill('+14085550177');
    await page.getByLabel('Location', { exact: true }).selectOption(String(branch));
    await page.getByRole('button', { name: 'Save user' }).click();
    const callback = page.getByLabel('Callback number');
    await expect.poll(() => callback.getAttribute('aria-invalid')).toBe('true');
    expect(await page.getByRole('alert').textContent()).toContain('callback');
    // Nothing of the refused save was stored.
    expect(await srv.api.get<U>(`/api/users/${alice}`)).toMatchObject({
      callback: '+14085550100',
      emails: ['alice@example.com'],
      language: 'en',
      mobile: null,
    });
    await h.shot('user-e911-rejected');

    await callback.fill('+14085550123');
    await page.getByRole('button', { name: 'Save user' }).click();
    await page.getByRole('status').filter({ hasText: 'Saved' }).waitFor();
    const u = await srv.api.get<U>(`/api/users/${alice}`);
    expect(u).toMatchObject({
      callback: '+14085550123',
      displayName: 'Alice M Smith',
      language: 'es-US',
      mobile: '+14085550177',
      locationId: branch,
    });
    expect(u.emails).toEqual(['alice@example.com', 'oncall2@example.com', ...[4, 5, 6, 7, 8, 9, 10].map((i) => `oncall${i}@example.com`)]);
    await h.shot('user-e911');

    // A mobile that is not a phone number is refused beside its field; cleared, it is removed.
    const mobile = page.getByLabel('Mobile number');
    await mobile.fill('555-0177');
    await page.getByRole('button', { name: 'Save user' }).click();
    await expect.poll(() => mobile.getAttribute('aria-invalid')).toBe('true');
    expect((await srv.api.get<U>(`/api/users/${alice}`)).mobile).toBe('+14085550177');
    await mobile.fill('');
    await page.getByRole('button', { name: 'Save user' }).click();
    await expect.poll(async () => (await srv.api.get<U>(`/api/users/${alice}`)).mobile).toBeNull();
  });

  it('tabs move with the arrow keys; the General tab edits phones and extension', async () => {
    const { page, srv } = h;
    await page.getByRole('tab', { name: 'E911' }).focus();
    await page.keyboard.press('ArrowRight');
    const general = page.getByRole('tab', { name: 'General' });
    expect(await general.getAttribute('aria-selected')).toBe('true');
    expect(await general.evaluate((el) => el === el.ownerDocument.activeElement)).toBe(true);
    await page.getByRole('tabpanel', { name: 'General' }).waitFor();
    await page.getByLabel('Extension').fill('2199');
    await page.getByRole('button', { name: 'Add phone' }).click();
    await page.getByLabel('Phone 2', { exact: true }).fill('phone-1b');
    await page.getByRole('button', { name: 'Save user' }).click();
    await page.getByRole('status').filter({ hasText: 'Saved' }).waitFor();
    expect(await srv.api.get<U>(`/api/users/${alice}`)).toMatchObject({ extension: '2199', deviceIds: ['phone-1', 'phone-1b'] });
  });

  it('creates a user, then deletes it after a confirm', async () => {
    const { page, srv } = h;
    await page.getByRole('link', { name: 'All users' }).click();
    await page.getByRole('link', { name: 'New user' }).click();
    await page.getByRole('heading', { level: 1, name: 'New user' }).waitFor();
    await page.getByLabel('Location', { exact: true }).selectOption(String(hq));
    await page.getByLabel('Callback number').fill('+14085550177');
    await page.getByLabel('Display name').fill('Carol White');
    await page.getByRole('button', { name: 'Add email' }).click();
    await page.getByLabel('Email 1', { exact: true }).fill('carol@example.com');
    await page.getByRole('button', { name: 'Create user' }).click();
    // The user name is on the General tab: the page goes there to show what is missing.
    await expect.poll(() => page.getByRole('tab', { name: /General/ }).getAttribute('aria-selected')).toBe('true');
    await page.getByLabel('User name').fill('carol');
    await page.getByRole('button', { name: 'Create user' }).click();
    await page.getByRole('heading', { level: 1, name: 'User carol' }).waitFor();
    const carol = (await srv.api.get<{ users: U[] }>('/api/users')).users.find((u) => u.username === 'carol');
    expect(carol).toMatchObject({ displayName: 'Carol White', locationId: hq, callback: '+14085550177', emails: ['carol@example.com'] });

    await page.getByRole('button', { name: 'Delete user…' }).click();
    await page.getByRole('button', { name: 'Delete', exact: true }).click();
    await page.getByRole('heading', { level: 1, name: 'Users' }).waitFor();
    expect((await srv.api.get<{ users: U[] }>('/api/users')).users.map((u) => u.username).sort()).toEqual(['alice', 'bob']);
  });

  it('an uncaught error in a page is recorded by the harness, whose close() then fails the file', async () => {
    const { page } = h;
    await page.evaluate(() =>
      setTimeout(() => {
        throw new Error('e911 harness self-check');
      }),
    );
    await expect.poll(() => h.pageErrors.length, { timeout: 5000 }).toBe(1);
    expect(h.pageErrors[0]).toContain('e911 harness self-check');
    // This one was made on purpose: forget it, so only real errors fail the file.
    h.pageErrors.length = 0;
  });
});
