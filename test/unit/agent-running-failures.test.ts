// Parts not needed for 911 that fail while running (after start) never stop the
// agent: a store write that fails (a full disk) in the address push or in the
// location parts is logged, reported as a part-failed event (phase running) and
// tried again with backoff (the address push), its event held in memory; 911
// works throughout. The store's failure is faked here (a unit test); the real
// full disk is in test/integration/store-unavailable.test.ts, lldpd dying under
// a running agent in test/integration/part-restart.test.ts.
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Agent } from '../../agent/root.js';
import { parseConfig } from '../../agent/config.js';
import { hostPaths } from '../../hal/host.js';
import { Store } from '../../agent/store/store.js';
import { guardedStore } from '../../agent/store/guarded-store.js';
import { StoreFullError, StoreIoError, type StoreError } from '../../agent/errors.js';
import type { EmergencyService } from '../../agent/emergency/service.js';
import { eventFactory } from '../../agent/events/events.js';
import { MemoryVoiceStack } from '../../hal/voice/memory.js';
import type { EventPayload } from '../../provisioning/protocol/messages.js';
import { sampleAddress, signedPush, testKeys } from '../helpers/address.js';
import { silentLog } from '../helpers/log.js';
import { unitAgentRaw, waitFor } from '../helpers/agent.js';

const dirs: string[] = [];
const agents: Agent[] = [];
afterEach(async () => {
  for (const a of agents.splice(0)) await a.stop();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'e911-running-fail-'));
  dirs.push(d);
  return d;
}

/** A started agent on a fresh folder, the memory voice stack and the server keys its pushes verify against. */
async function startAgent() {
  const keys = testKeys();
  const voice = new MemoryVoiceStack();
  const raw = unitAgentRaw(tmp(), keys.pair.publicKey);
  const agent = new Agent({ config: parseConfig(raw), log: silentLog(), env: {}, host: hostPaths({}), voice });
  agents.push(agent);
  await agent.start();
  return { agent, keys, voice };
}

