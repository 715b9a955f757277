// Size and start-up of the ARM executables (npm run build:arm), each beside a
// baseline measured in the same run: sizes (raw, gzip, xz) beside the bare target
// runtime; the agent's start-up under qemu beside that runtime's `node -e 0` under
// qemu; e911ctl under qemu beside the very same bundle on this machine's node.
// qemu is not a phone: its figures guard against regressions (docs/arm.md).
// The agent runs with the unit's environment (NODE_OPTIONS), as the phone starts it.
// BENCH_BASE_ARM_OUT=DIR starts another build's executables (e.g. main's) alternately
// with these for the agent-ready figure.
// Takes a few minutes, most of it compressing 100 MB per target.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, symlinkSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { report, summary } from './stats.js';
import { unitEnvironment } from './agent-env.js';

const here = path.dirname(fileURLToPath(import.meta.url));
// Compiled to dist/scripts/bench: the repo is three folders up.
const repo = path.resolve(here, '../../..');
const OUT = process.env.E911_ARM_OUT ?? path.join(repo, 'build/arm');
// Another build's output folder (e.g. main's) whose agents start alternately with these: an A/B in one run.
const BASE_OUT = process.env.BENCH_BASE_ARM_OUT ? path.resolve(process.env.BENCH_BASE_ARM_OUT) : null;
// The agent runs as the phone's unit starts it (NODE_OPTIONS): its code cache is made for those flags.
const UNIT_ENV = unitEnvironment();
const RUNS = Number(process.env.E911_BENCH_RUNS ?? 5);
const MB = 1e6;
const READY = '"msg":"agent ready"';
const IDLE_MS = Number(process.env.E911_BENCH_ARM_IDLE_MS ?? 10_000);
const rssMB = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

const TARGETS = [
  { name: 'arm64', qemu: 'qemu-aarch64-static', sysroot: '/usr/aarch64-linux-gnu', rawGoalMB: 110, xzGoalMB: 35 },
  { name: 'armv7', qemu: 'qemu-arm-static', sysroot: '/usr/arm-linux-gnueabihf', rawGoalMB: 80, xzGoalMB: 25 },
] as const;

interface Manifest {
  node: { version: string; from: string };
}

/** The stripped runtime build-arm started from, found through the manifest. */
function runtimeOf(m: Manifest): string | null {
  const cache = path.join(OUT, 'cache');
  if (!existsSync(cache)) return null;
  const pkg = m.node.from.split('@')[0]!;
  const dir = readdirSync(cache).find(
    (d) => d.startsWith(pkg) && d.endsWith(m.node.version) && existsSync(path.join(cache, d, 'node.stripped')),
  );
  return dir ? path.join(cache, dir, 'node.stripped') : null;
}

function tarOf(dir: string): Buffer {
  const r = spawnSync('tar', ['-C', dir, '-cf', '-', '.'], { maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`tar failed: ${r.stderr.toString()}`);
  return r.stdout;
}

function xzSize(buf: Buffer): number | null {
  const r = spawnSync('xz', ['-6', '-T2', '-c'], { input: buf, maxBuffer: 1 << 30 });
  return r.status === 0 ? r.stdout.length : null;
}

/** ms from spawn until a line containing `marker` (or exit, for null) appears; stops the program. */
function timeTo(cmd: string, args: string[], marker: string | null, env: NodeJS.ProcessEnv = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let at = 0;
    const seen = (d: Buffer) => {
      out += d.toString();
      if (marker && !at && out.includes(marker)) {
        at = performance.now() - t0;
        child.kill('SIGTERM');
      }
    };
    child.stdout.on('data', seen);
    child.stderr.on('data', seen);
    child.on('error', reject);
    child.on('exit', (code) => {
      if (marker === null) return code === 0 ? resolve(performance.now() - t0) : reject(new Error(`${cmd} exited ${code}: ${out}`));
      if (at) resolve(at);
      else reject(new Error(`${cmd} ${args.join(' ')} exited ${code} before "${marker}":\n${out}`));
    });
  });
}

