// The admin portal in Debian's Chromium: the login page, the dashboard, and a
// 911 call from a simulated phone (a real agent on the server's broker)
// arriving on every open portal with a visible and audible alert, no reload.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { seedAccount, startPhone, startPortal, type PortalHarness } from '../helpers/portal.js';
import type { Agent } from '../../agent/root.js';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.js';
import { requires } from '../helpers/require.js';

const gate = requires('portal-live browser tests', ['browser']);

describe.skipIf(gate.skip)('admin portal: login and live emergency calls', () => {
  let h: PortalHarness;
  let agent: Agent;
  let dir: string;
  let second: Page;
  let smtp: SmtpSink;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'e911-portal-'));
    smtp = await startSmtpSink();
    // The event stream re-checks its token every 250 ms here (15 s by default).
    h = await startPortal({ streamCheckMs: 250 });
    const { creds } = await seedAccount(h.srv, smtp.port);
    agent = await startPhone(h.srv, dir, creds);
  });

  afterAll(async () => {
    await agent?.stop();
    await smtp?.close();
    rmSync(dir, { recursive: true, force: true });
    await h?.close(); // last: it throws if a page had an uncaught error
  });

  it('refuses a wrong token, then logs in with the right one and lands on the dashboard', async () => {
    const { page } = h;
    await page.goto('/');
    await expect.poll(() => page.title()).toContain('Log in');
    await h.shot('login');
    await page.getByLabel('API token').fill('e911_not-a-token');
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('alert').filter({ hasText: 'unknown or revoked' }).waitFor();
    // The API stays closed without the cookie.
    expect((await page.request.get('/api/account')).status()).toBe(401);

    await h.login();
    await page.getByRole('heading', { level: 1, name: 'Dashboard' }).waitFor();
    await page.getByText('Enabled since').waitFor();
    // The phone comes online: the dashboard follows without a reload.
    await expect.poll(() => page.getByTestId('phones-online').textContent(), { timeout: 10_000 }).toBe('1');
    await page.locator('header .live.open').waitFor();
    await h.shot('dashboard');
  });

  it('serves the page with a content security policy that allows only its own origin', async () => {
    const res = await h.page.request.get('/');
    expect(res.headers()['content-security-policy']).toContain("default-src 'none'");
    expect(res.headers()['content-security-policy']).toContain("connect-src 'self'");
    expect(res.headers()['x-frame-options']).toBe('DENY');
  });

  it('a 911 call from the phone shows at once on every open portal, with the siren, until acknowledged', async () => {
    const { page } = h;
    second = await h.newPage();
    await second.getByRole('link', { name: 'Locations' }).click();
    await second.locator('header .live.open').waitFor();

    agent.emit('emergency-call', {
      callRef: 'call-911',
      numberDialed: '911',
      emergencyNumber: '911',
      placed: true,
      callback: '+14085550100',
      displayName: 'Alice Smith',
      locationCode: 'SJC-A',
      location: {
        source: 'provisioned',
        civic: { country: 'US', A1: 'CA', A3: 'San Jose', RD: 'Main St', HNO: '100', PC: '95110-1234', BLD: 'A', FLR: '2', ROOM: '210' },
      },
      device: { deviceId: 'phone-1', ip: '10.1.2.3' },
    });

    for (const p of [page, second]) {
      const alert = p.locator('.alert.emergency');
      await alert.waitFor({ timeout: 5_000 });
      await expect.poll(() => alert.textContent()).toContain('911 was called');
      const text = (await alert.textContent()) ?? '';
      expect(text).toContain('Alice Smith');
      expect(text).toContain('+14085550100');
      expect(text).toContain('SJC-A');
      expect(text).toContain('100 Main St');
      // Audible: the Web Audio siren is running in this window.
      await expect.poll(() => alert.getAttribute('data-sound')).toBe('sounding');
      await expect.poll(() => p.title()).toContain('911 CALL');
    }
    // The dashboard's call list took it in live as well.
    await page.locator('table.calls tr.emergency').first().waitFor();
    expect(await page.locator('table.calls tr.emergency').first().textContent()).toContain('911 emergency');
    await h.shot('alert-911');

    // Acknowledging on one screen silences that screen only: the other site admin still sees it.
    await page.locator('.alert.emergency').getByRole('button', { name: 'Acknowledge' }).click();
    await expect.poll(() => page.locator('.alert.emergency').count()).toBe(0);
    expect(await second.locator('.alert.emergency').count()).toBe(1);
    await second.locator('.alert.emergency').getByRole('button', { name: 'Acknowledge' }).focus();
    await second.keyboard.press('Enter');
    await expect.poll(() => second.locator('.alert.emergency').count()).toBe(0);
  });

  it('a bulk job started from another screen shows on the dashboard and follows it to done', async () => {
    const { page } = h;
    await page.getByRole('link', { name: 'Dashboard' }).click();
    await page.getByRole('heading', { name: 'Background jobs' }).waitFor();
    const job = await h.srv.api.post<{ id: number }>('/api/bulk/emails', { emails: ['desk@example.com'], target: { all: true } });
    const row = page.locator(`.job[data-job-status="done"]`).filter({ hasText: `Job ${job.id}` });
    await row.waitFor({ timeout: 10_000 });
    expect(await row.textContent()).toContain('1 updated');
    expect((await h.srv.api.get<{ users: { emails: string[] }[] }>('/api/users')).users[0]!.emails).toEqual(['desk@example.com']);
  });

  it('a 933 test call shows as a test, without the siren', async () => {
    agent.emit('test-call', {
      callRef: 'call-933',
      numberDialed: '933',
      placed: true,
      callback: '+14085550100',
      displayName: 'Alice Smith',
    });
    const alert = h.page.locator('.alert.test');
    await alert.waitFor({ timeout: 5_000 });
    expect(await alert.textContent()).toContain('not an emergency');
    expect(await alert.getAttribute('data-sound')).toBeNull();
    expect(await h.page.locator('.alert.emergency').count()).toBe(0);
    await alert.getByRole('button', { name: 'Acknowledge' }).click();
  });

  it('the event stream of a token revoked while it is open ends with a revoked event', async () => {
    const { srv } = h;
    const token = await srv.app.createToken('stream-check');
    const res = await fetch(`${srv.app.httpUrl}/api/stream`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    const id = (await srv.app.repo.tokens()).find((t) => t.name === 'stream-check')!.id;
    await srv.app.repo.revokeToken(id);
    // The body ends (the server closes it) and says why; a stream that stayed open would time the test out.
    const body = await res.text();
    expect(body).toContain('event: revoked');
  });

  it('a revoked token ends the live stream and the portal returns to the login page', async () => {
    const { page, srv } = h;
    await page.locator('header .live.open').waitFor();
    const mine = (await srv.app.repo.tokens()).find((t) => t.name === 'test')!;
    expect(await srv.app.repo.revokeToken(mine.id)).toBe(true);
    await page.getByLabel('API token').waitFor();
    expect((await page.request.get('/api/account')).status()).toBe(401);
  });
});
