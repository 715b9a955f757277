#!/usr/bin/env node
// Builds pjproject, pinned, as static -fPIC libraries for the voice addon, per target
// (x64 = this machine, arm64, armv7), and caches each build outside the checkout.
// docs/voice.md ("pjproject: built by the project") says why and how.
//
//   node scripts/build-pjproject.mjs [--target x64|arm64|armv7]... [--print-prefix TARGET]
//
// Where the source comes from, first that exists:
//   1. E911_PJPROJECT_SRC      a pjproject source directory or release archive (.tar.gz)
//   2. E911_DOWNLOAD_CACHE     a folder holding pjproject-<version>.tar.gz (offline machines)
//   3. <cache>/downloads       an archive an earlier setup downloaded
//   4. upstream's release archive over HTTPS (E911_PJPROJECT_URL names a mirror instead;
//      timeout E911_DOWNLOAD_TIMEOUT_S, default 120 s), kept in <cache>/downloads
// Whatever it is must match the pin below: the archive's sha256, or the git tree id of
// its contents (upstream's own archive bytes are not reproducible; its tree is).
//
// Cache: E911_CACHE_DIR (default /var/cache/e911-agent, else ~/.cache/e911-agent when that is
// not writable), folder pjproject/<version>-<target>-<key>, the key hashing everything that goes
// into the build (version, tree, target, configure flags, CFLAGS, config_site.h).
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The pin: pjproject 2.17 (tag 2.17, commit 5a457451fa2712ba18e12b01738e8ff3af2b26fd). */
export const PJPROJECT = {
  version: '2.17',
  archive: 'pjproject-2.17.tar.gz',
  // `git archive --prefix=pjproject-2.17/ 2.17 | gzip -n`: the copy offline machines keep.
  archiveSha256: '6e9b2e0ae40bb6b98bca015abdc549d2f18ab2712c1ff140ac521f95f8c3d953',
  // The tag's tree: what any archive of 2.17 must contain, byte for byte.
  treeId: '8e0cd5be08dbec86c3be27037e7485341c0480d9',
  url: 'https://github.com/pjsip/pjproject/archive/refs/tags/2.17.tar.gz',
};

/** Build targets: Debian's cross compilers and multiarch -dev packages for ARM. */
export const TARGETS = {
  x64: { triple: 'x86_64-linux-gnu', host: null },
  arm64: { triple: 'aarch64-linux-gnu', host: 'aarch64-linux-gnu' },
  armv7: { triple: 'arm-linux-gnueabihf', host: 'arm-linux-gnueabihf' },
};

// A phone: audio over ALSA, SIP over TLS and SRTP through OpenSSL, G.711 (always built in)
// and nothing else: no video, no extra codecs, no UPnP, no C++ API.
export const CONFIGURE = [
  '--disable-shared',
  '--disable-video',
  '--disable-v4l2',
  '--disable-sdl',
  '--disable-ffmpeg',
  '--disable-openh264',
  '--disable-vpx',
  '--disable-libyuv',
  '--disable-libwebrtc',
  '--disable-opencore-amr',
  '--disable-silk',
  '--disable-opus',
  '--disable-bcg729',
  '--disable-lyra',
  '--disable-gsm-codec',
  '--disable-ilbc-codec',
  '--disable-g7221-codec',
  '--disable-upnp',
  '--disable-pjsua2',
  '--disable-libuuid',
  '--with-ssl=/usr',
];
// -fPIC: the static libraries go into a shared object (the addon).
export const CFLAGS = '-O2 -fPIC';
const CONFIG_SITE = path.join(repo, 'hal/voice/pjsip/config_site.h');

export class PjprojectError extends Error {
  name = 'PjprojectError';
}

export function cacheRoot(env = process.env) {
  if (env.E911_CACHE_DIR) return path.resolve(env.E911_CACHE_DIR);
  const system = '/var/cache/e911-agent';
  try {
    fs.mkdirSync(system, { recursive: true });
    fs.accessSync(system, fs.constants.W_OK);
    return system;
  } catch {
    return path.join(os.homedir(), '.cache', 'e911-agent');
  }
}

