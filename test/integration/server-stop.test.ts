// A server instance stopped while its phones keep reporting. In the scale bench (10,000 phones,
// 3 instances on one PostgreSQL, instances stopped with SIGTERM) the stopping instance logged
// about 3,000 "Cannot use a pool after calling end": stop() waited for the pusher while the
// phones' reports still came in, and the work they set off (their batch written, its address
// states checked, re-issues pushed) reached the store after it was closed. Real parts: the
// server on each store, its embedded broker, phones as MQTT clients with their own credentials.
// Before the fix only PostgreSQL showed it: SQLite's statements run synchronously, so the late
// work finished in the same turns, before the close; the SQLite run guards the same stop order.
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { topicFor } from '../../provisioning/protocol/topics.js';
import { recordingLog } from '../helpers/log.js';
import { requires } from '../helpers/require.js';
import { startTestServer } from '../helpers/server-app.js';
import { serverStores } from '../helpers/server-stores.js';
import { waitFor } from '../helpers/agent.js';

/** What a store says once it is used after being closed (pg's pool; better-sqlite3's connection). */
const CLOSED_STORE = /Cannot use a pool after calling end|database connection is not open/;

describe.each(serverStores())('a server stopped while its phones report, on $name', (backend) => {
  const gate = backend.name === 'postgres' ? requires('the server on PostgreSQL', ['postgres']) : { skip: false };
  describe.skipIf(gate.skip)('', () => {
    beforeAll(() => backend.setup(), 60_000);
    afterAll(() => backend.teardown());

    it('stops taking reports, finishes what it took, then closes its store: nothing uses the store after', async () => {
      const recorded = recordingLog();
      const srv = await startTestServer({ store: (await backend.store()).setting, log: recorded.log });
      let stopped = false;
      onTestFinished(async () => {
        if (!stopped) await srv.stop();
      });

      // Phones no user has yet: each report of a version the server never issued takes the
      // pusher's full check (a transaction), is issued above, and queues a push.
      const phones = Array.from({ length: 10 }, (_, i) => `desk-${i}`);
      const clients: MqttClient[] = [];
      onTestFinished(async () => {
        for (const c of clients) await c.endAsync(true);
      });
      for (const deviceId of phones) {
        const creds = await srv.api.post<{ username: string; password: string }>(`/api/phones/${deviceId}/credentials`);
        clients.push(
          await mqtt.connectAsync(srv.app.brokerUrl, {
            clientId: creds.username,
            username: creds.username,
            password: creds.password,
            reconnectPeriod: 0,
            // Offline (the broker gone with the server): a report is dropped, not queued.
            queueQoSZero: false,
          }),
        );
      }

      // Every phone reports every few milliseconds, before and all through the stop.
      let version = 0;
      const report = setInterval(() => {
        version++;
        clients.forEach((c, i) => {
          if (!c.connected) return;
          const deviceId = phones[i]!;
          c.publish(topicFor(deviceId, 'status'), JSON.stringify({ v: 1, state: 'online', deviceId }), { qos: 0 });
          c.publish(topicFor(deviceId, 'address/state'), JSON.stringify({ v: 1, version, hash: `h${version}`, appliedAt: null }), {
            qos: 1,
          });
        });
      }, 5);
      onTestFinished(() => clearInterval(report));

      // The reports are being taken: the phones' applied versions reach the store.
      await waitFor(
        async () => ((await srv.api.get<{ appliedVersion: number | null }>(`/api/phones/${phones[0]}`)).appliedVersion ?? 0) >= 5,
        10_000,
        () => 'the first phone never reported an applied version',
      );

      const stop = srv.stop();
      const outcome = await Promise.race([
        stop.then(() => 'stopped'),
        new Promise<string>((r) => setTimeout(() => r('stop() still running after 20 s'), 20_000).unref()),
      ]);
      stopped = true;
      clearInterval(report);
      // What the store's users might still do after the close gets a moment to show itself.
      await new Promise((r) => setTimeout(r, 500));

      expect(outcome).toBe('stopped');
      const lines = recorded.lines();
      const closedStore = lines.filter((l) => CLOSED_STORE.test(JSON.stringify(l)));
      expect(closedStore.map((l) => `${String(l.ns)}: ${String(l.msg)}`)).toEqual([]);
      const errors = lines.filter((l) => (l.level as number) >= 50);
      expect(errors.map((l) => `${String(l.ns)}: ${String(l.msg)}`)).toEqual([]);
      // What came too late is told once per part, as information, not one line per report.
      const late = lines.filter((l) => /while stopping/.test(String(l.msg)));
      expect(late.every((l) => (l.level as number) <= 30)).toBe(true);
      expect(new Set(late.map((l) => l.ns)).size).toBe(late.length);
    }, 60_000);

    it('a 911 event that comes once reports are no longer taken is still stored and acknowledged; a report is not taken', async () => {
      const srv = await startTestServer({ store: (await backend.store()).setting, log: recordingLog().log });
      onTestFinished(() => srv.stop());
      const deviceId = 'desk-late';
      const creds = await srv.api.post<{ username: string; password: string }>(`/api/phones/${deviceId}/credentials`);
      const phone = await mqtt.connectAsync(srv.app.brokerUrl, {
        clientId: creds.username,
        username: creds.username,
        password: creds.password,
        reconnectPeriod: 0,
      });
      onTestFinished(() => phone.endAsync(true));
      const acked: string[] = [];
      phone.on('message', (_t, p) => acked.push(...(JSON.parse(p.toString()) as { ids: string[] }).ids));
      await phone.subscribeAsync(topicFor(deviceId, 'events/ack'), { qos: 1 });

      // The first step of the stop: reports are dropped from here on, events are not.
      await srv.app.link.stopIntake();
      phone.publish(topicFor(deviceId, 'status'), JSON.stringify({ v: 1, state: 'online', deviceId }), { qos: 1 });
      const id = 'late-911';
      await phone.publishAsync(
        topicFor(deviceId, 'events'),
        JSON.stringify({
          v: 1,
          id,
          type: 'emergency-call',
          deviceId,
          ts: new Date().toISOString(),
          data: { numberDialed: '911', callback: '+14085550100', displayName: deviceId, addressMissing: true, device: { ip: '10.1.2.3' } },
        }),
        { qos: 1 },
      );
      await waitFor(
        () => acked.includes(id),
        10_000,
        () => `no events/ack for ${id}: ${JSON.stringify(acked)}`,
      );
      expect((await srv.api.get<{ id: string }>(`/api/events/${id}`)).id).toBe(id);
      // Its status was not taken: the phone was never seen online by this instance.
      expect(srv.app.link.phone(deviceId)?.online ?? false).toBe(false);
    }, 60_000);
  });
});
