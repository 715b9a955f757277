// How many claims the notifier makes. Each claim is a transaction, and on PostgreSQL a commit
// the 911 lane waits on: 16 idle slots each claiming and finding nothing made 60-80 commits per
// 911 event in the scale bench. A few rows take one claim; more rows than slots are all sent
// as slots free, without a claim per idle slot.
import { afterEach, describe, expect, it } from 'vitest';
import { Notifier } from '../../provisioning/server/notify/notifier.js';
import type { EmailChannel, HttpChannel } from '../../provisioning/server/notify/channels.js';
import type { SmsSettings, WebhookSettings } from '../../provisioning/server/validation.js';
import { pino } from 'pino';
import { notifyRepo } from '../helpers/notify-repo.js';
import { waitFor } from '../helpers/agent.js';

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

/** A store with SMTP set, its claims counted, and a notifier whose email sends wait for `release`. */
async function setUp(concurrency: number) {
  const { repo, remove } = await notifyRepo('e911-claims-');
  cleanup.push(remove);
  const claims: number[] = [];
  const failures = { next: 0 };
  const claim = repo.claimDueNotifications.bind(repo);
  repo.claimDueNotifications = async (limit, leaseMs, claimant) => {
    if (failures.next > 0) {
      failures.next--;
      throw new Error('the database is away');
    }
    const rows = await claim(limit, leaseMs, claimant);
    claims.push(rows.length);
    return rows;
  };
  let eventReads = 0;
  const readEvent = repo.event.bind(repo);
  repo.event = async (id) => {
    eventReads++;
    return readEvent(id);
  };
  const sent: string[] = [];
  let inFlight = 0;
  let most = 0;
  const gate = { open: false, waiting: [] as (() => void)[] };
  const email: EmailChannel = {
    send: async (_smtp, to) => {
      inFlight++;
      most = Math.max(most, inFlight);
      if (!gate.open) await new Promise<void>((r) => gate.waiting.push(r));
      inFlight--;
      sent.push(to);
      return `mail-${to}`;
    },
    close: () => undefined,
  };
  const never: HttpChannel<SmsSettings> & HttpChannel<WebhookSettings> = { send: async () => 'x' };
  const errors: string[] = [];
  const log = pino({ level: 'error' }, { write: (line: string) => void errors.push(JSON.parse(line).msg) });
  const notifier = new Notifier({ repo, log, email, sms: never, webhook: never, concurrency });
  const event = async (id: string, recipients: string[]) => {
    await repo.insertEvent({
      id,
      deviceId: 'p',
      type: 'emergency-call',
      ts: new Date().toISOString(),
      userId: null,
      locationId: null,
      data: {},
    });
    for (const r of recipients) await repo.addNotification(id, 'email', r);
  };
  const release = () => {
    gate.open = true;
    for (const r of gate.waiting.splice(0)) r();
  };
  return {
    repo,
    notifier,
    claims,
    sent,
    event,
    release,
    most: () => most,
    eventReads: () => eventReads,
    failures,
    errors,
    cleanup: () => notifier.stop(),
  };
}

describe('notifier claims', () => {
  it("an event's two rows take one claim, not one per idle slot, and one build of its notice", async () => {
    const t = await setUp(16);
    t.release();
    await t.notifier.start(3_600_000);
    cleanup.push(t.cleanup);
    await waitFor(
      () => t.claims.length > 0,
      10_000,
      () => 'the start claim',
    );
    const before = t.claims.length;

    await t.event('ev-1', ['a@example.com', 'b@example.com']);
    t.notifier.kick();
    await waitFor(
      () => t.sent.length === 2,
      10_000,
      () => 'both emails sent',
    );
    await new Promise((r) => setTimeout(r, 100));
    expect(t.claims.slice(before)).toEqual([2]);
    // The notice is built once for the event, though both sends start together.
    expect(t.eventReads()).toBe(1);
  });

  it('more rows than slots: every row sent, never more at once than the slots, a claim per freed batch', async () => {
    const t = await setUp(3);
    await t.event(
      'ev-2',
      Array.from({ length: 10 }, (_, i) => `r${i}@example.com`),
    );
    await t.notifier.start(3_600_000);
    cleanup.push(t.cleanup);
    await waitFor(
      () => t.most() === 3,
      10_000,
      () => 'three sends in flight',
    );
    expect(t.claims).toEqual([3]);
    t.release();
    await waitFor(
      () => t.sent.length === 10,
      10_000,
      () => 'all ten sent',
    );
    expect(t.most()).toBe(3);
    expect(new Set(t.sent).size).toBe(10);
    const rows = await t.repo.notifications({ eventId: 'ev-2' });
    expect(rows.every((r) => r.status === 'sent' && r.attempts === 1)).toBe(true);
    // Each freed slot may claim, but never more claims than rows plus the one that finds the end.
    expect(t.claims.reduce((a, b) => a + b, 0)).toBe(10);
    expect(t.claims.length).toBeLessThanOrEqual(11);
  });

  it('a kick while every slot is busy is not lost: the row is sent once a slot frees', async () => {
    const t = await setUp(1);
    await t.event('ev-3', ['first@example.com']);
    await t.notifier.start(3_600_000);
    cleanup.push(t.cleanup);
    await waitFor(
      () => t.most() === 1,
      10_000,
      () => 'the first send in flight',
    );
    await t.event('ev-4', ['second@example.com']);
    t.notifier.kick();
    t.release();
    await waitFor(
      () => t.sent.length === 2,
      10_000,
      () => 'the second event, kicked while the slot was busy',
    );
    expect(t.sent).toEqual(['first@example.com', 'second@example.com']);
  });

  it('a claim that fails (the database away) is tried again a second later, not in a loop, and the row is sent', async () => {
    const t = await setUp(4);
    t.release();
    await t.notifier.start(3_600_000);
    cleanup.push(t.cleanup);
    await waitFor(
      () => t.claims.length > 0,
      10_000,
      () => 'the start claim',
    );
    await t.event('ev-5', ['late@example.com']);
    t.failures.next = 2;
    const kicked = Date.now();
    t.notifier.kick();
    await waitFor(
      () => t.sent.length === 1,
      10_000,
      () => 'the row after the failed claims',
    );
    // Two failures, a second apart each: not a loop of claims while the database is away.
    expect(Date.now() - kicked).toBeGreaterThanOrEqual(1900);
    expect(t.errors).toEqual(Array(2).fill('notification claim failed; claiming again in a second'));
  });
});
