// The emergency event's first write goes to the begin file (one append, no SQLite
// commit on the call path). Whenever the process dies, either no INVITE went out
// or the event is in the file, and the next start puts it in the outbox once.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MemoryVoiceStack } from '../../hal/voice/memory.js';
import { EmergencyService } from '../../agent/emergency/service.js';
import { dialPlanSchema, emergencySchema, sipSchema } from '../../agent/emergency/config.js';
import { Store } from '../../agent/store/store.js';
import { OutboxDrainer } from '../../agent/link/outbox-drainer.js';
import { StoreEmergencyJournal, type JournalStore } from '../../agent/events/emergency-journal.js';
import { BEGIN_FILE, BEGIN_FILE_SIZE, BeginFile, parseLines, type BeginSink } from '../../agent/events/begin-file.js';
import { eventFactory } from '../../agent/events/events.js';
import type { EventPayload } from '../../provisioning/protocol/messages.js';
import { recordingLog, silentLog } from '../helpers/log.js';

let dir: string;
let store: Store;
let files: BeginFile[];
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'e911-begin-file-'));
  store = new Store({ dataDir: dir, log: silentLog() });
  files = [];
});
afterEach(() => {
  for (const f of files) f.close();
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The file's text: its zeros (room kept for the next lines) left out. */
const fileText = () => (existsSync(path.join(dir, BEGIN_FILE)) ? readFileSync(path.join(dir, BEGIN_FILE), 'utf8').replace(/\0/g, '') : '');
const outbox = (s: Store = store): EventPayload[] => s.pendingEvents(0, 100).map((r) => JSON.parse(r.payload) as EventPayload);

function openFile(log = silentLog()): BeginFile {
  const f = new BeginFile(dir, log);
  f.open();
  files.push(f);
  return f;
}

/** A journal writing to this begin file and store, with no drain. */
function journalOn(file: BeginSink, s: JournalStore): StoreEmergencyJournal {
  return new StoreEmergencyJournal({ file, store: () => s, drain: () => null, newEvent: eventFactory('phone-1'), log: silentLog() });
}

/** An emergency service on a memory voice stack, its journal writing to this file and store. */
async function service(opts: { file: BeginSink | null; store?: () => JournalStore | null }) {
  const voice = new MemoryVoiceStack();
  const drainer = new OutboxDrainer(store, 8, silentLog());
  const deferred: (() => void)[] = [];
  const journal = new StoreEmergencyJournal({
    file: opts.file,
    store: opts.store ?? (() => store),
    drain: () => drainer,
    newEvent: eventFactory('phone-1'),
    log: silentLog(),
  });
  const svc = new EmergencyService({
    voice,
    emergency: emergencySchema.parse({ routes: { primary: 'sip:10.0.0.1:5060' } }),
    dialPlan: dialPlanSchema.parse({}),
    sip: sipSchema.parse({ port: 5062, bindAddress: '10.0.0.50' }),
    deviceId: 'phone-1',
    agentVersion: 'test',
    log: silentLog(),
    emitEvent: () => undefined,
    journal,
    defer: (fn) => deferred.push(fn),
    network: () => ({ interface: 'eth0', ip: '10.0.0.50', mac: '00:d0:1e:12:34:56' }),
  });
  await svc.start(null);
  // At the instant the INVITE is handed to the stack: the file's text and the store's begun rows.
  const atInvite: { file: string; begun: EventPayload[] }[] = [];
  const make = voice.makeCall.bind(voice);
  voice.makeCall = (target, options) => {
    atInvite.push({ file: fileText(), begun: store.begunEmergencyEvents() });
    return make(target, options);
  };
  return {
    svc,
    voice,
    journal,
    atInvite,
    flush: () => {
      for (const f of deferred.splice(0)) f();
    },
  };
}

/** A process that starts after this one died: it reads the file and hands it to a fresh store. */
function restart(): { store: Store; journal: StoreEmergencyJournal; moved: number | false } {
  const file = new BeginFile(dir, silentLog());
  file.open();
  files.push(file);
  const s = new Store({ dataDir: dir, log: silentLog() });
  const journal = journalOn(file, s);
  return { store: s, journal, moved: journal.recoverLeftover() };
}

describe('emergency begin file', () => {
  it('the envelope is drawn ahead: the call stamps only its time, and the line reads as newEvent would make it', () => {
    const file = openFile();
    let made = 0;
    const factory = eventFactory('phone-1');
    const at = new Date('2026-12-05T06:00:00.123Z');
    const journal = new StoreEmergencyJournal({
      file,
      store: () => store,
      drain: () => null,
      newEvent: (type, data) => {
        made++;
        return factory(type, data);
      },
      now: () => at,
      log: silentLog(),
    });
    journal.prepare();
    expect(made).toBe(2); // one of each type
    const id = journal.beginJson('emergency-call', '{"dialed":"911"}');
    expect(made).toBe(2); // nothing drawn on the call path
    const line = fileText().trim();
    expect(Object.keys(JSON.parse(line))).toEqual(['v', 'id', 'type', 'deviceId', 'ts', 'data']);
    expect(JSON.parse(line)).toEqual({
      v: 1,
      id,
      type: 'emergency-call',
      deviceId: 'phone-1',
      ts: at.toISOString(),
      data: { dialed: '911' },
    });
    // Completed: the next one is drawn then, off the call path, with a new id.
    journal.complete(id, 'emergency-call', { dialed: '911', placed: true });
    expect(made).toBe(3);
    expect(journal.beginJson('emergency-call', '{}')).not.toBe(id);
    expect(made).toBe(3);
  });

  it('the event is in the file before the INVITE, with no SQLite write on the call path', async () => {
    const h = await service({ file: openFile() });
    const writesBefore = store.writes;
    expect(h.svc.dial('911')).toMatchObject({ kind: 'emergency', placed: true });
    const at = h.atInvite[0]!;
    const lines = at.file
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as EventPayload);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      type: 'emergency-call',
      deviceId: 'phone-1',
      data: { numberDialed: '911', placed: null, recorded: 'before-invite' },
    });
    expect(at.begun).toEqual([]);
    expect(store.writes).toBe(writesBefore);
  });

  it('complete: the event goes to the outbox under the same id, and the file is emptied', async () => {
    const h = await service({ file: openFile() });
    h.svc.dial('933');
    const begun = JSON.parse(h.atInvite[0]!.file) as EventPayload;
    h.flush();
    expect(outbox().map((e) => [e.id, e.ts, e.type, e.data.recorded])).toEqual([[begun.id, begun.ts, 'test-call', 'complete']]);
    expect(fileText()).toBe('');
    // Zeroed in place, not truncated: the next line goes to the same block.
    expect(statSync(path.join(dir, BEGIN_FILE)).size).toBe(BEGIN_FILE_SIZE);
    expect(store.begunEmergencyEvents()).toEqual([]);
  });

  it('killed after the INVITE and before complete: the next start puts the begun event in the outbox, once, and empties the file', async () => {
    const h = await service({ file: openFile() });
    h.svc.dial('911');
    const begun = JSON.parse(h.atInvite[0]!.file) as EventPayload;
    // SIGKILL here: complete() never runs. The page cache holds the line.
    const next = restart();
    expect(next.moved).toBe(1);
    expect(outbox(next.store).map((e) => [e.id, e.data.recorded])).toEqual([[begun.id, 'before-invite']]);
    expect(fileText()).toBe('');
    // A second start finds nothing more.
    next.store.close();
    const again = restart();
    expect(again.moved).toBe(0);
    expect(outbox(again.store)).toHaveLength(1);
    again.store.close();
  });

  it('an event completed before the process died and still in the file is not put in the outbox twice', async () => {
    const h = await service({ file: openFile() });
    h.svc.dial('911');
    const line = h.atInvite[0]!.file;
    h.flush();
    // Died between the synced completion and the file being emptied: the line is back.
    appendFileSync(path.join(dir, BEGIN_FILE), line);
    const next = restart();
    expect(next.moved).toBe(0);
    const events = outbox(next.store);
    expect(events).toHaveLength(1);
    expect(events[0]!.data).toMatchObject({ recorded: 'complete', placed: true });
    next.store.close();
  });

  it('another event still open: a completed one is marked done, and only the open one is recovered after a crash', async () => {
    const file = openFile();
    const h = await service({ file });
    const first = h.journal.begin('test-call', { n: 1 });
    const second = h.journal.begin('test-call', { n: 2 });
    h.journal.complete(first, 'test-call', { n: 1 });
    expect(fileText().split('\n').filter(Boolean)).toHaveLength(3);
    expect(parseLines(fileText()).events.map((e) => e.id)).toEqual([second]);
    const next = restart();
    expect(next.moved).toBe(1);
    expect(
      outbox(next.store)
        .map((e) => e.id)
        .sort(),
    ).toEqual([first, second].sort());
    next.store.close();
  });

  it('lines go at the start of the zeroed file again after it is emptied; a line cut short by zeros is unreadable, not glued to the next', () => {
    const f = openFile();
    expect(f.append('{"v":1,"id":"x1","type":"test-call","deviceId":"d","ts":"t","data":{}}')).toBe(true);
    f.clear();
    expect(f.append('{"v":1,"id":"x2","type":"test-call","deviceId":"d","ts":"t","data":{}}')).toBe(true);
    const raw = readFileSync(path.join(dir, BEGIN_FILE), 'utf8');
    expect(raw.startsWith('{"v":1,"id":"x2"')).toBe(true);
    expect(parseLines(raw).events.map((e) => e.id)).toEqual(['x2']);
    // A zeroing cut short: zeros, then an old line; and a line cut short, then zeros.
    expect(parseLines('\0\0{"v":1,"id":"y","type":"test-call","deviceId":"d","ts":"t","data":{}}\n{"v":1,"id":"z"\0\0\0')).toEqual({
      events: [expect.objectContaining({ id: 'y' })],
      unreadable: 1,
    });
  });

  it('a torn line (a write cut short) is skipped and reported; the lines around it are recovered, and a new line after it is readable', async () => {
    const mk = (id: string): EventPayload => ({
      v: 1,
      id,
      type: 'emergency-call',
      deviceId: 'phone-1',
      ts: '2026-12-05T05:00:00.000Z',
      data: { recorded: 'before-invite' },
    });
    const a = mk('00000000-0000-4000-8000-00000000000a');
    const b = mk('00000000-0000-4000-8000-00000000000b');
    writeFileSync(path.join(dir, BEGIN_FILE), `${JSON.stringify(a)}\nnot json at all\n${JSON.stringify(b).slice(0, 40)}`);
    const rec = recordingLog();
    const file = openFile(rec.log);
    expect(file.leftover.events.map((e) => e.id)).toEqual([a.id]);
    expect(file.leftover.unreadable).toBe(2);
    expect(rec.lines().some((l) => l.level === 50 && l.unreadable === 2)).toBe(true);
    // The file did not end with a newline: the next line starts on its own.
    expect(file.append(JSON.stringify(b))).toBe(true);
    expect(parseLines(fileText()).events.map((e) => e.id)).toEqual([a.id, b.id]);
    const journal = journalOn(file, store);
    expect(journal.recoverLeftover()).toBe(1);
    expect(outbox().map((e) => e.type)).toEqual(['emergency-call', 'store-incident']);
    expect(outbox()[1]!.data).toMatchObject({ unreadableLines: 2 });
    expect(fileText()).toBe('');
  });

  it('a store kept in memory (a database from a newer agent) is not on disk: the line stays after complete, for the next start', () => {
    const file = openFile();
    const memory = new Store({ dataDir: dir, log: silentLog(), memory: true });
    try {
      const journal = journalOn(file, memory);
      const id = journal.beginJson('emergency-call', '{"dialed":"911"}');
      journal.complete(id, 'emergency-call', { dialed: '911', placed: true });
      // In the memory store's outbox, and still in the file: a SIGKILL now loses nothing.
      expect(outbox(memory).map((e) => e.id)).toEqual([id]);
      const next = new BeginFile(dir, silentLog());
      next.open();
      files.push(next);
      expect(next.leftover.events.map((e) => e.id)).toEqual([id]);
    } finally {
      memory.close();
    }
  });

  it('the file cannot take the line (disk full): the begun row goes to the store, the call goes out, and completes as before', async () => {
    const full: BeginSink = {
      append: () => false,
      markDone: () => undefined,
      clear: () => undefined,
      leftover: { events: [], unreadable: 0 },
      forgetLeftover: () => undefined,
    };
    const h = await service({ file: full });
    expect(h.svc.dial('911')).toMatchObject({ kind: 'emergency', placed: true });
    expect(h.atInvite[0]!.begun).toHaveLength(1);
    h.flush();
    expect(store.begunEmergencyEvents()).toEqual([]);
    expect(outbox().map((e) => e.data.recorded)).toEqual(['complete']);
  });

  it('a file that cannot be opened (its folder is a file): the store takes the begun row', async () => {
    const blocked = path.join(dir, 'not-a-dir');
    writeFileSync(blocked, '');
    const file = new BeginFile(blocked, silentLog());
    file.open();
    expect(file.writable).toBe(false);
    const h = await service({ file });
    expect(h.svc.dial('911')).toMatchObject({ kind: 'emergency', placed: true });
    expect(h.atInvite[0]!.begun).toHaveLength(1);
  });

  it('neither the file nor the store: the call goes out and the event is held in memory', async () => {
    const full: BeginSink = {
      append: () => false,
      markDone: () => undefined,
      clear: () => undefined,
      leftover: { events: [], unreadable: 0 },
      forgetLeftover: () => undefined,
    };
    const h = await service({ file: full, store: () => null });
    expect(h.svc.dial('911')).toMatchObject({ kind: 'emergency', placed: true });
    h.flush();
    expect(h.journal.pendingCount).toBe(1);
  });

  it('the store away at complete: the line stays in the file until the event is in the store', async () => {
    let current: Store | null = store;
    const h = await service({ file: openFile(), store: () => current });
    h.svc.dial('911');
    current = null;
    h.flush();
    expect(h.journal.pendingCount).toBe(1);
    expect(parseLines(fileText()).events).toHaveLength(1);
    current = store;
    expect(h.journal.flushPending()).toBe(1);
    expect(fileText()).toBe('');
    expect(outbox().map((e) => e.data.recorded)).toEqual(['complete']);
  });

  it('the store cannot take what a crashed process left: it stays in the file for the next try', async () => {
    const h = await service({ file: openFile() });
    h.svc.dial('911');
    const file = openFile();
    const broken = {
      recoverEmergencyEvents: () => {
        throw new Error('SQLITE_FULL');
      },
    } as unknown as JournalStore;
    const journal = journalOn(file, broken);
    expect(journal.recoverLeftover()).toBe(false);
    expect(parseLines(fileText()).events).toHaveLength(1);
    expect(journal.leftoverCount).toBe(1);
  });
});
