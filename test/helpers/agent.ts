// Runs the real agent for integration tests: as a child process (dist/agent/main.js,
// for restarts and SIGKILL) or in-process (the composition root, for speed).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseConfig, type AgentConfig } from '../../agent/config.js';
import { Agent } from '../../agent/root.js';
import { hostPaths } from '../../hal/host.js';
import { silentLog } from './log.js';
import { controlRequest } from '../../agent/control/control-client.js';

// Works from test/helpers (vitest) and from dist/test/helpers (compiled benchmarks).
function repoRoot(from: string): string {
  let dir = from;
  while (!existsSync(path.join(dir, 'package.json'))) dir = path.dirname(dir);
  return dir;
}
const repo = repoRoot(path.dirname(fileURLToPath(import.meta.url)));
export const AGENT_MAIN = path.join(repo, 'dist/agent/main.js');

export interface AgentSetup {
  dir: string;
  configFile: string;
  socketPath: string;
  raw: Record<string, unknown>;
}

/** Writes a config file for one agent in dir; extra keys are merged in at the top level. */
export function agentConfig(
  dir: string,
  o: { deviceId?: string; brokerUrl: string; serverPublicKey: string; protocolVersion?: 4 | 5 },
  extra: Record<string, unknown> = {},
): AgentSetup {
  mkdirSync(dir, { recursive: true });
  const socketPath = path.join(dir, 'control.sock');
  const raw = {
    deviceId: o.deviceId ?? 'phone-1',
    dataDir: path.join(dir, 'db'),
    serverPublicKey: o.serverPublicKey,
    logLevel: 'info',
    broker: { urls: [o.brokerUrl], protocolVersion: o.protocolVersion ?? 5, reconnectMinMs: 100, reconnectMaxMs: 1000 },
    control: { socketPath },
    // Tests stay off the host's network: no lldpd on its interfaces, no DHCP hand-over folder in /run.
    network: { backend: 'sim', lldp: { enabled: false }, dhcp: { enabled: false } },
    ...extra,
    // Test machines have no handset audio: the null sound device unless a test names one.
    sip: { sound: 'null', ...(extra.sip as Record<string, unknown> | undefined) },
  };
  const configFile = path.join(dir, 'config.json');
  writeFileSync(configFile, JSON.stringify(raw, null, 2));
  return { dir, configFile, socketPath, raw };
}

/** The compiled locations worker (`npm run build`): an agent run from source has no .js beside its .ts. */
export const LOCATIONS_WORKER = path.join(repo, 'dist/agent/location/locations-worker.js');

/** The compiled checkpoint worker of the store, for the same reason. */
export const CHECKPOINT_WORKER = path.join(repo, 'dist/agent/store/checkpoint-worker.js');

export function inProcessAgent(setup: AgentSetup): { agent: Agent; config: AgentConfig } {
  const config = parseConfig(setup.raw);
  return {
    agent: new Agent({
      config,
      log: silentLog(),
      env: {},
      host: hostPaths({}),
      locationsWorker: { kind: 'file', url: LOCATIONS_WORKER },
      checkpointWorker: { kind: 'file', url: CHECKPOINT_WORKER },
    }),
    config,
  };
}

/**
 * The raw config of an agent run in the test's own process with the in-memory voice stack:
 * a broker nobody listens on (the link retries in the background), routes nobody answers,
 * and the simulated network, not the host's netlink, lldpd socket or DHCP folder (test
 * files run side by side). `over` replaces whole top-level keys.
 */
export function unitAgentRaw(dir: string, serverPublicKey: string, over: Record<string, unknown> = {}) {
  return {
    deviceId: 'phone-1',
    dataDir: path.join(dir, 'db'),
    serverPublicKey,
    broker: { urls: ['mqtt://127.0.0.1:9'], reconnectMinMs: 10_000 },
    control: { socketPath: path.join(dir, 'control.sock') },
    emergency: { routes: { primary: 'sip:10.0.0.1:5060', fallback: 'sip:10.0.0.3:5060' } },
    network: { backend: 'sim', lldp: { enabled: false }, dhcp: { enabled: false } },
    recovery: { minMs: 20, maxMs: 40 },
    ...over,
  };
}

export interface AgentProcess {
  child: ChildProcess;
  output: () => string;
  /** Resolves with the exit code (or signal name). */
  exited: Promise<number | string>;
}

/** Spawns dist/agent/main.js and resolves once its control socket answers. */
/** The host bundle that `npm run build:arm` makes: the same code the phone runs. */
export const AGENT_BUNDLE = path.join(repo, 'build/arm/bundle/e911-agent.cjs');
export const VOICE_ADDON = path.join(repo, 'hal/voice/pjsip/build/Release/e911_voice.node');

export async function spawnAgent(
  setup: AgentSetup,
  env: NodeJS.ProcessEnv = {},
  entry = AGENT_MAIN,
  o: { netns?: string; execArgv?: string[] } = {},
): Promise<AgentProcess> {
  if (!existsSync(entry)) throw new Error(`${entry} is missing: run \`npm run build\` (npm test does)`);
  // In a network namespace: `ip netns exec` execs node, so the child's pid (and signals) are the agent's.
  const argv = [process.execPath, ...(o.execArgv ?? []), entry, '--config', setup.configFile];
  const child = spawn(o.netns ? 'ip' : argv[0]!, o.netns ? ['netns', 'exec', o.netns, ...argv] : argv.slice(1), {
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  // Ready when its control socket answers: independent of the log level.
  let ready = false;
  const poll = async () => {
    while (!ready && child.exitCode === null) {
      ready = await controlRequest(setup.socketPath, 'status', {}, 500).then(
        (r) => r.ok,
        () => false,
      );
      if (!ready) await new Promise((r) => setTimeout(r, 10));
    }
  };
  void poll();
  await waitFor(
    () => ready,
    10_000,
    () => `agent did not become ready:\n${out}`,
    exited,
  );
  return { child, output: () => out, exited };
}

/** Polls until cond() holds; fails with why() after timeoutMs or if `dead` settles first. */
export async function waitFor(
  cond: () => boolean | Promise<boolean>,
  timeoutMs: number,
  why: () => string = () => '',
  dead?: Promise<unknown>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let gone = false;
  void dead?.then(() => (gone = true));
  while (!(await cond())) {
    if (gone) throw new Error(`process exited early. ${why()}`);
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms. ${why()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