export function buildKey(target) {
  const configSite = fs.readFileSync(CONFIG_SITE, 'utf8');
  const parts = {
    v: PJPROJECT.version,
    tree: PJPROJECT.treeId,
    target,
    triple: TARGETS[target].triple,
    configure: CONFIGURE,
    cflags: CFLAGS,
    configSite,
  };
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 12);
}

/** Where the build of a target lives (whether or not it exists yet). */
export function prefixOf(target, env = process.env) {
  return path.join(cacheRoot(env), 'pjproject', `${PJPROJECT.version}-${target}-${buildKey(target)}`);
}

const isBuilt = (prefix) =>
  fs.existsSync(path.join(prefix, 'BUILD-INFO.json')) && fs.existsSync(path.join(prefix, 'lib/pkgconfig/libpjproject.pc'));

// ---------------------------------------------------------------- verification

const sha256File = (file) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

/** The git tree id of a directory, as `git write-tree` would give for its files. */
export function gitTreeId(dir) {
  const entries = fs.readdirSync(dir, { withFileTypes: true }).map((d) => {
    const full = path.join(dir, d.name);
    if (d.isDirectory()) return { mode: '40000', name: d.name, sort: `${d.name}/`, id: gitTreeId(full) };
    if (d.isSymbolicLink())
      return { mode: '120000', name: d.name, sort: d.name, id: gitObject('blob', Buffer.from(fs.readlinkSync(full))) };
    const exec = (fs.statSync(full).mode & 0o111) !== 0;
    return { mode: exec ? '100755' : '100644', name: d.name, sort: d.name, id: gitObject('blob', fs.readFileSync(full)) };
  });
  // git orders a tree's entries by name bytes, a directory as if its name ended in '/'.
  entries.sort((a, b) => Buffer.compare(Buffer.from(a.sort), Buffer.from(b.sort)));
  const body = Buffer.concat(entries.flatMap((e) => [Buffer.from(`${e.mode} ${e.name}\0`), Buffer.from(e.id, 'hex')]));
  return gitObject('tree', body);
}
function gitObject(type, body) {
  return createHash('sha1').update(`${type} ${body.length}\0`).update(body).digest('hex');
}

// ---------------------------------------------------------------- source

function run(cmd, args, { cwd, env, log }) {
  return new Promise((resolve, reject) => {
    log.write(`\n$ ${cmd} ${args.join(' ')}\n`);
    const child = spawn(cmd, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.pipe(log, { end: false });
    child.stderr.pipe(log, { end: false });
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new PjprojectError(`${cmd} ${args.join(' ')} exited ${code} (log: ${log.path})`)),
    );
  });
}

async function download(url, file, timeoutS, say) {
  say(`downloading ${url} (timeout ${timeoutS} s)`);
  let res;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(timeoutS * 1000), redirect: 'follow' });
  } catch (err) {
    throw new PjprojectError(
      `download of ${url} failed: ${err.message}. Offline? Set E911_DOWNLOAD_CACHE to a folder holding ${PJPROJECT.archive}, or E911_PJPROJECT_SRC to a source tree.`,
    );
  }
  if (!res.ok) throw new PjprojectError(`download of ${url} failed: HTTP ${res.status}`);
  const tmp = `${file}.part-${process.pid}`;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(tmp, Buffer.from(await res.arrayBuffer()));
  fs.renameSync(tmp, file);
}

