// The pure parts of the scale benchmark (scale.bench.ts), kept apart so test/unit can check
// them: how phones are spread over worker processes and source addresses, their ids and
// passwords, the steady event schedule, and reading a process's CPU time from /proc.
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';

export class ScalePlanError extends Error {
  override name = 'ScalePlanError';
}

/** Ephemeral ports per source address are 32768..60999 here: stay well under, since the phones' sockets and the TIME_WAITs of a previous phase share them. */
export const PHONES_PER_ADDRESS = 20_000;

export interface WorkerSlice {
  /** First phone index (inclusive) and last (exclusive). */
  from: number;
  to: number;
}

/** n phones over `parts` workers, contiguous and as even as it gets (sizes differ by at most one). */
export function splitPhones(n: number, parts: number): WorkerSlice[] {
  if (!Number.isInteger(n) || n < 0) throw new ScalePlanError(`phone count ${n} is not a count`);
  if (!Number.isInteger(parts) || parts < 1) throw new ScalePlanError(`worker count ${parts} must be at least 1`);
  const out: WorkerSlice[] = [];
  let from = 0;
  for (let k = 0; k < parts; k++) {
    const size = Math.floor(n / parts) + (k < n % parts ? 1 : 0);
    out.push({ from, to: from + size });
    from += size;
  }
  return out;
}

/** The loopback source address of phone i: 127.0.0.2 for the first perAddress phones, then .3, ... */
export function sourceAddress(i: number, perAddress = PHONES_PER_ADDRESS): string {
  const octet = 2 + Math.floor(i / perAddress);
  if (octet > 254) throw new ScalePlanError(`phone ${i} needs source address 127.0.0.${octet}: more than 253 addresses`);
  return `127.0.0.${octet}`;
}

export function phoneId(i: number): string {
  return `sim-${String(i).padStart(6, '0')}`;
}

/** Each phone's broker password, derived so the worker processes need only the seed, not 100,000 passwords. */
export function phonePassword(seed: string, id: string): string {
  return createHmac('sha256', seed).update(id).digest('base64url').slice(0, 24);
}

/** When (ms after the start) each of `rate`-per-second events over `seconds` is sent: evenly spaced. */
export function eventSchedule(rate: number, seconds: number): number[] {
  if (!(rate > 0) || !(seconds > 0)) throw new ScalePlanError(`event rate ${rate}/s over ${seconds} s: both must be positive`);
  const n = Math.round(rate * seconds);
  return Array.from({ length: n }, (_, i) => (i * 1000) / rate);
}

/** User plus system CPU time (seconds) from the text of /proc/<pid>/stat. */
export function parseProcStatCpu(stat: string, ticksPerSecond = 100): number {
  // The command name (field 2) is in parentheses and may hold spaces: count fields after its last ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); utime and stime are fields 14 and 15.
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new ScalePlanError(`not a /proc/<pid>/stat line: ${stat.slice(0, 80)}`);
  return (utime + stime) / ticksPerSecond;
}

/** A process's CPU seconds so far, or NaN once it is gone. */
export function cpuSeconds(pid: number): number {
  try {
    return parseProcStatCpu(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch (err) {
    // A process that already exited has no stat: its figure is unknown, not an error of the bench.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ESRCH') return Number.NaN;
    throw err;
  }
}

/** The soft open-files limit of this process, from /proc/self/limits. */
export function openFilesLimit(limits: string): number {
  const m = /^Max open files\s+(\d+|unlimited)/m.exec(limits);
  if (!m) throw new ScalePlanError('no "Max open files" line in /proc/self/limits');
  return m[1] === 'unlimited' ? Number.POSITIVE_INFINITY : Number(m[1]);
}
