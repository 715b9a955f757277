#!/usr/bin/env node
// Builds the PJSIP voice addon (hal/voice/pjsip) when pkg-config finds an
// installed pjproject; otherwise says loudly that this build cannot place
// emergency calls, and exits 0 so the rest of the agent still installs.
// pjproject itself is a system prerequisite: this script never builds it.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const addonDir = path.join(root, 'hal', 'voice', 'pjsip');
const env = { ...process.env };
// The usual install prefix on our build machines, when nothing says otherwise.
if (!env.PKG_CONFIG_PATH && fs.existsSync('/opt/pjproject/lib/pkgconfig')) {
  env.PKG_CONFIG_PATH = '/opt/pjproject/lib/pkgconfig';
}

const probe = spawnSync('pkg-config', ['--exists', 'libpjproject'], { env, stdio: 'ignore' });
if (probe.error || probe.status !== 0) {
  console.error(
    '\n*** PJSIP: libpjproject not found by pkg-config; the voice addon is NOT built; ' +
      'emergency calls cannot be placed by this build ***\n' +
      `    (PKG_CONFIG_PATH=${env.PKG_CONFIG_PATH ?? ''}; ` +
      `${probe.error ? `pkg-config: ${probe.error.message}` : 'pkg-config --exists libpjproject failed'})\n`,
  );
  process.exit(0);
}
const version = spawnSync('pkg-config', ['--modversion', 'libpjproject'], { env, encoding: 'utf8' }).stdout.trim();
console.log(`PJSIP: building the voice addon against pjproject ${version} (PKG_CONFIG_PATH=${env.PKG_CONFIG_PATH ?? ''})`);

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
if (!gyp) {
  console.error('PJSIP: node-gyp not found (npm install first)');
  process.exit(1);
}

const args = [gyp, 'rebuild'];
// Headers of the running Node: npm's nodedir, else the ones installed beside
// it (Debian/NodeSource put them in <prefix>/include/node), so no download.
const nodedir =
  env.npm_config_nodedir ??
  [path.resolve(path.dirname(process.execPath), '..')].find((p) =>
    fs.existsSync(path.join(p, 'include', 'node', 'node_api.h')),
  );
if (nodedir) args.push(`--nodedir=${nodedir}`);

const r = spawnSync(process.execPath, args, { cwd: addonDir, env, stdio: 'inherit' });
if (r.status !== 0) {
  console.error('PJSIP: node-gyp failed; the voice addon is NOT built');
  process.exit(r.status ?? 1);
}
console.log(`PJSIP: built ${path.join(addonDir, 'build', 'Release', 'e911_voice.node')}`);
