import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import Database from 'better-sqlite3';
import os from 'node:os';
import path from 'node:path';
import { Store, type OutboxRow } from '../../agent/store/store.js';
import { OutboxDrainer } from '../../agent/link/outbox-drainer.js';
import { eventFactory } from '../../agent/events/events.js';
import { silentLog } from '../helpers/log.js';

let dir: string;
let store: Store;
const newEvent = eventFactory('phone-1');
const tick = () => new Promise((r) => setImmediate(r));
/** Long enough for the batched ack flush on an idle machine; where rows must go, `gone` waits for them. */
const settle = () => new Promise((r) => setTimeout(r, 40));
/** The batched flush deletes acknowledged rows within 20 ms of their ack, later on a loaded machine. */
const gone = (check: () => void) => vi.waitFor(check, { timeout: 5000, interval: 20 });

/** A publish that the test acknowledges or fails by hand, like a broker would. */
function manualBroker() {
  const pending: { row: OutboxRow; ack: () => void; fail: (e: Error) => void }[] = [];
  const sent: number[] = [];
  const publish = (row: OutboxRow, done: (err?: Error) => void) => {
    sent.push(JSON.parse(row.payload).data.i as number);
    pending.push({ row, ack: () => done(), fail: (e) => done(e) });
  };
  return { pending, sent, publish };
}

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'e911-drain-'));
  store = new Store({ dataDir: dir, log: silentLog() });
  for (let i = 0; i < 20; i++) store.enqueue(newEvent('diagnostics', { i }));
});
const drainers: OutboxDrainer[] = [];
afterEach(() => {
  for (const d of drainers.splice(0)) d.detach(); // flushes pending acks before the store closes
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

// Most cases run with confirm 'emergency' (ordinary events leave on PUBACK), the mode
// for an older server; 'all' (the default) is the last case.
describe('outbox drainer', () => {
  it('sends in order within the window and removes rows only after their ack', async () => {
    const b = manualBroker();
    const d = new OutboxDrainer(store, 5, silentLog(), 30_000, 'emergency');
    drainers.push(d);
    d.attach(b.publish);
    expect(b.sent).toEqual([0, 1, 2, 3, 4]);
    expect(store.outboxBacklog()).toBe(20);
    b.pending.shift()!.ack();
    b.pending.shift()!.ack();
    await tick();
    // Acks of one turn are refilled together, on the next turn, in order.
    expect(b.sent).toEqual([0, 1, 2, 3, 4, 5, 6]);
    b.pending.shift()!.ack();
    await tick();
    expect(b.sent).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(d.inFlightCount()).toBe(5);
    await gone(() => expect(store.outboxBacklog()).toBe(17));
  });

  it('after a disconnect, re-sends everything unacknowledged from the oldest', async () => {
    const b = manualBroker();
    const d = new OutboxDrainer(store, 4, silentLog(), 30_000, 'emergency');
    drainers.push(d);
    d.attach(b.publish);
    b.pending.shift()!.ack();
    await tick();
    d.detach();
    const b2 = manualBroker();
    d.attach(b2.publish);
    expect(b2.sent).toEqual([1, 2, 3, 4]);
    // A late ack from the dead connection still counts as delivered.
    b.pending.find((p) => JSON.parse(p.row.payload).data.i === 1)!.ack();
    await gone(() => expect(store.pendingEvents(0, 100).map((r) => JSON.parse(r.payload).data.i)).not.toContain(1));
  });

  it('a failed publish is sent again, in order, without duplicating what is in flight', async () => {
    const b = manualBroker();
    const d = new OutboxDrainer(store, 3, silentLog(), 30_000, 'emergency');
    drainers.push(d);
    d.attach(b.publish);
    expect(b.sent).toEqual([0, 1, 2]);
    b.pending[1]!.fail(new Error('boom'));
    await tick();
    b.pending[0]!.ack();
    await tick();
    await tick();
    // 1 goes again; 2 is still in flight and is not sent twice.
    expect(b.sent).toEqual([0, 1, 2, 1, 3]);
  });

  it('a publish that fails before it returns (mqtt.js while disconnecting) is not sent again at once; later all go once, in order', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const sent: number[] = [];
      let failing = true;
      const d = new OutboxDrainer(store, 4, silentLog(), 30_000, 'emergency');
      drainers.push(d);
      d.attach((row, done) => {
        sent.push(JSON.parse(row.payload).data.i as number);
        if (sent.length > 100) throw new Error('sent again and again in one turn');
        if (failing) done(new Error('client disconnecting'));
        else queueMicrotask(() => done());
      });
      // Going on after the failure would have re-read and re-sent row 0 without end.
      expect(sent).toEqual([0]);
      failing = false;
      await vi.advanceTimersByTimeAsync(1000);
      for (let i = 0; i < 10 && sent.length < 21; i++) await tick();
      expect(sent).toEqual([0, ...Array.from({ length: 20 }, (_, i) => i)]);
      expect(d.delivered).toBe(20);
    } finally {
      vi.useRealTimers();
    }
  });

  it('drains a whole backlog and wakes for new events', async () => {
    const d = new OutboxDrainer(store, 8, silentLog(), 30_000, 'emergency');
    drainers.push(d);
    d.attach((_row, done) => queueMicrotask(() => done()));
    for (let i = 0; i < 20 && store.outboxBacklog() > 0; i++) await settle();
    expect(store.outboxBacklog()).toBe(0);
    expect(d.delivered).toBe(20);
    store.enqueue(newEvent('diagnostics', { i: 99 }));
    d.wake();
    await gone(() => expect(store.outboxBacklog()).toBe(0));
    expect(d.delivered).toBe(21);
  });

  it('keeps an emergency event past the broker PUBACK until the server confirms it; sends it again on reconnect', async () => {
    const em = newEvent('emergency-call', { i: 100 });
    store.enqueue(em);
    const b = manualBroker();
    const d = new OutboxDrainer(store, 64, silentLog(), 30_000, 'emergency');
    drainers.push(d);
    d.attach(b.publish);
    for (const p of b.pending.splice(0)) p.ack();
    // The 20 diagnostics are gone on PUBACK; the emergency event stays.
    await gone(() => expect(store.pendingEvents(0, 100).map((r) => r.id)).toEqual([em.id]));
    expect(d.awaitingServerCount()).toBe(1);
    // Not sent twice on the same connection while it waits.
    d.wake();
    expect(b.sent.filter((i) => i === 100)).toHaveLength(1);
    // The server was killed before storing it: a new connection sends it again.
    d.detach();
    const b2 = manualBroker();
    d.attach(b2.publish);
    expect(b2.sent).toEqual([100]);
    b2.pending.shift()!.ack();
    await settle();
    expect(store.outboxBacklog()).toBe(1);
    d.serverAck([em.id]);
    expect(store.outboxBacklog()).toBe(0);
    expect(d.confirmed).toBe(1);
    // A late or repeated server ack changes nothing.
    d.serverAck([em.id]);
    expect(d.confirmed).toBe(1);
  });

  it('an emergency event the server does not confirm goes again after resendMs on the same connection', async () => {
    for (const r of store.pendingEvents(0, 100)) store.ackEventsById([r.id]);
    const em = newEvent('test-call', { i: 7 });
    store.enqueue(em);
    const b = manualBroker();
    const d = new OutboxDrainer(store, 8, silentLog(), 30);
    drainers.push(d);
    d.attach(b.publish);
    b.pending.shift()!.ack();
    await waitUntil(() => b.sent.length === 2);
    expect(b.sent).toEqual([7, 7]);
    b.pending.shift()!.ack();
    d.serverAck([em.id]);
    expect(store.outboxBacklog()).toBe(0);
  });

  it("confirm 'all' (the default): an ordinary event also stays past the PUBACK until the server confirms it, and goes again on reconnect", async () => {
    const b = manualBroker();
    const d = new OutboxDrainer(store, 64, silentLog());
    drainers.push(d);
    d.attach(b.publish);
    for (const p of b.pending.splice(0)) p.ack();
    await settle();
    // The broker has all 20; a broker killed now would lose them, so the phone keeps them.
    expect(store.outboxBacklog()).toBe(20);
    expect(d.awaitingServerCount()).toBe(0); // the status figure counts emergency events only
    d.detach();
    const b2 = manualBroker();
    d.attach(b2.publish);
    expect(b2.sent).toEqual([...Array(20).keys()]);
    for (const p of b2.pending.splice(0)) p.ack();
    await settle();
    d.serverAck(store.pendingEvents(0, 100).map((r) => r.id));
    expect(store.outboxBacklog()).toBe(0);
  });
});

