// 911 whatever the store says, end to end: real agents (dist/agent/main.js) with
// the PJSIP addon whose data folder is read-only, full (a small tmpfs), corrupt,
// or written by a newer agent. Each places a 911 call that SIPp (the PSAP)
// answers; the emergency-call event then reaches the reference server through
// Mosquitto exactly once: at once for corrupt and too-new, after the folder is
// made writable (or the disk freed) for the others.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { DB_FILE, Store } from '../../agent/store/store.js';
import { MIGRATIONS } from '../../agent/store/migrations.js';
import type { EventPayload } from '../../provisioning/protocol/messages.js';
import { ProvisioningServer } from '../../provisioning/server/server.js';
import { agentConfig, spawnAgent, waitFor, type AgentProcess } from '../helpers/agent.js';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { startSipp } from '../helpers/sip.js';
import { freePort } from '../helpers/ports.js';
import { sampleAddress, testKeys } from '../helpers/address.js';
import { silentLog } from '../helpers/log.js';
import { requires } from '../helpers/require.js';
import { e911ctl, receivedInvites, staleBuild } from '../helpers/emergency.js';

const PSAP_ANY = path.resolve(import.meta.dirname, '..', 'fixtures', 'emergency', 'psap-any.xml');
const isRoot = process.getuid?.() === 0;
const gate = requires('911 with an unavailable store (real agent, PJSIP, SIPp, Mosquitto)', [
  'voice',
  'sipp',
  'broker',
  // Read-only binds and a small tmpfs: root ignores file modes, so mounts are how a folder is denied here.
  { component: 'netns', missing: isRoot ? null : 'mounts need root' },
]);
const stale = staleBuild(['agent/main.ts', 'agent/root.ts', 'agent/store/store.ts', 'agent/errors.ts', 'agent/events/held-events.ts']);

