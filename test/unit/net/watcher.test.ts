// NetworkWatcher with a stand-in `ip` (a shell script named through HostPaths):
// bursts of netlink lines make one snapshot, irrelevant lines make none, an
// identical snapshot emits nothing, and a monitor that dies is restarted.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { hostPaths } from '../../../hal/host.js';
import { NetworkWatcher } from '../../../hal/net/watcher.js';
import { emptySnapshot, type NetworkChange, type NetworkSnapshot } from '../../../hal/net/types.js';
import { silentLog } from '../../helpers/log.js';
import { waitFor } from '../../helpers/agent.js';

describe('NetworkWatcher', () => {
  let dir = '';
  let watcher: NetworkWatcher | null = null;
  afterEach(async () => {
    vi.useRealTimers();
    await watcher?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  function fakeIp(script: string): string {
    dir = mkdtempSync(path.join(os.tmpdir(), 'e911-fakeip-'));
    const file = path.join(dir, 'ip');
    writeFileSync(file, `#!/bin/sh\n${script}\n`);
    chmodSync(file, 0o755);
    return file;
  }

  it('turns a burst of relevant lines into one snapshot and ignores the rest', async () => {
    // One burst of five lines for eth0, then a route that changes nothing, then lines for another
    // interface. The stand-in prints each part when the test says so (a file appears), never on a timer.
    const ip = fakeIp(`until [ -e "$0.go1" ]; do sleep 0.01; done
printf '2: eth0    inet 10.0.0.5/24 scope global eth0\\n2: eth0    inet6 fe80::1/64 scope link\\ndefault via 10.0.0.1 dev eth0\\n2: eth0@if3: <BROADCAST,UP> mtu 1500\\nlocal 10.0.0.5 dev eth0 table local\\n'
until [ -e "$0.go2" ]; do sleep 0.01; done
printf '10.0.0.0/24 dev eth0 proto kernel scope link src 10.0.0.5\\n3: wlan0    inet 10.9.0.5/24 scope global wlan0\\n'
sleep 30`);
    const go = (n: number) => writeFileSync(`${ip}.go${n}`, '');
    let reads = 0;
    let snap: NetworkSnapshot = emptySnapshot();
    watcher = new NetworkWatcher({
      host: { ...hostPaths({}), commands: { ip, lldpcli: 'x', lldpd: 'x' } },
      log: silentLog(),
      interfaces: ['eth0'],
      debounceMs: 30,
      readSnapshot: async () => {
        reads++;
        return snap;
      },
    });
    const changes: NetworkChange[] = [];
    watcher.on('change', (c) => changes.push(c));
    snap = { ...emptySnapshot(), dns: ['start'] };
    await watcher.start();
    expect(changes.map((c) => c.reasons)).toEqual([['start']]);
    snap = { ...emptySnapshot(), dns: ['after burst'] };
    go(1);
    const w = watcher;
    const why = () => `reads ${reads}, counters ${JSON.stringify(w.counters)}`;
    await waitFor(() => w.counters.lines === 5 && w.counters.snapshots === 2, 5000, why);
    expect(reads).toBe(2);
    expect(changes).toHaveLength(2);
    expect(changes[1]!.reasons.sort()).toEqual(['address', 'link', 'route']);
    expect(changes[1]!.previous).toEqual({ ...emptySnapshot(), dns: ['start'] });
    const relevant = w.counters.relevant;
    // The lines that change nothing are read (counted) and opened no window: nothing relevant.
    go(2);
    await waitFor(() => w.counters.lines === 7, 5000, why);
    expect(w.counters.relevant).toBe(relevant);
    // A refresh that reads the same snapshot emits nothing; its read is the marker that
    // nothing else was pending (reads are one at a time, in order).
    watcher.refresh();
    await waitFor(() => w.counters.snapshots === 3, 5000, why);
    expect(reads).toBe(3);
    expect(changes).toHaveLength(2);
  });

  it('reads at once on the first event of a burst, and coalesces the rest into one read when the window closes', async () => {
    const ip = fakeIp('sleep 30');
    const reads: { at: number; n: number }[] = [];
    let version = 0;
    watcher = new NetworkWatcher({
      host: { ...hostPaths({}), commands: { ip, lldpcli: 'x', lldpd: 'x' } },
      log: silentLog(),
      interfaces: ['eth0'],
      debounceMs: 25,
      readSnapshot: async () => {
        reads.push({ at: Date.now(), n: version });
        return { ...emptySnapshot(), dns: [`v${version}`] };
      },
    });
    const changes: NetworkChange[] = [];
    watcher.on('change', (c) => changes.push(c));
    await watcher.start();
    vi.useFakeTimers({ now: 0, toFake: ['setTimeout', 'clearTimeout', 'setImmediate', 'clearImmediate', 'Date'] });
    const settle = async (ms: number) => {
      await vi.advanceTimersByTimeAsync(ms);
    };
    reads.length = 0;
    changes.length = 0;

    // The first event: read at once (no window to wait out), and reported.
    version = 1;
    watcher.refresh();
    await settle(0);
    expect(reads).toEqual([{ at: 0, n: 1 }]);
    expect(changes.map((c) => c.snapshot.dns)).toEqual([['v1']]);

    // The rest of the burst, inside the window: no read until it closes, then one for all of them.
    version = 2;
    for (const t of [5, 5, 5]) {
      await settle(t);
      watcher.refresh();
    }
    expect(reads).toHaveLength(1);
    await settle(9);
    expect(reads).toHaveLength(1);
    await settle(1);
    expect(reads).toEqual([
      { at: 0, n: 1 },
      { at: 25, n: 2 },
    ]);
    expect(changes.map((c) => c.snapshot.dns)).toEqual([['v1'], ['v2']]);

    // Nothing more came: the next window closes without a read; a later event is again read at once.
    await settle(100);
    expect(reads).toHaveLength(2);
    version = 3;
    watcher.refresh();
    await settle(0);
    expect(reads.at(-1)).toEqual({ at: 125, n: 3 });
    expect(changes).toHaveLength(3);
  });

  it('restarts ip monitor when it exits, and takes a fresh snapshot', async () => {
    const ip = fakeIp('exit 3');
    let reads = 0;
    watcher = new NetworkWatcher({
      host: { ...hostPaths({}), commands: { ip, lldpcli: 'x', lldpd: 'x' } },
      log: silentLog(),
      interfaces: [],
      debounceMs: 10,
      readSnapshot: async () => {
        reads++;
        return emptySnapshot();
      },
    });
    await watcher.start();
    const w = watcher;
    // Each restart is followed by a fresh snapshot (the start's read, then one per restart).
    await waitFor(
      () => w.counters.monitorRestarts >= 2 && reads >= 3,
      10_000,
      () => `reads ${reads}, counters ${JSON.stringify(w.counters)}`,
    );
  });
});
