// The phone's wall clock stepped back a day: its next location-disagreement event has a ts
// older than the last one applied. The server orders one boot's events by the phone's
// monotonic clock (data.phoneClock), so the new state is applied; a truly older event (a
// resend) is still refused, and events without a phone clock fall back to ts.
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Repo } from '../../provisioning/server/db/repo.js';
import { eventFactory, procPhoneClock } from '../../agent/events/events.js';
import { phoneClockOf } from '../../provisioning/protocol/messages.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function repo(): Repo {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'e911-disagree-clock-'));
  dirs.push(dir);
  return new Repo({ dataDir: dir });
}

/** Stores the event as the intake does, then applies it. */
async function apply(
  r: Repo,
  id: string,
  ts: string,
  state: 'open' | 'resolved',
  clock: { boot: string; mono: number } | null,
): Promise<boolean> {
  const data = { state, ...(clock ? { phoneClock: clock } : {}) };
  await r.insertEvent({ id, deviceId: 'p', type: 'location-disagreement', ts, userId: null, locationId: null, data });
  return await r.setDeviceDisagreement('p', state === 'open' ? { ...data, eventId: id, ts } : null, ts, phoneClockOf(data));
}

describe('location disagreement state across a phone clock jump', () => {
  it('a new event after the wall clock went back a day is applied (same boot: monotonic order)', async () => {
    const r = repo();
    expect(await apply(r, 'e1', '2026-12-04T10:00:00.000Z', 'open', { boot: 'b1', mono: 1000 })).toBe(true);
    expect(await apply(r, 'e2', '2026-12-04T10:05:00.000Z', 'resolved', { boot: 'b1', mono: 301_000 })).toBe(true);
    // The clock is stepped back a day; the network disagrees again.
    expect(await apply(r, 'e3', '2026-12-03T10:06:00.000Z', 'open', { boot: 'b1', mono: 361_000 })).toBe(true);
    expect((await r.device('p'))!.disagreement).toMatchObject({ state: 'open', eventId: 'e3' });
    // A resend of the first "open" (older by the monotonic clock) changes nothing.
    expect(
      await r.setDeviceDisagreement('p', { state: 'open', eventId: 'e1' }, '2026-12-04T10:00:00.000Z', { boot: 'b1', mono: 1000 }),
    ).toBe(false);
    // The clock jumps forward a day: resolved, then the pre-jump "open" arrives late: refused.
    expect(await apply(r, 'e4', '2026-12-05T10:07:00.000Z', 'resolved', { boot: 'b1', mono: 421_000 })).toBe(true);
    expect(
      await r.setDeviceDisagreement('p', { state: 'open', eventId: 'e3' }, '2026-12-03T10:06:00.000Z', { boot: 'b1', mono: 361_000 }),
    ).toBe(false);
    expect((await r.device('p'))!.disagreement).toBeNull();
    await r.close();
  });

  it('two events with the same ts (the clock stepped back onto an earlier one): ordered by the one applied, not the first found', async () => {
    const r = repo();
    expect(await apply(r, 'e1', '2026-12-04T10:00:00.000Z', 'open', { boot: 'b1', mono: 1000 })).toBe(true);
    expect(await apply(r, 'e2', '2026-12-04T10:05:00.000Z', 'resolved', { boot: 'b1', mono: 301_000 })).toBe(true);
    // Stepped back five minutes and a second: the next event carries e1's very ts.
    expect(await apply(r, 'e3', '2026-12-04T10:00:00.000Z', 'open', { boot: 'b1', mono: 302_000 })).toBe(true);
    // e2 again (a redelivery): older than e3 by the monotonic clock, though newer than e1.
    expect(await r.setDeviceDisagreement('p', null, '2026-12-04T10:05:00.000Z', { boot: 'b1', mono: 301_000 })).toBe(false);
    expect((await r.device('p'))!.disagreement).toMatchObject({ state: 'open', eventId: 'e3' });
    await r.close();
  });

  it('across a reboot, or without a phone clock (an older phone), the order is by ts', async () => {
    const r = repo();
    expect(await apply(r, 'e1', '2026-12-04T10:00:00.000Z', 'resolved', { boot: 'b1', mono: 1000 })).toBe(true);
    expect(await apply(r, 'e2', '2026-12-04T09:00:00.000Z', 'open', { boot: 'b2', mono: 5 })).toBe(false);
    expect(await apply(r, 'e3', '2026-12-04T11:00:00.000Z', 'open', { boot: 'b2', mono: 10 })).toBe(true);
    expect(await apply(r, 'e4', '2026-12-04T10:30:00.000Z', 'resolved', null)).toBe(false);
    expect(await apply(r, 'e5', '2026-12-04T11:30:00.000Z', 'resolved', null)).toBe(true);
    expect((await r.device('p'))!.disagreement).toBeNull();
    await r.close();
  });

  it('the agent stamps its boot id and monotonic clock on location-disagreement events only', () => {
    const clock = procPhoneClock('/proc', () => 'boot-1\n');
    const newEvent = eventFactory('p', () => new Date('2026-12-03T00:00:00Z'), clock);
    const d = newEvent('location-disagreement', { state: 'open' });
    const later = newEvent('location-disagreement', { state: 'resolved' });
    expect(phoneClockOf(d.data)).toMatchObject({ boot: 'boot-1' });
    expect(phoneClockOf(later.data)!.mono).toBeGreaterThanOrEqual(phoneClockOf(d.data)!.mono);
    expect(newEvent('diagnostics', { a: 1 }).data).toEqual({ a: 1 });
    // No boot id (not Linux): no stamp, the server uses ts.
    const none = eventFactory(
      'p',
      undefined,
      procPhoneClock('/nowhere', () => {
        throw new Error('ENOENT');
      }),
    );
    expect(none('location-disagreement', { state: 'open' }).data).toEqual({ state: 'open' });
  });
});
