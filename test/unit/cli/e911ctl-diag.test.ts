// e911ctl diag against a real control socket with a stub agent behind it: the table,
// --json, and exit codes a script can branch on.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ControlServer } from '../../../agent/control/control-server.js';
import { EXIT, main } from '../../../agent/cli/e911ctl.js';
import type { DiagnosticsReport } from '../../../agent/diagnostics/types.js';
import { silentLog } from '../../helpers/log.js';

function report(overall: DiagnosticsReport['overall']): DiagnosticsReport {
  return {
    v: 1,
    id: `r-${overall}`,
    trigger: 'cli',
    startedAt: '2026-11-22T08:00:00.000Z',
    finishedAt: '2026-11-22T08:00:01.000Z',
    overall,
    checks: [
      { id: 'address', title: 'Dispatchable address', status: 'pass', detail: 'version 5, signed, valid' },
      overall === 'pass'
        ? { id: 'clock', title: 'Clock synchronised', status: 'pass', detail: 'timedatectl: NTPSynchronized=yes' }
        : { id: 'clock', title: 'Clock synchronised', status: overall, detail: 'NTPSynchronized=no', remedy: 'enable NTP' },
    ],
    address: { version: 5, lines: ['100 Main St', 'San Jose, CA 95110'], callback: '+14085550100', displayName: 'Front Desk' },
  };
}

function sink() {
  let text = '';
  const w = new Writable({
    write(c, _e, cb) {
      text += c.toString();
      cb();
    },
  });
  return { w, text: () => text };
}

describe('e911ctl diag', () => {
  let dir: string;
  let socket: string;
  let server: ControlServer;
  let next: DiagnosticsReport['overall'] = 'pass';
  const asked: Record<string, unknown>[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'e911ctl-'));
    socket = path.join(dir, 'control.sock');
    server = new ControlServer(socket, silentLog());
    server.register('diag', (args) => {
      asked.push(args);
      return report(next);
    });
    await server.start();
  });
  afterAll(async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const run = async (...args: string[]) => {
    const out = sink();
    const err = sink();
    const code = await main(['--socket', socket, ...args], {}, out.w, err.w);
    return { code, out: out.text(), err: err.text() };
  };

  it('exits 0, 4 or 5 by the overall result, in text and in --json', async () => {
    for (const [overall, code] of [
      ['pass', EXIT.ok],
      ['warn', EXIT.warnings],
      ['fail', EXIT.problems],
    ] as const) {
      next = overall;
      const t = await run('diag');
      expect(t.code).toBe(code);
      expect(t.out).toMatch(/^CHECK\s+RESULT\s+DETAIL$/m);
      expect(t.out).toContain('100 Main St');
      if (overall !== 'pass') expect(t.out).toContain('What to do:');
      const j = await run('--json', 'diag', '--no-call');
      expect(j.code).toBe(code);
      expect(JSON.parse(j.out)).toMatchObject({ ok: true, result: { overall } });
    }
    expect(asked.at(-1)).toEqual({ noCall: true, keepCall: false, last: false });
  });

  it('usage errors exit 2, as JSON with --json; an absent agent exits 3', async () => {
    const bad = await run('--json', 'diag', '--now');
    expect(bad.code).toBe(EXIT.usage);
    expect(JSON.parse(bad.out)).toEqual({ ok: false, error: 'unknown option --now (--no-call, --keep-call, --last)', code: 'usage' });
    const none = await run('--json', 'nosuch');
    expect(none.code).toBe(EXIT.usage);
    const out = sink();
    const gone = await main(['--json', '--socket', path.join(dir, 'missing.sock'), 'diag'], {}, out.w, sink().w);
    expect(gone).toBe(EXIT.unreachable);
    expect(JSON.parse(out.text())).toMatchObject({ ok: false });
  });
});
