// The location parts wired into the real agent, against a real Mosquitto: the
// retained location report, the signed locations push, the mismatch check and
// its event, and the user's choice through e911ctl reaching the server as an event.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { agentConfig, inProcessAgent, waitFor } from '../helpers/agent.js';
import { sampleAddress, testKeys } from '../helpers/address.js';
import { silentLog } from '../helpers/log.js';
import { ProvisioningServer } from '../../provisioning/server/server.js';
import { topicFor } from '../../provisioning/protocol/topics.js';
import { signDocument } from '../../provisioning/protocol/signing.js';
import type { EventPayload, LocationPayload } from '../../provisioning/protocol/messages.js';
import type { LocationsDocument } from '../../provisioning/protocol/locations.js';
import { main as e911ctl } from '../../agent/cli/e911ctl.js';
import type { Agent } from '../../agent/root.js';
import { controlRequest } from '../../agent/control/control-client.js';
import { requires } from '../helpers/require.js';

const gate = requires('location-agent tests', ['broker']);

const HQ = { id: 'loc-hq', code: 'HQ', name: 'Headquarters', civic: sampleAddress().civic, cidrs: ['203.0.113.0/24'] };
const BR = {
  id: 'loc-br',
  code: 'BR',
  name: 'Branch',
  civic: { ...sampleAddress().civic, A3: 'Fresno', RD: 'Elm', HNO: '7', PC: '93701' },
  cidrs: ['198.51.100.0/24'],
};

function capture() {
  let text = '';
  const w = new Writable({
    write: (c, _e, cb) => {
      text += c.toString();
      cb();
    },
  });
  return { w: w as never, text: () => text };
}

describe.skipIf(gate.skip)('location in the agent', () => {
  let broker: Mosquitto;
  let server: ProvisioningServer;
  let watcher: MqttClient;
  let agent: Agent;
  let dir = '';
  let socket = '';
  const keys = testKeys();
  const events: EventPayload[] = [];
  const reports: LocationPayload[] = [];

  beforeAll(async () => {
    broker = await startMosquitto();
    dir = mkdtempSync(path.join(os.tmpdir(), 'e911-locagent-'));
    server = new ProvisioningServer({
      brokerUrl: broker.url,
      privateKey: keys.privateKey,
      log: silentLog(),
      protocolVersion: 5,
      clientId: `srv-${path.basename(dir)}`,
    });
    server.on('event', (e) => events.push(e));
    await server.start();
    watcher = await mqtt.connectAsync(broker.url, { protocolVersion: 5 });
    watcher.on('message', (_t, p) => reports.push(JSON.parse(p.toString()) as LocationPayload));
    await watcher.subscribeAsync(topicFor('phone-1', 'location'), { qos: 1 });
    const setup = agentConfig(
      dir,
      { brokerUrl: broker.url, serverPublicKey: keys.pair.publicKey },
      {
        network: {
          backend: 'sim',
          lldp: { enabled: false },
          dhcp: { enabled: false },
          recommendations: { firstCheckMs: 300, checkEveryMs: 60_000 },
        },
      },
    );
    socket = setup.socketPath;
    agent = inProcessAgent(setup).agent;
    await agent.start();
  }, 30_000);

  afterAll(async () => {
    try {
      await agent?.stop();
      await watcher?.endAsync();
      await server?.stop();
    } finally {
      await broker?.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('publishes the retained location report and changes it when the address arrives', async () => {
    await waitFor(() => reports.length >= 1, 5000);
    expect(reports[0]).toMatchObject({ v: 1, source: 'none', data: { best: null } });
    await server.pushAddress(sampleAddress({ version: 1, locationCode: 'HQ' }));
    await waitFor(() => reports.some((r) => r.source === 'provisioned'), 5000);
    expect(agent.locationService.best()).toMatchObject({ source: 'provisioned', method: 'Manual', kind: 'civic', dispatchable: true });
    await waitFor(() => events.filter((e) => e.type === 'location-changed').length >= 2, 5000);
  });

  it('checks the pushed locations, reports the mismatch, and takes the choice from e911ctl', async () => {
    const doc: LocationsDocument = {
      v: 1,
      deviceId: 'phone-1',
      version: 1,
      issuedAt: new Date().toISOString(),
      recommendations: true,
      assignedLocationId: 'loc-hq',
      locations: [HQ, BR],
    };
    await watcher.publishAsync(
      topicFor('phone-1', 'locations/set'),
      JSON.stringify({ v: 1, doc, sig: signDocument(doc, keys.privateKey) }),
      { qos: 1 },
    );
    // The simulated network (the host's addresses) has none in the TEST-NET groups: a mismatch, every location offered.
    await waitFor(
      () => events.some((e) => e.type === 'location-mismatch'),
      5000,
      () => JSON.stringify(events.map((e) => [e.type, e.data])).slice(0, 3000),
    );
    expect(events.find((e) => e.type === 'location-mismatch')!.data).toMatchObject({
      assignedLocationId: 'loc-hq',
      matchingLocationIds: [],
    });

    const out = capture();
    const err = capture();
    expect(await e911ctl(['--socket', socket, 'location'], {}, out.w, err.w)).toBe(0);
    expect(out.text()).toContain('check: mismatch');
    expect(out.text()).toMatch(/loc-hq\s+Headquarters \(assigned\)/);
    expect(out.text()).toContain('loc-br');

    const sel = capture();
    expect(await e911ctl(['--socket', socket, 'location', 'select', 'BR'], {}, sel.w, err.w)).toBe(0);
    expect(sel.text()).toContain('selected loc-br');
    await waitFor(() => events.some((e) => e.type === 'location-selected'), 5000);
    expect(events.find((e) => e.type === 'location-selected')!.data).toMatchObject({
      locationId: 'loc-br',
      locationCode: 'BR',
      confirmed: false,
    });
    await waitFor(() => reports.some((r) => r.source === 'user'), 5000);
    expect(agent.locationService.best()).toMatchObject({ source: 'user', civic: { A3: 'Fresno' } });
    // The emergency path was told: the PIDF-LO a 911 call would carry now says Fresno.
    const pidf = await controlRequest(socket, 'pidf');
    expect(pidf.ok && (pidf.result as { pidf: string }).pidf).toContain('<ca:A3>Fresno</ca:A3>');

    const bad = capture();
    expect(await e911ctl(['--socket', socket, 'location', 'select', 'nowhere'], {}, capture().w, bad.w)).toBe(1);
    expect(bad.text()).toContain('unknown location nowhere');
    expect(await e911ctl(['--socket', socket, 'location', 'frobnicate'], {}, capture().w, capture().w)).toBe(2);
  });

  it('refuses a locations push not signed by the server key', async () => {
    const before = events.filter((e) => e.type === 'payload-rejected').length;
    const doc: LocationsDocument = {
      v: 1,
      deviceId: 'phone-1',
      version: 9,
      issuedAt: new Date().toISOString(),
      recommendations: true,
      assignedLocationId: null,
      locations: [],
    };
    await watcher.publishAsync(
      topicFor('phone-1', 'locations/set'),
      JSON.stringify({ v: 1, doc, sig: signDocument(doc, testKeys().privateKey) }),
      { qos: 1 },
    );
    await waitFor(() => events.filter((e) => e.type === 'payload-rejected').length > before, 5000);
    expect(events.filter((e) => e.type === 'payload-rejected').at(-1)!.data).toMatchObject({
      topic: 'locations/set',
      reason: expect.stringMatching(/signature/),
    });
  });
});
