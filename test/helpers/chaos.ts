// Shared by the chaos tests (test/integration/chaos-*.test.ts): counting at the
// far end (the server's SQLite database, the mail sink), a seeded random source
// so a failing run can be replayed, the rounds a run makes, and the figures table.
import { readdirSync, readFileSync } from 'node:fs';
import Database from 'better-sqlite3';

/**
 * Rounds (kills, restarts) in this run: E911_CHAOS_ROUNDS if set, else the full count under
 * E911_CHAOS_FULL=1 (npm run chaos), else the bounded count of the default test run.
 */
export function chaosRounds(bounded: number, full: number): number {
  const n = Number(process.env.E911_CHAOS_ROUNDS);
  if (Number.isInteger(n) && n > 0) return n;
  return process.env.E911_CHAOS_FULL === '1' ? full : bounded;
}

/** mulberry32: a small seeded PRNG; the seed is printed with the figures. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function chaosSeed(): number {
  const s = Number(process.env.E911_CHAOS_SEED);
  return Number.isInteger(s) ? s : Math.floor(Math.random() * 2 ** 31);
}

export interface ServerEventRow {
  id: string;
  device_id: string;
  type: string;
  ts: string;
  data: string;
}

/** The server's database, read from outside (WAL lets a reader in beside the writer). */
export function serverRows(
  dbFile: string,
  deviceId: string,
): { events: ServerEventRow[]; notifications: { event_id: string; channel: string; recipient: string; status: string }[] } {
  const db = new Database(dbFile, { readonly: true, fileMustExist: true });
  try {
    db.pragma('busy_timeout = 2000');
    const events = db
      .prepare('SELECT id, device_id, type, ts, data FROM events WHERE device_id = ? ORDER BY ts')
      .all(deviceId) as ServerEventRow[];
    const notifications = db
      .prepare(
        'SELECT n.event_id, n.channel, n.recipient, n.status FROM notifications n JOIN events e ON e.id = n.event_id WHERE e.device_id = ?',
      )
      .all(deviceId) as { event_id: string; channel: string; recipient: string; status: string }[];
    return { events, notifications };
  } finally {
    db.close();
  }
}

/** Processes whose parent is pid (helpers the agent started). */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(d));
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

/** Running: a zombie (dead, not yet reaped by whoever inherited it) is not. */
/** A process's helpers: every process below pid, with its name. */
export function descendants(pid: number): { pid: number; comm: string }[] {
  const out: { pid: number; comm: string }[] = [];
  const walk = (p: number) => {
    for (const c of childrenOf(p)) {
      let comm = '?';
      try {
        comm = readFileSync(`/proc/${c}/comm`, 'utf8').trim();
      } catch {
        /* gone */
      }
      out.push({ pid: c, comm });
      walk(c);
    }
  };
  walk(pid);
  return out;
}

export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

export interface ChaosFigures {
  scenario: string;
  seed: number;
  rounds: number;
  callsAtPsap?: number;
  eventsAtServer: number;
  notificationsSent: number;
  lost: number;
  duplicates: number;
  orphans?: number;
}

/** One line per scenario, the same shape as docs/reliability.md's table. */
export function printFigures(f: ChaosFigures): void {
  const cells = [
    f.scenario,
    f.rounds,
    f.callsAtPsap ?? '-',
    f.eventsAtServer,
    f.notificationsSent,
    f.lost,
    f.duplicates,
    f.orphans ?? '-',
    f.seed,
  ];
  process.stderr.write(`\nCHAOS | ${cells.join(' | ')} |\n`);
}
