// The emergency event's first write, before the INVITE: one line written to a
// file beside the store. A write(2) is in the page cache when it returns, so a
// SIGKILL after it cannot lose the line (a power cut can: complete() fsyncs the
// event into the store). It costs one syscall, where an SQLite commit costs
// about twice as much on a cold cache (a keypad press after idle).
//
// Lines: the event's JSON, or {"done":"<id>"} once the event is completed in the
// store while other lines must stay. The file is preallocated (zeros) and lines
// are written at a position the file tracks, not appended: the write then
// neither grows the file nor allocates a block (an append after a truncate did
// both, and cost about twice as much cold). "Emptied" is zeroed, back to 0.
// What a previous process left is read at open, before this process writes
// anything, and handed to the store when it is open.
//
// With a mapper (the voice addon's mmap), the file's first BEGIN_FILE_SIZE bytes
// are mapped MAP_SHARED and a line is copied into the mapping: a store into the
// page cache, kept when the process dies as a write(2) is, without the syscall
// (issue 14: the write was most of the step's 0.1 ms). A line that does not fit
// in the mapping, or a file that cannot be mapped, is written with write(2).
import { closeSync, constants, ftruncateSync, fstatSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../../provisioning/common/log.js';
import type { EventPayload } from '../../provisioning/protocol/messages.js';

/** Maps a file's first bytes MAP_SHARED (hal/voice/pjsip's SharedFileMapper; injected: hal is below agent). */
export interface FileMapper {
  map(fd: number, size: number): ArrayBuffer;
  unmap(buffer: ArrayBuffer): void;
}

export const BEGIN_FILE = 'emergency-begun.jsonl';
/** Zeros written at open: room for a few begun events (one is 1-3 KB) without growing the file. */
export const BEGIN_FILE_SIZE = 64 * 1024;

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
  /** Where the next line goes: the end of the text (the zeros after it are room). */
  private pos = 0;
  /** The file does not end with a newline (a write cut short): the next line starts with one. */
  private torn = false;
  private leftoverEvents: BeginFileLeftover = { events: [], unreadable: 0 };
  /** The last write error's code, so a disk that stays full is logged once, not per call. */
  private lastError: string | null = null;
  /** The mapping of the file's first BEGIN_FILE_SIZE bytes, when a mapper made one. */
  private mapped: { buffer: ArrayBuffer; bytes: Buffer } | null = null;

  constructor(
    dataDir: string,
    private readonly log: Logger,
    private readonly mapper: FileMapper | null = null,
  ) {
    this.file = path.join(dataDir, BEGIN_FILE);
  }

  /** How lines are written: into the shared mapping, with write(2), or not at all (not open). */
  get writeMode(): 'mapped' | 'write' | 'closed' {
    return this.fd === null ? 'closed' : this.mapped ? 'mapped' : 'write';
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
    let bytes = Buffer.alloc(0);
    try {
      bytes = readFileSync(this.file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        // Not written to either: its lines may be the only copy of events a dead process began.
        // The store takes the first writes until the next start reads the file again.
        this.log.error(
          { err, file: this.file },
          'emergency begin file unreadable: left as it is; the event goes to the store before the INVITE',
        );
        return;
      }
    }
    let end = bytes.length;
    while (end > 0 && bytes[end - 1] === 0) end--;
    this.pos = end;
    this.leftoverEvents = parseLines(bytes.subarray(0, end).toString('utf8'));
    this.torn = end > 0 && bytes[end - 1] !== 0x0a;
    if (this.leftoverEvents.unreadable > 0) {
      this.log.error(
        { file: this.file, unreadable: this.leftoverEvents.unreadable },
        'emergency begin file: unreadable lines skipped (a write cut short: its INVITE never left)',
      );
    }
    try {
      mkdirSync(path.dirname(this.file), { recursive: true, mode: 0o750 });
      // Read and write: a shared writable mapping needs both.
      this.fd = openSync(this.file, constants.O_RDWR | constants.O_CREAT, 0o640);
      const size = fstatSync(this.fd).size;
      if (size < BEGIN_FILE_SIZE) writeSync(this.fd, Buffer.alloc(BEGIN_FILE_SIZE - size), 0, BEGIN_FILE_SIZE - size, size);
    } catch (err) {
      this.close();
      this.log.error({ err, file: this.file }, 'emergency begin file cannot be opened: the event goes to the store before the INVITE');
      return;
    }
    if (this.mapper) {
      try {
        const buffer = this.mapper.map(this.fd, BEGIN_FILE_SIZE);
        this.mapped = { buffer, bytes: Buffer.from(buffer) };
      } catch (err) {
        this.log.warn({ err, file: this.file }, 'emergency begin file not mapped: lines are written with write(2)');
      }
    }
  }

  append(json: string): boolean {
    if (this.fd === null) return false;
    const text = this.torn ? `\n${json}\n` : `${json}\n`;
    const m = this.mapped;
    if (m) {
      const bytes = Buffer.byteLength(text);
      // Into the zeros after the text: a process killed half-way leaves a line cut short, which the reader skips.
      if (this.pos + bytes <= m.bytes.length) {
        m.bytes.write(text, this.pos, 'utf8');
        this.pos += bytes;
        this.torn = false;
        this.lastError = null;
        return true;
      }
    }
    const line = Buffer.from(text);
    const bytes = line.length;
    let written: number;
    try {
      written = writeSync(this.fd, line, 0, bytes, this.pos);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'unknown';
      if (code !== this.lastError)
        this.log.error({ err, file: this.file }, 'emergency begin file not written: the event goes to the store before the INVITE');
      this.lastError = code;
      return false;
    }
    if (written !== bytes) {
      // Part of the line is there: it will not parse, and the next line must not run on from it.
      this.pos += written;
      this.torn = true;
      if (this.lastError !== 'short')
        this.log.error(
          { file: this.file, written, bytes },
          'emergency begin file: short write (disk full?): the event goes to the store before the INVITE',
        );
      this.lastError = 'short';
      return false;
    }
    this.pos += bytes;
    this.torn = false;
    this.lastError = null;
    return true;
  }

  markDone(id: string): void {
    // Best effort: a line not marked is recovered again, and the store and the server ignore an id they have.
    this.append(JSON.stringify({ done: id }));
  }

  clear(): void {
    if (this.fd === null || this.pos === 0) return;
    try {
      // Zeroed in place (the next line goes to the same, warm, allocated block); grown past its size: cut back.
      if (this.mapped) this.mapped.bytes.fill(0, 0, Math.min(this.pos, BEGIN_FILE_SIZE));
      else writeSync(this.fd, Buffer.alloc(Math.min(this.pos, BEGIN_FILE_SIZE)), 0, Math.min(this.pos, BEGIN_FILE_SIZE), 0);
      if (this.pos > BEGIN_FILE_SIZE) ftruncateSync(this.fd, BEGIN_FILE_SIZE);
      this.pos = 0;
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
    if (this.mapped) {
      const { buffer } = this.mapped;
      this.mapped = null;
      try {
        this.mapper?.unmap(buffer);
      } catch (err) {
        // Removed when the buffer is collected.
        this.log.warn({ err, file: this.file }, 'emergency begin file not unmapped');
      }
    }
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
  // Zeros inside the text: a zeroing cut short by the process dying; they end a line as a newline does.
  for (const line of text.split(/[\n\0]+/)) {
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
