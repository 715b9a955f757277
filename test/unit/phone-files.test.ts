// The systemd unit and example config shipped for the phone image agree with each
// other and with the agent: the config validates, its paths are the unit's
// directories, and systemd itself reads the unit without complaint.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../agent/config.js';
import { requires } from '../helpers/require.js';

const phone = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../scripts/phone');
const systemd = requires('phone-files: the unit verified by systemd-analyze', ['systemd']);
const unitText = readFileSync(path.join(phone, 'e911-agent.service'), 'utf8');

/** Key=value lines of the unit (the last one wins, as in systemd for these keys). */
function directives(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split('\n')) {
    const hit = line.match(/^([A-Za-z]+)=(.*)$/);
    if (hit) m.set(hit[1]!, hit[2]!);
  }
  return m;
}

describe('scripts/phone', () => {
  const unit = directives(unitText);
  const config = parseConfig(JSON.parse(readFileSync(path.join(phone, 'config.example.json'), 'utf8')));

  it('the unit is a notify service with a watchdog that always restarts', () => {
    expect(unit.get('Type')).toBe('notify');
    expect(Number(unit.get('WatchdogSec'))).toBeGreaterThan(0);
    expect(unit.get('Restart')).toBe('always');
    expect(unit.get('ExecStart')).toBe('/opt/e911-agent/e911-agent --config /etc/e911-agent/config.json');
  });

  it("the example config keeps its store and socket in the unit's directories", () => {
    expect(config.dataDir).toBe(`/var/lib/${unit.get('StateDirectory')}`);
    expect(path.dirname(config.control.socketPath)).toBe(`/run/${unit.get('RuntimeDirectory')}`);
    // The example runs as a user that is not root: it leaves control.group unset (an agent that is
    // not root may only give the socket a group it belongs to; the unit gives none).
    if (unit.get('User') && unit.get('User') !== 'root') expect(config.control.group).toBeUndefined();
  });

  it.skipIf(systemd.skip)('systemd reads the unit without a warning', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'e911-unit-'));
    try {
      // verify insists the ExecStart binary exists: point it at one that does.
      const file = path.join(dir, 'e911-agent.service');
      writeFileSync(file, unitText.replace('/opt/e911-agent/e911-agent', process.execPath));
      const r = spawnSync('/usr/bin/systemd-analyze', ['verify', file], { encoding: 'utf8' });
      const complaints = `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.includes(file));
      expect(complaints).toEqual([]);
      expect(r.status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
