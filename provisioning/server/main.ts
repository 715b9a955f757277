#!/usr/bin/env node
// e911-server: the reference provisioning server's command line.
//
//   e911-server run [--data DIR] [--port 1883] [--http-port 8080] [--broker URL ...]   the server (embedded broker by default)
//   e911-server keygen | token create|list|revoke | broker-config --out DIR             local, on the data folder
//   e911-server <resource> <verb> ...                                                    the admin API, over HTTP
//   e911-server push --broker URL --address FILE                                        push one raw address document (as e911-server-cli)
//
// `e911-server help` lists every command.
import { mkdirSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from '../common/atomic-file.js';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { loadOrCreateKeyPair } from './keys.js';
import { privateKeyFromText } from '../protocol/signing.js';
import type { AddressDocument } from '../protocol/address.js';
import { isMain } from '../common/is-main.js';
import { ConfigError } from '../common/errors.js';
import { HELP, OPTIONS } from './cli/options.js';
import { type Flags, UsageError, need, list, listeners, brokerTls, tlsListeners, writePrivate } from './cli/common.js';
import { openRepo, withRepo, tokenCommand } from './cli/admin.js';
import { run } from './cli/run.js';
import { apiCommand } from './cli/api-client.js';

// The server's parts load only for the commands that need them: an API call starts fast.
const serverParts = () => import('./app.js');

export async function main(
  argv: string[],
  env: NodeJS.ProcessEnv,
  out: (s: string) => void = (s) => process.stdout.write(s),
): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  const flags = values as Flags;
  const [verb, sub, arg] = positionals;
  if (!verb || verb === 'help' || flags.help) {
    out(HELP);
    return verb ? 0 : 2;
  }
  const dataDir = (flags.data as string | undefined) ?? env.E911_SERVER_DATA ?? './data/server';
  const log = pino({ level: env.E911_LOG_LEVEL ?? 'info', base: { app: 'e911-server' } });

  switch (verb) {
    case 'run':
      await run(flags, dataDir, log, env);
      return -1; // keeps running
    case 'keygen': {
      const { pair, created } = loadOrCreateKeyPair(path.join(dataDir, 'signing-key.json'));
      if (created) log.info('signing key pair created');
      out(`${pair.publicKey}\n`);
      return 0;
    }
    case 'push': {
      const { pair } = loadOrCreateKeyPair(path.join(dataDir, 'signing-key.json'));
      const { ProvisioningServer } = await import('./server.js');
      const { loadOrCreateServerCredentials, CLI_INSTANCE } = await serverParts();
      const brokerUrl = need(flags.broker, '--broker URL');
      const mqttVersion = flags['mqtt-version'] ? Number(flags['mqtt-version']) : 4;
      if (mqttVersion !== 4 && mqttVersion !== 5) throw new UsageError('--mqtt-version must be 4 or 5');
      // Its own broker user (the broker binds client id to user name): a running instance's
      // would take over that instance's session and kick it off.
      const creds = flags['broker-username']
        ? {
            username: flags['broker-username'] as string,
            password: (flags['broker-password'] as string | undefined) ?? env.E911_BROKER_PASSWORD ?? '',
          }
        : await withRepo(dataDir, await openRepo((flags.store as string | undefined) ?? env.E911_STORE), (repo) =>
            loadOrCreateServerCredentials(dataDir, (flags.instance as string | undefined) ?? CLI_INSTANCE, repo),
          );
      const server = new ProvisioningServer({
        brokerUrl,
        privateKey: privateKeyFromText(pair),
        log,
        clientId: creds.username,
        username: creds.username,
        password: creds.password,
        protocolVersion: mqttVersion,
        publishOnly: true,
        ...(brokerTls(flags) ? { tls: brokerTls(flags)! } : {}),
      });
      try {
        await server.start();
      } catch (err) {
        await server.stop();
        throw new Error(
          `the broker at ${brokerUrl} refused ${creds.username}: ${(err as Error).message} (Mosquitto: render its files with \`e911-server broker-config\`, which includes this user, and reload it)`,
        );
      }
      try {
        const signed = await server.pushAddress(JSON.parse(readFileSync(need(flags.address, '--address FILE'), 'utf8')) as AddressDocument);
        log.info({ deviceId: signed.doc.deviceId, version: signed.doc.version, as: creds.username }, 'address pushed');
      } finally {
        await server.stop();
      }
      return 0;
    }
    case 'token':
      return withRepo(dataDir, await openRepo((flags.store as string | undefined) ?? env.E911_STORE), (repo) =>
        tokenCommand(repo, sub, arg, out, { account: flags.account as string | undefined }),
      );
    case 'broker-config': {
      const dir = need(flags.out, '--out DIR');
      if (flags['nats-auth']) {
        const { loadOrCreateServerCredentials, renderNatsConfig, CLI_INSTANCE } = await serverParts();
        const r = await withRepo(dataDir, await openRepo((flags.store as string | undefined) ?? env.E911_STORE), async (repo) => {
          for (const name of [CLI_INSTANCE, ...list(flags.instance)]) await loadOrCreateServerCredentials(dataDir, name, repo);
          return renderNatsConfig(repo);
        });
        mkdirSync(dir, { recursive: true });
        writePrivate(path.join(dir, 'nats-auth.conf'), r.conf);
        for (const s of r.skipped) log.warn(s, 'phone left out of the NATS authorization');
        out(`wrote ${dir}/nats-auth.conf (include it in every node's configuration; reload: nats-server --signal reload=PID)\n`);
        return 0;
      }
      const { loadOrCreateServerCredentials, renderBrokerConfig, CLI_INSTANCE } = await serverParts();
      const files = await withRepo(dataDir, await openRepo((flags.store as string | undefined) ?? env.E911_STORE), async (repo) => {
        // Each named instance gets its broker user now, so the broker knows it before it starts.
        // The push command's user too, so `push` works against the broker these files configure.
        for (const name of [CLI_INSTANCE, ...list(flags.instance)]) await loadOrCreateServerCredentials(dataDir, name, repo);
        const tls = tlsListeners(flags);
        const plain = listeners(flags.listen) ?? (tls.length ? [] : undefined);
        return renderBrokerConfig(
          repo,
          (flags.dir as string | undefined) ?? path.resolve(dir),
          plain === undefined ? undefined : [...plain, ...tls],
        );
      });
      mkdirSync(dir, { recursive: true });
      writePrivate(path.join(dir, 'passwd'), files.passwd);
      writeFileAtomic(path.join(dir, 'acl'), files.acl);
      writeFileAtomic(path.join(dir, 'mosquitto.conf'), files.conf);
      out(`wrote ${dir}/passwd, acl, mosquitto.conf (include the last from your mosquitto.conf; send mosquitto SIGHUP to reload)\n`);
      return 0;
    }
    default:
      return apiCommand(verb, sub, arg, flags, dataDir, env, out);
  }
}

if (isMain(import.meta.url)) {
  main(process.argv.slice(2), process.env).then(
    (code) => {
      // Exit once stdout has taken everything: a pipe is written asynchronously, and
      // process.exit() right after a large write (the OpenAPI document) cut it short.
      if (code >= 0) process.stdout.write('', () => process.exit(code));
    },
    (err) => {
      process.stderr.write(`e911-server: ${(err as Error).message}\n`);
      // A bad option is a usage error whether parseArgs or the run-config schema found it.
      const usage = err instanceof UsageError || err instanceof ConfigError;
      if (usage || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) process.stderr.write('see: e911-server help\n');
      process.exit(usage ? 2 : 1);
    },
  );
}
