// The required-components gate (docs/testing.md). Every test that cannot run
// without something outside Node (the PJSIP addon, a broker, SIPp, root for
// network namespaces, Chromium, the ARM build, ...) asks here first:
//
//   const gate = requires('emergency calls through the real agent', ['voice', 'sipp', 'broker']);
//   describe.skipIf(gate.skip)('...', () => { ... });
//
// Outside the gate a missing component skips the suite with one loud line on
// stderr. Under the gate (E911_REQUIRE, a comma list or `all`; .ci/run sets
// `all`) the suite is skipped AND a test named after it fails, naming what is
// missing, so CI can never go green by skipping.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { it } from 'vitest';
import { pjsipAvailability } from '../../hal/voice/pjsip/index.js';
import { netnsAvailable } from './netns.js';
import { postgresMissing } from './postgres.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export const COMPONENTS = [
  'voice', // the PJSIP addon (hal/voice/pjsip), built by scripts/build-voice.mjs
  'broker', // Mosquitto
  'sipp', // SIPp (Debian sip-tester)
  'espeak', // espeak-ng, the server's speech synthesizer for security-desk calls
  'kamailio',
  'netns', // root and `ip netns`: network namespaces joined by veth pairs
  'lldpd',
  'dhcp', // dnsmasq (the server) and udhcpc (the client whose hook hands options to the agent)
  'socat', // the pty pair of the simulated handset
  'xmllint', // PIDF-LO schema validation
  'browser', // Chromium for the portal tests
  'arm', // qemu-user, the cross sysroots and build/arm (npm run build:arm); unix-dgram for the notify check
  'python', // python3 plays systemd's NOTIFY_SOCKET
  'systemd', // systemd-analyze verifies the phone's unit
  'root', // root and setpriv: clients run as another user (control socket permissions)
  'faketime', // libfaketime: a process's wall clock jumped a day without touching the host's (chaos-clock)
  'postgres', // PostgreSQL's initdb and pg_ctl (Debian postgresql): the server's store on PostgreSQL
] as const;
export type Component = (typeof COMPONENTS)[number];

/** A component with its own check, for tests that need a narrower probe (one ARM target, say). */
export interface Need {
  component: Component;
  /** Why it is missing here, or null when present. */
  missing: string | null;
}

export class RequiredComponentMissing extends Error {
  constructor(
    readonly what: string,
    readonly missing: Need[],
  ) {
    super(
      `${what}: required component${missing.length > 1 ? 's' : ''} missing (E911_REQUIRE=${process.env.E911_REQUIRE}): ` +
        missing.map((m) => `${m.component}: ${m.missing}`).join('; '),
    );
    this.name = 'RequiredComponentMissing';
  }
}

