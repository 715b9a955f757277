// A phone's location-disagreement state at the server follows the phone's own order of
// events: a late or redelivered older event (another instance, a resend) changes nothing.
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Repo } from '../../provisioning/server/db/repo.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('location disagreement state', () => {
  it('a late "open" after "resolved" does not mark the phone again; a newer "open" does', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'e911-disagree-'));
    dirs.push(dir);
    const repo = new Repo({ dataDir: dir });
    const open = { state: 'open', fields: ['street'] };
    expect(await repo.setDeviceDisagreement('p', open, '2026-12-04T10:00:00.000Z')).toBe(true);
    expect(await repo.device('p')).toMatchObject({ disagreement: open, disagreementAt: '2026-12-04T10:00:00.000Z' });
    expect(await repo.setDeviceDisagreement('p', null, '2026-12-04T10:05:00.000Z')).toBe(true);
    expect((await repo.device('p'))!.disagreement).toBeNull();
    // The first "open" again (redelivered), after its "resolved".
    expect(await repo.setDeviceDisagreement('p', open, '2026-12-04T10:00:00.000Z')).toBe(false);
    expect((await repo.device('p'))!.disagreement).toBeNull();
    const later = { state: 'open', fields: ['floor'] };
    expect(await repo.setDeviceDisagreement('p', later, '2026-12-04T11:00:00.000Z')).toBe(true);
    expect((await repo.device('p'))!.disagreement).toEqual(later);
    await repo.close();
  });
});
