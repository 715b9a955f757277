// The portal against stored markup and cross-site requests, in Debian's Chromium.
//
// XSS: every text an administrator or a phone can store (an administrator's location and
// account fields; a phone's event, status and location report, which anyone holding desk
// phone credentials controls) carries markup. Each list and detail view, and the live 911
// banner, must show it as text: no element made from it, no script run, no CSP violation
// (which would mean markup reached the DOM and only the CSP stopped it). The CSP itself is
// then checked as the second line: markup forced into the page runs nothing.
//
// SSRF, as the portal shows it: a webhook URL on the server's own network is refused beside
// its field, with the reason.
//
// CSRF: a page on another origin of the same host (same site: the SameSite=Strict cookie is
// sent) and one on another site post forms and fetches to the API while an administrator is
// logged in. Both are refused and change nothing.
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mqtt from 'mqtt';
import type { Page } from 'playwright-core';
import { startPortal, type PortalHarness } from '../helpers/portal.js';
import { HQ } from '../helpers/server-app.js';
import { freePort } from '../helpers/ports.js';
import { requires } from '../helpers/require.js';
import { topicFor } from '../../provisioning/protocol/topics.js';

const gate = requires('portal XSS and CSRF browser tests', ['browser']);

/** Markup that would make an element (data-xss) and run script (__xss) if it reached the DOM as HTML. */
const long = (tag: string) => `"'><b data-xss="${tag}">${tag}</b><img src=x onerror=__xss('${tag}')><script>__xss('${tag}')</script>`;
/** For fields of 64 characters (a tag of up to 8). */
const mid = (tag: string) => `"><b data-xss>${tag}</b><img src=x onerror=__xss('${tag}')>`;
/** For fields of 32 characters. */
const short = (tag: string) => `<b data-xss>${tag}</b>`;

const P = {
  account: long('ACCOUNT'),
  locName: long('LOCNAME'),
  street: long('STREET'),
  city: `<i data-xss>CITY</i>`,
  building: mid('BLDG'),
  floor: short('FLR'),
  room: short('ROOM'),
  ipGroup: mid('IPGROUP'),
  chassis: mid('CHASSIS'),
  smtpHost: long('SMTPHOST'),
  caller: long('CALLER'),
  dialed: long('DIALED'),
  locCode: long('LOCCODE'),
  ip: long('DEVIP'),
  civicRoad: long('CIVICRD'),
  reason: long('REASON'),
  agentVersion: short('AGENTV'),
  report: long('REPORT'),
} as const;

interface Watch {
  violations: string[];
  ran: string[];
}

