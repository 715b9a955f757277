// A neighbours listener that throws (a location part's bug, a store gone) must not
// escape LldpAgent: from the watch's stdout handler it was an uncaught exception
// (the agent exited, and 911 with it until systemd restarted it), from reload() an
// unhandled rejection. lldpcli here is a script printing captured lldpd output.
import { afterEach, describe, expect, it } from 'vitest';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LldpAgent } from '../../../hal/net/lldpd.js';
import { hostPaths } from '../../../hal/host.js';
import { recordingLog } from '../../helpers/log.js';
import { waitFor } from '../../helpers/agent.js';

const fixtures = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../fixtures/lldp');
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('LldpAgent with a listener that throws', () => {
  it('logs the failure from the watch and from reload; nothing escapes', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'e911-lldp-throw-'));
    dirs.push(dir);
    const added = path.join(dir, 'watch-added.json');
    writeFileSync(added, readFileSync(path.join(fixtures, 'watch-deleted.json'), 'utf8').replace('lldp-deleted', 'lldp-added'));
    const lldpcli = path.join(dir, 'lldpcli');
    writeFileSync(
      lldpcli,
      `#!/bin/sh\ncase "$*" in\n  *watch*) cat ${added}; exec sleep 60 ;;\n  *) cat ${path.join(fixtures, 'show-neighbors-details.json')} ;;\nesac\n`,
    );
    chmodSync(lldpcli, 0o755);
    const host = hostPaths({ E911_CMD_LLDPCLI: lldpcli, E911_CMD_SETPRIV: '' });
    const { log, lines } = recordingLog();
    const agent = new LldpAgent({ host, log, socketPath: path.join(dir, 'lldpd.sock'), runDaemon: false, interfaces: [] });
    let calls = 0;
    agent.on('neighbors', () => {
      calls++;
      throw new Error('listener bug');
    });
    const failed = () => lines().filter((l) => l.msg === 'LLDP neighbours listener failed').length;
    await agent.start();
    await waitFor(
      () => failed() >= 2,
      5000,
      () => JSON.stringify(lines()),
    );
    expect(calls).toBe(failed());
    expect(agent.neighbors().length).toBeGreaterThan(0);
    await agent.stop();
  });
});