/** Parses E911_REQUIRE: `all`, names separated by commas, `-name` to leave one out of `all`. */
export function parseRequire(value: string | undefined): Set<Component> {
  const out = new Set<Component>();
  for (const raw of (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const drop = raw.startsWith('-');
    const name = drop ? raw.slice(1) : raw;
    const names = name === 'all' ? [...COMPONENTS] : [name];
    for (const n of names) {
      // A typo must not silently require nothing.
      if (!(COMPONENTS as readonly string[]).includes(n))
        throw new Error(`E911_REQUIRE: unknown component "${n}" (known: all, ${COMPONENTS.join(', ')})`);
      if (drop) out.delete(n as Component);
      else out.add(n as Component);
    }
  }
  return out;
}

const onPath = (cmd: string): boolean => (process.env.PATH ?? '').split(':').some((d) => d && existsSync(path.join(d, cmd)));
const runs = (cmd: string, args: string[]): boolean => spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;

export const CHROMIUM = process.env.E911_CHROMIUM ?? '/usr/bin/chromium';
export const MOSQUITTO_BIN = ['/usr/sbin/mosquitto', '/usr/bin/mosquitto'].find((p) => existsSync(p));
export const SIPP_BIN = ['/usr/bin/sipp', '/usr/local/bin/sipp'].find((p) => existsSync(p));
export const KAMAILIO_BIN = ['/usr/sbin/kamailio', '/usr/local/sbin/kamailio'].find((p) => existsSync(p));
export const ARM_OUT = process.env.E911_ARM_OUT ?? path.join(repo, 'build/arm');
export const ARM_TARGETS = [
  { name: 'arm64', qemu: 'qemu-aarch64-static', sysroot: '/usr/aarch64-linux-gnu', arch: 'arm64' },
  { name: 'armv7', qemu: 'qemu-arm-static', sysroot: '/usr/arm-linux-gnueabihf', arch: 'arm' },
] as const;
export type ArmTarget = (typeof ARM_TARGETS)[number];

/** Why one ARM target cannot be smoke-tested here, or null. */
export function armMissing(t: ArmTarget): string | null {
  if (!onPath(t.qemu)) return `${t.qemu} is not installed (Debian qemu-user-static; scripts/apt-packages.txt)`;
  if (!existsSync(path.join(t.sysroot, 'lib'))) return `${t.sysroot} is missing (Debian libc6-dev-*-cross)`;
  if (!existsSync(path.join(ARM_OUT, t.name, 'dist/e911-agent')))
    return `${ARM_OUT}/${t.name}/dist/e911-agent is not built: run \`npm run build:arm\``;
  return null;
}

/** libfaketime's thread-safe build (Debian: /usr/lib/<triplet>/faketime/), or null. */
export function fakeTimeLibrary(): string | null {
  for (const dir of [
    '/usr/lib/x86_64-linux-gnu',
    '/usr/lib/aarch64-linux-gnu',
    '/usr/lib/arm-linux-gnueabihf',
    '/usr/lib',
    '/usr/local/lib',
  ]) {
    const lib = path.join(dir, 'faketime', 'libfaketimeMT.so.1');
    if (existsSync(lib)) return lib;
  }
  return null;
}

/** Why the host's unix-dgram addon (an optional dependency) cannot be used, or null. */
export function unixDgramMissing(): string | null {
  try {
    createRequire(import.meta.url)('unix-dgram');
    return null;
  } catch (err) {
    return `the unix-dgram addon does not load (${(err as Error).message})`;
  }
}

const PROBES: Record<Component, () => string | null> = {
  voice: () => {
    const a = pjsipAvailability();
    return a.available ? null : `${a.message} (scripts/setup.sh builds it: node scripts/build-voice.mjs)`;
  },
  broker: () => (MOSQUITTO_BIN ? null : 'mosquitto is not installed (scripts/apt-packages.txt)'),
  sipp: () => (SIPP_BIN ? null : 'sipp is not installed (Debian sip-tester)'),
  espeak: () => (onPath('espeak-ng') ? null : 'espeak-ng is not installed (scripts/apt-packages.txt)'),
  kamailio: () => (KAMAILIO_BIN ? null : 'kamailio is not installed'),
  netns: () => {
    const a = netnsAvailable();
    return a.ok ? null : a.reason;
  },
  lldpd: () => (runs('lldpd', ['-v']) ? null : 'lldpd is not installed'),
  dhcp: () => {
    const gone = ['dnsmasq', 'udhcpc'].filter((c) => !onPath(c));
    return gone.length ? `${gone.join(' and ')} not installed (Debian dnsmasq-base, udhcpc)` : null;
  },
  socat: () => (['/usr/bin/socat', '/usr/local/bin/socat'].some((p) => existsSync(p)) ? null : 'socat is not installed'),
  xmllint: () => (runs('xmllint', ['--version']) ? null : 'xmllint is not installed (Debian libxml2-utils)'),
  browser: () => (existsSync(CHROMIUM) ? null : `Chromium not found at ${CHROMIUM} (apt package chromium, or set E911_CHROMIUM)`),
  arm: () => ARM_TARGETS.map(armMissing).find((r) => r !== null) ?? unixDgramMissing(),
  python: () => (runs('python3', ['-c', '1']) ? null : 'python3 is not installed'),
  systemd: () => (existsSync('/usr/bin/systemd-analyze') ? null : 'systemd-analyze is not installed (Debian systemd)'),
  faketime: () => (fakeTimeLibrary() ? null : 'libfaketime is not installed (Debian faketime)'),
  postgres: () => postgresMissing(),
  root: () =>
    process.getuid?.() !== 0
      ? 'not running as root'
      : existsSync('/usr/bin/setpriv')
        ? null
        : 'setpriv is not installed (Debian util-linux)',
};

const probed = new Map<Component, string | null>();
/** Why a component is missing here, or null; probed once per test file. */
export function componentMissing(c: Component): string | null {
  if (!probed.has(c)) probed.set(c, PROBES[c]());
  return probed.get(c)!;
}

export interface Gate {
  /** True when the guarded tests must not run (something is missing). */
  skip: boolean;
  missing: Need[];
}

/** Pure decision, for unit tests: what to do given what is missing and what is required. */
export function decide(missing: Need[], required: Set<Component>): { skip: boolean; fail: Need[] } {
  return { skip: missing.length > 0, fail: missing.filter((m) => required.has(m.component)) };
}

/**
 * Gate for a suite, a test or a part of a test. Call it at collection time (top
 * level of the test file, or inside a describe body): under the gate it
 * registers a failing test there.
 */
export function requires(what: string, needs: (Component | Need)[]): Gate {
  const required = parseRequire(process.env.E911_REQUIRE);
  const missing = needs
    .map((n): Need => (typeof n === 'string' ? { component: n, missing: componentMissing(n) } : n))
    .filter((n) => n.missing !== null);
  const { skip, fail } = decide(missing, required);
  if (fail.length > 0) {
    const err = new RequiredComponentMissing(what, fail);
    it(`requires ${[...new Set(fail.map((f) => f.component))].join(', ')}: ${what}`, () => {
      throw err;
    });
  } else if (skip) {
    console.warn(
      `\n!!! SKIPPED ${what}: ${missing.map((m) => `${m.component} missing: ${m.missing}`).join('; ')} (E911_REQUIRE=all makes this a failure)\n`,
    );
  }
  return { skip, missing };
}
