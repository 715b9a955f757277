// The portal's Phones, Emergency calls and Audit log pages in Debian's Chromium,
// with a real in-process agent as the phone, a real SMTP sink for the emails and
// an HTTP sink as a failing SMS provider: the phone online and in sync, its
// location mismatch and going offline without a reload; a 911 call arriving in
// the log live, each recipient's delivery reaching 'sent' live (and the SMS one
// failing with its error until the provider recovers); the audit entries of it all.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { seedAccount, startPhone, startPortal, type PortalHarness } from '../helpers/portal.js';
import type { Agent } from '../../agent/root.js';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.js';
import { startHttpSink, type HttpSink } from '../helpers/http-sink.js';
import { requires } from '../helpers/require.js';

const gate = requires('portal-status browser tests', ['browser']);

interface Phone {
  deviceId: string;
  online: boolean;
  inSync: boolean;
  issuedVersion: number;
  appliedVersion: number | null;
  lastLocation: unknown;
  mismatch: unknown;
}

describe.skipIf(gate.skip)('admin portal: phones, emergency calls and audit log', () => {
  let h: PortalHarness;
  let agent: Agent | null = null;
  let dir: string;
  let smtp: SmtpSink;
  let sms: HttpSink;
  let hqId: number;
  let callId: string;

  const phone = async () => (await h.srv.api.get<Phone[]>('/api/phones')).find((p) => p.deviceId === 'phone-1')!;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'e911-portal-status-'));
    smtp = await startSmtpSink();
    sms = await startHttpSink();
    // The SMS provider is down at first: its recipient shows retry and the error.
    sms.failWith = 503;
    h = await startPortal();
    const seeded = await seedAccount(h.srv, smtp.port);
    hqId = seeded.hqId;
    await h.srv.api.put('/api/account/notifications', { sms: { url: `${sms.url}/sms`, from: '+14085550000' } });
    agent = await startPhone(h.srv, dir, seeded.creds);
    await h.login();
  });

  afterAll(async () => {
    await agent?.stop();
    await smtp?.close();
    await sms?.close();
    rmSync(dir, { recursive: true, force: true });
    await h?.close(); // last: it throws if a page had an uncaught error
  });

  it('shows the phone online with its applied address version equal to the issued one, and a location mismatch as it arrives', async () => {
    const { page } = h;
    await page.getByRole('link', { name: 'Phones', exact: true }).click();
    await page.getByRole('heading', { level: 1, name: 'Phones' }).waitFor();
    const row = page.locator('tr[data-device-id="phone-1"]');
    await expect.poll(() => row.getByTestId('connection').textContent(), { timeout: 10_000 }).toContain('Online');
    await expect.poll(() => row.getByTestId('address').textContent(), { timeout: 10_000 }).toContain('(in sync)');
    const p = await phone();
    expect(p.inSync).toBe(true);
    expect(await row.getByTestId('address').textContent()).toContain(`applied ${p.issuedVersion} of issued ${p.issuedVersion}`);
    expect(await row.getByRole('rowheader').textContent()).toContain('phone-1');
    expect(await row.textContent()).toContain('Alice Smith');
    // The agent's location report (what it found, and when) is shown in words.
    await expect.poll(async () => (await phone()).lastLocation !== null, { timeout: 10_000 }).toBe(true);
    await expect.poll(() => row.getByTestId('location').textContent()).toMatch(/from \w+/);
    expect(await row.getByTestId('mismatch').textContent()).toBe('none');

    // The phone's network says it is elsewhere: the row shows it without a reload.
    agent!.emit('location-mismatch', {
      trigger: 'network',
      reason: 'the network matches no known location',
      assignedLocationId: String(hqId),
      matchingLocationIds: [],
      network: { addresses: ['192.0.2.10'], switches: [] },
    });
    await expect.poll(() => row.getByTestId('mismatch').textContent(), { timeout: 10_000 }).toContain('Mismatch');
    const text = (await row.getByTestId('mismatch').textContent()) ?? '';
    expect(text).toContain('Assigned: SJC-A (Example Corp)');
    expect(text).toContain('network matches: no known location');
    expect(text).toContain('the network matches no known location');
    expect((await phone()).mismatch).toMatchObject({ assignedLocationId: String(hqId) });

    await row.getByRole('button', { name: 'Push again to phone-1' }).click();
    await page.getByRole('status').filter({ hasText: 'pushed again to phone-1' }).waitFor();
    await h.shot('phones');
  });

  it('marks the phone when its network says another address: both addresses, what 911 sends, the ELIN; cleared when resolved', async () => {
    const { page } = h;
    const row = page.locator('tr[data-device-id="phone-1"]');
    expect(await row.getByTestId('disagreement').textContent()).toBe('none');
    const open = {
      state: 'open',
      policy: 'network-first',
      chosen: 'network',
      fields: ['street', 'number', 'building', 'floor'],
      provisioned: {
        civic: { country: 'US', A1: 'CA', A3: 'San Jose', RD: 'Main St', HNO: '100', PC: '95110-1234', BLD: 'A', FLR: '2' },
        locationCode: 'SJC-A',
        version: 1,
      },
      network: {
        source: 'lldp-med',
        method: 'LLDP-MED',
        civic: { country: 'US', A1: 'CA', A3: 'San Jose', RD: 'Tasman', STS: 'Drive', HNO: '170', PC: '95134', BLD: 'B4', FLR: '3' },
        origin: { iface: 'eth0' },
      },
      elin: '4085550123',
    };
    agent!.emit('location-disagreement', open);
    await expect.poll(() => row.getByTestId('disagreement').textContent(), { timeout: 10_000 }).toContain('Differs');
    const text = (await row.getByTestId('disagreement').textContent()) ?? '';
    expect(text).toContain('Differs (street, number, building, floor)');
    expect(text).toContain('Switch (LLDP-MED): 170 Tasman Drive, Bldg B4 Floor 3, San Jose, CA 95134');
    expect(text).toContain('Provisioned: 100 Main St, Bldg A Floor 2, San Jose, CA 95110-1234');
    expect(text).toContain("911 sends first: the switch's address (policy network-first)");
    expect(text).toContain('ELIN 4085550123');
    expect(await page.locator('main p').filter({ hasText: 'whose network says another address' }).textContent()).toContain(
      '1 whose network says another address',
    );
    agent!.emit('location-disagreement', { ...open, state: 'resolved', chosen: null, fields: [], network: null, provisioned: null });
    await expect.poll(() => row.getByTestId('disagreement').textContent(), { timeout: 10_000 }).toBe('none');
  });

  it("a 911 call from the phone appears in the call log without a reload, with each recipient's delivery live", async () => {
    const { page } = h;
    await page.getByRole('link', { name: 'Emergency calls', exact: true }).click();
    await page.getByRole('heading', { level: 1, name: 'Emergency calls' }).waitFor();
    await page.getByText('No calls yet.').waitFor();
    agent!.emit('emergency-call', {
      callRef: 'call-911-status',
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
    const row = page.locator('table.call-log tbody tr.emergency');
    await row.waitFor({ timeout: 10_000 });
    callId = (await row.getAttribute('data-event-id'))!;
    expect(await row.textContent()).toContain('911 emergency');
    expect(await row.textContent()).toContain('Alice Smith');
    // Both emails go through the SMTP sink; the SMS provider answers 503.
    await expect.poll(() => row.getByTestId('deliveries').textContent(), { timeout: 10_000 }).toMatch(/^2 sent, 1 (retry|sending)$/);
    await page.locator('.alert.emergency').getByRole('button', { name: 'Acknowledge' }).click();
    await h.shot('calls');

    await row.getByRole('link', { name: '911 emergency' }).click();
    await page.getByRole('heading', { level: 1, name: '911 call from Alice Smith' }).waitFor();
    const facts = (await page.locator('dl.facts').textContent()) ?? '';
    for (const f of ['+14085550100', 'SJC-A', '100 Main St', 'San Jose', 'phone-1', '10.1.2.3', 'America/Los_Angeles'])
      expect(facts).toContain(f);

    const recipient = (r: string) => page.locator(`table.deliveries tr[data-recipient="${r}"]`);
    for (const r of ['alice@example.com', 'security@example.com']) {
      await expect.poll(() => recipient(r).getAttribute('data-status'), { timeout: 10_000 }).toBe('sent');
      expect(await recipient(r).textContent()).toContain('email');
    }
    expect(
      smtp.mails
        .filter((m) => m.headers['x-e911-event-id'] === callId)
        .map((m) => m.to[0])
        .sort(),
    ).toEqual(['alice@example.com', 'security@example.com']);
    const text = recipient('+14085550199');
    await expect.poll(() => text.textContent(), { timeout: 10_000 }).toContain('HTTP 503');
    expect(['retry', 'sending', 'failed']).toContain(await text.getAttribute('data-status'));
    await h.shot('call-detail');

    // The provider recovers: the next retry goes through and the page follows without a reload.
    sms.failWith = null;
    await expect.poll(() => text.getAttribute('data-status'), { timeout: 15_000 }).toBe('sent');
    await expect.poll(() => page.getByTestId('delivery-summary').textContent()).toBe('3 sent');
    expect(sms.requests.some((r) => (r.json as { to?: string }).to === '+14085550199')).toBe(true);
    // What the page shows is what the API holds.
    const detail = await h.srv.api.get<{ facts: { locationCode: string }; notifications: { recipient: string; status: string }[] }>(
      `/api/events/${encodeURIComponent(callId)}`,
    );
    expect(detail.facts.locationCode).toBe('SJC-A');
    expect(detail.notifications.map((n) => `${n.recipient}:${n.status}`).sort()).toEqual([
      '+14085550199:sent',
      'alice@example.com:sent',
      'security@example.com:sent',
    ]);
  });

  it('turns the phone offline without a reload when it stops; new MQTT credentials are shown once', async () => {
    const { page } = h;
    await page.getByRole('link', { name: 'Phones', exact: true }).click();
    const row = page.locator('tr[data-device-id="phone-1"]');
    await expect.poll(() => row.getByTestId('connection').textContent()).toContain('Online');
    await agent!.stop();
    agent = null;
    await expect.poll(() => row.getByTestId('connection').textContent(), { timeout: 10_000 }).toContain('Offline');
    expect((await phone()).online).toBe(false);

    await row.getByRole('button', { name: 'New MQTT credentials for phone-1' }).click();
    await row.getByRole('button', { name: 'Issue for phone-1' }).click();
    const shown = page.getByTestId('new-password');
    await shown.waitFor();
    expect(((await shown.textContent()) ?? '').length).toBeGreaterThanOrEqual(16);
    expect(await page.getByRole('alert').filter({ hasText: 'shown this once' }).count()).toBe(1);
    await page.getByRole('button', { name: 'I have copied it' }).click();
    await expect.poll(() => shown.count()).toBe(0);
  });

  it('the audit log shows what happened, newest first, filtered by entity and paged back', async () => {
    const { page } = h;
    await page.getByRole('link', { name: 'Audit log', exact: true }).click();
    await page.getByRole('heading', { level: 1, name: 'Audit log' }).waitFor();
    const rows = page.locator('table.audit tbody tr');
    await rows.first().waitFor();
    const actions = await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-action')));
    expect(actions[0]).toBe('phone.credentials-issue');
    for (const a of [
      'phone.emergency-call',
      'phone.location-mismatch',
      'phone.repush',
      'notifications.update',
      'location.create',
      'user.create',
    ])
      expect(actions).toContain(a);
    const seqs = await rows.evaluateAll((trs) => trs.map((tr) => Number(tr.getAttribute('data-seq'))));
    expect(seqs).toEqual([...seqs].sort((a, b) => b - a));

    await page.getByLabel('Entity').selectOption('event');
    await expect
      .poll(() => rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-action'))))
      .toEqual([
        'phone.emergency-call',
        // Opened and resolved (the test before): audited like a mismatch.
        'phone.location-disagreement',
        'phone.location-disagreement',
        'phone.location-mismatch',
      ]);
    const call = rows.first();
    expect(await call.textContent()).toContain('phone:phone-1');
    await call.locator('summary').click();
    expect(await call.locator('pre').textContent()).toContain('"locationId"');
    await call.getByRole('link', { name: callId }).waitFor();
    await h.shot('audit');

    // Paging back: entries beyond the first page (50) come with "Older", and nothing is shown twice.
    for (let i = 0; i < 90; i++) await h.srv.api.patch('/api/account', { name: `Example Corp ${i}` });
    await page.getByRole('button', { name: 'Refresh' }).click();
    const total = (await h.srv.api.get<unknown[]>('/api/audit?limit=1000')).length;
    expect(total).toBeGreaterThan(100);
    await page.getByLabel('Entity').selectOption('');
    await expect.poll(() => rows.count()).toBe(50);
    let shown = 50;
    let pages = 1;
    while (await page.getByRole('button', { name: 'Older' }).count()) {
      await page.getByRole('button', { name: 'Older' }).click();
      await expect.poll(() => rows.count()).toBeGreaterThan(shown);
      shown = await rows.count();
      pages++;
    }
    expect(pages).toBeGreaterThanOrEqual(3);
    await page.getByText('The beginning of the log.').waitFor();
    expect(shown).toBe(total);
    const all = await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-seq')));
    expect(new Set(all).size).toBe(all.length);
  });
});