async function p50(n: number, f: () => Promise<number>): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < n; i++) samples.push(await f());
  return summary(samples).p50;
}

function agentConfig(dir: string): { file: string; socket: string } {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'config.json');
  const socket = path.join(dir, 'control.sock');
  writeFileSync(
    file,
    JSON.stringify({
      deviceId: 'bench-phone',
      dataDir: path.join(dir, 'data'),
      logLevel: 'info',
      serverPublicKey: 'REPLACE-with-the-provisioning-servers-key00',
      // Nothing listens there: start-up never waits on the broker.
      broker: { urls: ['mqtt://127.0.0.1:9'] },
      control: { socketPath: socket },
    }),
  );
  return { file, socket };
}

/** Starts a program and resolves once `marker` shows in its output. */
function startUntil(cmd: string, args: string[], marker: string, env: NodeJS.ProcessEnv = {}): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const seen = (d: Buffer) => {
      out += d.toString();
      if (out.includes(marker)) resolve(child);
    };
    child.stdout.on('data', seen);
    child.stderr.on('data', seen);
    child.on('exit', (code) => reject(new Error(`${cmd} exited ${code} before "${marker}":\n${out}`)));
  });
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await gone;
}

async function main(): Promise<void> {
  const bundle = path.join(OUT, 'bundle/e911-agent.cjs');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'e911-arm-bench-'));
  // Called through a name starting with e911ctl, the bundle is the CLI.
  const hostCtlLink = path.join(dir, 'e911ctl.cjs');
  if (existsSync(bundle)) symlinkSync(bundle, hostCtlLink);
  try {
    let ran = 0;
    for (const t of TARGETS) {
      const dist = path.join(OUT, t.name, 'dist');
      const exe = path.join(dist, 'e911-agent');
      if (!existsSync(exe) || !existsSync(bundle)) {
        console.warn(`arm bench ${t.name} SKIPPED: ${exe} not built (npm run build:arm)`);
        continue;
      }
      if (spawnSync('which', [t.qemu]).status !== 0) {
        console.warn(`arm bench ${t.name} SKIPPED: ${t.qemu} is not installed`);
        continue;
      }
      const manifest = JSON.parse(readFileSync(path.join(dist, 'manifest.json'), 'utf8')) as Manifest;
      const runtime = runtimeOf(manifest);
      if (!runtime) {
        console.warn(`arm bench ${t.name} SKIPPED: the unpacked runtime is not in ${OUT}/cache`);
        continue;
      }
      ran++;
      process.stdout.write(`-- linux-${t.name} (node ${manifest.node.version})\n`);
      const runtimeBytes = statSync(runtime).size;
      const libBytes = readdirSync(path.join(dist, 'lib')).reduce((s, f) => s + statSync(path.join(dist, 'lib', f)).size, 0);
      const exeBytes = statSync(exe).size;
      report(`${t.name} executable (raw)`, exeBytes / MB, 'MB', runtimeBytes / MB, `<= ${t.rawGoalMB} MB incl. lib/`);
      report(`${t.name} executable + lib/ (raw)`, (exeBytes + libBytes) / MB, 'MB', runtimeBytes / MB, `<= ${t.rawGoalMB} MB`);
      const tar = tarOf(dist);
      const runtimeBuf = readFileSync(runtime);
      const gzTree = gzipSync(tar, { level: 9 }).length;
      report(
        `${t.name} install tree (gzip -9)`,
        gzTree / MB,
        'MB',
        gzipSync(runtimeBuf, { level: 9 }).length / MB,
        'report only (baseline: runtime alone)',
      );
      // xz over 100 MB takes a while: once, beside the gzip of the same tree.
      const xzTree = xzSize(tar);
      if (xzTree !== null)
        report(`${t.name} install tree (xz -6)`, xzTree / MB, 'MB', gzTree / MB, `<= ${t.xzGoalMB} MB (baseline: gzip -9)`);
      else console.warn('arm bench: xz is not installed: no xz figure');

      // LD_LIBRARY_PATH: see qemuArgs in scripts/build-arm.mjs (multiarch libc vs the sysroot's).
      const q = [t.qemu, '-L', t.sysroot, '-E', `LD_LIBRARY_PATH=${t.sysroot}/lib`];
      const bare = await p50(RUNS, () => timeTo(q[0]!, [...q.slice(1), runtime, '-e', '0'], null));
      const cfg = agentConfig(path.join(dir, t.name));
      const baseExe = BASE_OUT ? path.join(BASE_OUT, t.name, 'dist/e911-agent') : null;
      if (baseExe && !existsSync(baseExe)) throw new Error(`BENCH_BASE_ARM_OUT: ${baseExe} is missing`);
      const readyOf = (file: string) => timeTo(q[0]!, [...q.slice(1), file, '--config', cfg.file], READY, UNIT_ENV);
      const readies: number[] = [];
      const baseReadies: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        // Alternating, the one that goes first switching: the load moves both alike.
        if (baseExe && i % 2) baseReadies.push(await readyOf(baseExe));
        readies.push(await readyOf(exe));
        if (baseExe && !(i % 2)) baseReadies.push(await readyOf(baseExe));
      }
      const ready = summary(readies).p50;
      report(`${t.name} agent ready, qemu (p50 of ${RUNS})`, ready, 'ms', bare, 'ratio <= 6 (baseline: its node -e 0, qemu)');
      if (baseExe) {
        report(`${t.name} agent ready, BENCH_BASE_ARM_OUT, qemu`, summary(baseReadies).p50, 'ms', bare, 'report only');
        process.stdout.write(
          `${t.name} agent ready per pair (this/base ms): ${readies.map((r, i) => `${r.toFixed(0)}/${baseReadies[i]!.toFixed(0)}`).join(' ')}\n`,
        );
      }
      // e911ctl against a running agent: the ARM one under qemu, and the same bundle on this machine's node.
      const agent = await startUntil(q[0]!, [...q.slice(1), exe, '--config', cfg.file], READY, UNIT_ENV);
      try {
        // RSS under qemu-user counts the emulator and its translated code too: only the ratio to the
        // same runtime idling under the same qemu says anything about the agent.
        const idler = spawn(q[0]!, [...q.slice(1), runtime, '-e', 'setInterval(() => {}, 1 << 30)'], { stdio: 'ignore' });
        await new Promise((r) => setTimeout(r, IDLE_MS));
        const agentRss = rssMB(agent.pid!);
        const bareRss = rssMB(idler.pid!);
        idler.kill('SIGKILL');
        report(
          `${t.name} agent RSS ${IDLE_MS / 1000} s after ready, qemu`,
          agentRss,
          'MB',
          bareRss,
          'report only (baseline: its node idling, qemu)',
        );
        const ctl = await p50(RUNS, () =>
          timeTo(q[0]!, [...q.slice(1), path.join(dist, 'e911ctl'), 'status', '--json', '--socket', cfg.socket], null),
        );
        const hostCtl = await p50(RUNS, () => timeTo(process.execPath, [hostCtlLink, 'status', '--json', '--socket', cfg.socket], null));
        report(`${t.name} e911ctl status, qemu (p50 of ${RUNS})`, ctl, 'ms', hostCtl, 'report only (baseline: same bundle, host node)');
      } finally {
        await stop(agent);
      }
    }
    if (existsSync(bundle)) {
      const cfg = agentConfig(path.join(dir, 'host'));
      const hostBare = await p50(RUNS, () => timeTo(process.execPath, ['-e', '0'], null));
      const hostReady = await p50(RUNS, () => timeTo(process.execPath, [bundle, '--config', cfg.file], READY, UNIT_ENV));
      report(`host node, same bundle: agent ready (p50 of ${RUNS})`, hostReady, 'ms', hostBare, 'report only (baseline: node -e 0, host)');
    }
    if (ran === 0) console.warn('arm bench: nothing measured (npm run build:arm first)');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
