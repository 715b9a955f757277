// The emergency event is on disk before the INVITE leaves (docs/reliability.md, guarantee 1), with a
// real Store: whenever the process dies, either no INVITE went out or the event
// is in the outbox. Completed after, same id. A store that cannot take it keeps
// it in memory until it is back.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MemoryVoiceStack } from '../../hal/voice/memory.js';
import { EmergencyService } from '../../agent/emergency/service.js';
import { dialPlanSchema, emergencySchema, sipSchema } from '../../agent/emergency/config.js';
import { Store } from '../../agent/store/store.js';
import { OutboxDrainer } from '../../agent/link/outbox-drainer.js';
import { StoreEmergencyJournal, type JournalStore } from '../../agent/events/emergency-journal.js';
import { eventFactory } from '../../agent/events/events.js';
import type { EventPayload } from '../../provisioning/protocol/messages.js';
import { silentLog } from '../helpers/log.js';

let dir: string;
let store: Store;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'e911-journal-'));
  store = new Store({ dataDir: dir, log: silentLog() });
});
afterEach(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

function rows(): EventPayload[] {
  return store.pendingEvents(0, 100).map((r) => JSON.parse(r.payload) as EventPayload);
}
/** Everything on disk: the outbox and the events begun (kept apart until completed). */
function onDisk(): EventPayload[] {
  return [...store.begunEmergencyEvents(), ...rows()];
}

async function service(journalStore: () => JournalStore | null) {
  const voice = new MemoryVoiceStack();
  const drainer = new OutboxDrainer(store, 8, silentLog());
  const deferred: (() => void)[] = [];
  const journal = new StoreEmergencyJournal({
    store: journalStore,
    drain: () => drainer,
    newEvent: eventFactory('phone-1'),
    log: silentLog(),
  });
  const emitted: string[] = [];
  const svc = new EmergencyService({
    voice,
    emergency: emergencySchema.parse({ routes: { primary: 'sip:10.0.0.1:5060' } }),
    dialPlan: dialPlanSchema.parse({}),
    sip: sipSchema.parse({ port: 5062, bindAddress: '10.0.0.50' }),
    deviceId: 'phone-1',
    agentVersion: 'test',
    log: silentLog(),
    emitEvent: (type) => emitted.push(type),
    journal,
    defer: (fn) => deferred.push(fn),
    network: () => ({ interface: 'eth0', ip: '10.0.0.50', mac: '00:d0:1e:12:34:56' }),
  });
  await svc.start(null);
  // What was on disk at the instant the INVITE was handed to the stack.
  const atInvite: EventPayload[][] = [];
  const make = voice.makeCall.bind(voice);
  voice.makeCall = (target, options) => {
    atInvite.push(onDisk());
    return make(target, options);
  };
  return {
    svc,
    voice,
    drainer,
    journal,
    emitted,
    atInvite,
    flush: () => {
      for (const f of deferred.splice(0)) f();
    },
  };
}

describe('durable emergency event', () => {
  it('the emergency-call row is committed before the INVITE, then completed with the call details under the same id', async () => {
    const h = await service(() => store);
    const out = h.svc.dial('911');
    expect(out).toMatchObject({ kind: 'emergency', placed: true });
    expect(h.atInvite).toHaveLength(1);
    const before = h.atInvite[0]!;
    expect(before).toHaveLength(1);
    expect(before[0]).toMatchObject({ type: 'emergency-call', data: { numberDialed: '911', placed: null, recorded: 'before-invite' } });
    // A SIGKILL now: the row is in the file, readable by a fresh connection.
    // (It is kept apart from the outbox until completed; the next open moves it there.)
    const other = new Store({ dataDir: dir, log: silentLog() });
    expect(other.recoveredEmergencyEvents).toBe(1);
    expect(other.pendingEvents(0, 10).map((r) => r.id)).toEqual([before[0]!.id]);
    expect(JSON.parse(other.pendingEvents(0, 10)[0]!.payload)).toMatchObject({ data: { recorded: 'before-invite' } });
    other.close();
    h.flush();
    const after = rows();
    expect(after).toHaveLength(1);
    expect(after[0]!.id).toBe(before[0]!.id);
    expect(after[0]!.ts).toBe(before[0]!.ts);
    expect(after[0]!.data).toMatchObject({ placed: true, recorded: 'complete', route: { name: 'primary' } });
    expect(h.emitted).not.toContain('emergency-call');
  });

  it("the row before the INVITE (written from prepared JSON text) carries the completed event's fields, but the PIDF-LO and what only the INVITE tells", async () => {
    const h = await service(() => store);
    h.svc.dial('911');
    const before = h.atInvite[0]![0]!;
    h.flush();
    const after = rows()[0]!;
    const { placed: p1, recorded: r1, route: ro1, sipCallId: s1, location: l1, ...restAfter } = after.data as Record<string, unknown>;
    const { placed: p0, recorded: r0, route: ro0, sipCallId: s0, location: l0, ...restBefore } = before.data as Record<string, unknown>;
    expect(restBefore).toEqual(restAfter);
    expect([p0, r0, ro0, s0]).toEqual([null, 'before-invite', null, null]);
    expect([p1, r1]).toEqual([true, 'complete']);
    expect(ro1).toMatchObject({ name: 'primary' });
    const { pidf, ...located } = (l1 ?? {}) as Record<string, unknown>;
    expect(l0).toEqual(l1 === null ? null : located);
    expect(typeof pidf === 'string' || l1 === null).toBe(true);
    expect(Object.keys(before)).toEqual(['v', 'id', 'type', 'deviceId', 'ts', 'data']);
  });

  it('933 too: a test-call row before the INVITE', async () => {
    const h = await service(() => store);
    h.svc.dial('933');
    expect(h.atInvite[0]!.map((e) => e.type)).toEqual(['test-call']);
    h.flush();
    expect(rows().map((e) => e.type)).toEqual(['test-call']);
  });

  it('the drain does not send the first write: only the completed event leaves', async () => {
    const h = await service(() => store);
    const sent: EventPayload[] = [];
    h.drainer.attach((row, done) => {
      sent.push(JSON.parse(row.payload) as EventPayload);
      queueMicrotask(() => done());
    });
    h.svc.dial('911');
    h.drainer.wake();
    expect(sent).toHaveLength(0);
    h.flush();
    expect(sent.map((e) => e.data.recorded)).toEqual(['complete']);
    h.drainer.detach();
  });

  it('with no store the call still goes out; the event is kept in memory and written when the store is back', async () => {
    let available: Store | null = null;
    const broken: JournalStore = {
      beginEmergencyEvent: () => {
        throw new Error('SQLITE_FULL: database or disk is full');
      },
      completeEmergencyEvent: () => {
        throw new Error('SQLITE_FULL: database or disk is full');
      },
      recoverEmergencyEvents: () => {
        throw new Error('SQLITE_FULL: database or disk is full');
      },
      enqueue: () => {
        throw new Error('SQLITE_FULL: database or disk is full');
      },
    };
    let current: JournalStore | null = broken;
    const h = await service(() => current);
    expect(h.svc.dial('911')).toMatchObject({ kind: 'emergency', placed: true });
    expect(h.voice.calls).toHaveLength(1);
    h.flush();
    expect(h.journal.pendingCount).toBe(1);
    current = null;
    expect(h.journal.flushPending()).toBe(0);
    available = store;
    current = available;
    expect(h.journal.flushPending()).toBe(1);
    expect(h.journal.pendingCount).toBe(0);
    expect(rows()).toHaveLength(1);
    expect(rows()[0]).toMatchObject({ type: 'emergency-call', data: { placed: true, recorded: 'complete' } });
  });
});
