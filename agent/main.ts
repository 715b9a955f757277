#!/usr/bin/env node
// The agent's entry point: config, logger, the composition root, signals.
import { type AgentConfig, loadConfig } from './config.js';
import { ConfigError } from './errors.js';
import { createLogger } from '../provisioning/common/log.js';
import { Agent } from './root.js';
import { hostPaths } from '../hal/host.js';
import { isMain } from '../provisioning/common/is-main.js';

const STOP_DEADLINE_MS = 5000;
const EX_CONFIG = 78;

export async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<void> {
  const i = argv.indexOf('--config');
  const configFile = i >= 0 ? argv[i + 1] : env.E911_CONFIG;
  let config: AgentConfig;
  try {
    config = loadConfig(configFile, env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`e911-agent: ${err.message}\n`);
    process.exit(EX_CONFIG);
  }
  const log = createLogger(config.logLevel);
  // Explicit addon paths: the ARM executable carries its addons in lib/ beside itself.
  const sqliteBinding = env.E911_SQLITE_BINDING;
  const voiceAddonPath = env.E911_VOICE_ADDON;
  const agent = new Agent({
    config,
    log,
    env,
    host: hostPaths(env),
    ...(sqliteBinding ? { sqliteBinding } : {}),
    ...(voiceAddonPath ? { voiceAddonPath } : {}),
  });

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    // Whatever hangs, the process is gone within the deadline.
    setTimeout(() => {
      log.error('stop deadline passed; exiting');
      log.flush();
      process.exit(1);
    }, STOP_DEADLINE_MS).unref();
    agent.stop().then(
      () => {
        log.flush();
        process.exit(0);
      },
      (err) => {
        log.error({ err }, 'stop failed');
        log.flush();
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection'));
  process.on('uncaughtException', (err) => {
    // State may be inconsistent: exit and let the supervisor restart us quickly.
    log.fatal({ err }, 'uncaught exception');
    log.flush();
    process.exit(70);
  });
  await agent.start();
}

if (isMain(import.meta.url)) {
  main(process.argv.slice(2), process.env).catch((err) => {
    process.stderr.write(`e911-agent: failed to start: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
