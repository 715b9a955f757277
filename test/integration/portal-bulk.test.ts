// The admin portal's bulk update and CSV pages in Debian's Chromium against a
// real server on loopback: a bulk update by location (its users shown ticked,
// the replace warning confirmed, the job followed live to done), and a CSV
// round trip (download from the page, edit, upload by file picker and by drag
// and drop, one bad row reported, nothing applied until Update).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { startPortal, type PortalHarness } from '../helpers/portal.js';
import { BRANCH, HQ } from '../helpers/server-app.js';
import { csvRecord, parseCsv } from '../../provisioning/server/csv.js';
import { requires } from '../helpers/require.js';

const gate = requires('portal-bulk browser tests', ['browser']);

interface U {
  id: number;
  username: string;
  emails: string[];
}

describe.skipIf(gate.skip)('admin portal: bulk update and CSV', () => {
  let h: PortalHarness;
  let hqId: number;
  const hq: Record<string, number> = {};
  const branch: Record<string, number> = {};
  const emailsOf = async (id: number) => (await h.srv.api.get<U>(`/api/users/${id}`)).emails;

  beforeAll(async () => {
    h = await startPortal();
    const { api } = h.srv;
    hqId = (await api.post<{ id: number }>('/api/locations', HQ)).id;
    const branchId = (await api.post<{ id: number }>('/api/locations', BRANCH)).id;
    const add = async (username: string, displayName: string, locationId: number) =>
      (await api.post<U>('/api/users', { username, displayName, locationId, emails: [`${username}@example.com`] })).id;
    for (const [u, d] of [
      ['alice', 'Alice Smith'],
      ['bob', 'Bob Jones'],
      ['carol', 'Carol White'],
    ] as const)
      hq[u] = await add(u, d, hqId);
    for (const [u, d] of [
      ['dave', 'Dave Brown'],
      ['erin', 'Erin Green'],
    ] as const)
      branch[u] = await add(u, d, branchId);
    await h.login();
  });

  afterAll(async () => {
    await h?.close();
  });

  it('bulk update by location: its users shown ticked, server errors beside the input, the replace warning confirmed, the job followed to done', async () => {
    const { page } = h;
    await page.getByRole('link', { name: 'Bulk update' }).click();
    await page.getByRole('heading', { level: 1, name: 'Bulk update' }).waitFor();

    await page.getByLabel('Location', { exact: true }).selectOption(String(hqId));
    const picks = page.getByRole('group', { name: 'Users at this location' });
    for (const name of ['Alice Smith', 'Bob Jones', 'Carol White'])
      await expect.poll(() => picks.getByRole('checkbox', { name: new RegExp(name) }).isChecked()).toBe(true);
    // The other location's users are not among them.
    expect(await picks.getByRole('checkbox').count()).toBe(3);
    expect(await picks.textContent()).not.toContain('Dave');

    await page.getByLabel('Email 1', { exact: true }).fill('oncall@example.com');
    await page.getByRole('button', { name: 'Add email' }).click();
    // WHATWG-valid, so the browser lets it through; the server wants a dotted domain.
    await page.getByLabel('Email 2', { exact: true }).fill('desk@localhost');
    const warning = page.locator('.bulk-warning');
    expect(await warning.textContent()).toContain('replaces the notification list of 3 users');
    await h.shot('bulk');

    await page.getByRole('button', { name: 'Update', exact: true }).click();
    let dialog = page.getByRole('dialog', { name: 'Replace the notification lists of 3 users?' });
    await dialog.waitFor();
    await dialog.getByRole('button', { name: 'Replace 3 lists' }).click();
    // Refused by the server: the reason beside the second input, nothing queued.
    const second = page.getByLabel('Email 2', { exact: true });
    await expect.poll(() => second.getAttribute('aria-invalid')).toBe('true');
    expect(await page.locator('.emails li.invalid .error').textContent()).toContain('is not a valid email address');
    expect(await h.srv.api.get<unknown[]>('/api/jobs')).toHaveLength(0);

    await second.fill('desk@example.com');
    await page.getByRole('button', { name: 'Update', exact: true }).click();
    dialog = page.getByRole('dialog', { name: 'Replace the notification lists of 3 users?' });
    await dialog.waitFor();
    expect(await dialog.textContent()).toContain('oncall@example.com, desk@example.com');
    await dialog.getByRole('button', { name: 'Replace 3 lists' }).click();

    await page.locator('.job[data-job-status="done"]').waitFor({ timeout: 10_000 });
    expect(await page.locator('.job').textContent()).toContain('3 updated, 0 unchanged');
    // The list on the page follows: the users' new addresses.
    await expect.poll(() => picks.textContent()).toContain('Now: oncall@example.com, desk@example.com');
    await h.shot('bulk-job');

    for (const id of Object.values(hq)) expect(await emailsOf(id)).toEqual(['oncall@example.com', 'desk@example.com']);
    for (const [name, id] of Object.entries(branch)) expect(await emailsOf(id)).toEqual([`${name}@example.com`]);
  });

  it('selected users: filter, select all shown, and only those get the list', async () => {
    const { page } = h;
    await page.getByRole('radio', { name: 'Selected users' }).check();
    await page.getByLabel('Filter users').fill('erin');
    const picks = page.getByRole('group', { name: 'Users', exact: true });
    await expect.poll(() => picks.getByRole('checkbox').count()).toBe(1);
    await picks.getByRole('button', { name: 'Select all shown' }).click();
    expect(await picks.getByRole('checkbox', { name: /Erin Green/ }).isChecked()).toBe(true);
    await page.getByLabel('Filter users').fill('');
    await expect.poll(() => picks.getByRole('checkbox').count()).toBe(5);
    expect(await page.locator('.bulk-warning').textContent()).toContain('1 user ');

    await page.getByRole('button', { name: 'Remove email 2 (desk@example.com)' }).click();
    await page.getByLabel('Email 1', { exact: true }).fill('toronto@example.com');
    await page.getByRole('button', { name: 'Update', exact: true }).click();
    await page
      .getByRole('dialog', { name: 'Replace the notification lists of 1 user?' })
      .getByRole('button', { name: 'Replace 1 list' })
      .click();
    // The first job's result stays until this one's arrives: wait for this one's.
    await expect.poll(() => page.locator('.job').textContent(), { timeout: 10_000 }).toContain('Done: 1 updated, 0 unchanged');
    expect(await emailsOf(branch.erin!)).toEqual(['toronto@example.com']);
    expect(await emailsOf(branch.dave!)).toEqual(['dave@example.com']);
    expect(await emailsOf(hq.alice!)).toEqual(['oncall@example.com', 'desk@example.com']);
  });

  it('CSV round trip: download, one bad row reported row by row, nothing applied until Update', async () => {
    const { page } = h;
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'CSV' }).click();
    await page.getByRole('heading', { level: 1, name: 'CSV' }).waitFor();
    await h.shot('csv');

    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Download users CSV' }).click()]);
    expect(download.suggestedFilename()).toMatch(/^e911-users-.*\.csv$/);
    const records = parseCsv(readFileSync(await download.path(), 'utf8'));
    const header = records[0]!;
    const col = (name: string) => header.indexOf(name);
    const rowOf = (username: string) => records.findIndex((r) => r[col('Username')] === username);
    expect(records).toHaveLength(6);
    expect(records[rowOf('alice')]![col('Email1')]).toBe('oncall@example.com');

    records[rowOf('alice')]![col('Email1')] = 'alice.new@example.com';
    records[rowOf('dave')]![col('Email2')] = 'not-an-email';
    const badRow = rowOf('dave') + 1; // spreadsheet numbering: the header is row 1
    const edited = records.map((r) => csvRecord(r)).join('');

    const expectReport = async (fileName: string) => {
      const report = page.locator('.csv-report');
      await page.getByRole('heading', { name: `Validation report: ${fileName}` }).waitFor();
      const rows = report.locator('table.csv-errors tbody tr');
      // All of it in one comparison: a failure shows the whole report.
      const seen = {
        rows: await report.getByTestId('csv-rows').textContent(),
        changes: await report.getByTestId('csv-changes').textContent(),
        unchanged: await report.getByTestId('csv-unchanged').textContent(),
        errors: await report.getByTestId('csv-errors').textContent(),
        table: await Promise.all((await rows.all()).map((r) => r.locator('th, td').allTextContents())),
      };
      expect(seen).toEqual({
        rows: '5',
        changes: '1',
        unchanged: '3',
        errors: '1',
        table: [[String(badRow), 'Email2', '"not-an-email" is not a valid email address']],
      });
      expect(await report.textContent()).toContain('Nothing has been applied yet');
    };

    // The file picker.
    await page.getByLabel('Or choose a CSV file').setInputFiles({ name: 'picked.csv', mimeType: 'text/csv', buffer: Buffer.from(edited) });
    await expectReport('picked.csv');

    // Drag and drop: a DataTransfer built in the page, dropped on the zone.
    const data = await page.evaluateHandle((text) => {
      // Runs in the page; this file is type-checked without the DOM library.
      const dt = new (globalThis as unknown as { DataTransfer: new () => { items: { add(f: File): void } } }).DataTransfer();
      dt.items.add(new File([text], 'dropped.csv', { type: 'text/csv' }));
      return dt;
    }, edited);
    const zone = page.getByRole('button', { name: /Drop the CSV file here/ });
    await zone.dispatchEvent('dragenter', { dataTransfer: data });
    expect(await zone.getAttribute('class')).toBe('drop over');
    await zone.dispatchEvent('drop', { dataTransfer: data });
    await expectReport('dropped.csv');
    await h.shot('csv-report');

    // Validated twice, applied never.
    expect(await emailsOf(hq.alice!)).toEqual(['oncall@example.com', 'desk@example.com']);
    expect(await emailsOf(branch.dave!)).toEqual(['dave@example.com']);

    const update = page.locator('.csv-report').getByRole('button', { name: 'Update', exact: true });
    await update.click();
    await expect.poll(() => page.locator('.csv-job .job').getAttribute('data-job-status'), { timeout: 10_000 }).toBe('done');
    expect(await page.locator('.csv-job .job').textContent()).toContain('1 updated');
    expect(await update.isDisabled()).toBe(true);

    expect(await emailsOf(hq.alice!)).toEqual(['alice.new@example.com', 'desk@example.com']);
    expect(await emailsOf(branch.dave!)).toEqual(['dave@example.com']);
    expect(await emailsOf(hq.bob!)).toEqual(['oncall@example.com', 'desk@example.com']);
  });

  it('by keyboard, a file that is not CSV at all gets a clear message, and no report', async () => {
    const { page } = h;
    // The drop zone is reachable by keyboard: Enter opens the file chooser.
    const zone = page.getByRole('button', { name: /Drop the CSV file here/ });
    // Playwright turns on file-chooser interception without waiting for the browser's answer:
    // one round trip to the page after starting to wait makes sure it is on before Enter.
    const chooserShown = page.waitForEvent('filechooser');
    await page.evaluate(() => 0);
    // locator.press focuses the zone and presses in one step.
    await zone.press('Enter');
    const chooser = await chooserShown;
    await chooser.setFiles({ name: 'broken.csv', mimeType: 'text/csv', buffer: Buffer.from('UserId,Email1\r\n1,"never closed\r\n') });
    const alert = page.getByRole('alert').filter({ hasText: 'The file cannot be read as the users CSV' });
    await alert.waitFor();
    expect(await alert.textContent()).toContain('a quoted field is never closed');
    expect(await page.locator('.csv-report').count()).toBe(0);
  });
});

describe.skipIf(gate.skip)('admin portal: CSV over the size limit', () => {
  let h: PortalHarness;
  beforeAll(async () => {
    h = await startPortal({ csvLimits: { maxBytes: 1024, maxRows: 100, maxReportedErrors: 10 } });
    await h.login();
  });
  afterAll(async () => {
    await h?.close();
  });

  it('a file over the limit is refused with a clear message, and no report', async () => {
    const { page } = h;
    await page.goto('/#/csv');
    await page.getByRole('heading', { level: 1, name: 'CSV' }).waitFor();
    const big = `UserId,Email1\r\n${'1,someone@example.com\r\n'.repeat(200)}`;
    await page.getByLabel('Or choose a CSV file').setInputFiles({ name: 'big.csv', mimeType: 'text/csv', buffer: Buffer.from(big) });
    const alert = page.getByRole('alert').filter({ hasText: 'The file is too large' });
    await alert.waitFor();
    expect(await alert.textContent()).toMatch(/limit/);
    expect(await page.locator('.csv-report').count()).toBe(0);
  });
});
