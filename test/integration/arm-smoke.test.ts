// The ARM executables (scripts/build-arm.mjs) under qemu-user with Debian's cross
// sysroots: each starts, opens its SQLite store, connects to a real Mosquitto,
// applies a signed pushed address, answers its own e911ctl, dials 911 through the
// PJSIP addon it carries to a SIPp PSAP (location and callback in the INVITE),
// tells systemd it is ready, and stops cleanly on SIGTERM. The test never builds:
// `npm run build:arm` does.
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProvisioningServer } from '../../provisioning/server/server.js';
import { generateSigningKeyPair, privateKeyFromText } from '../../provisioning/protocol/signing.js';
import type { AddressDocument } from '../../provisioning/protocol/address.js';
import { sampleAddress } from '../helpers/address.js';
import type { AddressStatePayload } from '../../provisioning/protocol/messages.js';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { startSipp } from '../helpers/sip.js';
import { freePort } from '../helpers/ports.js';
import { hdr, multipartParts, receivedInvites } from '../helpers/emergency.js';
import { checkPidfTexts } from '../helpers/pidf-check.js';
import { ARM_OUT, ARM_TARGETS, armMissing, requires, unixDgramMissing, type ArmTarget } from '../helpers/require.js';

// Under emulation the runtime starts in seconds, not milliseconds.
const STEP_MS = 60_000;
const PSAP = path.resolve(import.meta.dirname, '..', 'fixtures', 'emergency', 'psap.xml');

const TARGETS = ARM_TARGETS;
// The systemd notify check needs the host's unix-dgram addon (an optional dependency):
// part of the `arm` component, so under the gate it is never silently left out.
const notifyGate = requires('arm-smoke: READY/STOPPING on NOTIFY_SOCKET', [{ component: 'arm', missing: unixDgramMissing() }]);

interface NotifySink {
  path: string;
  messages: string[];
  close(): void;
}

/** A datagram socket standing in for systemd's NOTIFY_SOCKET (Node has none: the host's unix-dgram addon). */
function notifySink(dir: string): NotifySink | null {
  if (notifyGate.skip) return null;
  const unixDgram: { createSocket(type: 'unix_dgram', cb: (buf: Buffer) => void): { bind(p: string): void; close(): void } } =
    createRequire(import.meta.url)('unix-dgram');
  const file = path.join(dir, 'notify.sock');
  const messages: string[] = [];
  const sock = unixDgram.createSocket('unix_dgram', (buf) => messages.push(buf.toString()));
  sock.bind(file);
  return { path: file, messages, close: () => sock.close() };
}