describe('outbox drainer: rows handed over from the store instead of read back', () => {
  it('sends events enqueued while caught up at once, in order, each committed before its publish, without reading the table', async () => {
    const sent: number[] = [];
    const pending: (() => void)[] = [];
    const d = new OutboxDrainer(store, 64, silentLog(), 30_000, 'emergency');
    drainers.push(d);
    // Another connection sees only committed rows.
    const other = new Database(path.join(dir, 'agent.db'), { readonly: true });
    const committed = other.prepare('SELECT id FROM outbox WHERE seq = ?');
    d.attach((row, done) => {
      // Durable first: the row is committed when it is handed to the broker.
      expect(committed.get(row.seq)).toEqual({ id: row.id });
      sent.push(JSON.parse(row.payload).data.i as number);
      pending.push(() => done());
    });
    for (const ack of pending.splice(0)) ack();
    await settle();
    expect(sent).toEqual([...Array(20).keys()]);
    const reads = vi.spyOn(store, 'pendingEvents');
    for (const i of [20, 21, 22]) {
      store.enqueue(newEvent('diagnostics', { i }));
      d.wake();
    }
    // Two in one transaction, and one that rolls back: it never goes.
    const tx = store as unknown as { transaction(fn: () => void): void; insertEvent(e: unknown): boolean };
    tx.transaction(() => {
      tx.insertEvent(newEvent('diagnostics', { i: 23 }));
      tx.insertEvent(newEvent('diagnostics', { i: 24 }));
    });
    expect(() =>
      tx.transaction(() => {
        tx.insertEvent(newEvent('diagnostics', { i: 99 }));
        throw new Error('rolled back');
      }),
    ).toThrow('rolled back');
    store.enqueue(newEvent('diagnostics', { i: 25 }));
    d.wake();
    expect(sent).toEqual([...Array(26).keys()]);
    expect(reads).not.toHaveBeenCalled();
    reads.mockRestore();
    other.close();
    for (const ack of pending.splice(0)) ack();
    await gone(() => expect(store.outboxBacklog()).toBe(0));
  });

  it('reads the table again after an eviction, a reconnect or more rows than it keeps, and sends each row once, in order', async () => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
    dir = mkdtempSync(path.join(os.tmpdir(), 'e911-drain-'));
    store = new Store({ dataDir: dir, log: silentLog(), outboxMax: 30 });
    const b = manualBroker();
    const d = new OutboxDrainer(store, 4, silentLog(), 30_000, 'emergency');
    drainers.push(d);
    store.enqueue(newEvent('diagnostics', { i: 0 }));
    d.attach(b.publish);
    expect(b.sent).toEqual([0]);
    b.pending.shift()!.ack();
    // Caught up; then the outbox fills past its maximum while the window is full: the oldest
    // unsent ones are evicted, and what is sent is what the table still holds, in order.
    for (let i = 1; i <= 40; i++) store.enqueue(newEvent('diagnostics', { i }));
    d.wake();
    const inTable = store.pendingEvents(0, 100).map((r) => JSON.parse(r.payload).data.i as number);
    expect(inTable).toEqual([...Array(30).keys()].map((k) => k + 11));
    while (b.pending.length > 0) {
      b.pending.shift()!.ack();
      await tick();
    }
    expect(b.sent).toEqual([0, ...inTable]);
    // A reconnect: everything not yet acknowledged goes again from the table.
    for (let i = 41; i <= 300; i++) store.enqueue(newEvent('diagnostics', { i }));
    d.detach();
    const b2 = manualBroker();
    d.attach(b2.publish);
    while (b2.pending.length > 0) {
      b2.pending.shift()!.ack();
      await tick();
    }
    expect(b2.sent).toEqual([...Array(30).keys()].map((k) => k + 271));
  });
});