/** Finds the source (see the top of the file) and returns a description of it. */
export async function locateSource(env = process.env, say = () => {}) {
  if (env.E911_PJPROJECT_SRC) {
    const p = path.resolve(env.E911_PJPROJECT_SRC);
    if (!fs.existsSync(p)) throw new PjprojectError(`E911_PJPROJECT_SRC=${p} does not exist`);
    return fs.statSync(p).isDirectory() ? { kind: 'dir', path: p } : { kind: 'archive', path: p };
  }
  if (env.E911_DOWNLOAD_CACHE) {
    const p = path.join(path.resolve(env.E911_DOWNLOAD_CACHE), PJPROJECT.archive);
    if (fs.existsSync(p)) return { kind: 'archive', path: p };
    say(`E911_DOWNLOAD_CACHE has no ${PJPROJECT.archive}; trying the next source`);
  }
  const cached = path.join(cacheRoot(env), 'downloads', PJPROJECT.archive);
  if (!fs.existsSync(cached))
    await download(env.E911_PJPROJECT_URL ?? PJPROJECT.url, cached, Number(env.E911_DOWNLOAD_TIMEOUT_S ?? 120), say);
  return { kind: 'archive', path: cached, downloaded: true };
}

/** Unpacks (or copies) the source into dir and verifies it against the pin; returns how. */
async function unpackVerified(src, dir, log) {
  fs.mkdirSync(dir, { recursive: true });
  if (src.kind === 'archive') {
    const sum = sha256File(src.path);
    await run('tar', ['-xzf', src.path, '-C', dir, '--strip-components=1'], { cwd: dir, log });
    if (sum === PJPROJECT.archiveSha256) return `sha256 ${sum}`;
    // Another archive of the same tag (upstream's): its contents must be the tag's tree.
    const tree = gitTreeId(dir);
    if (tree !== PJPROJECT.treeId)
      throw new PjprojectError(
        `${src.path} is not pjproject ${PJPROJECT.version}: sha256 ${sum} (pinned ${PJPROJECT.archiveSha256}), tree ${tree} (pinned ${PJPROJECT.treeId})`,
      );
    return `tree ${tree}`;
  }
  await run('cp', ['-a', `${src.path}/.`, dir], { cwd: dir, log });
  fs.rmSync(path.join(dir, '.git'), { recursive: true, force: true });
  const tree = gitTreeId(dir);
  if (tree !== PJPROJECT.treeId)
    throw new PjprojectError(`${src.path} is not pjproject ${PJPROJECT.version}: tree ${tree} (pinned ${PJPROJECT.treeId})`);
  return `tree ${tree}`;
}

// ---------------------------------------------------------------- build

function need(cmd, pkg) {
  if (!process.env.PATH.split(':').some((d) => fs.existsSync(path.join(d, cmd))))
    throw new PjprojectError(`${cmd} not found: install Debian's ${pkg} (scripts/apt-packages.txt)`);
}

