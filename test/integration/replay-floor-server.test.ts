// A phone refuses any push below its replay floors, even after its store was
// reset. A server that issued less (its database restored from a backup, or a
// new one) learns the floors from the phone's address/state and issues above
// them, through the real server and its broker; without that the phone would
// refuse every push as a replay, for ever.
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HQ, startTestServer, type TestServer } from '../helpers/server-app.js';
import { topicFor } from '../../provisioning/protocol/topics.js';
import type { SignedAddress } from '../../provisioning/protocol/messages.js';
import type { LocationsDocument } from '../../provisioning/protocol/locations.js';
import { documentHash } from '../../provisioning/protocol/signing.js';

describe('the server issues above the floors a phone reports', () => {
  let srv: TestServer;
  let phone: mqtt.MqttClient;
  const addresses: SignedAddress[] = [];
  const locations: number[] = [];

  beforeAll(async () => {
    srv = await startTestServer();
    const { api } = srv;
    // What enabling E911 requires; nothing is sent here (no event), so no mail server listens.
    await api.patch('/api/account', { name: 'Example Corp', contactEmail: 'it@example.com' });
    await api.put('/api/account/notifications', { smtp: { host: '127.0.0.1', port: 2525, security: 'none', from: 'e911@example.com' } });
    const hq = (await api.post<{ id: number }>('/api/locations', HQ)).id;
    await api.post('/api/users', {
      username: 'alice',
      displayName: 'Alice Smith',
      locationId: hq,
      callback: '+14085550100',
      emails: ['alice@example.com'],
      deviceIds: ['phone-1'],
    });
    const creds = await api.post<{ username: string; password: string }>('/api/phones/phone-1/credentials');
    phone = await mqtt.connectAsync(srv.app.brokerUrl, {
      clientId: 'phone-1',
      protocolVersion: 4,
      username: creds.username,
      password: creds.password,
    });
    phone.on('message', (topic, payload) => {
      if (topic === topicFor('phone-1', 'address/set')) addresses.push(JSON.parse(payload.toString()) as SignedAddress);
      if (topic === topicFor('phone-1', 'locations/set'))
        locations.push((JSON.parse(payload.toString()) as { doc: LocationsDocument }).doc.version);
    });
    await phone.subscribeAsync([topicFor('phone-1', 'address/set'), topicFor('phone-1', 'locations/set')], { qos: 1 });
  }, 30_000);

  afterAll(async () => {
    await phone?.endAsync();
    await srv?.stop();
  });

  it('a phone with no address but floors 7 and 5 gets address version 8 and locations version 6', async () => {
    // As the agent says it after a store reset: nothing held, and what it would refuse.
    const state = { v: 1, version: 0, hash: '', appliedAt: null, floor: { address: 7, locations: 5 } };
    await phone.publishAsync(topicFor('phone-1', 'address/state'), JSON.stringify(state), { qos: 1, retain: true });
    await srv.api.post('/api/account/e911', { enabled: true });
    for (let i = 0; i < 250 && !(addresses.some((a) => a.doc.version > 7) && locations.some((v) => v > 5)); i++)
      await new Promise((r) => setTimeout(r, 20));
    expect(addresses.at(-1)?.doc.version).toBe(8);
    expect(locations.at(-1)).toBe(6);
    expect((await srv.app.repo.issuedAddress('phone-1'))?.version).toBe(8);
    expect((await srv.app.repo.issuedLocations('phone-1'))?.version).toBe(6);
  });

  it('floors at or below what was issued change nothing', async () => {
    const before = { address: addresses.length, locations: locations.length };
    // The phone holds what the server issued last (same version and hash: no conflict either).
    const held = addresses.at(-1)!;
    const state = {
      v: 1,
      version: 8,
      hash: documentHash(held.doc),
      appliedAt: new Date().toISOString(),
      floor: { address: 8, locations: 6 },
    };
    await phone.publishAsync(topicFor('phone-1', 'address/state'), JSON.stringify(state), { qos: 1, retain: true });
    await new Promise((r) => setTimeout(r, 500));
    expect(addresses.length).toBe(before.address);
    expect(locations.length).toBe(before.locations);
    expect((await srv.app.repo.issuedAddress('phone-1'))?.version).toBe(8);
  });
});