/** Polls an async condition until it holds; fails with why() after timeoutMs. */
async function until(cond: () => Promise<boolean>, timeoutMs: number, why: () => string | Promise<string> = () => ''): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms. ${await why()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.skipIf(gate.skip)('911 when the agent store cannot be used', () => {
  const keys = testKeys();
  let dir: string;
  let broker: Mosquitto;
  let server: ProvisioningServer;
  const received: EventPayload[] = [];
  const agents: AgentProcess[] = [];
  const mounts: string[] = [];

  beforeAll(async () => {
    if (stale) throw new Error(stale);
    dir = mkdtempSync(path.join(os.tmpdir(), 'e911-store-away-'));
    broker = await startMosquitto();
    server = new ProvisioningServer({
      brokerUrl: broker.url,
      privateKey: keys.privateKey,
      log: silentLog(),
      protocolVersion: 5,
      clientId: `srv-${path.basename(dir)}`,
    });
    server.on('event', (e: EventPayload) => received.push(e));
    await server.start();
  }, 30_000);

  afterAll(async () => {
    for (const p of agents) {
      p.child.kill('SIGTERM');
      await p.exited;
    }
    await server?.stop();
    await broker?.close();
    for (const m of mounts.reverse()) spawnSync('umount', [m]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function startAgent(name: string, dataDir: string) {
    const psapPort = await freePort();
    const setup = agentConfig(
      path.join(dir, `agent-${name}`),
      { deviceId: `phone-${name}`, brokerUrl: broker.url, serverPublicKey: keys.pair.publicKey },
      {
        dataDir,
        sip: { bindAddress: '127.0.0.1', publicAddress: '127.0.0.1', port: await freePort(), rtpPort: await freePort(), sound: 'null' },
        // No address in a store that is away: the fallback route, which is this PSAP.
        emergency: { routes: { primary: `sip:127.0.0.1:${psapPort}`, fallback: `sip:127.0.0.1:${psapPort}` } },
        recovery: { minMs: 50, maxMs: 200 },
      },
    );
    const proc = await spawnAgent(setup);
    agents.push(proc);
    return { ...setup, deviceId: `phone-${name}`, proc, psapPort };
  }
  type A = Awaited<ReturnType<typeof startAgent>>;

  /** 911 through PJSIP to SIPp: answered (ACK at the PSAP), then hung up. */
  async function call911(a: A) {
    const sipp = await startSipp({ scenario: PSAP_ANY, port: a.psapPort, timeoutSec: 20 });
    try {
      const r = await e911ctl(a.socketPath, 'dial', '911');
      expect(r.json.ok, JSON.stringify(r.json)).toBe(true);
      expect(r.json.result).toMatchObject({ kind: 'emergency', placed: true });
      await waitFor(
        () => /ACK /.test(sipp.messages()),
        10_000,
        () => `no ACK at the PSAP.\n${sipp.messages()}\n${a.proc.output()}`,
      );
      expect((await e911ctl(a.socketPath, 'hangup')).code).toBe(0);
      expect((await sipp.exited).code).toBe(0);
      expect(receivedInvites(sipp.messages())).toHaveLength(1);
    } finally {
      await sipp.close();
    }
  }

  const callEvents = (a: A) => received.filter((e) => e.deviceId === a.deviceId && e.type === 'emergency-call');
  async function status(a: A) {
    return (await e911ctl(a.socketPath, 'status')).json.result as {
      store: { available: boolean; unavailable?: { code: string }; held: { emergencyEvents: number } };
    };
  }
  /** The server got the emergency event, once, complete; the phone's outbox empties (the server confirmed it). */
  async function deliveredOnce(a: A) {
    await waitFor(
      () => callEvents(a).length > 0,
      15_000,
      () => `no emergency-call at the server.\n${a.proc.output()}`,
    );
    await waitFor(
      () => callEvents(a).some((e) => e.data.recorded === 'complete'),
      15_000,
      () => a.proc.output(),
    );
    const st = async () => (await e911ctl(a.socketPath, 'status')).json.result as { outbox?: { backlog: number }; link?: unknown };
    // On failure: the phone's outbox and link, and the rows its database really holds.
    await until(
      async () => (await st()).outbox?.backlog === 0,
      15_000,
      async () => {
        const s = await st();
        const db = new Database(path.join(a.raw.dataDir as string, DB_FILE), { readonly: true });
        try {
          return `${JSON.stringify({ outbox: s.outbox, link: s.link, rows: db.prepare('SELECT seq, type FROM outbox').all() })}\n${a.proc.output()}`;
        } finally {
          db.close();
        }
      },
    );
    expect(new Set(callEvents(a).map((e) => e.id)).size).toBe(1);
    const ev = callEvents(a).find((e) => e.data.recorded === 'complete')!;
    expect(ev.data).toMatchObject({ numberDialed: '911', placed: true });
  }

  it('a read-only data folder: 911 goes out at once; the event is stored and delivered once the folder is writable', async () => {
    const src = path.join(dir, 'ro-src');
    const ro = path.join(dir, 'ro');
    mkdirSync(src);
    mkdirSync(ro);
    execFileSync('mount', ['--bind', src, ro]);
    mounts.push(ro);
    execFileSync('mount', ['-o', 'remount,bind,ro', ro]);
    const a = await startAgent('ro', path.join(ro, 'db'));
    expect((await status(a)).store).toMatchObject({ available: false, unavailable: { code: 'store-access-denied' } });
    await call911(a);
    await waitFor(
      () => a.proc.output().includes('emergency event not stored'),
      5000,
      () => a.proc.output(),
    );
    expect(callEvents(a)).toEqual([]); // nothing reaches the server while the store is away: the link waits for it
    execFileSync('mount', ['-o', 'remount,bind,rw', ro]);
    await deliveredOnce(a);
    expect(existsSync(path.join(src, 'db', DB_FILE))).toBe(true);
  });

  it('a full disk (a small tmpfs, filled): 911 goes out; the event is delivered once space is freed', async () => {
    const mnt = path.join(dir, 'full');
    mkdirSync(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt]);
    mounts.push(mnt);
    // Fill it to the last block (dd stops with ENOSPC).
    spawnSync('dd', ['if=/dev/zero', `of=${path.join(mnt, 'filler')}`, 'bs=4k']);
    const a = await startAgent('full', path.join(mnt, 'db'));
    const st = await status(a);
    expect(st.store.available).toBe(false);
    expect(['store-disk-full', 'store-io', 'store-access-denied']).toContain(st.store.unavailable?.code);
    await call911(a);
    expect(callEvents(a)).toEqual([]);
    rmSync(path.join(mnt, 'filler'));
    await deliveredOnce(a);
  });

  it('a disk that fills while the agent runs: an address push whose write fails is reported and applied once space is freed; 911 goes out meanwhile', async () => {
    const mnt = path.join(dir, 'fills');
    mkdirSync(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mnt]);
    mounts.push(mnt);
    const a = await startAgent('fills', path.join(mnt, 'db'));
    await until(
      async () => ((await e911ctl(a.socketPath, 'status')).json.result as { link: { state: string } }).link.state === 'online',
      10_000,
    );
    // An empty WAL first: SQLite writes over a WAL's frames already backfilled without growing the
    // file, so a filled disk would fail only the replay-floor file and the push would apply (CI).
    const db = new Database(path.join(mnt, 'db', DB_FILE));
    try {
      await until(async () => (db.pragma('wal_checkpoint(TRUNCATE)') as { busy: number }[])[0]!.busy === 0, 5000);
    } finally {
      db.close();
    }
    spawnSync('dd', ['if=/dev/zero', `of=${path.join(mnt, 'filler')}`, 'bs=4k']);
    await server.pushAddress(sampleAddress({ deviceId: a.deviceId, version: 3 }));
    await waitFor(
      () => a.proc.output().includes('part failed'),
      10_000,
      () => a.proc.output(),
    );
    expect(a.proc.child.exitCode).toBeNull();
    const address = async () => (await e911ctl(a.socketPath, 'status')).json.result as { address: { version: number } | null };
    expect((await address()).address).toBeNull();
    await call911(a);
    rmSync(path.join(mnt, 'filler'));
    await until(
      async () => (await address()).address?.version === 3,
      15_000,
      () => a.proc.output(),
    );
    await deliveredOnce(a);
    await waitFor(
      () => received.some((e) => e.deviceId === a.deviceId && e.type === 'part-failed' && e.data.part === 'address'),
      15_000,
      () => JSON.stringify(received.filter((e) => e.deviceId === a.deviceId).map((e) => e.type)),
    );
  });

  it('a corrupt database: moved aside and reported, a fresh store, 911 goes out and is delivered', async () => {
    const dataDir = path.join(dir, 'corrupt-db');
    mkdirSync(dataDir);
    writeFileSync(path.join(dataDir, DB_FILE), Buffer.alloc(16384, 0x5a));
    const a = await startAgent('corrupt', dataDir);
    expect((await status(a)).store.available).toBe(true);
    const kept = readdirSync(dataDir).filter((f) => f.startsWith(`${DB_FILE}.corrupt-`));
    expect(kept).toHaveLength(1);
    expect(readFileSync(path.join(dataDir, kept[0]!))).toEqual(Buffer.alloc(16384, 0x5a));
    await call911(a);
    await deliveredOnce(a);
    await waitFor(() => received.some((e) => e.deviceId === a.deviceId && e.type === 'store-incident'), 10_000);
  });

  it('a database written by a newer agent: kept untouched; the agent runs on a store in memory; 911 goes out and is delivered', async () => {
    const dataDir = path.join(dir, 'new-db');
    new Store({ dataDir, log: silentLog() }).close();
    const file = path.join(dataDir, DB_FILE);
    const db = new Database(file);
    db.pragma(`user_version = ${Math.max(...MIGRATIONS.map((m) => m.version)) + 1}`);
    db.close();
    const before = readFileSync(file);
    const a = await startAgent('too-new', dataDir);
    expect((await status(a)).store.available).toBe(true);
    await call911(a);
    await deliveredOnce(a);
    const incident = await (async () => {
      await waitFor(() => received.some((e) => e.deviceId === a.deviceId && e.type === 'store-incident'), 10_000);
      return received.find((e) => e.deviceId === a.deviceId && e.type === 'store-incident')!;
    })();
    expect(incident.data).toMatchObject({ code: 'store-too-new', memoryOnly: true });
    expect(readFileSync(file)).toEqual(before);
    expect(readdirSync(dataDir).filter((f) => f.includes('corrupt'))).toEqual([]);
  });
});