/** Builds one target unless its cache folder exists; returns its prefix. */
export async function buildTarget(target, { env = process.env, say = () => {} } = {}) {
  const t = TARGETS[target];
  if (!t) throw new PjprojectError(`unknown target ${target}; known: ${Object.keys(TARGETS).join(', ')}`);
  const prefix = prefixOf(target, env);
  if (isBuilt(prefix)) {
    say(`${target}: cached in ${prefix}`);
    return prefix;
  }
  if (t.host) need(`${t.host}-gcc`, `gcc-${t.host}`);
  const base = path.dirname(prefix);
  fs.mkdirSync(base, { recursive: true });
  const work = fs.mkdtempSync(path.join(base, `.work-${target}-${process.pid}-`));
  const logFile = `${prefix}.log`;
  const log = fs.createWriteStream(logFile);
  try {
    const src = await locateSource(env, say);
    log.write(`pjproject ${PJPROJECT.version} for ${target}, from ${src.path}\n`);
    const srcDir = path.join(work, 'src');
    const check = await unpackVerified(src, srcDir, log).catch((err) => {
      // A bad download must not be taken from the cache again by the next setup.
      if (src.downloaded) fs.rmSync(src.path, { force: true });
      throw err;
    });
    say(`${target}: ${src.path} verified (${check}); building, log in ${logFile}`);
    fs.copyFileSync(CONFIG_SITE, path.join(srcDir, 'pjlib/include/pj/config_site.h'));
    const configure = [...(t.host ? [`--host=${t.host}`] : []), ...CONFIGURE];
    // Cross builds: --host picks Debian's <triple>-gcc, which finds the multiarch -dev
    // packages (libssl-dev:arm64, libasound2-dev:armhf, ...) in /usr/include and /usr/lib/<triple>.
    const benv = { CFLAGS, CXXFLAGS: CFLAGS };
    await run('./aconfigure', [`--prefix=${prefix}`, ...configure], { cwd: srcDir, env: benv, log });
    await run('make', ['dep'], { cwd: srcDir, env: benv, log });
    await run('make', [`-j${Math.max(1, os.availableParallelism())}`, 'lib'], { cwd: srcDir, env: benv, log });
    // Installed into a staging folder, then moved into place at once: a killed setup leaves no
    // half-built prefix that a later one would take for a finished build.
    const stage = path.join(work, 'stage');
    await run('make', ['install', `DESTDIR=${stage}`], { cwd: srcDir, env: benv, log });
    const staged = path.join(stage, prefix);
    relocatablePc(path.join(staged, 'lib/pkgconfig/libpjproject.pc'));
    const libs = fs
      .readdirSync(path.join(staged, 'lib'))
      .filter((f) => f.endsWith('.a'))
      .sort();
    const info = {
      version: PJPROJECT.version,
      target,
      triple: t.triple,
      from: src.path,
      check,
      configure,
      cflags: CFLAGS,
      configSite: fs.readFileSync(CONFIG_SITE, 'utf8'),
      libs,
      builtAt: new Date().toISOString(),
    };
    fs.writeFileSync(path.join(staged, 'BUILD-INFO.json'), `${JSON.stringify(info, null, 2)}\n`);
    fs.rmSync(prefix, { recursive: true, force: true });
    fs.renameSync(staged, prefix);
    return prefix;
  } finally {
    log.end();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** The installed .pc names its absolute prefix; ${pcfiledir} makes the cache folder movable. */
function relocatablePc(file) {
  // biome-ignore-start lint/suspicious/noTemplateCurlyInString: ${pcfiledir} is pkg-config's own variable, written literally
  const text = fs
    .readFileSync(file, 'utf8')
    .replace(/^prefix=.*$/m, 'prefix=${pcfiledir}/../..')
    .replace(/^libdir=.*$/m, 'libdir=${pcfiledir}/../../lib')
    .replace(/^includedir=.*$/m, 'includedir=${pcfiledir}/../../include')
    .replace(/-L\S*\/lib\b/g, '-L${pcfiledir}/../../lib')
    .replace(/-I\S*\/include\b/g, '-I${pcfiledir}/../../include');
  // biome-ignore-end lint/suspicious/noTemplateCurlyInString: ${pcfiledir} is pkg-config's own variable, written literally
  fs.writeFileSync(file, text);
}

async function main(argv) {
  const targets = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--target') targets.push(argv[++i]);
    else if (argv[i] === '--print-prefix') {
      const t = argv[++i];
      if (!TARGETS[t]) throw new PjprojectError(`unknown target ${t}`);
      process.stdout.write(`${prefixOf(t)}\n`);
      return;
    } else
      throw new PjprojectError(
        `unknown argument ${argv[i]} (usage: build-pjproject.mjs [--target x64|arm64|armv7]... [--print-prefix TARGET])`,
      );
  }
  const t0 = performance.now();
  const say = (m) => process.stdout.write(`pjproject: ${m}\n`);
  // One target at a time: each build already uses every core.
  for (const target of targets.length ? targets : Object.keys(TARGETS)) {
    const t1 = performance.now();
    const prefix = await buildTarget(target, { say });
    say(`${target}: ${prefix} (${((performance.now() - t1) / 1000).toFixed(1)} s)`);
  }
  say(`done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).catch((err) => {
    process.stderr.write(`\n*** pjproject: ${err.message} ***\n`);
    if (!(err instanceof PjprojectError)) process.stderr.write(`${err.stack}\n`);
    process.exit(1);
  });
}
