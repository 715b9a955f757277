// A push lost on a live connection is sent again. On NATS the server pushes at QoS 0, and in the
// scale bench (45,000 phones, 3 instances) some phones still connected never applied a push: an
// agent without a heartbeat says nothing more, so nothing made the server look at them again.
// Real parts: the server on each store with its embedded broker, a real agent subscribed at QoS
// 0, and between them a relay that loses the first address push, as a broker under load may.
import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqttPacket from 'mqtt-packet';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { agentConfig, inProcessAgent, waitFor } from '../helpers/agent.js';
import { requires } from '../helpers/require.js';
import { HQ, startTestServer, type TestServer } from '../helpers/server-app.js';
import { serverStores } from '../helpers/server-stores.js';
import { recordingLog } from '../helpers/log.js';
import { freePort } from '../helpers/ports.js';

interface Phone {
  issuedVersion: number;
  appliedVersion: number | null;
  inSync: boolean;
  online: boolean;
}

/** Between phone and broker: passes every packet, except that it loses the first `lose` address pushes to the phone. */
async function lossyRelay(brokerPort: number, lose: number) {
  const seen = { connections: 0, pushes: [] as { version: number; lost: boolean }[] };
  const sockets = new Set<net.Socket>();
  const server = net.createServer((phone) => {
    seen.connections++;
    const up = net.connect(brokerPort, '127.0.0.1');
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    parser.on('packet', (p) => {
      if (p.cmd === 'publish' && p.topic.endsWith('/address/set')) {
        const version = (JSON.parse(p.payload.toString()) as { doc: { version: number } }).doc.version;
        const lost = seen.pushes.filter((x) => x.lost).length < lose;
        seen.pushes.push({ version, lost });
        if (lost) return;
      }
      phone.write(mqttPacket.generate(p, { protocolVersion: 4 }));
    });
    up.on('data', (d: Buffer) => parser.parse(d));
    phone.pipe(up);
    for (const sock of [phone, up]) {
      sockets.add(sock);
      sock.on('error', () => undefined);
      sock.on('close', () => {
        phone.destroy();
        up.destroy();
      });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    url: `mqtt://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const sock of sockets) sock.destroy();
      }),
  };
}

describe.each(serverStores())('an address push lost on a live connection, on $name', (backend) => {
  const gate = backend.name === 'postgres' ? requires('the server on PostgreSQL', ['postgres']) : { skip: false };
  describe.skipIf(gate.skip)('', () => {
    beforeAll(() => backend.setup(), 60_000);
    afterAll(() => backend.teardown());

    it('is sent again to the phone, still connected, which applies it', async () => {
      const recorded = recordingLog();
      const srv: TestServer = await startTestServer({
        store: (await backend.store()).setting,
        log: recorded.log,
        broker: { resendAfterMs: 400 },
      });
      onTestFinished(() => srv.stop());
      const { api } = srv;
      // What enabling E911 needs; no event is sent here, so nothing listens on the SMTP port.
      await api.patch('/api/account', { name: 'Example Corp', contactEmail: 'it@example.com' });
      await api.put('/api/account/notifications', {
        smtp: { host: '127.0.0.1', port: await freePort(), security: 'none', from: 'e911@example.com' },
      });
      const hq = (await api.post<{ id: number }>('/api/locations', HQ)).id;
      await api.post('/api/users', {
        username: 'rita',
        displayName: 'Rita Moreno',
        extension: '2102',
        locationId: hq,
        callback: '+14085550102',
        emails: ['rita@example.com'],
        deviceIds: ['desk-r'],
      });
      const creds = await api.post<{ username: string; password: string }>('/api/phones/desk-r/credentials');
      await api.post('/api/account/e911', { enabled: true });

      const relay = await lossyRelay(Number(new URL(srv.app.brokerUrl).port), 1);
      onTestFinished(() => relay.close());
      const dir = mkdtempSync(path.join(os.tmpdir(), 'e911-resend-'));
      onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
      const setup = agentConfig(
        dir,
        { deviceId: 'desk-r', brokerUrl: relay.url, serverPublicKey: srv.keys.publicKey },
        {
          broker: {
            urls: [relay.url],
            protocolVersion: 4,
            subscribeQos: 0,
            username: creds.username,
            password: creds.password,
            reconnectMinMs: 100,
            reconnectMaxMs: 1000,
          },
        },
      );
      const { agent } = inProcessAgent(setup);
      await agent.start();
      onTestFinished(() => agent.stop());

      const phone = () => api.get<Phone>('/api/phones/desk-r');
      // The push is issued and lost; the phone stays connected and says nothing more.
      await waitFor(
        () => relay.seen.pushes.some((p) => p.lost),
        20_000,
        () => JSON.stringify(relay.seen),
      );
      // Sent again (one resend after 400 ms, claimed by a sweep every 100 ms): applied, on the same connection.
      let last: Phone | null = null;
      await waitFor(
        async () => {
          last = await phone();
          return last.inSync;
        },
        10_000,
        () => `the phone: ${JSON.stringify(last)}; the relay saw ${JSON.stringify(relay.seen)}`,
      );
      const lost = relay.seen.pushes.find((p) => p.lost)!;
      expect(relay.seen.pushes.filter((p) => !p.lost).map((p) => p.version)).toContain(lost.version);
      expect(relay.seen.connections).toBe(1);
      expect(await phone()).toMatchObject({ online: true, appliedVersion: lost.version });
      expect(recorded.lines().some((l) => l.msg === 'addresses not confirmed by phones online sent again')).toBe(true);

      // Applied: not sent again, however long it waits.
      expect(await srv.app.resendUnconfirmed(Date.now() + 3_600_000)).toBe(0);
    });
  });
});
