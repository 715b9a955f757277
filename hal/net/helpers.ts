// Long-running helper processes (lldpd, lldpcli watch, ip monitor) die with the
// agent, even on SIGKILL: each runs under a small sh started with a parent-death
// signal (`setpriv --pdeathsig TERM`), which ends the helper when the agent goes.
// The signal cannot be set on the helper itself: the kernel clears it when a
// process changes its credentials, and lldpd and lldpcli drop privileges (the
// chaos test saw them survive). And an agent that starts ends the helpers an
// earlier instance left anyway (no setpriv on the image, say), from the pid file
// it keeps beside them: an orphaned lldpd holds its socket, and the next one
// attached to the stale instance.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { HostPaths } from '../host.js';

/** sh -c: run "$0" "$@", pass TERM/INT on to it, exit with its status. */
const GUARD =
  'trap \'kill "$c" 2>/dev/null\' TERM INT; "$0" "$@" & c=$!; wait "$c"; r=$?; while kill -0 "$c" 2>/dev/null; do wait "$c"; r=$?; done; exit "$r"';

/** [command, args] for a helper: the host's prefix (a network namespace in tests), the guard, the program. */
export function helperCommand(host: HostPaths, bin: string, args: readonly string[]): [string, string[]] {
  const guard = host.commands.setpriv ? [host.commands.setpriv, '--pdeathsig', 'TERM', '--', 'sh', '-c', GUARD] : [];
  const [cmd, ...rest] = [...host.commandPrefix, ...guard, bin, ...args];
  return [cmd!, rest];
}

interface HelperRecord {
  pid: number;
  /** Field 22 of /proc/<pid>/stat: tells a reused pid from ours. */
  startTime: string;
}

/** Records the helpers this agent started, and ends those an earlier instance left. */
export class HelperPids {
  private readonly records = new Map<number, HelperRecord>();

  constructor(
    private readonly file: string,
    private readonly proc: string,
    private readonly log: Logger,
  ) {}

  /** Ends every helper listed by an earlier instance that is still alive (same pid and start time). */
  async endStale(): Promise<number> {
    let listed: HelperRecord[] = [];
    try {
      listed = JSON.parse(readFileSync(this.file, 'utf8')) as HelperRecord[];
    } catch {
      return 0; // no earlier instance, or nothing recorded
    }
    const stale = listed.filter((r) => this.startTime(r.pid) === r.startTime);
    for (const r of stale) signal(r.pid, 'SIGTERM');
    const deadline = Date.now() + 2000;
    while (stale.some((r) => this.startTime(r.pid) === r.startTime) && Date.now() < deadline)
      await new Promise((res) => setTimeout(res, 20));
    for (const r of stale) if (this.startTime(r.pid) === r.startTime) signal(r.pid, 'SIGKILL');
    if (stale.length > 0) this.log.warn({ pids: stale.map((r) => r.pid) }, 'ended helper processes left by an earlier agent');
    this.save();
    return stale.length;
  }

  add(pid: number | undefined): void {
    if (pid === undefined) return;
    const startTime = this.startTime(pid);
    if (startTime === null) return;
    this.records.set(pid, { pid, startTime });
    this.save();
  }

  remove(pid: number | undefined): void {
    if (pid === undefined || !this.records.delete(pid)) return;
    this.save();
  }

  private save(): void {
    try {
      writeFileSync(this.file, JSON.stringify([...this.records.values()]));
    } catch (err) {
      this.log.warn({ err: (err as Error).message, file: this.file }, 'cannot record helper pids');
    }
  }

  /** Null when the process is gone (or a zombie: dead, waiting for whoever inherited it to reap it). */
  private startTime(pid: number): string | null {
    try {
      const stat = readFileSync(path.join(this.proc, String(pid), 'stat'), 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return fields[0] === 'Z' ? null : (fields[19] ?? null);
    } catch {
      return null;
    }
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* already gone */
  }
}
