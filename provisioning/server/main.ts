#!/usr/bin/env node
// e911-server: the reference provisioning server's command line.
//   e911-server keygen [--data DIR]                 print the public key (creates the pair once)
//   e911-server run [--data DIR] [--port N] [--broker URL] [--seed FILE]
//   e911-server push --broker URL --address FILE [--data DIR]
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import { loadOrCreateKeyPair } from './keys.js';
import { startEmbeddedBroker, type EmbeddedBroker } from './embedded-broker.js';
import { ProvisioningServer } from './server.js';
import { privateKeyFromText } from '../protocol/signing.js';
import type { AddressDocument } from '../protocol/address.js';
import { isMain } from '../../agent/is-main.js';

function flag(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
}

export async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<void> {
  const [verb] = argv;
  const dataDir = flag(argv, 'data') ?? env.E911_SERVER_DATA ?? './data/server';
  const log = pino({ level: env.E911_LOG_LEVEL ?? 'info', base: { app: 'e911-server' } });
  const { pair, created } = loadOrCreateKeyPair(path.join(dataDir, 'signing-key.json'));

  if (verb === 'keygen') {
    if (created) log.info('signing key pair created');
    process.stdout.write(`${pair.publicKey}\n`);
    return;
  }
  if (verb === 'push') {
    const brokerUrl = flag(argv, 'broker');
    const file = flag(argv, 'address');
    if (!brokerUrl || !file) throw new Error('push needs --broker URL and --address FILE');
    const server = new ProvisioningServer({ brokerUrl, privateKey: privateKeyFromText(pair), log });
    await server.start();
    const signed = await server.pushAddress(JSON.parse(readFileSync(file, 'utf8')) as AddressDocument);
    log.info({ deviceId: signed.doc.deviceId, version: signed.doc.version }, 'address pushed');
    await server.stop();
    return;
  }
  if (verb === 'run') {
    let broker: EmbeddedBroker | null = null;
    let brokerUrl = flag(argv, 'broker');
    if (!brokerUrl) {
      broker = await startEmbeddedBroker(Number(flag(argv, 'port') ?? 1883));
      brokerUrl = broker.url;
      log.info({ url: brokerUrl }, 'embedded broker listening');
    }
    const server = new ProvisioningServer({ brokerUrl, privateKey: privateKeyFromText(pair), log });
    server.on('event', (e) => log.info({ deviceId: e.deviceId, type: e.type, id: e.id, data: e.data }, 'event'));
    server.on('status', (id, s) => log.info({ deviceId: id, state: s.state }, 'phone status'));
    server.on('address-state', (id, s) => log.info({ deviceId: id, version: s.version }, 'phone address state'));
    server.on('rejected', (id, reason) => log.warn({ deviceId: id, reason }, 'payload rejected'));
    await server.start();
    const seed = flag(argv, 'seed');
    if (seed) {
      for (const doc of JSON.parse(readFileSync(seed, 'utf8')) as AddressDocument[]) await server.pushAddress(doc);
    }
    log.info({ publicKey: pair.publicKey }, 'provisioning server ready');
    const stop = async () => {
      await server.stop();
      await broker?.close();
      process.exit(0);
    };
    process.on('SIGTERM', () => void stop());
    process.on('SIGINT', () => void stop());
    return;
  }
  process.stderr.write('usage: e911-server keygen|run|push [--data DIR] [--port N] [--broker URL] [--seed FILE] [--address FILE]\n');
  process.exit(2);
}

if (isMain(import.meta.url)) {
  main(process.argv.slice(2), process.env).catch((err) => {
    process.stderr.write(`e911-server: ${(err as Error).message}\n`);
    process.exit(1);
  });
}