async function until<T>(
  what: string,
  probe: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  timeoutMs = STEP_MS,
  log = () => '',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${log()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function within<T>(p: Promise<T>, what: string, log: () => string, ms = STEP_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>(
    (_, reject) => (timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}\n${log()}`)), ms)),
  );
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** Runs the ARM program once under qemu and returns its output. */
function runArm(t: ArmTarget, program: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(t.qemu, ['-L', t.sysroot, '-E', `LD_LIBRARY_PATH=${t.sysroot}/lib`, program, ...args], {
      env: { PATH: process.env.PATH, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function sampleDoc(deviceId: string): AddressDocument {
  return sampleAddress({ deviceId, issuedAt: new Date().toISOString() });
}

for (const t of TARGETS) {
  // A missing build/arm is a failure under the gate: the test never builds, setup.sh does.
  const gate = requires(`arm-smoke linux-${t.name}`, [{ component: 'arm', missing: armMissing(t) }, 'broker', 'sipp', 'xmllint']);

  describe.skipIf(gate.skip)(`ARM executable linux-${t.name} under ${t.qemu}`, () => {
    // Run from a copy outside the repository, as installed on a phone (/opt/e911-agent): from
    // build/arm a path resolved beside the executable would still find the repository's
    // node_modules, hiding a package the bundle does not carry.
    let exe: string;
    let ctl: string;
    let broker: Mosquitto;
    let server: ProvisioningServer;
    let dir: string;
    let publicKey: string;

    beforeAll(async () => {
      dir = mkdtempSync(path.join(os.tmpdir(), `e911-arm-${t.name}-`));
      const installed = path.join(dir, 'opt', 'e911-agent');
      cpSync(path.join(ARM_OUT, t.name, 'dist'), installed, { recursive: true, verbatimSymlinks: true });
      exe = path.join(installed, 'e911-agent');
      ctl = path.join(installed, 'e911ctl');
      broker = await startMosquitto();
      const pair = generateSigningKeyPair();
      publicKey = pair.publicKey;
      server = new ProvisioningServer({
        brokerUrl: broker.url,
        privateKey: privateKeyFromText(pair),
        log: pino({ level: 'silent' }),
        clientId: `arm-smoke-server-${t.name}-${process.pid}`,
      });
      await server.start();
    }, STEP_MS);

    afterAll(async () => {
      await server?.stop();
      await broker?.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it(
      'loads every addon it carries in lib/ with its own runtime',
      async () => {
        const r = await runArm(t, exe, ['--check-native']);
        expect(r.code, r.stderr).toBe(0);
        const report = JSON.parse(r.stdout) as { arch: string; addons: { file: string; ok: boolean; error?: string }[] };
        expect(report.arch).toBe(t.arch);
        expect(report.addons.filter((a) => !a.ok)).toEqual([]);
        expect(report.addons.map((a) => a.file)).toEqual(
          expect.arrayContaining(['better_sqlite3.node', 'serialport.node', 'e911_voice.node']),
        );
      },
      STEP_MS,
    );

    it(
      'starts, applies a signed pushed address, answers e911ctl, dials 911 to a SIPp PSAP, stops on SIGTERM',
      async () => {
        const deviceId = `arm-${t.name}`;
        const psapPort = await freePort();
        const socketPath = path.join(dir, 'control.sock');
        const dataDir = path.join(dir, 'data');
        const configFile = path.join(dir, 'config.json');
        writeFileSync(
          configFile,
          JSON.stringify({
            deviceId,
            dataDir,
            serverPublicKey: publicKey,
            logLevel: 'info',
            broker: { urls: [broker.url], reconnectMinMs: 100, reconnectMaxMs: 1000 },
            control: { socketPath },
            sip: { bindAddress: '127.0.0.1', publicAddress: '127.0.0.1', port: await freePort(), rtpPort: await freePort(), sound: 'null' },
            emergency: { routes: { primary: `sip:127.0.0.1:${psapPort}` } },
            // Gathered at once: status shows it ready (or failed) while the phone runs.
            diagnostics: { inventoryDelayMs: 0 },
          }),
        );
        const notify = notifySink(dir);
        const online = new Promise<void>((resolve) =>
          server.on('status', (id, s) => {
            if (id === deviceId && s.state === 'online') resolve();
          }),
        );
        const applied = new Promise<AddressStatePayload>((resolve) =>
          server.on('address-state', (id, s) => {
            if (id === deviceId && s.version === 1) resolve(s);
          }),
        );

        const child = spawn(t.qemu, ['-L', t.sysroot, '-E', `LD_LIBRARY_PATH=${t.sysroot}/lib`, exe, '--config', configFile], {
          env: { PATH: process.env.PATH, ...(notify ? { NOTIFY_SOCKET: notify.path } : {}) },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let log = '';
        child.stdout.on('data', (d: Buffer) => (log += d.toString()));
        child.stderr.on('data', (d: Buffer) => (log += d.toString()));
        const exited = new Promise<number | string>((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
        let appliedHash = '';
        try {
          await until(
            'agent ready',
            () => log.includes('"msg":"agent ready"'),
            STEP_MS,
            () => log,
          );
          await within(online, 'the phone online at the server', () => log);
          await server.pushAddress(sampleDoc(deviceId));
          const state = await within(applied, 'address/state version 1 at the server', () => log);
          appliedHash = state.hash;

          const addr = await runArm(t, ctl, ['address', '--json', '--socket', socketPath]);
          expect(addr.code, addr.stderr).toBe(0);
          const answer = JSON.parse(addr.stdout) as { ok: boolean; result: { version: number; hash: string; doc: AddressDocument } };
          expect(answer.ok).toBe(true);
          expect(answer.result.version).toBe(1);
          expect(answer.result.hash).toBe(state.hash);
          expect(answer.result.doc.civic).toEqual(sampleDoc(deviceId).civic);

          // The system inventory runs systeminformation in a worker thread: a single executable has
          // no node_modules, so the package must be carried in it (it once failed here: "Cannot find module").
          let inventory: { state: string; error?: string; inventory?: { os: { arch: string }; memory: { totalBytes: number } } } = {
            state: 'pending',
          };
          await until(
            'the inventory gathered',
            async () => {
              const st = await runArm(t, ctl, ['--json', '--socket', socketPath, 'status']);
              expect(st.code, st.stderr).toBe(0);
              inventory = (JSON.parse(st.stdout) as { result: { inventory: typeof inventory } }).result.inventory;
              return inventory.state !== 'pending';
            },
            STEP_MS,
            () => `${JSON.stringify(inventory)}\n${log}`,
          );
          expect(inventory, log).toMatchObject({ state: 'ready' });
          expect(inventory.inventory!.memory.totalBytes).toBeGreaterThan(0);

          // 911 through the addon this executable carries: the PSAP answers only an INVITE with
          // Geolocation, Geolocation-Routing, a PIDF-LO part and the callback (else 424).
          const psap = await startSipp({ scenario: PSAP, port: psapPort, timeoutSec: 60 });
          try {
            const dial = await runArm(t, ctl, ['--json', '--socket', socketPath, 'dial', '911']);
            expect(dial.code, dial.stdout + dial.stderr).toBe(0);
            expect(JSON.parse(dial.stdout)).toMatchObject({ ok: true, result: { kind: 'emergency', placed: true, route: 'primary' } });
            await until(
              'the ACK at the PSAP',
              () => /ACK /.test(psap.messages()),
              STEP_MS,
              () => `${psap.messages()}\n${log}`,
            );
            const hangup = await runArm(t, ctl, ['--json', '--socket', socketPath, 'hangup']);
            expect(hangup.code, hangup.stdout + hangup.stderr).toBe(0);
            expect((await psap.exited).code, psap.messages()).toBe(0);
            const invites = receivedInvites(psap.messages());
            expect(invites).toHaveLength(1);
            const inv = invites[0]!;
            expect(hdr(inv, 'Priority')).toBe('emergency');
            expect(hdr(inv, 'Geolocation-Routing')).toBe('yes');
            expect(hdr(inv, 'P-Asserted-Identity')).toContain('<tel:+14085550100>');
            const pidf = multipartParts(inv).find((p) =>
              /application\/pidf\+xml/.test(p.headers.find((h) => h.name.toLowerCase() === 'content-type')?.value ?? ''),
            );
            expect(pidf, 'the INVITE has a PIDF-LO part').toBeDefined();
            const cid = pidf!.headers.find((h) => h.name.toLowerCase() === 'content-id')!.value.replace(/^<|>$/g, '');
            expect(hdr(inv, 'Geolocation')).toBe(`<cid:${cid}>`);
            const [check] = checkPidfTexts([pidf!.body]);
            expect(check!.ok, check!.schemaErrors + check!.namespaceErrors.join()).toBe(true);
            expect(pidf!.body).toContain('<ca:RD>Main</ca:RD>');
          } finally {
            await psap.close();
          }

          if (notify)
            await until(
              'READY=1 on NOTIFY_SOCKET',
              () => notify.messages.some((m) => m.includes('READY=1')),
              STEP_MS,
              () => notify.messages.join('|'),
            );
        } finally {
          child.kill('SIGTERM');
        }
        const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r('no exit within 20 s'), 20_000))]);
        if (code === 'no exit within 20 s') child.kill('SIGKILL');
        expect(code, log).toBe(0);
        expect(log).toContain('"msg":"agent stopped"');
        if (notify) {
          expect(notify.messages.some((m) => m.includes('STOPPING=1'))).toBe(true);
          notify.close();
        }
        // The store the ARM build wrote is the same format the host reads.
        const db = new Database(path.join(dataDir, 'agent.db'), { readonly: true });
        try {
          const row = db.prepare('SELECT version, hash FROM address WHERE id = 1').get() as { version: number; hash: string };
          expect(row).toEqual({ version: 1, hash: appliedHash });
          expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
        } finally {
          db.close();
        }
      },
      3 * STEP_MS,
    );
  });
}
