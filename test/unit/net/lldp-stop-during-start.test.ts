// stop() while start() still waits for lldpd's socket: the agent's stop must not
// sit out start's timeouts (a CI run saw a 30 s stop), and nothing is spawned after it.
import { afterEach, describe, expect, it } from 'vitest';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LldpAgent } from '../../../hal/net/lldpd.js';
import { hostPaths } from '../../../hal/host.js';
import { silentLog } from '../../helpers/log.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('LldpAgent stopped while starting', () => {
  it('start returns as soon as stop is called, and lldpcli is never run', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'e911-lldp-stop-'));
    dirs.push(dir);
    // An lldpd that never makes its socket; an lldpcli that leaves a mark if it ever runs.
    const lldpd = path.join(dir, 'lldpd');
    writeFileSync(lldpd, '#!/bin/sh\nexec sleep 60\n');
    const lldpcli = path.join(dir, 'lldpcli');
    const mark = path.join(dir, 'lldpcli-ran');
    writeFileSync(lldpcli, `#!/bin/sh\ntouch ${mark}\nexec sleep 60\n`);
    chmodSync(lldpd, 0o755);
    chmodSync(lldpcli, 0o755);
    const host = hostPaths({ E911_CMD_LLDPD: lldpd, E911_CMD_LLDPCLI: lldpcli, E911_CMD_SETPRIV: '' });
    const agent = new LldpAgent({
      host,
      log: silentLog(),
      socketPath: path.join(dir, 'sock', 'lldpd.sock'),
      runDaemon: true,
      interfaces: [],
    });

    let started = false;
    const starting = agent.start().then(() => (started = true));
    await new Promise((r) => setTimeout(r, 100));
    expect(started).toBe(false); // still waiting for the socket (5 s)
    await agent.stop();
    // start() notices the stop on its next 20 ms poll.
    await Promise.race([starting, new Promise((_, reject) => setTimeout(() => reject(new Error('start still waiting after stop')), 1000))]);
    expect(started).toBe(true);
    expect(existsSync(mark)).toBe(false);
  });
});