async function waitUntil(cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('outbox drainer on a full disk', () => {
  it('a server ack whose removal the store refuses is kept and removed on the next try, never stranded', async () => {
    const { StoreFullError } = await import('../../agent/errors.js');
    const b = manualBroker();
    const d = new OutboxDrainer(store, 64, silentLog(), 30_000, 'all');
    drainers.push(d);
    d.attach(b.publish);
    for (const p of b.pending.splice(0)) p.ack();
    await tick();
    const ids = store.pendingEvents(0, 100).map((r) => r.id);
    const real = store.ackEventsById.bind(store);
    let refusals = 1;
    store.ackEventsById = (x) => {
      if (refusals-- > 0) throw new StoreFullError('store write failed: database or disk is full');
      return real(x);
    };
    expect(() => d.serverAck(ids.slice(0, 10))).not.toThrow();
    expect(store.outboxBacklog()).toBe(20);
    // The next ack carries the refused ones along.
    d.serverAck(ids.slice(10));
    expect(store.outboxBacklog()).toBe(0);
  });

  it('removals refused on the timer are tried again later, not thrown (a throw there would stop the agent)', async () => {
    const { StoreFullError } = await import('../../agent/errors.js');
    const b = manualBroker();
    const d = new OutboxDrainer(store, 64, silentLog(), 30_000, 'emergency');
    drainers.push(d);
    const real = store.ackEvents.bind(store);
    let refusals = 1;
    store.ackEvents = (x) => {
      if (refusals-- > 0) throw new StoreFullError('store write failed: database or disk is full');
      return real(x);
    };
    d.attach(b.publish);
    for (const p of b.pending.splice(0)) p.ack();
    await settle(); // the batched flush runs, and is refused
    expect(store.outboxBacklog()).toBe(20);
    await new Promise((r) => setTimeout(r, 1100)); // the retry
    expect(store.outboxBacklog()).toBe(0);
    d.close();
  });
});
