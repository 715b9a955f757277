// One send that never returns (a stuck SMTP pool, measured in server-admin.test.ts under load:
// every notification of the server waited behind it) must hold neither the other rows nor its
// own: the others are sent and retried on time, and the stuck one fails after sendTimeoutMs,
// its transport is dropped, and the next attempt goes through.
import { afterEach, describe, expect, it } from 'vitest';
import { Notifier } from '../../provisioning/server/notify/notifier.js';
import { DeliveryError, type EmailChannel, type HttpChannel } from '../../provisioning/server/notify/channels.js';
import type { SmsSettings, WebhookSettings } from '../../provisioning/server/validation.js';
import { silentLog } from '../helpers/log.js';
import { notifyRepo } from '../helpers/notify-repo.js';
import { waitFor } from '../helpers/agent.js';

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

describe('notifier with a send that never returns', () => {
  it('delivers and retries the other rows meanwhile; the stuck one times out, its transport is closed, and it is sent again', async () => {
    const { repo, remove } = await notifyRepo('e911-stall-', {
      url: 'https://sms.example/send',
      username: undefined,
      from: '+14085550000',
    });
    cleanup.push(remove);
    await repo.insertEvent({
      id: 'ev-1',
      deviceId: 'p',
      type: 'emergency-call',
      ts: new Date().toISOString(),
      userId: null,
      locationId: null,
      data: {},
    });
    await repo.addNotification('ev-1', 'email', 'stuck@example.com');
    await repo.addNotification('ev-1', 'sms', '+14085550123');

    let emailCalls = 0;
    let closes = 0;
    const email: EmailChannel = {
      // The first send hangs for ever, as a stuck pooled SMTP connection did.
      send: () => (++emailCalls === 1 ? new Promise<string>(() => undefined) : Promise.resolve('mail-2')),
      close: () => void closes++,
    };
    let smsCalls = 0;
    const sms: HttpChannel<SmsSettings> = {
      // Fails twice, then goes through: its retries must come due while the email send hangs.
      send: async () => {
        if (++smsCalls <= 2) throw new DeliveryError('SMS provider: HTTP 503');
        return 'sms-3';
      },
    };
    const webhook: HttpChannel<WebhookSettings> = { send: async () => 'hook' };
    const notifier = new Notifier({
      repo,
      log: silentLog(),
      email,
      sms,
      webhook,
      retry: { baseMs: 20, maxMs: 40, maxAttempts: 10 },
      sendTimeoutMs: 1_000,
    });
    await notifier.start();
    cleanup.push(() => notifier.stop());
    const row = async (channel: string) => (await repo.notifications({ eventId: 'ev-1' })).find((n) => n.channel === channel)!;

    // The SMS row is retried and sent while the email send is still hanging.
    await waitFor(
      async () => (await row('sms')).status === 'sent',
      10_000,
      () => 'the SMS waited behind the stuck email',
    );
    expect(smsCalls).toBe(3);
    expect(await row('email')).toMatchObject({ status: 'sending', attempts: 1 });
    // The stuck send gives up after sendTimeoutMs, drops the transport, and the retry goes out.
    await waitFor(
      async () => (await row('email')).status === 'sent',
      10_000,
      () => 'the stuck email was never tried again',
    );
    expect(emailCalls).toBe(2);
    expect(closes).toBeGreaterThanOrEqual(1);
    expect(await row('email')).toMatchObject({ attempts: 2, providerId: 'mail-2' });
  });
});
