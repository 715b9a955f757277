// Idle memory of the bundle as shipped (the unit's environment, the voice addon
// loaded, each agent on its own SIP port), beside a bare `node` idling in the
// same run: /proc/<pid>/smaps_rollup split into file-backed pages (the node
// binary, the libraries) and anonymous memory (V8's heaps, malloc, stacks), and
// the threads alive. Each agent has been pushed its address and a small
// locations document (as a provisioned phone has), then left alone.
//   BENCH_IDLE_SECONDS   how long after start the last sample is taken (default 180)
//   BENCH_BASE_BUNDLE    another build's bundle run beside this tree's (an A/B in one run; its lib/ beside it)
//   BENCH_BASE_UNIT      the systemd unit whose environment the base bundle runs with (default this tree's),
//                        e.g. `git show main:scripts/phone/e911-agent.service > FILE`
//   BENCH_IDLE_ENV       extra environment for this tree's agent only, as K=V,K=V (e.g. a variant's switch)
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startMosquitto } from '../../test/helpers/mosquitto.js';
import { AGENT_BUNDLE, VOICE_ADDON, agentConfig, spawnAgent, waitFor, type AgentProcess } from '../../test/helpers/agent.js';
import { sampleAddress, testKeys } from '../../test/helpers/address.js';
import { silentLog } from '../../test/helpers/log.js';
import { freePort } from '../../test/helpers/ports.js';
import { ProvisioningServer } from '../../provisioning/server/server.js';
import type { LocationsDocument } from '../../provisioning/protocol/locations.js';
import { report } from './stats.js';
import { bundles, unitEnvironment } from './agent-env.js';

const IDLE_SECONDS = Number(process.env.BENCH_IDLE_SECONDS ?? 180);
const SAMPLES_AT = [...new Set([Math.min(60, IDLE_SECONDS), IDLE_SECONDS])];
const { base } = bundles();
const unitEnv = unitEnvironment();
const voiceEnv = existsSync(VOICE_ADDON) ? { E911_VOICE_ADDON: VOICE_ADDON } : {};
const extraEnv = Object.fromEntries(
  (process.env.BENCH_IDLE_ENV ?? '')
    .split(',')
    .filter(Boolean)
    .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
);

interface Memory {
  rss: number;
  anon: number;
  file: number;
  threads: number;
}
function memoryOf(pid: number): Memory {
  const roll = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(roll)?.[1] ?? 0);
  const threads = Number(/^Threads:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  const rss = kb('Rss') / 1024;
  const anon = kb('Anonymous') / 1024;
  return { rss, anon, file: rss - anon, threads };
}

function smallLocations(deviceId: string, version: number): LocationsDocument {
  const civic = sampleAddress().civic;
  return {
    v: 1,
    deviceId,
    version,
    issuedAt: new Date().toISOString(),
    recommendations: true,
    assignedLocationId: 'loc-0',
    locations: Array.from({ length: 20 }, (_, i) => ({
      id: `loc-${i}`,
      code: `SITE-${i}`,
      name: `Site ${i}`,
      civic: { ...civic, ROOM: String(i) },
      cidrs: [`10.9.${i}.0/24`],
      switchPorts: [],
    })),
  };
}

const broker = await startMosquitto();
const keys = testKeys();
const dir = mkdtempSync(path.join(os.tmpdir(), 'e911-bench-idle-'));
const server = new ProvisioningServer({
  brokerUrl: broker.url,
  privateKey: keys.privateKey,
  log: silentLog(),
  protocolVersion: 5,
  clientId: 'bench-server',
});
await server.start();
const procs: AgentProcess[] = [];
try {
  const entries: [string, string, NodeJS.ProcessEnv][] = [['this tree', AGENT_BUNDLE, { ...unitEnv, ...voiceEnv, ...extraEnv }]];
  const baseUnitEnv = process.env.BENCH_BASE_UNIT ? unitEnvironment(path.resolve(process.env.BENCH_BASE_UNIT)) : unitEnv;
  if (base) entries.push(['BENCH_BASE_BUNDLE', base, { ...baseUnitEnv, ...voiceEnv }]);
  const idlers = [];
  for (const [i, [label, entry, env]] of entries.entries()) {
    const deviceId = `idle-${i}`;
    const setup = agentConfig(
      path.join(dir, deviceId),
      { deviceId, brokerUrl: broker.url, serverPublicKey: keys.pair.publicKey },
      {
        logLevel: 'info',
        sip: { sound: 'null', port: await freePort() },
        emergency: { routes: { primary: 'sip:127.0.0.1:9', fallback: 'sip:127.0.0.1:9' } },
      },
    );
    const proc = await spawnAgent(setup, env, entry);
    procs.push(proc);
    idlers.push({ label, proc, deviceId, startedAt: Date.now() });
  }
  const bare = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { env: { PATH: process.env.PATH, ...unitEnv } });
  for (const a of idlers) {
    // The address push is not retained: the phone must be subscribed first.
    await waitFor(
      () => server.phone(a.deviceId)?.online === true,
      20_000,
      () => a.proc.output().slice(-2000),
    );
    await server.pushAddress(sampleAddress({ deviceId: a.deviceId, version: 1 }));
    await waitFor(() => server.phone(a.deviceId)?.appliedVersion === 1, 20_000);
    await server.pushLocations(smallLocations(a.deviceId, 1));
    await waitFor(
      () => a.proc.output().includes('"locations applied"'),
      20_000,
      () => a.proc.output().slice(-2000),
    );
  }
  const unitText = Object.entries(unitEnv)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  const extraText =
    (Object.keys(extraEnv).length ? `; this tree also ${JSON.stringify(extraEnv)}` : '') +
    (baseUnitEnv !== unitEnv ? `; the base bundle with ${JSON.stringify(baseUnitEnv)}` : '');
  process.stdout.write(`idle RSS (unit env ${unitText}${extraText}), address and locations applied; baseline: bare node, same time\n`);
  const t0 = idlers[0]!.startedAt;
  for (const at of SAMPLES_AT) {
    await new Promise((r) => setTimeout(r, Math.max(0, t0 + at * 1000 - Date.now())));
    const node = memoryOf(bare.pid!);
    process.stdout.write(
      `${at} s: bare node ${node.rss.toFixed(1)} MB (file ${node.file.toFixed(1)}, anon ${node.anon.toFixed(1)}, ${node.threads} threads)\n`,
    );
    for (const a of idlers) {
      const m = memoryOf(a.proc.child.pid!);
      process.stdout.write(
        `${at} s: ${a.label} ${m.rss.toFixed(1)} MB (file ${m.file.toFixed(1)}, anon ${m.anon.toFixed(1)}, ${m.threads} threads)\n`,
      );
      if (at === IDLE_SECONDS) {
        report(`idle RSS after ${at} s, ${a.label}`, m.rss, 'MB', node.rss, '<= 60 MB');
        report(`idle anonymous memory after ${at} s, ${a.label}`, m.anon, 'MB', node.anon, '-');
      }
    }
  }
  bare.kill();
  process.stdout.write(
    `load average at the end: ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}\n`,
  );
} finally {
  for (const p of procs) p.child.kill('SIGKILL');
  await server.stop();
  await broker.close();
  rmSync(dir, { recursive: true, force: true });
}