describe('a part failing while running', () => {
  it('an address push whose store write fails is reported, tried again with backoff and applied; 911 works meanwhile', async () => {
    const { agent, keys, voice } = await startAgent();
    const inner = agent as unknown as {
      parts: { store: Store; addressBook: { current(): { version: number } | null } };
      core: { emergency: EmergencyService };
      inboundHandlers(): { addressSet(p: string): void };
    };
    const store = inner.parts.store;
    // The disk is full for the first two writes of the address.
    let failures = 2;
    const apply = store.applyAddress.bind(store);
    store.applyAddress = (...args) => {
      if (failures-- > 0) throw new StoreFullError('store write failed: database or disk is full');
      return apply(...args);
    };
    expect(() => inner.inboundHandlers().addressSet(signedPush(sampleAddress({ version: 4 }), keys))).not.toThrow();
    expect(agent.running).toBe(true);
    expect(inner.core.emergency.dial('911')).toMatchObject({ kind: 'emergency', placed: true });
    await waitFor(() => inner.parts.addressBook.current()?.version === 4, 5000);
    const events = store.pendingEvents(0, 1000).map((r) => JSON.parse(r.payload) as EventPayload);
    const reported = events.filter((e) => e.type === 'part-failed');
    expect(reported.map((e) => e.data)).toMatchObject([
      { part: 'address', attempt: 1, retryInMs: 20, reason: expect.stringContaining('disk is full') },
      { part: 'address', attempt: 2, retryInMs: 40 },
    ]);
    expect(events.filter((e) => e.type === 'address-applied')).toHaveLength(1);
    expect(voice.calls).toHaveLength(1);
  });

  it("an address push's display and location work, which follow the push's event, failing on the store: reported, the address applied, 911 works", async () => {
    const { agent, keys, voice } = await startAgent();
    const inner = agent as unknown as {
      parts: { store: Store; addressBook: { current(): { version: number } | null }; location: { service: { addressChanged(): void } } };
      core: { emergency: EmergencyService };
      inboundHandlers(): { addressSet(p: string): void };
    };
    const store = inner.parts.store;
    inner.parts.location.service.addressChanged = () => {
      throw new StoreFullError('store write failed: database or disk is full');
    };
    inner.inboundHandlers().addressSet(signedPush(sampleAddress({ version: 5 }), keys));
    // Applied, and the event queued, in the push's own turn: the display and location work come after it.
    expect(inner.parts.addressBook.current()?.version).toBe(5);
    const types = () => store.pendingEvents(0, 1000).map((r) => (JSON.parse(r.payload) as EventPayload).type);
    expect(types()).toContain('address-applied');
    expect(types()).not.toContain('part-failed');
    await waitFor(() => types().includes('part-failed'), 5000);
    const failed = store
      .pendingEvents(0, 1000)
      .map((r) => JSON.parse(r.payload) as EventPayload)
      .filter((e) => e.type === 'part-failed');
    expect(failed.map((e) => e.data)).toMatchObject([{ part: 'address', reason: expect.stringContaining('disk is full') }]);
    expect(agent.running).toBe(true);
    expect(inner.core.emergency.dial('911')).toMatchObject({ kind: 'emergency', placed: true });
    expect(voice.calls).toHaveLength(1);
  });

  it('the end of the window after a 911, refused by a full store, is written on the store retry', async () => {
    const dir = tmp();
    const keys = testKeys();
    const raw = unitAgentRaw(dir, keys.pair.publicKey);
    const agent = new Agent({ config: parseConfig(raw), log: silentLog(), env: {}, host: hostPaths({}), voice: new MemoryVoiceStack() });
    agents.push(agent);
    await agent.start();
    const inner = agent as unknown as { parts: { store: Store }; core: { emergency: EmergencyService } };
    const store = inner.parts.store;
    const set = store.setSetting.bind(store);
    let refusals = 2;
    store.setSetting = (key, value) => {
      if (key === 'emergency.suppressUntil' && refusals-- > 0) throw new StoreFullError('store write failed: database or disk is full');
      return set(key, value);
    };
    expect(inner.core.emergency.dial('911')).toMatchObject({ kind: 'emergency', placed: true });
    await waitFor(() => store.getSetting('emergency.suppressUntil') !== undefined, 5000);
    expect(Number(store.getSetting('emergency.suppressUntil'))).toBeGreaterThan(Date.now());
    const reported = store
      .pendingEvents(0, 1000)
      .map((r) => JSON.parse(r.payload) as EventPayload)
      .filter((e) => e.type === 'part-failed');
    expect(reported.map((e) => e.data.part)).toContain('emergency-window');
  });

  it("the location parts' store writes: a typed store error is reported, the event it carried held, nothing thrown", () => {
    const dir = tmp();
    const store = new Store({ dataDir: dir, log: silentLog() });
    const failures: StoreError[] = [];
    const held: EventPayload[] = [];
    const guarded = guardedStore(store, { onFailure: (e) => failures.push(e), hold: (e) => held.push(e) });
    const event = eventFactory('phone-1')('location-disagreement', { state: 'open' });
    store.recordObservation = () => {
      throw new StoreIoError('store write failed: disk I/O error');
    };
    expect(guarded.recordObservation('disagreement', 'k', {}, event)).toBe(false);
    expect(failures.map((f) => f.code)).toEqual(['store-io']);
    expect(held).toEqual([event]);
    // Not a store error (a bug): thrown as it is, never hidden.
    store.recordObservation = () => {
      throw new TypeError('bug');
    };
    expect(() => guarded.recordObservation('k', 'v', {})).toThrow(TypeError);
    // Settings (the locations push) are not guarded: it handles a failed write itself.
    store.setSetting = () => {
      throw new StoreIoError('store write failed: disk I/O error');
    };
    expect(() => guarded.setSetting('k', 'v')).toThrow(StoreIoError);
    // Everything else is the store itself.
    expect(guarded.outboxBacklog()).toBe(0);
    store.close();
  });

  it('a real SQLite failure in a write is a typed store error, and the outbox count stays true', () => {
    const dir = tmp();
    const store = new Store({ dataDir: dir, log: silentLog() });
    // max_page_count caps the file: the next write that needs a page fails with SQLITE_FULL.
    (store as unknown as { db: { pragma(s: string): unknown } }).db.pragma('max_page_count = 1');
    let err: unknown;
    try {
      for (let i = 0; i < 100; i++) store.enqueue(eventFactory('phone-1')('diagnostics', { pad: 'x'.repeat(4000), i }));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StoreFullError);
    // The rolled-back insert does not count: the backlog is what the table holds (it drifted up before).
    expect(store.outboxBacklog()).toBe(store.pendingEvents(0, 1000).length);
    store.close();
  });
});
