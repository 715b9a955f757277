#!/usr/bin/env node
// Builds the PJSIP voice addon (hal/voice/pjsip) for this machine against the static
// pjproject that scripts/build-pjproject.mjs builds and caches (seconds when cached),
// or against a phone maker's own pjproject named by E911_PJPROJECT_PKG_CONFIG_PATH.
// Without the addon the agent cannot place a 911 call: any failure fails setup.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { buildTarget, PjprojectError } from './build-pjproject.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const addonDir = path.join(root, 'hal', 'voice', 'pjsip');

function fail(message) {
  process.stderr.write(`\n*** PJSIP: ${message}; the voice addon is NOT built and this build cannot place emergency calls ***\n`);
  process.exit(1);
}

const t0 = performance.now();
const env = { ...process.env };
const vendor = env.E911_PJPROJECT_PKG_CONFIG_PATH;
if (vendor) {
  // A phone maker's pjproject (vendor SDK) replaces ours: only its .pc is consulted.
  env.PKG_CONFIG_PATH = vendor;
  console.log(`PJSIP: pjproject from E911_PJPROJECT_PKG_CONFIG_PATH=${vendor}`);
} else {
  try {
    // This machine's own target (a build host may be an ARM machine too).
    const hostTarget = { x64: 'x64', arm64: 'arm64', arm: 'armv7' }[process.arch] ?? 'x64';
    const prefix = await buildTarget(hostTarget, { say: (m) => console.log(`pjproject: ${m}`) });
    env.PKG_CONFIG_PATH = path.join(prefix, 'lib', 'pkgconfig');
  } catch (err) {
    fail(err instanceof PjprojectError ? err.message : (err.stack ?? String(err)));
  }
  console.log(`PJSIP: pjproject step took ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}
// Only the chosen pjproject: never one that happens to be installed system-wide.
env.PKG_CONFIG_LIBDIR = env.PKG_CONFIG_PATH;

const probe = spawnSync('pkg-config', ['--modversion', 'libpjproject'], { env, encoding: 'utf8' });
if (probe.error || probe.status !== 0)
  fail(`pkg-config finds no libpjproject in ${env.PKG_CONFIG_PATH} (${probe.error?.message ?? probe.stderr.trim()})`);
console.log(`PJSIP: building the voice addon against pjproject ${probe.stdout.trim()}`);

// node-gyp: the project's own, else the one npm ships.
function nodeGypScript() {
  try {
    return createRequire(path.join(root, 'package.json')).resolve('node-gyp/bin/node-gyp.js');
  } catch {
    const npmDir = env.npm_execpath ? path.resolve(path.dirname(env.npm_execpath), '..') : '/usr/lib/node_modules/npm';
    const bundled = path.join(npmDir, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
    return fs.existsSync(bundled) ? bundled : undefined;
  }
}
const gyp = nodeGypScript();
if (!gyp) fail('node-gyp not found (npm install first)');

const args = [gyp, 'rebuild', '--jobs=2'];
// Headers of the running Node: npm's nodedir, else the ones installed beside
// it (Debian/NodeSource put them in <prefix>/include/node), so no download.
const nodedir =
  env.npm_config_nodedir ??
  [path.resolve(path.dirname(process.execPath), '..')].find((p) => fs.existsSync(path.join(p, 'include', 'node', 'node_api.h')));
if (nodedir) args.push(`--nodedir=${nodedir}`);

const r = spawnSync(process.execPath, args, { cwd: addonDir, env, stdio: 'inherit' });
if (r.status !== 0) fail('node-gyp failed');
const addon = path.join(addonDir, 'build', 'Release', 'e911_voice.node');
// Loading it here catches a link that succeeded with symbols still missing.
const load = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(addon)})`], { encoding: 'utf8' });
if (load.status !== 0) fail(`the built addon does not load: ${load.stderr.trim().split('\n').slice(0, 3).join(' ')}`);
console.log(
  `PJSIP: built ${addon} (${(fs.statSync(addon).size / 1e6).toFixed(1)} MB) in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
);
