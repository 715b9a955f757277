// A silent pino logger for tests, and one that records lines when a test wants to read them.
import { pino, type Logger } from 'pino';
import { Writable } from 'node:stream';

export function silentLog(): Logger {
  return pino({ level: 'silent' });
}

export function recordingLog(): { log: Logger; lines: () => Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { log: pino({ level: 'trace' }, sink), lines: () => lines };
}