describe.skipIf(gate.skip)('admin portal: stored markup is text, the CSP holds, cross-site changes are refused', () => {
  let h: PortalHarness;
  let phone: mqtt.MqttClient;
  let locationId: number;
  let userId: number;
  let phoneCreds: { username: string; password: string };
  const callId = 'xss-call-1';

  const sendEvent = (id: string, type: string, data: Record<string, unknown>) =>
    phone.publishAsync(
      topicFor('xss-phone', 'events'),
      JSON.stringify({ v: 1, id, type, deviceId: 'xss-phone', ts: new Date().toISOString(), data }),
      { qos: 1 },
    );
  const callData = {
    callRef: 'call-xss',
    numberDialed: P.dialed,
    emergencyNumber: '911',
    placed: true,
    callback: '+14085550100',
    displayName: P.caller,
    locationCode: P.locCode,
    location: { source: 'lldp-med', civic: { country: 'US', A1: 'CA', A3: 'San Jose', RD: P.civicRoad, HNO: '100', PC: '95110' } },
    device: { deviceId: 'xss-phone', ip: P.ip },
  };

  /** What the page saw: CSP violations and any call of __xss (the payloads' script). */
  const watched = (page: Page) => page.evaluate<Watch>('window.__watch');
  /** No element made from a payload, no script run, no CSP violation. */
  const clean = async (page: Page, view: string) => {
    expect(await page.locator('[data-xss]').count(), `${view}: an element made from stored markup`).toBe(0);
    expect(await watched(page), view).toEqual({ violations: [], ran: [] });
  };
  /** The view shows these payloads as the text they are. */
  const showsText = async (page: Page, view: string, ...texts: string[]) => {
    // biome-ignore lint/performance/useDomNodeTextContent: Playwright's innerText() is the rendered text the test is about, not a DOM property
    const rendered = () => page.locator('main').innerText();
    for (const t of texts)
      await expect.poll(async () => (await rendered()).includes(t), { message: `${view} shows ${t} as text` }).toBe(true);
  };
  const open = async (page: Page, hash: string, heading: string | RegExp) => {
    // A fresh document for each view (a hash change alone keeps the page, and what it saw).
    await page.goto('about:blank');
    await page.goto(`/${hash}`);
    await page.getByRole('heading', { level: 1, name: heading }).waitFor();
  };

  beforeAll(async () => {
    h = await startPortal();
    // Records what would show that markup got through: the payloads call __xss; the browser
    // fires securitypolicyviolation for each inline script or handler the CSP blocks.
    await h.context.addInitScript({
      content: `
        window.__watch = { violations: [], ran: [] };
        window.__xss = (tag) => window.__watch.ran.push(tag);
        document.addEventListener('securitypolicyviolation', (e) => window.__watch.violations.push(e.violatedDirective + ' ' + e.blockedURI));
      `,
    });
    const { api } = h.srv;
    await api.patch('/api/account', { name: P.account, contactEmail: 'it@example.com' });
    await api.put('/api/account/notifications', { smtp: { host: P.smtpHost, port: 25, security: 'none', from: 'e911@example.com' } });
    locationId = (
      await api.post<{ id: number }>('/api/locations', {
        ...HQ,
        name: P.locName,
        address: { ...HQ.address, street: P.street, city: P.city },
        building: P.building,
        floor: P.floor,
        room: P.room,
        ipGroups: [{ name: P.ipGroup, cidrs: ['10.1.0.0/16'] }],
        switchPorts: [{ chassisId: P.chassis, portId: short('PORT') }],
        // No recipients: nothing tries to reach the SMTP host named by markup.
        adminEmails: [],
        smsNumbers: [],
      })
    ).id;
    userId = (
      await api.post<{ id: number }>('/api/users', {
        username: 'mallory',
        displayName: 'Mallory Desk',
        locationId,
        callback: '+14085550100',
        deviceIds: ['xss-phone'],
      })
    ).id;
    phoneCreds = await api.post<{ username: string; password: string }>('/api/phones/xss-phone/credentials');
    // A phone's credentials are on every desk: what it reports is the attacker's text.
    phone = await mqtt.connectAsync(h.srv.app.brokerUrl, {
      clientId: 'xss-phone',
      protocolVersion: 4,
      username: phoneCreds.username,
      password: phoneCreds.password,
    });
    await phone.publishAsync(
      topicFor('xss-phone', 'status'),
      JSON.stringify({ v: 1, state: 'online', deviceId: 'xss-phone', agentVersion: P.agentVersion }),
      { qos: 1, retain: true },
    );
    await phone.publishAsync(
      topicFor('xss-phone', 'location'),
      JSON.stringify({
        v: 1,
        ts: new Date().toISOString(),
        source: 'lldp-med',
        // A whole report (the protocol checks its shape); markup where the fields are long enough to carry it.
        data: {
          best: {
            source: 'lldp-med',
            method: mid('RMETHOD'),
            kind: 'civic',
            dispatchable: true,
            origin: { chassisId: mid('RORIGIN') },
            locationCode: mid('RCODE'),
            civic: { country: 'US', A1: 'CA', A3: P.report, RD: P.report, HNO: '1' },
          },
          candidates: [],
          elin: null,
          network: null,
          lldp: [],
          recommendation: null,
          disagreement: null,
        },
      }),
      { qos: 1, retain: true },
    );
    await sendEvent('xss-mismatch-1', 'location-mismatch', {
      trigger: 'network',
      reason: P.reason,
      assignedLocationId: String(locationId),
      matchingLocationIds: [],
      network: { addresses: [P.ip], switches: [] },
    });
    await sendEvent(callId, 'emergency-call', callData);
    const deadline = Date.now() + 10_000;
    while ((await h.srv.api.call('GET', `/api/events/${callId}`)).status !== 200) {
      if (Date.now() > deadline) throw new Error("the phone's 911 event never reached the server");
      await new Promise((r) => setTimeout(r, 25));
    }
    await h.login();
  });

  afterAll(async () => {
    await phone?.endAsync(true);
    await h?.close();
  });

  it('every list and detail view shows stored markup as text', async () => {
    const { page } = h;
    await open(page, '#/', 'Dashboard');
    await page.getByTestId('phones-online').waitFor();
    await clean(page, 'dashboard');

    await open(page, '#/locations', 'Locations');
    await showsText(page, 'locations', P.locName);
    await clean(page, 'locations');
    await open(page, `#/locations/${locationId}`, /^Location /);
    // A form: the stored strings are the inputs' values, untouched.
    await expect.poll(() => page.getByRole('textbox', { name: 'Name', exact: true }).inputValue()).toBe(P.locName);
    await clean(page, 'location detail');

    await open(page, '#/users', 'Users');
    await showsText(page, 'users', 'mallory');
    // The location filter's options carry the location's name.
    await expect.poll(() => page.locator('main select option').allInnerTexts()).toContain(`${HQ.code}: ${P.locName}`);
    await clean(page, 'users');
    await open(page, `#/users/${userId}`, 'User mallory');
    await clean(page, 'user detail');

    await open(page, '#/account', 'Account');
    await expect.poll(() => page.getByRole('textbox', { name: 'Account name' }).inputValue()).toBe(P.account);
    await clean(page, 'account');

    await open(page, '#/notifications', 'Notifications');
    await expect.poll(() => page.getByLabel('SMTP host').inputValue()).toBe(P.smtpHost);
    await clean(page, 'notifications');

    await open(page, '#/phones', 'Phones');
    await showsText(page, 'phones', P.reason, P.report);
    await clean(page, 'phones');

    await open(page, '#/calls', 'Emergency calls');
    await showsText(page, 'calls', P.caller, P.locCode);
    await clean(page, 'calls');
    await open(page, `#/calls/${callId}`, /^911 call from /);
    await showsText(page, 'call detail', P.caller, P.dialed, P.locCode, P.ip);
    // biome-ignore lint/performance/useDomNodeTextContent: Playwright's innerText() is the rendered text the test is about, not a DOM property
    expect(await page.getByRole('heading', { level: 1 }).innerText()).toBe(`911 call from ${P.caller}`);
    await clean(page, 'call detail');

    await open(page, '#/audit', 'Audit log');
    await page.locator('table.audit tbody tr').first().waitFor();
    for (const d of await page.locator('table.audit details').all()) await d.locator('summary').click();
    // The change details are JSON (quotes escaped): the markup's quote-free part shows as is.
    await showsText(page, 'audit', "<img src=x onerror=__xss('ACCOUNT')>", "<img src=x onerror=__xss('LOCNAME')>");
    await clean(page, 'audit');

    await open(page, '#/bulk', 'Bulk update');
    await clean(page, 'bulk');
    await open(page, '#/csv', 'CSV');
    await clean(page, 'csv');
    await h.shot('xss-views');
    // Thirteen fresh page loads on a shared CI machine.
  }, 120_000);

  it("the live 911 banner shows a phone's markup as text", async () => {
    const { page } = h;
    await open(page, '#/', 'Dashboard');
    // The banner is live only: the event must come after the page's event stream is open.
    await page.locator('header .live.open').waitFor();
    await sendEvent('xss-call-2', 'emergency-call', { ...callData, callRef: 'call-xss-2' });
    const alert = page.locator('.alert.emergency[data-event-id="xss-call-2"]');
    await alert.waitFor({ timeout: 10_000 });
    // biome-ignore lint/performance/useDomNodeTextContent: Playwright's innerText() is the rendered text the test is about, not a DOM property
    await expect.poll(async () => (await alert.innerText()).includes(P.caller)).toBe(true);
    await clean(page, 'live banner');
    await alert.getByRole('button', { name: 'Acknowledge' }).click();
  });

  it('the CSP is the second line: markup forced into the page runs no script', async () => {
    const { page } = h;
    await open(page, '#/', 'Dashboard');
    await page.evaluate(`
      const div = document.createElement('div');
      div.innerHTML = '<img src=x onerror="__xss(\\'forced-handler\\')">';
      document.body.append(div);
      const s = document.createElement('script');
      s.textContent = "__xss('forced-inline')";
      document.body.append(s);
    `);
    await expect.poll(async () => (await watched(page)).violations.length).toBeGreaterThanOrEqual(2);
    const w = await watched(page);
    expect(w.ran).toEqual([]);
    expect(w.violations.every((v) => /^script-src/.test(v))).toBe(true);
  });

  it("the notifications page says why a webhook on the server's own network is refused (SSRF)", async () => {
    const { page } = h;
    await open(page, '#/notifications', 'Notifications');
    await page.getByRole('button', { name: 'Set up webhook' }).click();
    await page.getByLabel('Webhook URL').fill('http://169.254.169.254/latest/meta-data/');
    await page.getByRole('button', { name: 'Save channels' }).click();
    await page.getByRole('alert').filter({ hasText: 'webhook.url' }).waitFor();
    expect(await page.getByLabel('Webhook URL').getAttribute('aria-invalid')).toBe('true');
    // biome-ignore lint/performance/useDomNodeTextContent: Playwright's innerText() is the rendered text the test is about, not a DOM property
    expect(await page.locator('main').innerText()).toContain('169.254.169.254 is a link-local address');
    expect((await h.srv.app.repo.notificationSettings()).webhook ?? null).toBeNull();
    await clean(page, 'notifications after a refused save');
  });

  describe("cross-site requests with the administrator's session", () => {
    let evil: http.Server;
    let evilPort: number;
    let apiUrl: string;
    const pages = new Map<string, string>();

    beforeAll(async () => {
      apiUrl = h.srv.app.httpUrl;
      evilPort = await freePort();
      evil = http.createServer((req, res) =>
        res.writeHead(200, { 'content-type': 'text/html' }).end(pages.get(req.url ?? '') ?? 'nothing'),
      );
      await new Promise<void>((resolve) => evil.listen(evilPort, '127.0.0.1', () => resolve()));
      // A form that reissues the phone's MQTT password (cutting it off) and one that
      // repushes; a fetch that tries to disable E911. Each submits itself on load.
      const form = (action: string, fields = '') =>
        `<!doctype html><form method="POST" action="${apiUrl}${action}" enctype="text/plain">${fields}</form><script>document.forms[0].submit()</script>`;
      pages.set('/credentials', form('/api/phones/xss-phone/credentials'));
      pages.set('/e911', form('/api/account/e911', '<input name=\'{"enabled":false,"x":"\' value=\'"}\'>'));
      pages.set(
        '/fetch',
        `<!doctype html><script>fetch(${JSON.stringify(`${apiUrl}/api/account/e911`)}, {method: 'POST', mode: 'no-cors', credentials: 'include', headers: {'content-type': 'text/plain'}, body: '{"enabled":false}'}).then(() => document.title = 'sent', () => document.title = 'failed')</script>`,
      );
    });
    afterAll(async () => {
      evil?.closeAllConnections();
      await new Promise<void>((resolve) => (evil ? evil.close(() => resolve()) : resolve()));
    });

    const auditCount = async () => (await h.srv.api.get<unknown[]>('/api/audit?limit=1000')).length;

    for (const [site, host] of [
      ['another origin of the same site (the cookie goes along; Origin refuses it)', '127.0.0.1'],
      ['another site (SameSite=Strict keeps the cookie home)', 'localhost'],
    ] as const) {
      it(`refuses form posts and fetches from ${site}`, async () => {
        const page = await h.newPage();
        const before = await auditCount();
        const account = await h.srv.api.get<{ e911Enabled: boolean }>('/api/account');
        const hash = await h.srv.app.repo.deviceCredential('xss-phone');
        expect(hash).toBeTruthy();
        for (const path of ['/credentials', '/e911']) {
          const answered = page.waitForResponse((r) => r.url().startsWith(apiUrl) && r.request().method() === 'POST');
          await page.goto(`http://${host}:${evilPort}${path}`);
          const res = await answered;
          // Same site: the session arrives and the Origin check refuses (403); another site: no session (401).
          expect(res.status(), `${host} ${path}`).toBe(host === '127.0.0.1' ? 403 : 401);
        }
        await page.goto(`http://${host}:${evilPort}/fetch`);
        await expect.poll(() => page.title()).toMatch(/sent|failed/);
        // Nothing changed: the phone's password still works, E911 as it was, nothing audited.
        expect(await auditCount()).toBe(before);
        expect((await h.srv.api.get<{ e911Enabled: boolean }>('/api/account')).e911Enabled).toBe(account.e911Enabled);
        expect(await h.srv.app.repo.deviceCredential('xss-phone')).toBe(hash);
        // The same session from the portal's own page still works (the refusals were about origin).
        const own = await h.page.evaluate<number>("fetch('/api/phones/xss-phone/push', { method: 'POST' }).then((r) => r.status)");
        expect(own).toBe(202);
        await page.close();
      });
    }
  });
});
