// The agent places 911 calls whatever its store says. Permission denied (a
// read-only data folder): the emergency path, keypad and e911ctl run alone, the
// event is held in memory, and once the store opens it is written and the rest
// starts. A newer schema: the file is kept untouched and the agent runs on a
// store in memory. A corrupt file: moved aside, reported, a fresh store.
// The in-memory voice stack stands in for PJSIP (the integration test uses PJSIP).
import { afterEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { Agent } from '../../agent/root.js';
import { parseConfig } from '../../agent/config.js';
import { hostPaths } from '../../hal/host.js';
import { DB_FILE, Store } from '../../agent/store/store.js';
import { MIGRATIONS } from '../../agent/store/migrations.js';
import { controlRequest } from '../../agent/control/control-client.js';
import { MemoryVoiceStack } from '../../hal/voice/memory.js';
import { generateSigningKeyPair } from '../../provisioning/protocol/signing.js';
import { HeldEvents } from '../../agent/events/held-events.js';
import type { EventPayload } from '../../provisioning/protocol/messages.js';
import { silentLog } from '../helpers/log.js';
import { unitAgentRaw, waitFor } from '../helpers/agent.js';

const isRoot = process.getuid?.() === 0;
const dirs: string[] = [];
const agents: Agent[] = [];
const mounts: string[] = [];
afterEach(async () => {
  for (const a of agents.splice(0)) await a.stop();
  // Lazy: a mount still busy (an agent that did not stop in time) must not fail the next test too.
  for (const m of mounts.splice(0)) execFileSync('umount', ['-l', m]);
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function setup(dataDir?: string) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'e911-store-away-'));
  dirs.push(dir);
  const raw = unitAgentRaw(dir, generateSigningKeyPair().publicKey, {
    dataDir: dataDir ?? path.join(dir, 'db'),
    recovery: { minMs: 20, maxMs: 100 },
  });
  const voice = new MemoryVoiceStack();
  const agent = new Agent({ config: parseConfig(raw), log: silentLog(), env: {}, host: hostPaths({}), voice });
  agents.push(agent);
  return { agent, voice, socket: raw.control.socketPath, dataDir: raw.dataDir, dir };
}

/** A folder the agent cannot write, even as root: a read-only bind mount of an empty one. */
function readOnlyDir(base: string): { ro: string; makeWritable: () => void } {
  const src = path.join(base, 'src');
  const ro = path.join(base, 'ro');
  mkdirSync(src);
  mkdirSync(ro);
  execFileSync('mount', ['--bind', src, ro]);
  mounts.push(ro);
  execFileSync('mount', ['-o', 'remount,bind,ro', ro]);
  return { ro, makeWritable: () => execFileSync('mount', ['-o', 'remount,bind,rw', ro]) };
}

const outboxOf = (agent: Agent) =>
  (agent as unknown as { parts: { store: Store } }).parts.store.pendingEvents(0, 1000).map((r) => JSON.parse(r.payload) as EventPayload);

describe.skipIf(!isRoot)('the store cannot be opened (permission denied): 911 still works', () => {
  it('starts 911-only, places the call, holds the event; when the folder becomes writable the event is stored once and the rest starts', async () => {
    const base = mkdtempSync(path.join(os.tmpdir(), 'e911-ro-'));
    dirs.push(base);
    const { ro, makeWritable } = readOnlyDir(base);
    const { agent, voice, socket } = setup(path.join(ro, 'db'));
    await agent.start();
    expect(agent.running).toBe(false);
    expect(agent.storeUnavailable).toMatchObject({ code: 'store-access-denied' });

    const status = await controlRequest(socket, 'status');
    expect(status).toMatchObject({ ok: true, result: { store: { available: false, unavailable: { code: 'store-access-denied' } } } });
    // Commands that need the store say why, they do not crash.
    expect(await controlRequest(socket, 'address')).toMatchObject({ ok: false });

    const dial = await controlRequest(socket, 'dial', { digits: '911' });
    expect(dial).toMatchObject({ ok: true, result: { kind: 'emergency', placed: true, route: 'fallback', addressMissing: true } });
    expect(voice.calls).toHaveLength(1);
    await waitFor(
      () =>
        agent.status().store !== undefined && (agent.status().store as { held: { emergencyEvents: number } }).held.emergencyEvents === 1,
      2000,
    );

    makeWritable();
    await waitFor(
      () => agent.running,
      5000,
      () => JSON.stringify(agent.status().store),
    );
    const events = outboxOf(agent);
    const calls = events.filter((e) => e.type === 'emergency-call');
    expect(calls).toHaveLength(1);
    expect(calls[0]!.data).toMatchObject({ numberDialed: '911', placed: true, recorded: 'complete', addressMissing: true });
    expect(agent.status().store).toMatchObject({ available: true, held: { emergencyEvents: 0, others: 0 } });
  });
});

