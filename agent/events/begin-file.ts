// The emergency event's first write, before the INVITE: one line appended to a
// file beside the store. A write(2) to a file opened O_APPEND is in the page
// cache when it returns, so a SIGKILL after it cannot lose the line (a power cut
// can: complete() fsyncs the event into the store). It costs one syscall, where
// an SQLite commit costs 0.1-0.2 ms on a cold cache (a keypad press after idle).
//
// Lines: the event's JSON, or {"done":"<id>"} once the event is completed in the
// store while other lines must stay. The file is emptied once every event in it
// is in the store. What a previous process left is read at open, before this
// process appends anything, and handed to the store when it is open.
import { closeSync, constants, ftruncateSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../log.js';
import type { EventPayload } from '../../provisioning/protocol/messages.js';

export const BEGIN_FILE = 'emergency-begun.jsonl';

/** What a previous process left in the file. */
export interface BeginFileLeftover {
  /** Events begun and not marked done, in file order (the last line of an id wins). */
  events: EventPayload[];
  /** Lines that could not be read (a write cut short): skipped. */
  unreadable: number;
}

/** What the emergency journal needs of the file (a fake in tests). */
export interface BeginSink {
  /** Appends the event's JSON text; false when it is not on the page cache whole (the caller falls back). */
  append(json: string): boolean;
  /** The event is in the store: a later reader skips its line. */
  markDone(id: string): void;
  /** Every event in the file is in the store. */
  clear(): void;
  /** What a previous process left (read at open); emptied by forgetLeftover(). */
  readonly leftover: BeginFileLeftover;
  forgetLeftover(): void;
}

export class BeginFile implements BeginSink {
  readonly file: string;
  private fd: number | null = null;
  /** The file does not end with a newline (a write cut short): the next line starts with one. */
  private torn = false;
  private leftoverEvents: BeginFileLeftover = { events: [], unreadable: 0 };
  /** The last write error's code, so a disk that stays full is logged once, not per call. */
  private lastError: string | null = null;

  constructor(
    dataDir: string,
    private readonly log: Logger,
  ) {
    this.file = path.join(dataDir, BEGIN_FILE);
  }

  get leftover(): BeginFileLeftover {
    return this.leftoverEvents;
  }

  /** Whether appends go to the file (false: it could not be opened). */
  get writable(): boolean {
    return this.fd !== null;
  }

  /**
   * Reads what a previous process left, then opens the file for appending. Never
   * throws: a file that cannot be opened leaves begin() to the store.
   */
  open(): void {
    if (this.fd !== null) return;
    let text = '';
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.log.error({ err, file: this.file }, 'emergency begin file unreadable: events begun before a crash, if any, are not recovered from it');
    }
    this.leftoverEvents = parseLines(text);
    this.torn = text.length > 0 && !text.endsWith('\n');
    if (this.leftoverEvents.unreadable > 0) {
      this.log.error({ file: this.file, unreadable: this.leftoverEvents.unreadable }, 'emergency begin file: unreadable lines skipped (a write cut short: its INVITE never left)');
    }
    try {
      mkdirSync(path.dirname(this.file), { recursive: true, mode: 0o750 });
      this.fd = openSync(this.file, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT, 0o640);
    } catch (err) {
      this.log.error({ err, file: this.file }, 'emergency begin file cannot be opened: the event goes to the store before the INVITE');
    }
  }

  append(json: string): boolean {
    if (this.fd === null) return false;
    const line = this.torn ? `\n${json}\n` : `${json}\n`;
    const bytes = Buffer.byteLength(line);
    let written: number;
    try {
      written = writeSync(this.fd, line);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'unknown';
      if (code !== this.lastError) this.log.error({ err, file: this.file }, 'emergency begin file not written: the event goes to the store before the INVITE');
      this.lastError = code;
      return false;
    }
    if (written !== bytes) {
      // Part of the line is there: it will not parse, and the next line must not run on from it.
      this.torn = true;
      if (this.lastError !== 'short') this.log.error({ file: this.file, written, bytes }, 'emergency begin file: short write (disk full?): the event goes to the store before the INVITE');
      this.lastError = 'short';
      return false;
    }
    this.torn = false;
    this.lastError = null;
    return true;
  }

  markDone(id: string): void {
    // Best effort: a line not marked is recovered again, and the store and the server ignore an id they have.
    this.append(JSON.stringify({ done: id }));
  }

  clear(): void {
    if (this.fd === null) return;
    try {
      ftruncateSync(this.fd, 0);
      this.torn = false;
    } catch (err) {
      // The lines stay: recovered again at the next start, and ignored there by id.
      this.log.error({ err, file: this.file }, 'emergency begin file not emptied');
    }
  }

  forgetLeftover(): void {
    this.leftoverEvents = { events: [], unreadable: 0 };
  }

  close(): void {
    if (this.fd === null) return;
    try {
      closeSync(this.fd);
    } catch (err) {
      this.log.warn({ err, file: this.file }, 'emergency begin file not closed');
    }
    this.fd = null;
  }
}

/** The events a file's text holds that were not marked done, and how many lines could not be read. */
export function parseLines(text: string): BeginFileLeftover {
  const events = new Map<string, EventPayload>();
  let unreadable = 0;
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      unreadable++;
      continue;
    }
    const v = value as Partial<EventPayload> & { done?: unknown };
    if (typeof v?.done === 'string') {
      events.delete(v.done);
    } else if (typeof v?.id === 'string' && typeof v.type === 'string' && typeof v.ts === 'string') {
      events.set(v.id, v as EventPayload);
    } else {
      unreadable++;
    }
  }
  return { events: [...events.values()], unreadable };
}
