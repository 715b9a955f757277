// Starts the whole system on one machine with embedded defaults: the reference
// provisioning server with its in-process broker, and one agent wired to it,
// with a sample address pushed. Ctrl-C stops everything.
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { loadOrCreateKeyPair } from '../../provisioning/server/keys.js';
import { startEmbeddedBroker } from '../../provisioning/server/embedded-broker.js';
import { ProvisioningServer } from '../../provisioning/server/server.js';
import { privateKeyFromText } from '../../provisioning/protocol/signing.js';
import type { AddressDocument } from '../../provisioning/protocol/address.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.resolve(here, '../..');
const dataDir = path.resolve(process.env.E911_DEMO_DATA ?? 'data');
const port = Number(process.env.E911_DEMO_PORT ?? 1883);
const deviceId = 'phone-1';
const log = pino({ base: { app: 'start-all' } });

const { pair } = loadOrCreateKeyPair(path.join(dataDir, 'server', 'signing-key.json'));
const broker = await startEmbeddedBroker(port);
const server = new ProvisioningServer({ brokerUrl: broker.url, privateKey: privateKeyFromText(pair), log: log.child({ ns: 'server' }) });
server.on('event', (e) => log.info({ deviceId: e.deviceId, type: e.type, data: e.data }, 'server received event'));
server.on('address-state', (id, s) => log.info({ deviceId: id, version: s.version }, 'phone reports applied address'));
await server.start();

const agentDir = path.join(dataDir, 'agent');
mkdirSync(agentDir, { recursive: true });
const socketPath = path.join(agentDir, 'control.sock');
const configFile = path.join(agentDir, 'config.json');
writeFileSync(
  configFile,
  `${JSON.stringify(
    {
      deviceId,
      dataDir: path.join(agentDir, 'db'),
      serverPublicKey: pair.publicKey,
      // The embedded broker (aedes) speaks MQTT 3.1.1 only.
      broker: { urls: [broker.url], protocolVersion: 4 },
      control: { socketPath },
      logLevel: 'info',
    },
    null,
    2,
  )}\n`,
);

const sample: AddressDocument = {
  v: 1,
  deviceId,
  // Seconds since the epoch: always newer than what an earlier demo run applied.
  version: Math.floor(Date.now() / 1000),
  issuedAt: new Date().toISOString(),
  civic: { country: 'US', A1: 'CA', A3: 'San Jose', RD: 'Main', STS: 'St', HNO: '100', BLD: 'A', FLR: '2', ROOM: '210', NAM: 'Example Corp', PC: '95110' },
  callback: '+14085550100',
  displayName: 'Front Desk',
  locationCode: 'SJC-A',
};
await server.pushAddress(sample);

const agent = spawn(process.execPath, [path.join(dist, 'agent', 'main.js'), '--config', configFile], { stdio: 'inherit' });
log.info(
  { broker: broker.url, config: configFile },
  `system up. Try: E911_CONTROL_SOCKET=${socketPath} node ${path.join(dist, 'agent/cli/e911ctl.js')} address`,
);

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  agent.kill('SIGTERM');
  await new Promise((resolve) => agent.once('exit', resolve));
  await server.stop();
  await broker.close();
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
agent.on('exit', (code) => {
  if (!stopping) {
    log.error({ code }, 'agent exited');
    void stop();
  }
});