describe('a database written by a newer agent', () => {
  it('is kept byte for byte; the agent runs on a store in memory, reports it, and 911 works', async () => {
    const { agent, voice, socket, dataDir } = setup();
    new Store({ dataDir, log: silentLog() }).close();
    const file = path.join(dataDir, DB_FILE);
    const db = new Database(file);
    db.pragma(`user_version = ${Math.max(...MIGRATIONS.map((m) => m.version)) + 3}`);
    db.close();
    const before = readFileSync(file);
    await agent.start();
    expect(agent.running).toBe(true);
    expect(agent.status().store).toMatchObject({ available: true, path: ':memory:' });
    const incident = outboxOf(agent).find((e) => e.type === 'store-incident');
    expect(incident?.data).toMatchObject({ code: 'store-too-new', memoryOnly: true });
    expect(await controlRequest(socket, 'dial', { digits: '911' })).toMatchObject({ ok: true, result: { placed: true } });
    expect(voice.calls).toHaveLength(1);
    await waitFor(() => outboxOf(agent).some((e) => e.type === 'emergency-call' && e.data.recorded === 'complete'), 2000);
    await agent.stop();
    agents.splice(0);
    expect(readFileSync(file)).toEqual(before);
    expect(readdirSync(dataDir).filter((f) => f.includes('corrupt'))).toEqual([]);
  });
});

describe('a corrupt database', () => {
  it('is moved aside and reported; a fresh store starts and 911 works', async () => {
    const { agent, voice, socket, dataDir } = setup();
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(path.join(dataDir, DB_FILE), Buffer.alloc(8192, 0x5a));
    await agent.start();
    expect(agent.running).toBe(true);
    const kept = readdirSync(dataDir).filter((f) => f.startsWith(`${DB_FILE}.corrupt-`));
    expect(kept).toHaveLength(1);
    const incident = outboxOf(agent).find((e) => e.type === 'store-incident');
    expect(incident?.data.keptAs).toBe(path.join(dataDir, kept[0]!));
    expect(await controlRequest(socket, 'dial', { digits: '911' })).toMatchObject({ ok: true, result: { placed: true } });
    expect(voice.calls).toHaveLength(1);
  });
});

describe('held events', () => {
  const ev = (type: string, i: number): EventPayload => ({
    v: 1,
    id: `e${i}`,
    type: type as EventPayload['type'],
    deviceId: 'p',
    ts: new Date(0).toISOString(),
    data: {},
  });

  it('bounded: the oldest ordinary event goes first; emergency events are never dropped', () => {
    const h = new HeldEvents(silentLog(), 3);
    h.add(ev('emergency-call', 1));
    h.add(ev('location-changed', 2));
    h.add(ev('diagnostics', 3));
    h.add(ev('test-call', 4));
    expect(h.size).toBe(3);
    h.add(ev('emergency-call', 5));
    const got: string[] = [];
    h.flushInto({
      enqueue: (e) => {
        got.push(e.id);
        return true;
      },
    });
    expect(got).toEqual(['e1', 'e4', 'e5']);
    expect(h.dropped).toBe(2);
  });

  it('written in order; a failing write keeps it and the rest for the next try', () => {
    const h = new HeldEvents(silentLog());
    for (let i = 1; i <= 3; i++) h.add(ev('location-changed', i));
    let fail = true;
    const got: string[] = [];
    const store = {
      enqueue: (e: EventPayload) => {
        if (e.id === 'e2' && fail) throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
        got.push(e.id);
        return true;
      },
    };
    expect(h.flushInto(store)).toBe(1);
    expect(h.size).toBe(2);
    fail = false;
    expect(h.flushInto(store)).toBe(2);
    expect(got).toEqual(['e1', 'e2', 'e3']);
  });
});
