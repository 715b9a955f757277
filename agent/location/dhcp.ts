// DHCP location options as the phone's DHCP client hands them over.
//
// The hand-over (docs/network.md): the client's hook writes one file per
// interface, <host.dhcpLocationDir>/<iface>, atomically (write then rename),
// with KEY=VALUE lines:  option99=<bytes>  option123=<bytes>  where <bytes> is hex
// ("02:55:53:..." or "025553...") or decimal bytes ("2,85,83,..."), and removes the
// file when the lease is gone. scripts/dhcp/ has hooks for udhcpc and dhclient.
// We watch the folder (inotify through fs.watch): nothing polls.
import { EventEmitter } from 'node:events';
import { mkdirSync, watch, type FSWatcher } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../../provisioning/common/log.js';
import { decodeCivicOption, decodeGeoOption, hexBytes, type CivicOption, type GeoOption } from './dhcp-codec.js';

export interface DhcpLocation {
  iface: string;
  civic: CivicOption | null;
  geo: GeoOption | null;
  /** Why an option present in the file could not be used. */
  problems: string[];
}

export interface DhcpEvents {
  update: [DhcpLocation[]];
}

export function parseOptionBytes(value: string): Buffer | null {
  const v = value.trim();
  if (/^\d{1,3}(,\d{1,3})+$/.test(v)) {
    const nums = v.split(',').map(Number);
    return nums.every((n) => n <= 255) ? Buffer.from(nums) : null;
  }
  return hexBytes(v);
}

/** One hand-over file's text to what it says. */
export function parseHandOver(iface: string, text: string): DhcpLocation {
  const out: DhcpLocation = { iface, civic: null, geo: null, problems: [] };
  for (const line of text.split('\n')) {
    const m = /^\s*(option99|option123)\s*=\s*(.*?)\s*$/.exec(line);
    if (!m || m[2] === '') continue;
    const bytes = parseOptionBytes(m[2]!);
    if (!bytes) {
      out.problems.push(`${m[1]}: not hex or decimal bytes`);
      continue;
    }
    if (m[1] === 'option99') {
      const d = decodeCivicOption(bytes);
      if (d.ok) out.civic = d.value;
      else out.problems.push(`option99: ${d.reason}`);
    } else {
      const d = decodeGeoOption(bytes);
      if (d.ok) out.geo = d.value;
      else out.problems.push(`option123: ${d.reason}`);
    }
  }
  return out;
}

export class DhcpLocationReader extends EventEmitter<DhcpEvents> {
  private watcher: FSWatcher | null = null;
  private timer: NodeJS.Timeout | null = null;
  private last = '';
  private current: DhcpLocation[] = [];

  constructor(
    private readonly dir: string,
    private readonly watches: (iface: string) => boolean,
    private readonly log: Logger,
  ) {
    super();
  }

  locations(): DhcpLocation[] {
    return this.current;
  }

  async start(): Promise<void> {
    mkdirSync(this.dir, { recursive: true, mode: 0o755 });
    this.watcher = watch(this.dir, () => this.schedule());
    this.watcher.on('error', (err) => this.log.warn({ err: err.message, dir: this.dir }, 'DHCP hand-over folder watch failed'));
    await this.scan();
  }

  async stop(): Promise<void> {
    this.watcher?.close();
    this.watcher = null;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private schedule(): void {
    if (this.timer) return;
    // A hook writes a temp file and renames it: several inotify events, one read.
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.scan();
    }, 20);
  }

  private async scan(): Promise<void> {
    const names = (await readdir(this.dir).catch(() => [] as string[]))
      .filter((n) => !n.startsWith('.') && !n.endsWith('.tmp') && this.watches(n))
      .sort();
    const found: DhcpLocation[] = [];
    for (const name of names) {
      const text = await readFile(path.join(this.dir, name), 'utf8').catch(() => null);
      if (text === null) continue;
      const loc = parseHandOver(name, text);
      if (loc.problems.length > 0) this.log.warn({ iface: name, problems: loc.problems }, 'DHCP location options unusable');
      if (loc.civic || loc.geo) found.push(loc);
    }
    const text = JSON.stringify(found);
    if (text === this.last) return;
    this.last = text;
    this.current = found;
    this.emit('update', found);
  }
}
