// Network namespaces joined by veth pairs, made by a test and removed after it
// (even when it fails: remove() is idempotent and also runs at process exit).
import { execFileSync, spawnSync } from 'node:child_process';

let seq = 0;
const live = new Set<string>();
process.once('exit', () => {
  for (const ns of live) spawnSync('ip', ['netns', 'del', ns]);
});

/** Whether this process may create namespaces (root, iproute2 present). */
export function netnsAvailable(): { ok: boolean; reason: string } {
  if (process.getuid?.() !== 0) return { ok: false, reason: 'network namespace tests need root' };
  const probe = `e911p${process.pid}`;
  const r = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' });
  if (r.status !== 0) return { ok: false, reason: `ip netns add failed: ${r.stderr || r.error?.message}` };
  spawnSync('ip', ['netns', 'del', probe]);
  return { ok: true, reason: '' };
}

export function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8' });
}

export class NetNs {
  readonly name: string;
  constructor(tag: string) {
    // Short: interface and namespace names end up in messages and ps listings.
    this.name = `e911-${tag}-${process.pid}-${++seq}`;
    ip('netns', 'add', this.name);
    live.add(this.name);
    this.ip('link', 'set', 'lo', 'up');
  }

  /** Runs `ip -n <ns> ...` and returns its output. */
  ip(...args: string[]): string {
    return ip('-n', this.name, ...args);
  }

  /** The words that run a command inside this namespace. */
  get prefix(): string[] {
    return ['ip', 'netns', 'exec', this.name];
  }

  exec(cmd: string, args: string[]): string {
    return execFileSync('ip', ['netns', 'exec', this.name, cmd, ...args], { encoding: 'utf8' });
  }

  remove(): void {
    if (!live.has(this.name)) return;
    live.delete(this.name);
    spawnSync('ip', ['netns', 'del', this.name]);
  }
}

/** A veth pair with one end in each namespace, both up. */
export function vethPair(a: NetNs, aName: string, b: NetNs, bName: string, aMac?: string): void {
  ip('link', 'add', aName, ...(aMac ? ['address', aMac] : []), 'netns', a.name, 'type', 'veth', 'peer', 'name', bName, 'netns', b.name);
  a.ip('link', 'set', aName, 'up');
  b.ip('link', 'set', bName, 'up');
}
